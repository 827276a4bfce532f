"""One contract over every registered adapter: same shape, clear config errors."""

from __future__ import annotations

import inspect

import pytest

from crm_adapters import ADAPTERS, CrmAdapter, NoLimit, get_adapter

PROTOCOL_METHODS = [
    name
    for name, _ in inspect.getmembers(CrmAdapter, inspect.isfunction)
    if not name.startswith("_")
]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapter_honours_the_protocol(name: str) -> None:
    cls = get_adapter(name)
    assert cls.name == name
    assert isinstance(cls.MAX_BATCH, int) and cls.MAX_BATCH > 0
    for method in [*PROTOCOL_METHODS, "from_env"]:
        assert callable(getattr(cls, method, None)), f"{name} lacks {method}"
        ours = inspect.signature(getattr(CrmAdapter, method))
        theirs = inspect.signature(getattr(cls, method))
        assert list(ours.parameters)[1:] == list(theirs.parameters)[1 : len(ours.parameters)], (
            f"{name}.{method}{theirs} does not match {ours}"
        )


@pytest.mark.parametrize("name", ["hubspot", "salesforce"])
def test_missing_credentials_name_the_settings(name: str) -> None:
    with pytest.raises(ValueError, match=name.upper()):
        get_adapter(name).from_env({}, limiter=NoLimit())


def test_unknown_crm_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown CRM 'zoho'"):
        get_adapter("zoho")
