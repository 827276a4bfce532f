"""Messaging costs: a rate card prices every billable message from its status webhook."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.orm import Session

from connector.config_file import RateCard
from connector.models import Contact, Message


@dataclass(frozen=True, slots=True)
class Prices:
    """The effective rate card: built-in defaults overlaid with the YAML file's."""

    currency: str = "USD"
    default: dict[str, Decimal] = field(default_factory=dict)
    countries: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, card: RateCard | None, currency: str) -> Prices:
        return cls(currency=currency)


def price_message(session: Session, row: Message, contact: Contact, prices: Prices) -> None:
    """Set ``row.cost`` once its status says it is billable."""
