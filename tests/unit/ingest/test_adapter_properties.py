"""Random, truncated and mutated payloads: every adapter normalises or rejects with a
reason from the fixed vocabulary; no other exception escapes (the service never crashes)."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.adapters import ADAPTERS, adapter_for
from services.ingest.adapters.base import REASONS
from shared.events.complaint import Contact
from shared.service import Rejected

from .fixtures import CHANNEL_FIXTURES, fixture, meta

FIXTURES_BY_SOURCE: dict[str, list[bytes]] = {}
for _name, (_source, _ct) in CHANNEL_FIXTURES.items():
    FIXTURES_BY_SOURCE.setdefault(_source, []).append(fixture(_name))

SOURCES = sorted(ADAPTERS)
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def check(source: str, payload: bytes) -> None:
    try:
        result = adapter_for(source)(payload, meta(source))
    except Rejected as rejected:
        assert rejected.reason in REASONS, rejected.reason
        assert rejected.detail
        return
    assert result is None or isinstance(result, Contact)


def _mutate(value: object, path: list[int | str], replacement: object) -> object:
    """Replace the node at ``path`` (indices chosen modulo the container sizes)."""
    if not path:
        return replacement
    if isinstance(value, dict) and value:
        keys = list(value)
        key = keys[int(path[0]) % len(keys)]
        return {**value, key: _mutate(value[key], path[1:], replacement)}
    if isinstance(value, list) and value:
        index = path[0] % len(value) if isinstance(path[0], int) else 0
        copy = list(value)
        copy[index] = _mutate(value[index], path[1:], replacement)
        return copy
    return replacement


@pytest.mark.parametrize("source", SOURCES)
@PROFILE
@given(data=st.binary(max_size=400))
def test_random_bytes(source: str, data: bytes) -> None:
    check(source, data)


@pytest.mark.parametrize("source", SOURCES)
@PROFILE
@given(value=json_values)
def test_random_json(source: str, value: object) -> None:
    check(source, json.dumps(value).encode())


@pytest.mark.parametrize("source", SOURCES)
@PROFILE
@given(st.data())
def test_truncated_fixtures(source: str, data: st.DataObject) -> None:
    payload = data.draw(st.sampled_from(FIXTURES_BY_SOURCE[source]))
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))
    check(source, payload[:cut])


@pytest.mark.parametrize("source", SOURCES)
@PROFILE
@given(st.data())
def test_mutated_fixtures(source: str, data: st.DataObject) -> None:
    payload = data.draw(st.sampled_from(FIXTURES_BY_SOURCE[source]))
    if source == "email" or payload.lstrip()[:1] not in (b"{", b"["):
        position = data.draw(st.integers(min_value=0, max_value=len(payload)))
        junk = data.draw(st.binary(max_size=20))
        check(source, payload[:position] + junk + payload[position:])
        return
    document = orjson.loads(payload)
    path = data.draw(st.lists(st.integers(min_value=0, max_value=50), max_size=6))
    replacement = data.draw(json_values)
    check(source, json.dumps(_mutate(document, list(path), replacement)).encode())
