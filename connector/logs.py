"""structlog setup: JSON lines, request ids, phone numbers and text masked unless allowed."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

PII_KEYS = frozenset({"wa_id", "to", "from", "phone", "text", "body", "name", "recipient"})
_DIGITS = re.compile(r"\+?\d{7,}")
VENDOR_LOGGERS = ("urllib3", "hubspot", "simple_salesforce", "huey", "apscheduler", "requests")


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _DIGITS.sub(lambda m: m.group(0)[:3] + "…" + m.group(0)[-2:], value)[:64]
    return "***"


def mask_pii(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Mask PII-bearing keys and long digit runs (phone numbers) in every log line."""
    for key in list(event):
        if key in PII_KEYS:
            event[key] = _mask(event[key]) if isinstance(event[key], str) else "***"
        elif key != "event" and isinstance(event[key], str):
            event[key] = _DIGITS.sub("…", event[key])
    return event


def configure(level: str = "INFO", *, json: bool = True, pii: bool = False) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not pii:
        processors.append(mask_pii)
    processors += [structlog.processors.format_exc_info,
                   structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Vendor SDKs log full response bodies at DEBUG: cap them at INFO.
    for name in VENDOR_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level.upper())))
