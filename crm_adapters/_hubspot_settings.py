"""HubSpot settings read from a plain mapping: credentials, limits, property names.

Kept apart from the adapter so the secrets live in one declared place (``repr=False``)
and ``from_env`` reports every bad variable at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from crm_adapters._hubspot_transport import DEFAULT_BASE_URL, OAuthCredentials

# Burst limit per rolling 10 s for private apps, by HubSpot subscription tier.
TIER_BURST = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190}
_OAUTH_VARS = ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN")


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSpotSettings:
    """How to reach one HubSpot account, and the portal's property names.

    Attributes:
        access_token: A private-app token (static); unused when ``oauth`` is set.
        oauth: OAuth app credentials; access tokens are then minted and refreshed.
        base_url: ``https://api.hubapi.com``, or a local stub in tests.
        burst: Calls allowed per rolling 10 s (100 free/starter, 190 professional+).
        contact_id_property: Unique contact property holding the wa_id or ``bsuid:…``.
        message_id_property: Unique communications property holding the wamid.
    """

    access_token: str | None = field(default=None, repr=False)
    oauth: OAuthCredentials | None = None
    base_url: str = DEFAULT_BASE_URL
    burst: int = 100
    contact_id_property: str = "whatsapp_wa_id"
    message_id_property: str = "whatsapp_message_id"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HubSpotSettings:
        """Read ``HUBSPOT_*`` / ``WACRM_HUBSPOT_*`` from a plain mapping.

        Raises:
            ValueError: One line per missing or malformed variable, naming it.
        """
        values = {k: v.strip() for k, v in env.items() if isinstance(v, str) and v.strip()}
        errors: list[str] = []
        oauth = _read_oauth(values, errors)
        token = values.get("HUBSPOT_ACCESS_TOKEN")
        if oauth is None and token is None and not errors:
            errors.append(
                "HubSpot credentials missing: set HUBSPOT_ACCESS_TOKEN (private app), or "
                "HUBSPOT_CLIENT_ID + HUBSPOT_CLIENT_SECRET + HUBSPOT_REFRESH_TOKEN (OAuth)"
            )
        burst = _read_burst(values, errors)
        if errors:
            raise ValueError("\n".join(errors))
        return cls(
            access_token=None if oauth else token,
            oauth=oauth,
            base_url=values.get("WACRM_HUBSPOT_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
            burst=burst,
            contact_id_property=values.get("HUBSPOT_CONTACT_ID_PROPERTY", "whatsapp_wa_id"),
            message_id_property=values.get("HUBSPOT_MESSAGE_ID_PROPERTY", "whatsapp_message_id"),
        )


def _read_oauth(values: Mapping[str, str], errors: list[str]) -> OAuthCredentials | None:
    present = [name for name in _OAUTH_VARS if name in values]
    if not present:
        return None
    if len(present) < len(_OAUTH_VARS):
        missing = ", ".join(n for n in _OAUTH_VARS if n not in values)
        errors.append(f"{missing}: required for HubSpot OAuth (with {', '.join(present)})")
        return None
    client_id, secret, refresh = (values[n] for n in _OAUTH_VARS)
    return OAuthCredentials(client_id=client_id, client_secret=secret, refresh_token=refresh)


def _read_burst(values: Mapping[str, str], errors: list[str]) -> int:
    if "WACRM_HUBSPOT_BURST" in values:
        raw = values["WACRM_HUBSPOT_BURST"]
        if raw.isdigit() and int(raw) > 0:
            return int(raw)
        errors.append(f"WACRM_HUBSPOT_BURST: must be a positive integer, got {raw!r}")
        return 0
    tier = values.get("HUBSPOT_TIER", "starter").lower()
    if tier not in TIER_BURST:
        errors.append(f"HUBSPOT_TIER: must be one of {', '.join(TIER_BURST)}, got {tier!r}")
    return TIER_BURST.get(tier, 0)
