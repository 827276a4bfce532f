"""Prometheus counters, exported on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "wacrm_webhooks_total", "Webhook requests by provider and outcome", ["provider", "outcome"]
)
EVENTS = Counter(
    "wacrm_events_total", "Inbox rows processed by final status", ["provider", "status"]
)
ITEM_ERRORS = Counter(
    "wacrm_item_errors_total", "Webhook items that failed to parse or store", ["provider"]
)
MESSAGES = Counter("wacrm_messages_total", "Messages stored by direction", ["direction"])
SENDS = Counter("wacrm_sends_total", "Messages sent through the Cloud API by outcome", ["outcome"])
ACK_SECONDS = Histogram(
    "wacrm_webhook_ack_seconds",
    "Time to acknowledge a webhook",
    ["provider"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
