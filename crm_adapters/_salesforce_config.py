"""Salesforce settings read from a plain mapping: how to log in, and the org's names.

Kept apart from the adapter so the secrets live in one declared place (``repr=False``) and
``from_env`` can report every bad variable at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests
import structlog
from simple_salesforce.api import Salesforce

logger = structlog.get_logger(__name__)

DEFAULT_API_VERSION = "62.0"
_SF_SUFFIX = ".salesforce.com"
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
CREDENTIAL_HELP = (
    "Salesforce credentials missing: set SALESFORCE_USERNAME + SALESFORCE_CONSUMER_KEY + "
    "SALESFORCE_PRIVATE_KEY (or SALESFORCE_PRIVATE_KEY_FILE) for JWT bearer, or "
    "SALESFORCE_CONSUMER_KEY + SALESFORCE_CONSUMER_SECRET + SALESFORCE_DOMAIN for client "
    "credentials, or SALESFORCE_USERNAME + SALESFORCE_PASSWORD + SALESFORCE_SECURITY_TOKEN "
    "(legacy SOAP login), or SALESFORCE_ACCESS_TOKEN + WACRM_SALESFORCE_INSTANCE_URL"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SalesforceOptions:
    """Org-specific object/field names and behaviour (no secrets).

    Attributes:
        contact_object: ``Contact`` or ``Lead``: where WhatsApp contacts are upserted.
        contact_id_field: External ID + Unique field holding the wa_id (or ``bsuid:…``).
        message_id_field: Activity field holding the wamid (External ID when ``task_upsert``).
        task_upsert: Upsert Tasks by ``message_id_field``; False queries before creating,
            for orgs where that Activity field cannot be an External ID.
        daily_share: Stop calling once this share of the daily API allowance is used.
    """

    contact_object: str = "Contact"
    contact_id_field: str = "WhatsApp_Id__c"
    message_id_field: str = "WhatsApp_Message_Id__c"
    task_upsert: bool = True
    daily_share: float = 0.8


@dataclass(frozen=True, slots=True, kw_only=True)
class SalesforceAuth:
    """One way to obtain a session. Secrets stay out of ``repr``.

    ``mode`` is ``jwt``, ``client_credentials``, ``password`` (SOAP, being retired) or
    ``token`` (a bare access token: it cannot be refreshed).
    """

    mode: str
    version: str = DEFAULT_API_VERSION
    domain: str = "login"
    instance_url: str | None = None
    username: str | None = None
    consumer_key: str | None = None
    private_key_file: str | None = None
    consumer_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)

    @property
    def refreshable(self) -> bool:
        """Whether a new session can be minted from these credentials."""
        return self.mode != "token"

    def connect(self, session: requests.Session | None = None) -> Salesforce:
        """Log in (one token or SOAP request) and return a ready client.

        With ``instance_url`` set, REST calls are pinned to it instead of the instance the
        token endpoint returned; simple-salesforce then cannot re-login by itself, so
        ``SalesforceAdapter.refresh_auth`` does it after ``AuthExpired``.

        Raises:
            SalesforceAuthenticationFailed: The login was refused (translated by the caller).
        """
        kwargs = _LOGIN_KWARGS[self.mode](self)
        sf = Salesforce(version=self.version, session=session, **kwargs)
        if self.instance_url and self.mode != "token":
            sf = Salesforce(
                session_id=sf.session_id,
                instance_url=self.instance_url,
                version=self.version,
                session=session,
            )
        return sf


_LOGIN_KWARGS: dict[str, Callable[[SalesforceAuth], dict[str, Any]]] = {
    "jwt": lambda a: {
        "username": a.username,
        "consumer_key": a.consumer_key,
        "privatekey": a.private_key,
        "privatekey_file": a.private_key_file,
        "domain": a.domain,
    },
    "client_credentials": lambda a: {
        "consumer_key": a.consumer_key,
        "consumer_secret": a.consumer_secret,
        "domain": a.domain,
    },
    "password": lambda a: {
        "username": a.username,
        "password": a.password,
        "security_token": a.security_token,
        "domain": a.domain,
    },
    "token": lambda a: {"session_id": a.access_token, "instance_url": a.instance_url},
}


def read_env(env: Mapping[str, str]) -> tuple[SalesforceAuth, SalesforceOptions]:
    """Read every ``SALESFORCE_*`` / ``WACRM_SALESFORCE_*`` setting, collecting all errors.

    Args:
        env: A plain mapping such as ``os.environ``; empty values count as unset.

    Returns:
        The login settings and the org options.

    Raises:
        ValueError: One line per bad or missing variable, naming it.
    """
    values = {k: v.strip() for k, v in env.items() if isinstance(v, str) and v.strip()}
    errors: list[str] = []
    options = _read_options(values, errors)
    auth = _read_auth(values, errors)
    if errors or auth is None:
        raise ValueError("\n".join(errors))
    if auth.mode == "password":
        logger.warning(
            "salesforce.soap_login",
            detail="username+password+security token uses "
            "SOAP login(), which Salesforce is retiring; switch to JWT bearer or "
            "client credentials",
        )
    return auth, options


def _read_options(values: Mapping[str, str], errors: list[str]) -> SalesforceOptions:
    contact_object = values.get("SALESFORCE_CONTACT_OBJECT", "Contact")
    if contact_object not in ("Contact", "Lead"):
        errors.append("SALESFORCE_CONTACT_OBJECT: must be Contact or Lead")
    task_upsert = _BOOLS.get(values.get("SALESFORCE_TASK_UPSERT", "1").lower())
    if task_upsert is None:
        errors.append("SALESFORCE_TASK_UPSERT: must be 1 or 0")
    try:
        share = float(values.get("SALESFORCE_DAILY_SHARE", "0.8"))
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        errors.append("SALESFORCE_DAILY_SHARE: must be a number in (0, 1], e.g. 0.8")
    fields = {
        name: values.get(name, default)
        for name, default in (
            ("SALESFORCE_CONTACT_ID_FIELD", "WhatsApp_Id__c"),
            ("SALESFORCE_MESSAGE_ID_FIELD", "WhatsApp_Message_Id__c"),
        )
    }
    # They go into URL paths and SOQL unquoted: accept API names only.
    errors.extend(
        f"{name}: not a field API name"
        for name, value in fields.items()
        if not _API_NAME.fullmatch(value)
    )
    return SalesforceOptions(
        contact_object=contact_object,
        contact_id_field=fields["SALESFORCE_CONTACT_ID_FIELD"],
        message_id_field=fields["SALESFORCE_MESSAGE_ID_FIELD"],
        task_upsert=bool(task_upsert),
        daily_share=share,
    )


def _read_auth(values: Mapping[str, str], errors: list[str]) -> SalesforceAuth | None:
    get = values.get
    common: dict[str, Any] = {
        "version": _version(get("SALESFORCE_API_VERSION", DEFAULT_API_VERSION), errors),
        "domain": _domain(values, errors),
        "instance_url": _instance_url(get("WACRM_SALESFORCE_INSTANCE_URL"), errors),
    }
    mode = _mode(values)
    if mode is None:
        errors.append(CREDENTIAL_HELP)
        return None
    if mode == "client_credentials" and common["domain"] in ("login", "test"):
        errors.append(
            "SALESFORCE_DOMAIN: client credentials need your My Domain "
            "(e.g. acme.my), not login/test"
        )
    key = get("SALESFORCE_PRIVATE_KEY")
    if key and "\n" not in key:  # PEM pasted into a one-line .env value
        key = key.replace("\\n", "\n")
    return SalesforceAuth(
        mode=mode,
        **common,
        username=get("SALESFORCE_USERNAME"),
        consumer_key=get("SALESFORCE_CONSUMER_KEY"),
        consumer_secret=get("SALESFORCE_CONSUMER_SECRET"),
        private_key=key,
        private_key_file=None if key else get("SALESFORCE_PRIVATE_KEY_FILE"),
        password=get("SALESFORCE_PASSWORD"),
        security_token=get("SALESFORCE_SECURITY_TOKEN"),
        access_token=get("SALESFORCE_ACCESS_TOKEN"),
    )


def _mode(values: Mapping[str, str]) -> str | None:
    """The first complete credential set, strongest first."""
    has = values.__contains__
    if (
        has("SALESFORCE_USERNAME")
        and has("SALESFORCE_CONSUMER_KEY")
        and (has("SALESFORCE_PRIVATE_KEY") or has("SALESFORCE_PRIVATE_KEY_FILE"))
    ):
        return "jwt"
    if has("SALESFORCE_CONSUMER_KEY") and has("SALESFORCE_CONSUMER_SECRET"):
        return "client_credentials"
    if all(map(has, ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"))):
        return "password"
    if has("SALESFORCE_ACCESS_TOKEN") and has("WACRM_SALESFORCE_INSTANCE_URL"):
        return "token"
    return None


def _domain(values: Mapping[str, str], errors: list[str]) -> str:
    """simple-salesforce logs in at ``https://{domain}.salesforce.com``; derive that prefix."""
    login_url = values.get("WACRM_SALESFORCE_LOGIN_URL")
    if login_url:
        parsed = urlparse(login_url)
        host = parsed.hostname or ""
        if parsed.scheme != "https" or not host.endswith(_SF_SUFFIX):
            errors.append("WACRM_SALESFORCE_LOGIN_URL: must be https://<host>.salesforce.com")
        return host.removesuffix(_SF_SUFFIX)
    domain = values.get("SALESFORCE_DOMAIN", "login").removeprefix("https://")
    return domain.rstrip("/").removesuffix(_SF_SUFFIX)


def _instance_url(value: str | None, errors: list[str]) -> str | None:
    if value and urlparse(value).scheme != "https":
        errors.append("WACRM_SALESFORCE_INSTANCE_URL: must be an https:// URL")
    return value


def _version(value: str, errors: list[str]) -> str:
    version = value.removeprefix("v")
    if not re.fullmatch(r"\d{2,3}\.0", version):
        errors.append("SALESFORCE_API_VERSION: must look like 62.0")
    return version
