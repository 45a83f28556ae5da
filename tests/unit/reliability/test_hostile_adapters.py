"""Hostile input at every channel adapter (no servers): deeply nested JSON, invalid UTF-8
inside valid payloads, HTML/script in text, enormous attachment lists, oversized values,
header injection in emails. Each adapter normalises or rejects with a reason from the fixed
vocabulary; nothing else escapes, nothing takes long, and what it returns can be stored and
published (valid UTF-8, bounded)."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.adapters import ADAPTERS, adapter_for
from services.ingest.adapters.base import REASONS
from shared.events.complaint import Contact
from shared.service import Rejected
from tests.unit.ingest.fixtures import CHANNEL_FIXTURES, fixture, meta

SOURCES = sorted(ADAPTERS)
FIXTURES: dict[str, list[bytes]] = {}
for _name, (_source, _ct) in CHANNEL_FIXTURES.items():
    FIXTURES.setdefault(_source, []).append(fixture(_name))
JSON_SOURCES = [s for s in SOURCES if any(f.lstrip()[:1] in (b"{", b"[") for f in FIXTURES[s])]
PROFILE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCRIPT = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def run(source: str, payload: bytes, *, budget: float = 5.0) -> Contact | None:
    started = time.perf_counter()
    try:
        result = adapter_for(source)(payload, meta(source))
    except Rejected as rejected:
        assert rejected.reason in REASONS, rejected.reason
        assert rejected.detail
        result = None
    assert time.perf_counter() - started < budget, f"{source}: too slow on hostile input"
    if result is not None:
        assert isinstance(result, Contact)
        # Storable and publishable: valid UTF-8 JSON, no lone surrogates.
        result.model_dump_json().encode("utf-8")
    return result


def json_fixture(source: str) -> dict | list | None:
    for payload in FIXTURES[source]:
        if payload.lstrip()[:1] in (b"{", b"["):
            return orjson.loads(payload)
    return None


def map_strings(value: object, fn: object) -> object:
    if isinstance(value, str):
        return fn(value)  # type: ignore[operator]
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    return value


@pytest.mark.parametrize("source", SOURCES)
def test_deeply_nested_json(source: str) -> None:
    for depth in (1_000, 100_000):
        run(source, b"[" * depth + b"]" * depth)
        run(source, b'{"a":' * depth + b"1" + b"}" * depth)


@pytest.mark.parametrize("source", SOURCES)
def test_invalid_utf8(source: str) -> None:
    for payload in FIXTURES[source]:
        middle = len(payload) // 2
        run(source, payload[:middle] + b"\xff\xfe\xc3\x28" + payload[middle:])
    run(source, b"\xff" * 1000)


@pytest.mark.parametrize("source", JSON_SOURCES)
def test_html_and_script_in_text_are_kept_as_inert_text(source: str) -> None:
    document = json_fixture(source)
    hostile = map_strings(document, lambda s: f"{s} {SCRIPT}" if len(s) > 20 else s)
    result = run(source, orjson.dumps(hostile))
    if result is not None:
        # Stored as text for the CRM to escape; never executed or interpreted by amends.
        assert isinstance(result.text, str)


@pytest.mark.parametrize("source", JSON_SOURCES)
def test_enormous_attachment_lists(source: str) -> None:
    document = json_fixture(source)
    flood = [{"filename": f"f{i}.exe", "content_type": "x/y", "size": i} for i in range(50_000)]
    if isinstance(document, dict):
        document = {**document, "attachments": flood}
        for key, value in list(document.items()):
            if isinstance(value, dict):
                document[key] = {**value, "attachments": flood}
    run(source, orjson.dumps(document), budget=10.0)


@pytest.mark.parametrize("source", JSON_SOURCES)
def test_oversized_values(source: str) -> None:
    document = json_fixture(source)
    huge = map_strings(document, lambda s: s + "x" * 2_000_000 if len(s) > 20 else s)
    result = run(source, orjson.dumps(huge), budget=10.0)
    if result is not None:
        assert len(result.text) <= 100_000


def email(headers: str, body: str = "The parcel never came.") -> bytes:
    return (headers.strip() + "\n\n" + body + "\n").encode()


INJECTIONS = [
    # An encoded word that decodes to a line break and a new header.
    "From: =?utf-8?q?Mallory=0D=0ABcc=3A_victim=40example=2Ecom?= <mallory@example.com>\n"
    "Subject: refund",
    # CR/LF hidden in an encoded-word Subject ('hello\r\nBcc: victim@...').
    "From: mallory@example.com\nSubject: =?utf-8?b?aGVsbG8NCkJjYzogdmljdGltQGV4YW1wbGUuY29t?=",
    # Folded header lines and a bare CR.
    "From: Mallory\n <mallory@example.com>\nSubject: a\r b",
    # Two From headers.
    "From: a@example.com\nFrom: b@example.com\nSubject: twice",
]


@pytest.mark.parametrize("headers", INJECTIONS)
def test_email_header_injection_never_reaches_single_line_fields(headers: str) -> None:
    result = run("email", email(headers))
    if result is None:
        return
    for value in (result.author.name, result.author.email, result.subject):
        if value:
            assert "\r" not in value and "\n" not in value, repr(value)
    if result.author.email:
        assert result.author.email.count("@") == 1, result.author.email


@PROFILE
@given(
    name=st.text(max_size=60),
    subject=st.text(max_size=120),
    body=st.text(max_size=400),
)
def test_random_emails(name: str, subject: str, body: str) -> None:
    from email.header import Header

    headers = (
        f"From: {Header(name, 'utf-8').encode()} <someone@example.com>\n"
        f"Subject: {Header(subject, 'utf-8').encode()}\n"
        "Content-Type: text/plain; charset=utf-8"
    )
    result = run("email", email(headers, body))
    if result is not None and result.subject:
        assert "\n" not in result.subject and "\r" not in result.subject


@pytest.mark.parametrize("source", SOURCES)
@PROFILE
@given(junk=st.binary(min_size=1, max_size=64))
def test_garbage_prefixed_fixtures(source: str, junk: bytes) -> None:
    run(source, junk + FIXTURES[source][0])
