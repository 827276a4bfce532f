"""Contact resolution and message logging for one ≤100-record chunk.

Both are idempotent by a unique property: contacts by the one holding the wa_id (or
``bsuid:…``), communications by the one holding the wamid. A retry after an unknown
outcome reads back what HubSpot already has instead of creating it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from crm_adapters._hubspot_errors import looks_duplicate
from crm_adapters._hubspot_payloads import (
    PHONE_PROPERTIES,
    chunks,
    contact_upsert_input,
    parse_batch,
    phone_search,
    phone_search_in,
    read_by_unique,
)
from crm_adapters._hubspot_transport import DEFAULT_BUCKET, SEARCH_BUCKET, Transport
from crm_adapters.base import ContactRecord, Rejected
from crm_adapters.errors import Permanent

Resolved = tuple[dict[str, str], list[Rejected]]
SEARCH_GROUPS = 5  # filterGroups per search request, safe under every documented version
SEARCH_IN_VALUES = 50  # numbers per IN filter (HubSpot documents no cap; see _search_numbers)
_CONTACTS = "crm.contacts.batch_api"
_COMMUNICATIONS = "crm.objects.communications.batch_api"


def resolve_contacts(hs: Transport, chunk: Sequence[ContactRecord], id_property: str) -> Resolved:
    """Find or create each contact: batch read, then phone match once, then upsert."""
    found = _read_contacts(hs, chunk, id_property)
    missing = [r for r in chunk if r.key not in found]
    matched, refused = _match_by_phone(hs, [r for r in missing if r.wa_id], id_property)
    settled = {*matched, *(r.key for r in refused)}
    created, failed = _upsert_contacts(
        hs, [r for r in missing if r.key not in settled], id_property
    )
    return {**found, **matched, **created}, [*refused, *failed]


def _read_contacts(
    hs: Transport, chunk: Sequence[ContactRecord], id_property: str
) -> dict[str, str]:
    keys = [r.key for r in chunk]
    body = read_by_unique(keys, id_property, "hs_whatsapp_phone_number")
    response = hs.sdk(
        DEFAULT_BUCKET, _CONTACTS, "read", batch_read_input_simple_public_object_id=body
    )
    return parse_batch(response, keys, id_property).ok  # "not found" errors are expected


def _match_by_phone(hs: Transport, records: Sequence[ContactRecord], id_property: str) -> Resolved:
    """Adopt contacts that predate the connector, matched on ``+wa_id``, and stamp them."""
    if not records:
        return {}, []
    hits: list[Mapping[str, Any]] = []
    for chunk in chunks([f"+{r.wa_id}" for r in records], SEARCH_IN_VALUES):
        hits.extend(_search_numbers(hs, chunk, id_property))
    wanted = {f"+{r.wa_id}": r.key for r in records}
    matches = pick_matches(hits, wanted, id_property)
    carrying = {k: str(h["id"]) for k, h in matches.items() if _props(h).get(id_property) == k}
    to_stamp = {k: str(h["id"]) for k, h in matches.items() if k not in carrying}
    stamped, refused = _stamp(hs, to_stamp, id_property)
    return {**carrying, **stamped}, refused


def _search_numbers(hs: Transport, numbers: Sequence[str], id_property: str) -> list[Any]:
    """All contacts carrying one of ``numbers``, by ``IN`` filters, paged.

    HubSpot does not document how many values ``IN`` takes; if it refuses the request,
    fall back to one ``EQ`` group per (number, property), five groups a call.
    """
    hits: list[Any] = []
    after = "0"
    try:
        while True:
            response = _search(hs, phone_search_in(numbers, id_property, after))
            hits.extend(response.get("results") or [])
            after = ((response.get("paging") or {}).get("next") or {}).get("after") or ""
            if not after:
                return hits
    except Permanent:
        pairs = [(n.lstrip("+"), prop) for n in numbers for prop in PHONE_PROPERTIES]
        return [
            hit
            for group in chunks(pairs, SEARCH_GROUPS)
            for hit in _search(hs, phone_search(group, id_property)).get("results") or []
        ]


def _search(hs: Transport, body: Mapping[str, Any]) -> Any:
    return hs.sdk(
        SEARCH_BUCKET, "crm.contacts.search_api", "do_search", public_object_search_request=body
    )


def _props(hit: Mapping[str, Any]) -> Mapping[str, Any]:
    return hit.get("properties") or {}


def pick_matches(
    hits: Iterable[Mapping[str, Any]], wanted: Mapping[str, str], id_property: str
) -> dict[str, Mapping[str, Any]]:
    """Oldest matching contact per number; one contact is adopted for one number only.

    A contact whose unique property already holds another key belongs to someone else.
    """
    oldest_first = sorted(hits, key=lambda h: (str(h.get("createdAt") or ""), str(h["id"])))
    matches: dict[str, Mapping[str, Any]] = {}
    for hit in oldest_first:
        props = _props(hit)
        if any(m["id"] == hit["id"] for m in matches.values()):
            continue
        keys = [wanted.get(str(props.get(p) or "")) for p in PHONE_PROPERTIES]
        owner = props.get(id_property)
        key = next((k for k in keys if k and k not in matches and owner in (None, "", k)), None)
        if key:
            matches[key] = hit
    return matches


def _stamp(hs: Transport, matches: Mapping[str, str], id_property: str) -> Resolved:
    """Write the key into the adopted contacts' unique property, so batch read finds them."""
    if not matches:
        return {}, []
    key_of = {contact_id: key for key, contact_id in matches.items()}
    inputs = [{"id": cid, "properties": {id_property: key}} for cid, key in key_of.items()]
    response = hs.sdk(
        DEFAULT_BUCKET,
        _CONTACTS,
        "update",
        batch_input_simple_public_object_batch_input={"inputs": inputs},
    )
    outcome = parse_batch(response, list(key_of), id_property)
    refused = [*outcome.failed.values(), *outcome.leftovers(key_of)]
    return (
        {key_of[cid]: cid for cid in outcome.ok},
        [Rejected(key=key_of[r.key], message=r.message, code=r.code) for r in refused],
    )


def _upsert_contacts(hs: Transport, records: Sequence[ContactRecord], id_property: str) -> Resolved:
    if not records:
        return {}, []
    keys = [r.key for r in records]
    inputs = [contact_upsert_input(r, id_property) for r in records]
    response = hs.sdk(
        DEFAULT_BUCKET,
        _CONTACTS,
        "upsert",
        batch_input_simple_public_object_batch_input_upsert={"inputs": inputs},
    )
    outcome = parse_batch(response, keys, id_property)
    return outcome.ok, [*outcome.failed.values(), *outcome.leftovers(keys)]


def log_chunk(hs: Transport, inputs: Sequence[dict[str, Any]], id_property: str) -> Resolved:
    """One ``communications/batch/create`` call; duplicates and unknowns are read back.

    HubSpot may refuse a whole call, or single inputs (207), because the wamid is
    already stored (a retry after a crash between the call and our commit). Those are
    looked up by the unique property and reported as ok, so nothing is created twice.
    """
    keys = [str(i["objectWriteTraceId"]) for i in inputs]
    try:
        response = _create_communications(hs, inputs)
    except Permanent as exc:
        if not looks_duplicate(str(exc)):
            raise
        return _recover_whole_call(hs, inputs, id_property)
    outcome = parse_batch(response, keys, id_property)
    leftovers = outcome.leftovers(keys)
    unknown = [*outcome.duplicates(), *(r.key for r in leftovers)]
    found = read_back(hs, unknown, id_property) if unknown else {}
    refused = [r for r in [*outcome.failed.values(), *leftovers] if r.key not in found]
    return {**outcome.ok, **found}, refused


def _recover_whole_call(
    hs: Transport, inputs: Sequence[dict[str, Any]], id_property: str
) -> Resolved:
    """The whole call was refused as a duplicate: keep what exists, create the rest once."""
    found = read_back(hs, [str(i["objectWriteTraceId"]) for i in inputs], id_property)
    rest = [i for i in inputs if i["objectWriteTraceId"] not in found]
    if not rest:
        return found, []
    keys = [str(i["objectWriteTraceId"]) for i in rest]
    outcome = parse_batch(_create_communications(hs, rest), keys, id_property)
    return {**found, **outcome.ok}, [*outcome.failed.values(), *outcome.leftovers(keys)]


def read_back(hs: Transport, keys: Sequence[str], id_property: str) -> dict[str, str]:
    """HubSpot ids of the communications whose unique message-id property holds ``keys``."""
    body = read_by_unique(keys, id_property)
    response = hs.sdk(
        DEFAULT_BUCKET, _COMMUNICATIONS, "read", batch_read_input_simple_public_object_id=body
    )
    return parse_batch(response, keys, id_property).ok


def _create_communications(hs: Transport, inputs: Sequence[dict[str, Any]]) -> Any:
    body = {"inputs": list(inputs)}
    return hs.sdk(
        DEFAULT_BUCKET,
        _COMMUNICATIONS,
        "create",
        batch_input_simple_public_object_batch_input_for_create=body,
    )
