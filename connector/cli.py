"""The ``wacrm`` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from dotenv import load_dotenv

from connector.config import Settings
from connector.errors import ConfigError

ENV_FILE = ".env"


def _settings() -> Settings:
    from connector import ENV_PREFIXES

    return Settings.from_env({k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)})


def _app():  # type: ignore[no-untyped-def]
    from connector import create_app

    return create_app()


@click.group()
def cli() -> None:
    """wacrm: WhatsApp Business ↔ CRM connector."""


@cli.command()
@click.option("--host", default=None, help="Bind address (default WACRM_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default WACRM_PORT, 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="Web processes.")
@click.option("--threads", type=int, default=4, show_default=True, help="Threads per process.")
@click.option("--no-background", is_flag=True, help="Web only: no queue consumer, no scheduler.")
def serve(
    host: str | None, port: int | None, workers: int, threads: int, no_background: bool
) -> None:
    """Serve webhooks and the API (with queue consumer and scheduler embedded)."""
    from connector.crm import check_crm_config
    from connector.server import Server

    settings = _settings()
    bind = f"{host or settings.host}:{port or settings.port}"
    check_crm_config(_app())  # a bad CRM setting stops here, named, not in a worker
    if no_background:
        os.environ["WACRM_EMBEDDED"] = "0"
    click.echo(
        f"wacrm listening on http://{bind} (database {_safe_url(settings.database_url)})", err=True
    )
    Server({"bind": bind, "workers": workers, "threads": threads}).run()


@cli.command()
@click.option("--workers", type=int, default=None, help="Consumer threads (WACRM_QUEUE_WORKERS).")
def worker(workers: int | None) -> None:
    """Run only the queue consumer (scale-out mode)."""
    from connector.queue import get_queue
    from connector.server import start_sync

    app = _app()
    start_sync(app)
    get_queue(app).consumer(workers or _settings().queue_workers).run()


@cli.command()
def scheduler() -> None:
    """Run only the scheduler (one active at a time, by lease)."""
    import time

    from connector import schedule

    app = _app()
    schedule.start(app, _settings())
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@cli.group()
def db() -> None:
    """Database commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations."""
    from connector import db as database

    url = _settings().database_url
    database.upgrade(url, revision)
    click.echo(f"database at {database.current_revision(database.make_engine(url))}", err=True)


@cli.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--provider", type=click.Choice(["meta", "twilio", "auto"]), default="auto", show_default=True
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def replay(source: Path, provider: str, quiet: bool) -> None:
    """Import webhook history: JSON-lines of bodies, or a folder of .json/.jsonl files."""
    from connector.replay import replay_path

    app = _app()
    stats = replay_path(app, source, provider=provider, progress=not quiet)
    click.echo(stats.summary())
    if stats.rejected:
        sys.exit(1)


@cli.command()
@click.option("--url", default=None, help="Connector base URL (default http://WACRM_HOST:PORT).")
@click.option("--customers", type=int, default=40, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(url: str | None, customers: int, seed: int) -> None:
    """Send a realistic, signed day of traffic to a running connector."""
    from connector.demo import run_demo

    settings = _settings()
    base = url or f"http://{settings.host}:{settings.port}"
    report = run_demo(base, settings, customers=customers, seed=seed)
    click.echo(report)


def _register_crm_commands() -> None:
    from connector.cli_crm import crm_group, outbox_group
    from connector.cli_kpis import kpis_group
    from connector.cli_mappings import mappings_group
    from connector.cli_roi import roi_command

    cli.add_command(outbox_group)
    cli.add_command(crm_group)
    cli.add_command(roi_command)
    cli.add_command(kpis_group)
    cli.add_command(mappings_group)


_register_crm_commands()


def _safe_url(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    return f"{head.split('//')[0]}//***@{tail}" if sep else url


def main() -> None:
    load_dotenv(ENV_FILE, override=False)
    try:
        cli()
    except ConfigError as exc:
        click.echo(f"wacrm: {exc}", err=True)
        sys.exit(2)
