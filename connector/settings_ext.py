"""Access to the frozen settings stored on the app."""

from __future__ import annotations

from flask import Flask, current_app

from connector.config import Settings
from connector.config_file import FileConfig


def settings_of(app: Flask | None = None) -> Settings:
    target = app or current_app
    value: Settings = target.extensions["wacrm.settings"]
    return value


def file_config_of(app: Flask | None = None) -> FileConfig:
    target = app or current_app
    value: FileConfig = target.extensions["wacrm.file_config"]
    return value
