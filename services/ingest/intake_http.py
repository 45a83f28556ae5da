"""POST /intake/{source}: the door for CRMs and platforms that can only call webhooks.

The body is size-limited (413), its signature verified with the source's secret (401),
split into one record per item when the platform batches, and written to
``complaints.intake`` as binary-mode CloudEvents; 202 is answered only once Kafka has
acknowledged every record (acks=all). A refused body goes to ``complaints.intake.dlq``
with the reason, like any malformed intake record. Event ids derive from the body, so a
webhook the platform retries is recognised downstream as the same intake event.

Signatures:

* zendesk: ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret, timestamp + body))
  with ``X-Zendesk-Webhook-Signature-Timestamp``;
* hubspot: ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(secret, method + uri + body +
  timestamp)) with ``X-HubSpot-Request-Timestamp`` (milliseconds);
* facebook, instagram: ``X-Hub-Signature-256`` = "sha256=" + hex(HMAC-SHA256(secret, body));
* twitter: ``X-Twitter-Webhooks-Signature`` = "sha256=" + base64(HMAC-SHA256(secret, body));
* every other source: ``X-Amends-Signature`` = "sha256=" + hex(HMAC-SHA256(secret,
  timestamp + "." + body)) with ``X-Amends-Timestamp`` (Unix seconds).

A source without a signing secret may be given a bearer token instead
(``AMENDS_INTAKE_BEARER_TOKENS``, JSON ``{"source": "token"}``): ``Authorization: Bearer
<token>``. Replays: a signed timestamp older than ``signature_tolerance_seconds`` is
refused (401), and a signature already accepted within that window is refused (409
``replayed``; not published again). Rate limit: a token bucket per source and client
address (``AMENDS_INTAKE_RATE_PER_SECOND``, ``AMENDS_INTAKE_RATE_BURST``) answers 429 with
``Retry-After`` when exceeded. Both are per replica (in memory); a replay that reaches
another replica is still recognised downstream: its event id derives from the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from shared.events import catalogue, envelope
from shared.events.catalogue import dead_letter_topic
from shared.events.envelope import derived_id
from shared.service import Service

from . import metrics
from .adapters import split_batch
from .settings import IngestSettings

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SignatureError(Exception):
    pass


class TokenBucket:
    """Requests per second with a burst, per key (source and client address)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed; else the seconds to wait before the next request."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._buckets.pop(next(iter(self._buckets)))  # forget the oldest client
        self._buckets[key] = (tokens - 1, now)
        return 0.0


class ReplayCache:
    """Signatures accepted within the tolerance window: the same one again is a replay."""

    def __init__(self, window: float, max_entries: int) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: dict[str, float] = {}  # insertion-ordered: oldest first

    def seen(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        expires = self._seen.get(key)
        return expires is not None and expires > now

    def remember(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now and len(self._seen) < self.max_entries:
                break
            del self._seen[oldest]
        self._seen[key] = now + self.window


def _hmac(secret: bytes, message: bytes) -> bytes:
    return hmac.new(secret, message, hashlib.sha256).digest()


def _check_age(seconds: float, tolerance: int, now: float) -> None:
    if abs(now - seconds) > tolerance:
        raise SignatureError("timestamp outside the tolerated window (replay?)")


def verify_signature(
    source: str,
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str = "POST",
    url: str = "",
    tolerance: int = 300,
    now: float | None = None,
) -> None:
    """Raise ``SignatureError`` unless ``headers`` carry ``source``'s valid signature."""
    now = time.time() if now is None else now
    if source == "zendesk":
        signature = headers.get("x-zendesk-webhook-signature", "")
        stamp = headers.get("x-zendesk-webhook-signature-timestamp", "")
        if not signature or not stamp:
            raise SignatureError("missing X-Zendesk-Webhook-Signature(-Timestamp)")
        try:
            _check_age(
                datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp(), tolerance, now
            )
        except ValueError:
            raise SignatureError("bad X-Zendesk-Webhook-Signature-Timestamp") from None
        expected = base64.b64encode(_hmac(secret, stamp.encode() + body)).decode()
    elif source == "hubspot":
        signature = headers.get("x-hubspot-signature-v3", "")
        stamp = headers.get("x-hubspot-request-timestamp", "")
        if not signature or not stamp.isdigit():
            raise SignatureError("missing X-HubSpot-Signature-v3 / X-HubSpot-Request-Timestamp")
        _check_age(int(stamp) / 1000, tolerance, now)
        message = method.encode() + url.encode() + body + stamp.encode()
        expected = base64.b64encode(_hmac(secret, message)).decode()
    elif source in ("facebook", "instagram"):
        signature = headers.get("x-hub-signature-256", "")
        expected = "sha256=" + _hmac(secret, body).hex()
    elif source == "twitter":
        signature = headers.get("x-twitter-webhooks-signature", "")
        expected = "sha256=" + base64.b64encode(_hmac(secret, body)).decode()
    else:
        signature = headers.get("x-amends-signature", "")
        stamp = headers.get("x-amends-timestamp", "")
        if not signature or not stamp.isdigit():
            raise SignatureError("missing X-Amends-Signature / X-Amends-Timestamp")
        _check_age(int(stamp), tolerance, now)
        expected = "sha256=" + _hmac(secret, stamp.encode() + b"." + body).hex()
    if not signature:
        raise SignatureError("missing signature header")
    if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
        raise SignatureError("signature does not match the body")


def sign_generic(secret: bytes, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers a generic source sends (for clients and tests)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = _hmac(secret, stamp.encode() + b"." + body).hex()
    return {"X-Amends-Signature": f"sha256={digest}", "X-Amends-Timestamp": stamp}


class IntakeEndpoint:
    """ASGI app for ``POST /intake/<source>``."""

    def __init__(
        self,
        service: Service,
        settings: IngestSettings,
        source: str,
    ) -> None:
        self.service = service
        self.settings = settings
        self.source = source
        self.limiter = TokenBucket(settings.intake_rate_per_second, settings.intake_rate_burst)
        self.replays = ReplayCache(
            2 * settings.signature_tolerance_seconds, settings.intake_replay_cache_size
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, body = await self._handle(scope, receive)
        metrics.intake_http_requests.labels(self.source, str(status)).inc()
        response_headers = [(b"content-type", b"application/json")]
        if status == 429:
            retry_after = max(1, int(float(body.get("retry_after_seconds", 1)) + 0.999))
            response_headers.append((b"retry-after", str(retry_after).encode()))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": response_headers,
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(body)})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        if scope.get("method") != "POST":
            return 405, {"error": "method_not_allowed"}
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.limiter.take(f"{self.source}|{client}")
        if wait > 0:
            return 429, {"error": "rate_limited", "retry_after_seconds": round(wait, 3)}
        limit = self.settings.max_payload_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._dead_letter(
                b"", headers, "oversized", f"Content-Length {declared} > {limit}"
            )
            return 413, {"error": "oversized", "limit_bytes": limit}
        body, complete = await _read_body(receive, limit)
        if not complete:
            await self._dead_letter(
                body, headers, "oversized", f"body exceeds {limit} bytes; first {limit} kept"
            )
            return 413, {"error": "oversized", "limit_bytes": limit}
        secret = self.settings.webhook_secrets.get(self.source)
        token = self.settings.intake_bearer_tokens.get(self.source)
        replay_key = ""
        if secret is not None:
            try:
                verify_signature(
                    self.source,
                    secret.get_secret_value().encode(),
                    headers,
                    body,
                    method="POST",
                    url=self._url(scope, headers),
                    tolerance=self.settings.signature_tolerance_seconds,
                )
            except SignatureError as exc:
                await self._dead_letter(body, headers, "invalid_signature", str(exc))
                return 401, {"error": "invalid_signature", "detail": str(exc)}
            replay_key = _signature_of(self.source, headers)
            if self.replays.seen(replay_key):
                return 409, {"error": "replayed", "detail": "this signature was already used"}
        elif token is not None:
            offered = headers.get("authorization", "")
            scheme, _, value = offered.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), token.get_secret_value().encode()
            ):
                await self._dead_letter(body, headers, "invalid_token", "missing or wrong token")
                return 401, {"error": "invalid_token", "detail": "bearer token required"}
        elif not self.settings.webhook_allow_unsigned:
            await self._dead_letter(
                body, headers, "invalid_signature", f"no secret configured for {self.source}"
            )
            return 401, {"error": "invalid_signature", "detail": "source has no secret"}
        digest = hashlib.sha256(body).hexdigest()
        parts = split_batch(self.source, body)
        ids = [derived_id("http", self.source, digest, str(i)) for i in range(len(parts))]
        content_type = headers.get("content-type", "application/octet-stream")
        try:
            for event_id, part in zip(ids, parts, strict=True):
                event = envelope.CloudEvent(
                    type=catalogue.INTAKE.event_type,
                    source=f"/amends/ingest/http/{self.source}",
                    id=event_id,
                    data=part,
                    extensions={"sourceformat": self.source, "datacontenttype": content_type},
                )
                record_headers = event.headers()
                # The payload's type travels as ce_datacontenttype; the Kafka content-type
                # stays opaque so no consumer framework tries to decode the source's bytes.
                record_headers["content-type"] = "application/octet-stream"
                await self.service.broker.publish(
                    part,
                    self.settings.topic(catalogue.INTAKE.topic),
                    key=f"{self.source}:{digest[:16]}".encode(),
                    headers=record_headers,
                )
        except Exception as exc:  # Kafka unreachable: the platform retries later
            log.warning("intake from %s not stored in Kafka: %r", self.source, exc)
            return 503, {"error": "unavailable", "detail": "try again later"}
        if replay_key:
            # Remembered only once stored: a retry after a 503 is not a replay.
            self.replays.remember(replay_key)
        return 202, {"accepted": len(parts), "ids": ids}

    def _url(self, scope: Scope, headers: Mapping[str, str]) -> str:
        path = scope.get("path", "")
        query = scope.get("query_string", b"").decode("latin-1")
        if self.settings.intake_public_url:
            base = self.settings.intake_public_url.rstrip("/")
        else:
            host = headers.get("host", "localhost")
            base = f"{headers.get('x-forwarded-proto', scope.get('scheme', 'http'))}://{host}"
        return f"{base}{path}" + (f"?{query}" if query else "")

    async def _dead_letter(
        self, body: bytes, headers: Mapping[str, str], reason: str, detail: str
    ) -> None:
        """A refused webhook body, to ``complaints.intake.dlq`` (best effort)."""
        failed_at = envelope.utcnow()
        event_id = derived_id("http-refused", self.source, hashlib.sha256(body).hexdigest())
        dlq_headers = {
            "ce_specversion": envelope.SPEC_VERSION,
            "ce_id": event_id,
            "ce_source": f"/amends/ingest/http/{self.source}",
            "ce_type": catalogue.INTAKE.event_type,
            "ce_sourceformat": self.source,
            "content-type": headers.get("content-type", "application/octet-stream"),
            "x-dlq-reason": reason,
            "x-dlq-detail": detail[:2000],
            "x-dlq-service": self.service.name,
            "x-dlq-original-topic": f"http:/intake/{self.source}",
            "x-dlq-attempts": "0",
            "x-dlq-failed-at": failed_at.isoformat(),
        }
        topic = self.settings.topic(dead_letter_topic(catalogue.INTAKE.topic))
        try:
            await self.service.broker.publish(body, topic, headers=dlq_headers)
            await self.service.store["dead_letters"].update_one(
                {"_id": f"http:{self.source}:{event_id}"},
                {
                    "$setOnInsert": {
                        "topic": f"http:/intake/{self.source}",
                        "service": self.service.name,
                        "reason": reason,
                        "detail": detail[:2000],
                        "event_id": event_id,
                        "failed_at": failed_at,
                    }
                },
                upsert=True,
            )
        except Exception as exc:
            log.warning("could not dead-letter a refused %s webhook: %r", self.source, exc)
        from shared import metrics as shared_metrics

        shared_metrics.dead_letters.labels(self.service.name, catalogue.INTAKE.topic, reason).inc()


_SIGNATURE_HEADERS = (
    "x-zendesk-webhook-signature",
    "x-hubspot-signature-v3",
    "x-hub-signature-256",
    "x-twitter-webhooks-signature",
    "x-amends-signature",
)


def _signature_of(source: str, headers: Mapping[str, str]) -> str:
    """The signature a request carried (the replay-cache key)."""
    for name in _SIGNATURE_HEADERS:
        if headers.get(name):
            return f"{source}:{headers[name].strip()}"
    return ""


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body up to ``limit`` bytes; False when it is longer."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: max(0, limit - (size - len(chunk)))])
            return b"".join(chunks), False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
