"""Messaging costs: a rate card prices every billable message from its status webhook.

Since 1 July 2025 Meta charges per delivered template message, by the template's pricing
category and the recipient's country calling code; free-form replies, utility templates
inside an open customer-service window and everything inside a free entry point window
are free, and the status webhook says so with ``pricing.billable: false``. Before that
date (``pricing_model: "CBP"``) Meta charged once per 24-hour pricing conversation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.config_file import RateCard
from connector.errors import ConfigError
from connector.models import Contact, Message, MessageStatusEvent

logger = structlog.get_logger(__name__)

RATE_CARD_CURRENCY = "USD"
RATE_CARD_SOURCE = (
    "Meta WhatsApp Business Platform pricing, rates effective 2025-07-01, USD "
    "(a few large markets and 'Other'; Meta revises rates quarterly (2025-10-01, 2026-01-01, "
    "2026-04-01, ...) and those revisions are not included: put your current card in the "
    "YAML rate_card)"
)
BILLED_CATEGORIES = ("marketing", "utility", "authentication")

# Categories Meta bills at another category's rate when a card has no own price for them.
FALLBACK = {"authentication_international": "authentication", "marketing_lite": "marketing"}


def _card(
    marketing: str, utility: str, authentication: str, intl: str | None = None
) -> dict[str, Decimal]:
    rates = {
        "marketing": Decimal(marketing),
        "utility": Decimal(utility),
        "authentication": Decimal(authentication),
        "service": Decimal(0),  # free since 1 November 2024
        "referral_conversion": Decimal(0),  # free entry point window
    }
    if intl is not None:
        rates["authentication_international"] = Decimal(intl)
    return rates


# Meta's "Other" market: every calling code without its own line.
DEFAULT_RATES = MappingProxyType(_card("0.0604", "0.0077", "0.0077"))
COUNTRY_RATES = MappingProxyType(
    {
        "1": _card("0.0250", "0.0034", "0.0034"),  # North America
        "27": _card("0.0379", "0.0076", "0.0076", "0.0200"),  # South Africa
        "44": _card("0.0529", "0.0220", "0.0220"),  # United Kingdom
        "49": _card("0.1365", "0.0550", "0.0550"),  # Germany
        "52": _card("0.0436", "0.0085", "0.0085"),  # Mexico
        "55": _card("0.0625", "0.0068", "0.0068"),  # Brazil
        "62": _card("0.0411", "0.0250", "0.0250", "0.1365"),  # Indonesia
        "91": _card("0.0107", "0.0014", "0.0014", "0.0280"),  # India
        "234": _card("0.0516", "0.0067", "0.0067", "0.0750"),  # Nigeria
        "971": _card("0.0384", "0.0157", "0.0157", "0.0440"),  # United Arab Emirates
    }
)


@dataclass(frozen=True, slots=True)
class Prices:
    """The effective rate card: built-in defaults overlaid with the YAML file's."""

    currency: str = RATE_CARD_CURRENCY
    source: str = RATE_CARD_SOURCE
    default: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_RATES))
    countries: Mapping[str, Mapping[str, Decimal]] = field(
        default_factory=lambda: {code: dict(r) for code, r in COUNTRY_RATES.items()}
    )

    @classmethod
    def from_config(cls, card: RateCard | None, currency: str) -> Prices:
        """Overlay ``card`` on the built-in USD card; other currencies need a full card.

        Raises ConfigError when the card's currency is not the account's (no exchange
        rates here), or when the account is not in USD and the card lacks a default price
        for a billed category (the built-in USD figures cannot stand in for them).
        """
        card = card or RateCard()
        card_currency = (card.currency or currency).upper()
        if card_currency != currency:
            raise ConfigError(
                [
                    f"rate_card.currency: {card_currency} differs from WACRM_CURRENCY "
                    f"{currency}; give the prices in the account currency"
                ]
            )
        if currency == RATE_CARD_CURRENCY:
            return cls._overlay(card, currency)
        missing = [c for c in BILLED_CATEGORIES if c not in card.default]
        if missing:
            raise ConfigError(
                [
                    f"rate_card.default: WACRM_CURRENCY is {currency} and the built-in rate "
                    f"card is in USD; give default prices for {', '.join(missing)}"
                ]
            )
        return cls(
            currency=currency,
            source=card.source or "rate_card in WACRM_CONFIG_FILE",
            default={"service": Decimal(0), **card.default},
            countries={code: dict(rates) for code, rates in card.countries.items()},
        )

    @classmethod
    def _overlay(cls, card: RateCard, currency: str) -> Prices:
        countries = {code: dict(rates) for code, rates in COUNTRY_RATES.items()}
        for code, rates in card.countries.items():
            countries[code] = {**countries.get(code, {}), **rates}
        overridden = bool(card.default or card.countries)
        source = card.source or (
            f"{RATE_CARD_SOURCE}; overridden by WACRM_CONFIG_FILE" if overridden else None
        )
        return cls(
            currency=currency,
            source=source or RATE_CARD_SOURCE,
            default={**DEFAULT_RATES, **card.default},
            countries=countries,
        )

    def calling_code(self, wa_id: str | None) -> str | None:
        """The longest country calling code of the card that prefixes ``wa_id``."""
        digits = "".join(ch for ch in wa_id or "" if ch.isdigit())
        longest = max((len(code) for code in self.countries), default=0)
        for length in range(min(len(digits), longest), 0, -1):
            if digits[:length] in self.countries:
                return digits[:length]
        return None

    def price(self, wa_id: str | None, category: str) -> Decimal | None:
        """Price of one billable message; ``None`` when no card line knows the category."""
        code = self.calling_code(wa_id)
        country = self.countries.get(code, {}) if code else {}
        for name in (category, FALLBACK.get(category)):
            if name is None:
                continue
            for rates in (country, self.default):
                if name in rates:
                    return rates[name]
        return None


def price_message(session: Session, row: Message, contact: Contact, prices: Prices) -> None:
    """Set ``row.cost`` from its furthest pricing info; safe to call on every status."""
    if row.direction != "outbound" or row.billable is None:
        return
    if not row.billable or _undelivered(row):
        row.cost = Decimal(0)
        return
    category = row.pricing_category or ""
    price = prices.price(contact.wa_id, category)
    if price is None:
        logger.warning("rate_card_missing_category", category=category, message_id=row.id)
        return
    if row.pricing_model == "CBP":
        _share_conversation_charge(session, row, price)
        return
    row.cost = price


def _undelivered(row: Message) -> bool:
    """Meta charges on delivery: a message that failed before it was delivered is free."""
    return row.status == "failed" and row.delivered_at is None and row.read_at is None


def _share_conversation_charge(session: Session, row: Message, price: Decimal) -> None:
    """Conversation-based pricing: the first message of a pricing conversation carries it.

    Which message is first depends only on the messages' own times, so a status of an
    earlier message arriving late moves the charge instead of adding a second one.
    """
    ref = session.scalar(
        select(MessageStatusEvent.conversation_ref)
        .where(
            MessageStatusEvent.wamid == row.wamid,
            MessageStatusEvent.conversation_ref.is_not(None),
        )
        .limit(1)
    )
    if ref is None:
        row.cost = price
        return
    wamids = select(MessageStatusEvent.wamid).where(MessageStatusEvent.conversation_ref == ref)
    members = list(
        session.scalars(
            select(Message).where(Message.wamid.in_(wamids)).order_by(Message.timestamp, Message.id)
        )
    )
    charged = next((m for m in members if m.billable and not _undelivered(m)), None)
    for message in members:
        message.cost = price if message is charged else Decimal(0)
