"""Print a .env for a first local run: .env.example with fresh random secrets filled in."""

from __future__ import annotations

import secrets
from pathlib import Path

GENERATED = ("WACRM_ADMIN_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN")


def main() -> None:
    example = Path(__file__).resolve().parent.parent / ".env.example"
    for line in example.read_text().splitlines():
        key = line.split("=", 1)[0].lstrip("# ").strip()
        if key in GENERATED:
            print(f"{key}={secrets.token_urlsafe(24)}")
        else:
            print(line)


if __name__ == "__main__":
    main()
