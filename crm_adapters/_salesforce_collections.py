"""sObject Collections writes, wrapped five to a ``/composite`` request (one counted call).

Collections: https://developer.salesforce.com/docs/platform/api-rest/guide/
resources-composite-sobjects-collections-upsert.html; composite limits (25 subrequests, at
most 5 collections or queries): …/guide/resources-composite-composite-post.html.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crm_adapters._salesforce_errors import classify, error_detail
from crm_adapters._salesforce_records import chunks
from crm_adapters.base import BatchResult, Rejected
from crm_adapters.errors import Permanent, Transient

COLLECTION_SIZE = 200
COLLECTIONS_PER_COMPOSITE = 5

# call(path, method=…, json=…) performs one counted REST call and returns the parsed JSON.
RestCall = Callable[..., Any]
Collection = tuple[Sequence[str], Sequence[dict[str, Any]]]


def write_collections(
    call: RestCall,
    api_version: str,
    method: str,
    path: str,
    keys: Sequence[str],
    records: Sequence[dict[str, Any]],
) -> BatchResult:
    """Send ``records`` (200 a collection, 5 collections a call) and map results by key.

    Args:
        call: Performs one counted REST call (limiter and error translation included).
        api_version: ``62.0``: subrequest URLs are absolute paths.
        method: ``PATCH`` (upsert/update) or ``POST`` (create).
        path: The collections resource, e.g. ``composite/sobjects/Task/WhatsApp_Message_Id__c``.
        keys: One key per record, reported back in the result.
        records: Records with ``attributes.type``.

    Returns:
        Ids for the accepted keys; Salesforce's first error for the others.

    Raises:
        CrmError: The whole call failed, or a subrequest failed for a non-permanent reason.
    """
    collections = list(
        zip(chunks(keys, COLLECTION_SIZE), chunks(records, COLLECTION_SIZE), strict=True)
    )
    ok: dict[str, str] = {}
    rejected: list[Rejected] = []
    for group in chunks(collections, COLLECTIONS_PER_COMPOSITE):
        results = _send(call, api_version, method, path, group)
        for (group_keys, _), items in zip(group, results, strict=True):
            _merge(group_keys, items, ok, rejected)
    return BatchResult(ok=ok, rejected=tuple(rejected))


def _send(
    call: RestCall, api_version: str, method: str, path: str, group: Sequence[Collection]
) -> list[Any]:
    """Per-record results of each collection in ``group``, for one counted call."""
    bodies = [{"allOrNone": False, "records": list(records)} for _, records in group]
    if len(bodies) == 1:
        return [call(path, method=method, json=bodies[0])]
    url = f"/services/data/v{api_version}/{path}"
    # collateSubrequests=false: run in order, as the fixture shows; results are matched by
    # referenceId anyway.
    request = {
        "allOrNone": False,
        "collateSubrequests": False,
        "compositeRequest": [
            {"method": method, "url": url, "referenceId": f"collection{i}", "body": body}
            for i, body in enumerate(bodies)
        ],
    }
    response = call("composite", method="POST", json=request) or {}
    subs = {s.get("referenceId"): s for s in response.get("compositeResponse", [])}
    return [_subresults(subs.get(f"collection{i}"), len(keys)) for i, (keys, _) in enumerate(group)]


def _subresults(sub: Mapping[str, Any] | None, size: int) -> Any:
    """Per-record results of one subrequest; a permanently refused collection rejects all."""
    if sub is None:
        raise Transient("Salesforce composite response lacks a subrequest result")
    status, body = sub.get("httpStatusCode", 500), sub.get("body")
    if status < 300:
        return body
    error = classify(status, body)
    if not isinstance(error, Permanent):
        raise error
    code, message = error_detail(body)
    return [{"success": False, "errors": [{"statusCode": code, "message": message}]}] * size


def _merge(keys: Sequence[str], items: Any, ok: dict[str, str], rejected: list[Rejected]) -> None:
    """Map collection results (in request order) onto the keys sent."""
    if not isinstance(items, list) or len(items) != len(keys):
        count = len(items) if isinstance(items, list) else 0
        raise Permanent(f"Salesforce returned {count} results for {len(keys)} records")
    for key, item in zip(keys, items, strict=True):
        if item.get("success"):
            ok[key] = item["id"]
            continue
        error = (item.get("errors") or [{}])[0]
        message = error.get("message") or "rejected"
        rejected.append(Rejected(key=key, message=message, code=error.get("statusCode")))
