"""``wacrm replay``: push webhook history through the same inbox → normalise path.

Streams line by line, so memory stays flat however large the file; a body already in the
inbox (same provider and SHA-256) is skipped, so replaying twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from tqdm import tqdm

from connector import inbox, ingest
from connector.config_file import FileConfig
from connector.db import get_db
from connector.models import EventStatus
from connector.settings_ext import file_config_of, settings_of

if TYPE_CHECKING:
    from flask import Flask

    from connector.config import Settings
    from connector.db import Database

SUFFIXES = (".json", ".jsonl", ".ndjson")


@dataclass(slots=True)
class ReplayStats:
    bodies: int = 0
    skipped: int = 0
    processed: int = 0
    rejected: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (
            f"replayed {self.bodies} bodies: {self.processed} processed, "
            f"{self.skipped} already imported, {self.rejected} rejected, {self.failed} failed"
        )


def files_of(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    return [source]


def bodies(path: Path) -> Iterator[tuple[bytes, int]]:
    """Yield (raw body, bytes consumed); a ``.json`` file is one body, others one per line."""
    if path.suffix == ".json":
        raw = path.read_bytes()
        yield raw.strip(), len(raw)
        return
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield line.strip(), len(line)
            else:
                yield b"", len(line)


@dataclass(frozen=True, slots=True)
class Body:
    provider: str
    raw: bytes
    received_at: datetime | None = None


def as_provider(raw: bytes, provider: str) -> Body:
    """Twilio history is ``{"form": {...}}`` (optionally ``"received_at"``): a form body.

    Twilio sends no timestamps, so its messages take the time they were received; history
    lines may carry that time so a replay segments conversations as they were live.
    """
    if provider != "meta" and raw.startswith(b"{") and b'"form"' in raw[:64]:
        try:
            doc = json.loads(raw)
        except ValueError:
            return Body("meta", raw)
        if isinstance(doc, dict) and isinstance(doc.get("form"), dict):
            return Body("twilio", urlencode(doc["form"]).encode(), _when(doc.get("received_at")))
    return Body("meta" if provider == "auto" else provider, raw)


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


BATCH = 200  # inbox rows normalised per transaction


def replay_path(
    app: Flask, source: Path, *, provider: str = "auto", progress: bool = True
) -> ReplayStats:
    db, settings, stats = get_db(app), settings_of(app), ReplayStats()
    file_config = file_config_of(app)
    paths = files_of(source)
    total = sum(p.stat().st_size for p in paths)
    stored: list[int] = []
    with tqdm(total=total, unit="B", unit_scale=True, disable=not progress, desc="replay") as bar:
        for path in paths:
            for raw, size in bodies(path):
                bar.update(size)
                if raw and (event_id := _store(db, path, raw, provider, stats)) is not None:
                    stored.append(event_id)
                if len(stored) >= BATCH:
                    _process(db, settings, file_config, stored, stats)
        _process(db, settings, file_config, stored, stats)
    return stats


def _store(db: Database, path: Path, raw: bytes, provider: str, stats: ReplayStats) -> int | None:
    stats.bodies += 1
    body = as_provider(raw, provider)
    if inbox.exists(db, body.provider, body.raw):
        stats.skipped += 1
        return None
    return inbox.store(
        db,
        provider=body.provider,
        body=body.raw,
        signature_valid=False,
        headers={"X-Request-Id": f"replay:{path.name}"},
        received_at=body.received_at,
    )


def _process(
    db: Database,
    settings: Settings,
    file_config: FileConfig,
    stored: list[int],
    stats: ReplayStats,
) -> None:
    if not stored:
        return
    results = ingest.process_batch(
        db,
        stored,
        window=settings.auto_resolve_after,
        max_attempts=settings.max_attempts,
        crm=settings.crm,
        rules=ingest.Rules.from_settings(settings, file_config),
    )
    stored.clear()
    for status in results.values():
        if status in (EventStatus.PROCESSED, EventStatus.IGNORED):
            stats.processed += 1
        elif status == EventStatus.REJECTED:
            stats.rejected += 1
        else:
            stats.failed += 1
