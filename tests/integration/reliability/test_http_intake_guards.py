"""POST /intake/{source} under attack, against the real servers: oversized and deeply
nested bodies, forged and stale signatures, a replayed signature, a wrong bearer token and
a flood each get a clear status (413 / 202-then-dead-letter / 401 / 409 / 429), and the
service keeps serving good requests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.ingest.app import build_service
from services.ingest.intake_http import sign_generic
from services.ingest.settings import IngestSettings
from shared.store import Store
from tests.support import isolated_settings, running, wait_for
from tests.unit.ingest.fixtures import fixture

SECRET = "yelp-secret"


@pytest.fixture
async def settings(servers_up: None, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setenv("AMENDS_INTAKE_RATE_PER_SECOND", "2")
    monkeypatch.setenv("AMENDS_INTAKE_RATE_BURST", "12")
    monkeypatch.setenv("AMENDS_INTAKE_BEARER_TOKENS", '{"glassdoor": "gd-token"}')
    base = isolated_settings()
    values = {name: getattr(base, name) for name in type(base).model_fields}
    ingest = IngestSettings(
        **values, max_payload_bytes=20_000, webhook_secrets={"yelp": SecretStr(SECRET)}
    )
    yield ingest
    store = Store(ingest)
    await store.client.drop_database(ingest.mongodb_database)
    await store.close()


async def test_intake_guards(settings: IngestSettings) -> None:
    service = build_service(settings)
    app = service.asgi()
    async with running(service):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as http:
            yelp = fixture("yelp_review.json")

            async def post(body: bytes, headers: dict[str, str], source: str = "yelp") -> Any:
                return await http.post(f"/intake/{source}", content=body, headers=headers)

            # Good, signed: accepted once.
            signed = sign_generic(SECRET.encode(), yelp)
            assert (await post(yelp, signed)).status_code == 202
            # The very same request again (captured and replayed within the window): 409.
            replayed = await post(yelp, signed)
            assert replayed.status_code == 409 and replayed.json()["error"] == "replayed"
            # Replayed outside the window (an old timestamp): 401.
            old = sign_generic(SECRET.encode(), yelp, timestamp=int(time.time()) - 3600)
            assert (await post(yelp, old)).status_code == 401
            # Forged signature: 401.
            forged = sign_generic(b"not-the-secret", yelp)
            assert (await post(yelp, forged)).status_code == 401
            # Oversized, declared or not: 413 before any parsing.
            big = b'{"text": "' + b"x" * 30_000 + b'"}'
            assert (await post(big, sign_generic(SECRET.encode(), big))).status_code == 413
            # Deeply nested JSON within the size limit: accepted (it is in Kafka), then
            # dead-lettered by the adapter with a reason, never a crash.
            nested = b'{"a":' * 3_000 + b"1" + b"}" * 3_000
            accepted = await post(nested, sign_generic(SECRET.encode(), nested))
            assert accepted.status_code == 202, accepted.text
            # Bearer token source: wrong token 401, right token 202.
            glassdoor = fixture("glassdoor_review.json")
            wrong = await post(glassdoor, {"Authorization": "Bearer nope"}, "glassdoor")
            assert wrong.status_code == 401
            assert (await post(glassdoor, {}, "glassdoor")).status_code == 401
            right = await post(glassdoor, {"Authorization": "Bearer gd-token"}, "glassdoor")
            assert right.status_code == 202, right.text
            # A flood from one client: 429 with Retry-After once the burst is spent.
            statuses = []
            for n in range(20):
                body = b'{"n": %d}' % n
                response = await post(body, sign_generic(SECRET.encode(), body))
                statuses.append(response.status_code)
                if response.status_code == 429:
                    assert int(response.headers["retry-after"]) >= 1
                    break
            assert 429 in statuses, statuses
            # ... and the service still answers its health checks.
            assert (await http.get("/healthz")).status_code == 200

        store = service.store

        async def reasons() -> list[str] | None:
            docs = await store["dead_letters"].find({}).to_list()
            found = sorted(d["reason"] for d in docs)
            wanted = {"invalid_signature", "oversized", "invalid_token", "invalid_json"}
            return found if wanted <= set(found) else None

        found = await wait_for(reasons, timeout=60) or []
        # A refused body is dead-lettered once per body (its id derives from the body):
        # the stale and the forged signature of one body are one entry, as are the wrong
        # and the missing token. The nested body is dead-lettered by the adapter.
        assert found.count("invalid_signature") == 1, found
        assert found.count("invalid_token") == 1, found
        assert found.count("oversized") == 1, found
        assert "invalid_json" in found, found
