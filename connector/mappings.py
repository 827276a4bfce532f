"""Field mappings: which KPI of which scope lands in which CRM field, and how.

A mapping names a KPI (``connector.kpis.KPI_NAMES``), the statistic for durations, a scope
that has a CRM record (agent · campaign · deal · contact; the account and a business number
have none), the CRM object and field, a unit transform and a period. Mappings come from
the API/CLI (source ``api``) or from ``field_mappings`` in ``WACRM_CONFIG_FILE`` (source
``yaml``, synced on every write-back run and mapping command: the file wins).

Object types are the adapters' own words (``contact``, ``deal``, ``campaign``, ``user``);
the CRMs' names are accepted as aliases (HubSpot ``contacts``, Salesforce ``Opportunity``,
...).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector import kpi_dirty
from connector.config_file import MappingSpec
from connector.db import insert_ignore
from connector.errors import ConfigError, CrmError, NotFound, ValidationFailed
from connector.kpis import KPI_NAMES, Period
from connector.kpis.engine import BUSINESS_HOURS, DURATIONS
from connector.models import Campaign, CrmLink, Deal, FieldMapping, utcnow

if TYPE_CHECKING:
    from crm_adapters.base import CrmAdapter, FieldInfo

CRMS: Final = ("local", "hubspot", "salesforce")
STATS: Final = ("mean", "median", "p90", "count")
PERIODS: Final = ("all", "7d", "30d", "90d", "mtd")
_ROLLING: Final = {"7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
# Scope → the CRM object its key resolves to (an agent: the CRM user it is linked to with
# ``PUT /api/v1/agents/<id>``).
SCOPE_OBJECTS: Final = {
    "contact": "contact",
    "deal": "deal",
    "campaign": "campaign",
    "agent": "user",
}
NO_RECORD: Final = {
    "account": "the account has no CRM record",
    "phone_number": "a business phone number has no CRM record",
}
OBJECT_ALIASES: Final = {
    "contact": {"contact", "contacts", "lead", "leads"},
    "deal": {"deal", "deals", "opportunity", "opportunities"},
    "campaign": {"campaign", "campaigns"},
    "user": {"user", "users", "owner", "owners", "agent", "agents"},
}


def _half_up(value: float, places: str) -> Decimal:
    """Round as people do (2.5 → 3, 1.005 → 1.01), not half-even on binary floats."""
    return Decimal(repr(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


# Steps, applied left to right when chained with commas ("seconds_to_minutes,round2").
TRANSFORMS: Final[dict[str, Callable[[float], float]]] = {
    "none": lambda v: v,
    "seconds_to_minutes": lambda v: v / 60,
    "seconds_to_hours": lambda v: v / 3600,
    "percent_to_ratio": lambda v: v / 100,  # HubSpot percentage properties hold 0-1
    "round": lambda v: int(_half_up(v, "1")),
    "round2": lambda v: float(_half_up(v, "0.01")),
}
FIELDS: Final = frozenset(
    {"kpi", "stat", "scope", "crm", "object", "object_type", "field", "transform", "period"}
)
EDITABLE: Final = FIELDS | {"enabled"}
NUMERIC_TYPES: Final = frozenset({"number", "double", "currency", "int", "integer", "percent"})


@dataclass(frozen=True, slots=True)
class Target:
    """Where a mapping writes: unique per (crm, scope, object_type, field)."""

    crm: str
    scope: str
    object_type: str
    field: str


def is_duration(kpi: str) -> bool:
    return kpi in DURATIONS or kpi in BUSINESS_HOURS


def normalise(raw: Mapping[str, Any], *, default_crm: str) -> dict[str, Any]:
    """A mapping's columns from user input; ``ValidationFailed`` names every bad field."""
    errors = {k: "unknown field" for k in sorted(set(raw) - EDITABLE)}
    text = {k: str(v).strip() if isinstance(v, str | int) else v for k, v in raw.items()}
    kpi = _choice(text, "kpi", KPI_NAMES, None, errors)
    stat = _choice(text, "stat", STATS, "mean", errors)
    scope = text.get("scope")
    if scope in NO_RECORD:
        errors["scope"] = f"{NO_RECORD[scope]}; map agent, campaign, deal or contact KPIs"
    else:
        _choice(text, "scope", tuple(SCOPE_OBJECTS), None, errors)
    crm = _choice(text, "crm", CRMS, default_crm, errors)
    object_type = _object_type(text.get("object_type") or text.get("object"), scope, errors)
    field = text.get("field")
    if not isinstance(field, str) or not field or len(field) > 128:
        errors["field"] = "expected the CRM field's API name (1-128 characters)"
    transform = _transform(text.get("transform") or "none", errors)
    period = _choice(text, "period", PERIODS, "all", errors)
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        errors["enabled"] = "expected true or false"
    if errors:
        message = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ValidationFailed(message, details={"fields": errors})
    return {
        "kpi": kpi,
        "stat": stat if is_duration(str(kpi)) else "mean",
        "scope": scope,
        "crm": crm,
        "object_type": object_type,
        "field": field,
        "transform": transform,
        "period": period,
        "enabled": enabled,
    }


def _choice(
    text: Mapping[str, Any],
    key: str,
    allowed: Sequence[str],
    default: str | None,
    errors: dict[str, str],
) -> Any:
    value = text.get(key) or default
    if value not in allowed:
        errors[key] = "expected one of " + ", ".join(allowed)
    return value


def _transform(raw: Any, errors: dict[str, str]) -> str:
    steps = [step.strip() for step in str(raw).split(",")]
    if any(step not in TRANSFORMS for step in steps):
        errors["transform"] = "expected one or more (comma-separated) of " + ", ".join(TRANSFORMS)
    return ",".join(steps)


def _object_type(raw: Any, scope: Any, errors: dict[str, str]) -> str | None:
    wanted = SCOPE_OBJECTS.get(scope) if isinstance(scope, str) else None
    if raw in (None, ""):
        return wanted
    name = str(raw).strip().lower()
    found = next((canon for canon, names in OBJECT_ALIASES.items() if name in names), None)
    if found is None:
        errors["object"] = "expected one of " + ", ".join(OBJECT_ALIASES)
    elif wanted is not None and found != wanted:
        errors["object"] = f"{scope} KPIs are written on {wanted} records, not {found}"
    return found


def view(mapping: FieldMapping) -> dict[str, Any]:
    return {
        "id": mapping.id,
        "kpi": mapping.kpi,
        "stat": mapping.stat if is_duration(mapping.kpi) else None,
        "scope": mapping.scope,
        "crm": mapping.crm,
        "object": mapping.object_type,
        "field": mapping.field,
        "transform": mapping.transform,
        "period": mapping.period,
        "enabled": mapping.enabled,
        "source": mapping.source,
    }


# -- storage ---------------------------------------------------------------------------


def listed(session: Session, *, crm: str | None = None) -> list[FieldMapping]:
    stmt = select(FieldMapping).order_by(FieldMapping.id)
    if crm is not None:
        stmt = stmt.where(FieldMapping.crm == crm)
    return list(session.scalars(stmt))


def get(session: Session, mapping_id: int) -> FieldMapping:
    found = session.get(FieldMapping, mapping_id)
    if found is None:
        raise NotFound(f"mapping {mapping_id} not found")
    return found


def add(session: Session, values: Mapping[str, Any], *, source: str = "api") -> FieldMapping:
    """Store a normalised mapping; its scope is recomputed in full at the next run."""
    existing = _at(session, values)
    if existing is not None:
        raise ValidationFailed(
            f"{values['object_type']}.{values['field']} on {values['crm']} already receives "
            f"{existing.kpi} (mapping {existing.id}, source {existing.source})",
            details={"fields": {"field": "already mapped"}, "id": existing.id},
        )
    row = FieldMapping(**values, source=source, created_at=utcnow())
    session.add(row)
    session.flush()
    _refill(session, row.scope)
    return row


def update(session: Session, row: FieldMapping, values: Mapping[str, Any]) -> FieldMapping:
    """Change an API mapping (the file owns ``yaml`` ones)."""
    _editable(row)
    clash = _at(session, values)
    if clash is not None and clash.id != row.id:
        raise ValidationFailed(
            f"{values['object_type']}.{values['field']} is already mapped (mapping {clash.id})",
            details={"fields": {"field": "already mapped"}, "id": clash.id},
        )
    for key, value in values.items():
        setattr(row, key, value)
    _refill(session, row.scope)
    return row


def remove(session: Session, row: FieldMapping) -> None:
    _editable(row)
    session.delete(row)


def _editable(row: FieldMapping) -> None:
    if row.source == "yaml":
        raise ValidationFailed(
            f"mapping {row.id} comes from WACRM_CONFIG_FILE: change it there",
            details={"id": row.id, "source": row.source},
        )


def _at(session: Session, values: Mapping[str, Any]) -> FieldMapping | None:
    return session.scalars(
        select(FieldMapping).where(
            FieldMapping.crm == values["crm"],
            FieldMapping.scope == values["scope"],
            FieldMapping.object_type == values["object_type"],
            FieldMapping.field == values["field"],
        )
    ).first()


def _refill(session: Session, scope: str) -> None:
    """A new or changed mapping gets values for every record at the next run, not only
    for the records that happen to see traffic."""
    kpi_dirty.mark(session, [(scope, kpi_dirty.ALL)])


def spec_values(spec: MappingSpec, *, default_crm: str) -> dict[str, Any]:
    raw = spec.model_dump(exclude_none=True)
    raw["object_type"] = raw.pop("object")
    return normalise(raw, default_crm=default_crm)


def file_errors(specs: Sequence[MappingSpec], *, default_crm: str) -> list[str]:
    """One line per bad mapping in the YAML file (``field_mappings[i]: ...``)."""
    errors = []
    for index, spec in enumerate(specs):
        try:
            spec_values(spec, default_crm=default_crm)
        except ValidationFailed as exc:
            errors.append(f"field_mappings[{index}]: {exc.message}")
    return errors


def sync_file(session: Session, specs: Sequence[MappingSpec], *, default_crm: str) -> int:
    """Make the ``yaml`` mappings equal the file's; returns how many rows changed.

    A file mapping on a target an API mapping holds takes it over (the file is the
    declared configuration). Raises ``ConfigError`` naming every bad entry.
    """
    errors = file_errors(specs, default_crm=default_crm)
    if errors:
        raise ConfigError([f"WACRM_CONFIG_FILE {e}" for e in errors])
    wanted = {}
    for spec in specs:
        values = spec_values(spec, default_crm=default_crm)
        wanted[Target(values["crm"], values["scope"], values["object_type"], values["field"])] = (
            values
        )
    changed = 0
    for row in listed(session):
        target = Target(row.crm, row.scope, row.object_type, row.field)
        if row.source == "yaml" and target not in wanted:
            session.execute(delete(FieldMapping).where(FieldMapping.id == row.id))
            changed += 1
    for values in wanted.values():
        changed += _put_yaml(session, values)
    return changed


def _put_yaml(session: Session, values: dict[str, Any]) -> int:
    inserted = insert_ignore(
        session,
        FieldMapping,
        {**values, "source": "yaml", "created_at": utcnow()},
        ["crm", "scope", "object_type", "field"],
    )
    row = _at(session, values)
    assert row is not None  # inserted now, or held by a row we take over
    same = row.source == "yaml" and all(getattr(row, k) == v for k, v in values.items())
    if inserted or not same:
        for key, value in values.items():
            setattr(row, key, value)
        row.source = "yaml"
        _refill(session, row.scope)
        return 1
    return 0


def check(
    rows: Sequence[FieldMapping], adapter: CrmAdapter, *, crm: str, business_hours: bool
) -> list[str]:
    """One line per problem: invalid mapping, or a field the CRM lacks or types as text."""
    problems: list[str] = []
    described: dict[str, dict[str, FieldInfo] | str] = {}
    for row in rows:
        where = f"mapping {row.id} ({row.kpi} -> {row.object_type}.{row.field} on {row.crm})"
        try:
            normalise(_columns(row), default_crm=crm)
        except ValidationFailed as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        if row.kpi in BUSINESS_HOURS and not business_hours:
            problems.append(f"{where}: needs business_hours in WACRM_CONFIG_FILE")
        if row.crm != crm:
            problems.append(f"{where}: not written while WACRM_CRM is {crm}")
            continue
        if row.object_type not in described:
            described[row.object_type] = _describe(adapter, row.object_type)
        problem = _field_problem(row, described[row.object_type])
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def _describe(adapter: CrmAdapter, object_type: str) -> dict[str, FieldInfo] | str:
    try:
        return adapter.describe_fields(object_type)
    except CrmError as exc:  # the adapter's own words, e.g. no fields API for campaigns
        return f"{type(exc).__name__}: {exc}"


def _field_problem(row: FieldMapping, fields: dict[str, FieldInfo] | str) -> str | None:
    if isinstance(fields, str):
        return f"cannot read the CRM's {row.object_type} fields ({fields})"
    if row.field not in fields:
        return "the CRM has no such field (wacrm crm provision?)"
    if fields[row.field].type.lower() not in NUMERIC_TYPES:
        return f"the field is {fields[row.field].type}, expected a number"
    return None


def _columns(row: FieldMapping) -> dict[str, Any]:
    return {
        "kpi": row.kpi,
        "stat": row.stat,
        "scope": row.scope,
        "crm": row.crm,
        "object_type": row.object_type,
        "field": row.field,
        "transform": row.transform,
        "period": row.period,
        "enabled": row.enabled,
    }


# -- values ----------------------------------------------------------------------------


def pick(values: Mapping[str, Any], kpi: str, stat: str) -> float | None:
    """The mapped number from one scope key's KPIs: a duration's stat, or the scalar."""
    value = values.get(kpi)
    if isinstance(value, dict):
        value = value.get(stat)
    return None if value is None else value


def transform(value: float | None, steps: str) -> float | None:
    if value is None:
        return None
    for step in steps.split(","):
        value = TRANSFORMS[step](value)
    return value


def period_of(name: str, *, now: datetime, tz: ZoneInfo) -> Period:
    """Rolling periods end at ``now``; ``mtd`` starts at local midnight on the 1st."""
    if name == "all":
        return Period()
    if name == "mtd":
        local = now.astimezone(tz)
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return Period(start, max(now, start + timedelta(microseconds=1)))
    return Period(now - _ROLLING[name], now)


# -- CRM records -----------------------------------------------------------------------


def record_ids(session: Session, scope: str, keys: Collection[str], crm: str) -> dict[str, str]:
    """CRM record id of each scope key that has one (keys are internal ids as strings).

    contact → its ``crm_links`` row; deal → ``deals.key`` of a deal pulled from ``crm``;
    campaign → ``campaigns.crm_id`` when linked to ``crm``; agent → its ``crm_links`` row of
    kind ``agent`` (``PUT /api/v1/agents/<id>`` with a ``crm_id``).
    """
    ids = sorted({int(k) for k in keys if k.isdigit()})
    found: dict[str, str] = {}
    for chunk in _chunks(ids):
        found.update((str(k), str(v)) for k, v in session.execute(_lookup(scope, crm, chunk)))
    return found


def _lookup(scope: str, crm: str, ids: list[int]) -> Any:
    if scope in ("contact", "agent"):
        return select(CrmLink.local_id, CrmLink.crm_id).where(
            CrmLink.crm == crm, CrmLink.kind == scope, CrmLink.local_id.in_(ids)
        )
    if scope == "deal":
        return select(Deal.id, Deal.key).where(Deal.crm == crm, Deal.id.in_(ids))
    if scope == "campaign":
        return select(Campaign.id, Campaign.crm_id).where(
            Campaign.crm == crm, Campaign.crm_id.is_not(None), Campaign.id.in_(ids)
        )
    raise ValueError(f"scope {scope!r} has no CRM record")


def _chunks(items: list[int], size: int = kpi_dirty.CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
