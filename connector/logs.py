"""structlog setup: JSON lines, request ids, phone numbers and text masked unless allowed."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

PHONE_KEYS = frozenset({"wa_id", "to", "from", "phone", "recipient", "recipient_id"})
TEXT_KEYS = frozenset({"text", "body", "name", "caption", "profile_name"})
_DIGITS = re.compile(r"\+?\d{7,}")
VENDOR_LOGGERS = ("urllib3", "hubspot", "simple_salesforce", "huey", "apscheduler", "requests")


def _mask_digits(value: str) -> str:
    """Keep a phone number recognisable to its owner, not to a log reader: +165…34."""
    return _DIGITS.sub(lambda m: m.group(0)[:4] + "…" + m.group(0)[-2:], value)


def mask_pii(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Drop message text, mask phone numbers in every value of every log line."""
    for key, value in list(event.items()):
        if key in TEXT_KEYS:
            event[key] = "***"
        elif key in PHONE_KEYS or (key != "event" and isinstance(value, str)):
            event[key] = _mask_digits(value) if isinstance(value, str) else "***"
    return event


def configure(level: str = "INFO", *, json: bool = True, pii: bool = False) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not pii:
        processors.append(mask_pii)
    processors += [
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Vendor SDKs log full response bodies at DEBUG: cap them at INFO.
    for name in VENDOR_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level.upper())))
