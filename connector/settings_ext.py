"""Access to the frozen settings stored on the app."""

from __future__ import annotations

from flask import Flask, current_app

from connector.config import Settings


def settings_of(app: Flask | None = None) -> Settings:
    target = app or current_app
    value: Settings = target.extensions["wacrm.settings"]
    return value
