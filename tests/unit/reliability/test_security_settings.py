"""Security settings without servers: secrets from mounted files (AMENDS_SECRETS_DIR),
secrets never printed, the intake rate limiter and replay cache, bearer-token settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from services.ingest.intake_http import (
    ReplayCache,
    SignatureError,
    TokenBucket,
    sign_generic,
    verify_signature,
)
from services.ingest.settings import IngestSettings
from shared.logs import JsonFormatter
from shared.settings import Settings


def test_secrets_come_from_mounted_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "MONGODB_URL").write_text("mongodb://amends:pw@db.internal:27017/?tls=true\n")
    (tmp_path / "amends_kafka_sasl_password").write_text("s3cret\n")
    (tmp_path / "amends_webhook_secrets").write_text(json.dumps({"zendesk": "zd"}))
    (tmp_path / "amends_intake_bearer_tokens").write_text(json.dumps({"glassdoor": "tok"}))
    monkeypatch.setenv("AMENDS_SECRETS_DIR", str(tmp_path))
    for name in ("MONGODB_URL", "AMENDS_MONGODB_URL", "AMENDS_KAFKA_SASL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.mongodb_url.get_secret_value().startswith("mongodb://amends:pw@")
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "s3cret"
    ingest = IngestSettings()
    assert ingest.webhook_secrets["zendesk"].get_secret_value() == "zd"
    assert IngestSettings().intake_bearer_tokens["glassdoor"].get_secret_value() == "tok"
    # The environment wins over a file.
    monkeypatch.setenv("AMENDS_KAFKA_SASL_PASSWORD", "from-env")
    password = Settings().kafka_sasl_password
    assert password is not None and password.get_secret_value() == "from-env"


def test_no_secrets_dir_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMENDS_SECRETS_DIR", "/nonexistent/amends-secrets")
    assert Settings().mongodb_database


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URL", "mongodb://amends:hunter2@db:27017/")
    monkeypatch.setenv("AMENDS_KAFKA_SASL_PASSWORD", "hunter3")
    settings = Settings()
    text = repr(settings) + str(settings.model_dump()) + settings.model_dump_json()
    assert "hunter2" not in text and "hunter3" not in text


def test_logs_mask_personal_data() -> None:
    record = logging.LogRecord(
        "t", logging.WARNING, __file__, 1, "from %s, card %s, call %s", None, None
    )
    record.args = ("aino.virtanen@example.fi", "4111 1111 1111 1111", "+358 40 123 4567")
    line = JsonFormatter("test").format(record)
    assert "aino.virtanen" not in line and "4111" not in line and "123 4567" not in line


def test_rate_limiter_allows_a_burst_then_refuses_until_refilled() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take("a", now=0.0)
    assert wait == pytest.approx(0.5)
    assert bucket.take("b", now=0.0) == 0.0  # other clients are not affected
    assert bucket.take("a", now=0.6) == 0.0  # refilled
    assert TokenBucket(rate=0, burst=1).take("a") == 0.0  # 0: no limit


def test_rate_limiter_memory_is_bounded() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, max_keys=100)
    for n in range(1_000):
        bucket.take(f"client-{n}", now=0.0)
    assert len(bucket._buckets) <= 100


def test_replay_cache_remembers_within_the_window_only() -> None:
    cache = ReplayCache(window=10, max_entries=3)
    cache.remember("sig-1", now=0)
    assert cache.seen("sig-1", now=5)
    assert not cache.seen("sig-1", now=11)
    for n in range(10):
        cache.remember(f"s{n}", now=1)
    assert len(cache._seen) <= 3


def test_signature_timestamp_window() -> None:
    body = b'{"text": "hi"}'
    headers = {k.lower(): v for k, v in sign_generic(b"k", body, timestamp=1_000).items()}
    verify_signature("yelp", b"k", headers, body, tolerance=300, now=1_100)
    with pytest.raises(SignatureError):
        verify_signature("yelp", b"k", headers, body, tolerance=300, now=1_400)
    with pytest.raises(SignatureError):
        verify_signature("yelp", b"other", headers, body, tolerance=300, now=1_100)
