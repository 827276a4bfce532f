"""Wiring the configured CRM: adapter, shared limiter, syncer, background loop, pulls."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import attribution
from connector.db import get_db, insert_ignore
from connector.limiter import DbLimiter
from connector.models import Campaign, Contact, CrmLink, Deal, DealContact, SyncCursor, utcnow
from connector.settings_ext import settings_of
from connector.sync import Syncer
from crm_adapters import CrmAdapter, get_adapter
from crm_adapters.base import CampaignRecord, DealRecord
from crm_adapters.local import LocalAdapter

if TYPE_CHECKING:
    from flask import Flask

logger = structlog.get_logger(__name__)


def build_adapter(app: Flask) -> CrmAdapter:
    """The adapter named by ``WACRM_CRM`` with a limiter shared through the database."""
    cached: CrmAdapter | None = app.extensions.get("wacrm.crm_adapter")
    if cached is not None:
        return cached
    settings, db = settings_of(app), get_db(app)
    limiter = DbLimiter(db, {}, account=settings.crm)
    if settings.crm == "local":
        adapter: CrmAdapter = LocalAdapter(db.engine)
    else:
        adapter = get_adapter(settings.crm).from_env(app.extensions["wacrm.env"], limiter=limiter)
    limiter.rates = adapter.rate_limits()
    app.extensions["wacrm.crm_adapter"] = adapter
    return adapter


def check_crm_config(app: Flask) -> None:
    """Fail at start, naming the setting, when the CRM's configuration is wrong."""
    from connector.errors import ConfigError

    try:
        build_adapter(app)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    except Exception:  # e.g. Salesforce login unreachable: the sync loop keeps trying
        logger.warning("crm_unavailable_at_start", crm=settings_of(app).crm, exc_info=True)


def build_syncer(app: Flask) -> Syncer:
    settings = settings_of(app)
    return Syncer(
        get_db(app), build_adapter(app), crm=settings.crm, max_delay=settings.sync_max_delay
    )


class SyncLoop(threading.Thread):
    """Background flusher: polls the outbox and sends what is due (``wacrm serve``/``worker``)."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="wacrm-sync", daemon=True)
        self.app = app
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = settings_of(self.app).sync_poll_interval.total_seconds()
        syncer, failures = None, 0
        while not self.stopped.is_set():
            try:
                syncer = syncer or build_syncer(self.app)
                syncer.flush()
                failures = 0
            except Exception:  # keep syncing after a bad flush; the rows stay pending
                failures += 1
                logger.exception("crm_sync_loop_error", consecutive=failures)
            # After repeated failures (CRM login down), back off rather than log 4 times a second.
            self.stopped.wait(interval if failures < 3 else min(60.0, 2.0**failures))

    def stop(self) -> None:
        self.stopped.set()


def pull(app: Flask, *, full: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Bring deals and campaigns changed since the last pull into our tables."""
    settings, db, adapter = settings_of(app), get_db(app), build_adapter(app)
    now = now or utcnow()
    cursor = f"{settings.crm}:pull"
    with db.session() as session:
        since = (
            None
            if full
            else session.scalar(select(SyncCursor.value).where(SyncCursor.name == cursor))
        )
    deals, campaigns = adapter.fetch_deals(since), adapter.fetch_campaigns(since)
    with db.session() as session:
        for record in deals:
            _store_deal(session, settings.crm, record)
        for campaign in campaigns:
            _store_campaign(session, settings.crm, campaign)
        tagged = attribution.on_deals_pulled(session, [d.crm_id for d in deals])
        insert_ignore(session, SyncCursor, {"name": cursor, "value": now}, ["name"])
        session.get(SyncCursor, cursor).value = now  # type: ignore[union-attr]
    logger.info(
        "crm_pulled",
        crm=settings.crm,
        deals=len(deals),
        campaigns=len(campaigns),
        conversations_tagged=tagged,
    )
    return {"deals": len(deals), "campaigns": len(campaigns)}


def _store_deal(session: Session, crm: str, record: DealRecord) -> None:
    insert_ignore(
        session, Deal, {"key": record.crm_id, "is_closed": False, "is_won": False}, ["key"]
    )
    deal = session.scalars(select(Deal).where(Deal.key == record.crm_id)).one()
    was_won = deal.is_won
    deal.crm, deal.name, deal.amount, deal.currency = (
        crm,
        record.name,
        record.amount,
        record.currency,
    )
    deal.stage, deal.is_closed, deal.is_won = record.stage, record.is_closed, record.is_won
    deal.close_date, deal.updated_at = record.close_date, record.updated_at
    if record.is_won and not was_won:
        deal.won_at = record.close_date or record.updated_at or utcnow()
    contact_ids = session.scalars(
        select(CrmLink.local_id).where(
            CrmLink.crm == crm,
            CrmLink.kind == "contact",
            CrmLink.crm_id.in_(record.contact_crm_ids),
        )
    ).all()
    for contact_id in contact_ids:
        if session.get(Contact, contact_id) is not None:
            insert_ignore(session, DealContact, {"deal_id": deal.id, "contact_id": contact_id})


def _store_campaign(session: Session, crm: str, record: CampaignRecord) -> None:
    campaign = session.scalars(
        select(Campaign).where(Campaign.crm == crm, Campaign.crm_id == record.crm_id)
    ).first()
    if campaign is None:
        insert_ignore(session, Campaign, {"key": record.crm_id}, ["key"])
        campaign = session.scalars(select(Campaign).where(Campaign.key == record.crm_id)).one()
    campaign.crm, campaign.crm_id, campaign.name = crm, record.crm_id, record.name
    campaign.status, campaign.spend, campaign.currency = (
        record.status,
        record.spend,
        record.currency,
    )
    campaign.updated_at = record.updated_at
