"""Every HubSpot HTTP call goes through here: token, rate limiter, timeout, translation.

The SDK's generated API objects build a new connection pool each time one is looked up
(``client.crm.contacts.batch_api`` is a property), so they are cached per path and
dropped when the token changes. Responses come back as HubSpot's own JSON shapes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from crm_adapters._hubspot_errors import HttpError, is_vendor_error, translate
from crm_adapters.base import CallLimiter
from crm_adapters.errors import Permanent

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.hubapi.com"
DEFAULT_BUCKET = "hubspot:default"
SEARCH_BUCKET = "hubspot:search"
REFRESH_MARGIN = 300.0  # refresh OAuth tokens 5 min before expires_in runs out
DEFAULT_TIMEOUT = (5.0, 60.0)  # (connect, read) seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthCredentials:
    """What ``POST /oauth/v1/token`` needs to mint access tokens (secrets kept out of repr)."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)


class Transport:
    """Sends SDK and raw calls with a fresh token, one limiter slot each, errors translated."""

    def __init__(
        self,
        client: Any,
        *,
        limiter: CallLimiter,
        oauth: OAuthCredentials | None = None,
        clock: Callable[[], float],
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.client = client
        self.limiter = limiter
        self.base_url = str(client.config.get("host") or DEFAULT_BASE_URL).rstrip("/")
        self._oauth = oauth
        self._clock = clock
        self._timeout = timeout
        self._apis: dict[str, Any] = {}
        self._expires_at: float | None = None
        self._lock = threading.Lock()

    def sdk(self, bucket: str, api_path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``client.<api_path>.<method>(...)``; return the response as plain JSON.

        Raises:
            CrmError: The translated failure.
        """
        self.ensure_token()
        api = self._api(api_path)
        call = functools.partial(getattr(api, method), *args, **kwargs)
        result = self.invoke(bucket, lambda: call(_request_timeout=self._timeout))
        return api.api_client.sanitize_for_serialization(result) or {}

    def http(
        self, method: str, path: str, *, body: Any = None, query: Mapping[str, Any] | None = None
    ) -> Any:
        """A call the SDK has no module for (campaigns), through ``client.api_request``.

        ``api_request`` returns a ``requests.Response`` and never raises on 4xx/5xx, so
        the status is checked here.
        """
        self.ensure_token()
        options: dict[str, Any] = {"method": method, "path": path, "base_url": self.base_url}
        if body is not None:
            options["body"] = body
        if query:
            options["qs"] = dict(query)
        return self.invoke(DEFAULT_BUCKET, lambda: _json_or_raise(self.client.api_request(options)))

    def invoke(self, bucket: str, call: Callable[[], T]) -> T:
        """Take a limiter slot, make the call, translate what HubSpot or the network raised.

        This is the only place that catches vendor exceptions.
        """
        self.limiter.acquire(bucket)
        try:
            return call()
        except Exception as exc:
            if not is_vendor_error(exc):
                raise
            raise translate(exc) from None

    def ensure_token(self) -> None:
        """Refresh an OAuth token ahead of its expiry (a 401 is not the documented trigger)."""
        if self._oauth is None:
            return
        with self._lock:
            if self._expires_at is None or self._clock() >= self._expires_at:
                self._refresh()

    def refresh(self) -> None:
        """Mint a new OAuth access token now.

        Raises:
            Permanent: A private-app token is static and cannot be refreshed.
        """
        if self._oauth is None:
            raise Permanent(
                "HubSpot private-app token was refused and cannot be refreshed: "
                "issue a new HUBSPOT_ACCESS_TOKEN"
            )
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        creds = self._oauth
        assert creds is not None
        api = self._api("oauth.tokens_api")
        token = self.invoke(
            DEFAULT_BUCKET,
            lambda: api.create(
                grant_type="refresh_token",
                client_id=creds.client_id,
                client_secret=creds.client_secret,
                refresh_token=creds.refresh_token,
                _request_timeout=self._timeout,
            ),
        )
        lifetime = float(token.expires_in or 1800)
        self._expires_at = self._clock() + lifetime - min(REFRESH_MARGIN, lifetime / 2)
        if token.refresh_token and token.refresh_token != creds.refresh_token:
            self._oauth = replace(creds, refresh_token=token.refresh_token)
        self.client.access_token = token.access_token
        self._apis.clear()  # cached API objects carry the old token in their Configuration

    def _api(self, path: str) -> Any:
        api = self._apis.get(path)
        if api is None:
            api = functools.reduce(getattr, path.split("."), self.client)
            self._apis[path] = api
        return api


def _json_or_raise(response: Any) -> Any:
    if response.status_code >= 400:
        raise HttpError(response.status_code, response.headers, response.content)
    return response.json() if response.content else {}
