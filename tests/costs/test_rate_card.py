"""The rate card: calling-code lookup, YAML overlay, currency rules, start-up failures."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connector import create_app
from connector.config_file import RateCard
from connector.costs import COUNTRY_RATES, DEFAULT_RATES, RATE_CARD_SOURCE, Prices
from connector.errors import ConfigError
from tests.conftest import base_config

BUILT_IN = Prices()


@pytest.mark.parametrize(
    ("wa_id", "category", "expected"),
    [
        ("16505551234", "marketing", "0.0250"),  # +1 North America
        ("447700900123", "utility", "0.0220"),  # +44 United Kingdom
        ("4915112345678", "marketing", "0.1365"),  # +49 Germany
        ("919876543210", "authentication", "0.0014"),  # +91 India
        ("2348012345678", "marketing", "0.0516"),  # +234 Nigeria, not +23x anything else
        ("971501234567", "utility", "0.0157"),  # +971 UAE
        ("998901234567", "marketing", "0.0604"),  # +998 Uzbekistan: no line, "Other" market
        (None, "marketing", "0.0604"),  # BSUID-only contact: no calling code known
        ("16505551234", "service", "0"),  # free-form replies are free
    ],
)
def test_lookup_by_longest_calling_code_else_default(
    wa_id: str | None, category: str, expected: str
) -> None:
    assert BUILT_IN.price(wa_id, category) == Decimal(expected)


def test_built_in_card_names_its_source_and_date() -> None:
    assert BUILT_IN.currency == "USD"
    assert "2025-07-01" in RATE_CARD_SOURCE and "USD" in RATE_CARD_SOURCE
    assert BUILT_IN.source == RATE_CARD_SOURCE
    # The "Other" market and every listed market price the three billed categories.
    for rates in (DEFAULT_RATES, *COUNTRY_RATES.values()):
        assert {"marketing", "utility", "authentication"} <= set(rates)


def test_fallbacks_for_categories_without_their_own_line() -> None:
    # India has an authentication-international rate; the UK has none, so its
    # authentication rate stands in. Marketing Messages Lite is billed as marketing.
    assert BUILT_IN.price("919876543210", "authentication_international") == Decimal("0.0280")
    assert BUILT_IN.price("447700900123", "authentication_international") == Decimal("0.0220")
    assert BUILT_IN.price("4915112345678", "marketing_lite") == Decimal("0.1365")
    assert BUILT_IN.price("16505551234", "user_initiated") is None  # legacy CBP name


def test_yaml_overlays_the_defaults_per_category() -> None:
    card = RateCard.model_validate(
        {
            "default": {"marketing": "0.07"},
            "countries": {"+44": {"marketing": "0.06"}, 1876: {"marketing": "0.0740"}},
        }
    )
    prices = Prices.from_config(card, "USD")
    assert prices.price("447700900123", "marketing") == Decimal("0.06")  # overridden
    assert prices.price("447700900123", "utility") == Decimal("0.0220")  # kept
    assert prices.price("998901234567", "marketing") == Decimal("0.07")  # new default
    assert prices.price("998901234567", "utility") == Decimal("0.0077")  # old default
    # Longest prefix: Jamaica's 1-876 line beats North America's 1.
    assert prices.price("18765551234", "marketing") == Decimal("0.0740")
    assert prices.price("16505551234", "marketing") == Decimal("0.0250")
    assert "overridden" in prices.source


def test_card_in_another_currency_than_the_account_is_refused() -> None:
    card = RateCard.model_validate({"currency": "EUR", "default": {"marketing": "0.05"}})
    with pytest.raises(ConfigError, match=r"rate_card.currency: EUR differs from WACRM_CURRENCY"):
        Prices.from_config(card, "USD")


def test_non_usd_account_needs_its_own_default_prices() -> None:
    with pytest.raises(ConfigError, match=r"give default prices for marketing, utility"):
        Prices.from_config(None, "EUR")
    partial = RateCard.model_validate({"default": {"marketing": "0.05"}})
    with pytest.raises(ConfigError, match=r"for utility, authentication$"):
        Prices.from_config(partial, "EUR")


def test_non_usd_account_uses_only_its_own_card() -> None:
    card = RateCard.model_validate(
        {
            "currency": "EUR",
            "source": "our BSP invoice, March 2026",
            "default": {"marketing": "0.05", "utility": "0.02", "authentication": "0.02"},
            "countries": {"49": {"marketing": "0.125"}},
        }
    )
    prices = Prices.from_config(card, "EUR")
    assert prices.currency == "EUR" and prices.source == "our BSP invoice, March 2026"
    assert prices.price("4915112345678", "marketing") == Decimal("0.125")
    assert prices.price("4915112345678", "utility") == Decimal("0.02")  # not USD 0.0550
    assert prices.price("447700900123", "marketing") == Decimal("0.05")  # no built-in UK line
    assert prices.price("447700900123", "service") == Decimal(0)


def test_currency_mismatch_fails_at_start(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "wacrm.yaml"
    config.write_text("rate_card:\n  currency: GBP\n  default: {marketing: 0.04}\n")
    with pytest.raises(ConfigError, match="GBP differs from WACRM_CURRENCY USD"):
        create_app(base_config(db_url, tmp_path, WACRM_CONFIG_FILE=str(config)))
    with pytest.raises(ConfigError, match="WACRM_CURRENCY is EUR"):
        create_app(base_config(db_url, tmp_path, WACRM_CURRENCY="EUR"))
