"""What every channel adapter shares: input metadata, parsing helpers, the contact builder.

An adapter is a pure function ``(raw: bytes, meta: IntakeMeta) -> Contact | None``. It
returns None for a well-formed event that carries no customer message (a status change,
an agent's reply), and raises ``Rejected(reason, detail)`` for input it cannot read. The
reasons are a small fixed vocabulary (see ``REASONS``) so dead letters can be counted.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

import orjson
import phonenumbers
from pydantic import ValidationError

from shared.events.complaint import MAX_TEXT_CHARS, Author, Contact
from shared.events.envelope import derived_id
from shared.service import Rejected

# The dead-letter reasons adapters use.
REASONS = (
    "unknown_source",
    "oversized",
    "bad_encoding",
    "invalid_json",
    "unparseable_mime",
    "missing_field",
    "invalid_field",
    "invalid_signature",
)

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class IntakeMeta:
    """What the intake record says about the payload, beside its bytes."""

    source_format: str
    event_id: str
    event_time: datetime
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    default_phone_region: str = "FI"


Adapter = Callable[[bytes, IntakeMeta], Contact | None]


# -- decoding -------------------------------------------------------------------------


# A few invalid bytes in a text (one, or one in 50 characters) are a channel's glitch:
# they become U+FFFD and the contact goes on (classify reports "undecodable characters"
# as low confidence). More than that is not text in this encoding: bad_encoding.
MAX_UNDECODABLE_SHARE = 0.02


def too_damaged(text: str) -> bool:
    """Whether a text decoded with ``errors="replace"`` lost too much to be read."""
    return text.count("\ufffd") > max(1.0, MAX_UNDECODABLE_SHARE * len(text))


def decode_text(raw: bytes, charset: str = "utf-8") -> str:
    """Bytes to text; a few invalid bytes become U+FFFD, more is ``bad_encoding``."""
    try:
        return raw.decode(charset)
    except UnicodeDecodeError as exc:
        text = raw.decode(charset, errors="replace")
        if too_damaged(text):
            raise Rejected(
                "bad_encoding", f"payload is not {charset} ({exc.reason} at {exc.start})"
            ) from None
        return text


def load_json(raw: bytes) -> Any:
    """Parse JSON bytes; bad UTF-8 and bad JSON are told apart."""
    text = decode_text(raw)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise Rejected("invalid_json", str(exc)[:300]) from None


def load_object(raw: bytes) -> JsonObject:
    value = load_json(raw)
    if not isinstance(value, dict):
        raise Rejected("invalid_json", f"expected a JSON object, got {type(value).__name__}")
    return value


def dig(obj: Any, *path: str | int) -> Any:
    """``obj[p0][p1]...`` or None when any step is missing or of the wrong type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                return None
        elif not isinstance(obj, dict):
            return None
        obj = obj[step] if isinstance(step, int) else obj.get(step)
        if obj is None:
            return None
    return obj


def text_at(obj: Any, *path: str | int) -> str | None:
    """A string (or number as string) at ``path``, stripped; None when absent or empty."""
    value = dig(obj, *path)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        stripped = str(value).strip()
        return stripped or None
    raise Rejected("invalid_field", f"{'.'.join(map(str, path))} is not text")


def obj_at(obj: Any, *path: str | int) -> JsonObject:
    """The object at ``path``, or an empty one when absent or not an object."""
    value = dig(obj, *path)
    return value if isinstance(value, dict) else {}


def first_text(obj: Any, *paths: tuple[str | int, ...]) -> str | None:
    for path in paths:
        value = text_at(obj, *path)
        if value:
            return value
    return None


def require(value: Any, name: str) -> Any:
    if value is None or value == "" or value == []:
        raise Rejected("missing_field", f"{name} is required")
    return value


def as_object(value: Any, name: str) -> JsonObject:
    if not isinstance(value, dict):
        raise Rejected("missing_field" if value is None else "invalid_field", f"{name} object")
    return value


def as_list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Rejected("invalid_field", f"{name} is not a list")
    return value


def as_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Rejected("invalid_field", f"{name} is not a number")
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise Rejected("invalid_field", f"{name} is not a number: {str(value)[:40]!r}") from None


def as_float(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Rejected("invalid_field", f"{name} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise Rejected("invalid_field", f"{name} is not a number: {str(value)[:40]!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise Rejected("invalid_field", f"{name} is not a finite number")
    return number


# -- time -----------------------------------------------------------------------------

_MIN_TIME = datetime(1990, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)


def parse_time(value: Any, name: str = "time") -> datetime | None:
    """ISO 8601, RFC 2822, Unix seconds or milliseconds, or {"seconds": ..} -> aware UTC."""
    if value is None or value == "":
        return None
    result: datetime | None = None
    try:
        if isinstance(value, dict) and "seconds" in value:
            result = datetime.fromtimestamp(int(value["seconds"]), UTC)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 10**11 else value
            result = datetime.fromtimestamp(seconds, UTC)
        elif isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"\d{9,13}(\.\d+)?", text):
                return parse_time(float(text), name)
            try:
                result = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                result = parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError, OSError, IndexError):
        result = None
    if result is None:
        raise Rejected("invalid_field", f"{name} is not a time: {str(value)[:60]!r}")
    if result.tzinfo is None:
        result = result.replace(tzinfo=UTC)
    result = result.astimezone(UTC)
    if not _MIN_TIME <= result <= _MAX_TIME:
        raise Rejected("invalid_field", f"{name} out of range: {result.isoformat()}")
    return result


# -- text -----------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "table", "hr"}
    )
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML fragment or document (no markup, entities decoded)."""
    if "<" not in markup:
        return html.unescape(markup)
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # HTMLParser is lenient; this is belt and braces
        return re.sub(r"<[^>]*>", " ", markup)
    return "".join(parser.parts)


def clean_text(text: str | None) -> str:
    """Normalise whitespace, drop control characters, cap at the contract's length."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t\u200c\u200d" or ch.isprintable())
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text[:MAX_TEXT_CHARS]


def join_texts(parts: Iterable[str | None]) -> str:
    return "\n\n".join(p for p in (clean_text(x) for x in parts) if p)


# -- identity -------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"^[^@\s<>]{1,64}@[^@\s<>]{1,255}\.[^@\s<>]{2,63}$")


def normalise_email(value: str | None) -> str | None:
    if not value:
        return None
    candidate = value.strip().strip("<>").lower()
    return candidate if _EMAIL_RE.match(candidate) else None


def normalise_phone(value: str | None, region: str = "FI") -> str | None:
    """E.164 (``+358401234567``) or None when the number cannot be a phone number."""
    if not value:
        return None
    raw = str(value).strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_country(e164: str | None) -> str | None:
    """ISO 3166 alpha-2 country of an E.164 number (``+358...`` -> ``FI``), or None."""
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    country = phonenumbers.region_code_for_number(number)
    return country if country and country != "ZZ" else None


def handle(platform: str, value: str | None, *, at: bool = True) -> str | None:
    """``platform:@name`` (or ``platform:id`` for numeric ids), lower-cased."""
    if not value:
        return None
    value = value.strip().lstrip("@")
    if not value:
        return None
    prefix = "@" if at else ""
    return f"{platform}:{prefix}{value}".lower()


def author(
    *,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    handle: str | None = None,
    crm_id: str | None = None,
    customer_tier: str | None = None,
    region: str = "FI",
) -> Author:
    return Author(
        name=clean_text(name)[:200] or None,
        email=normalise_email(email),
        phone=normalise_phone(phone, region),
        handle=handle,
        crm_id=crm_id,
        customer_tier=(customer_tier or "").strip().lower() or None,
    )


# -- the contact ----------------------------------------------------------------------


def contact_id_for(source: str, external_id: str | None, raw: bytes) -> str:
    """Same source and external id, same contact id; no id: a hash of the bytes."""
    if external_id:
        return derived_id("contact", source, external_id)
    return derived_id("contact", source, "sha256:" + hashlib.sha256(raw).hexdigest())


def build_contact(
    raw: bytes, meta: IntakeMeta, *, external_id: str | None, **fields: Any
) -> Contact:
    """The canonical contact, validated; a value the contract refuses is ``invalid_field``."""
    source = fields.pop("source", meta.source_format)
    external_ids: dict[str, str] = {
        k: v for k, v in (fields.pop("external_ids", None) or {}).items() if v
    }
    if external_id:
        external_ids.setdefault(source, external_id)
    fields.setdefault("received_at", meta.event_time)
    if fields.get("received_at") is None:
        fields["received_at"] = meta.event_time
    fields["text"] = clean_text(fields.get("text"))
    if fields.get("subject"):
        fields["subject"] = clean_text(fields["subject"])[:500] or None
    for name, limit in (("product", 200), ("region", 100)):
        fields[name] = clean_text(fields.get(name))[:limit] or None
    if fields["region"] is None and isinstance(fields.get("author"), Author):
        fields["region"] = phone_country(fields["author"].phone)
    try:
        return Contact(
            contact_id=contact_id_for(source, external_id, raw),
            source=source,
            external_ids=external_ids,
            intake_event_id=meta.event_id,
            **fields,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Rejected("invalid_field", f"{where}: {first['msg']}"[:300]) from None


def rating_is_praise(rating: float | None, scale_max: float = 5) -> bool:
    """Four or five stars out of five is praise; three and below is a complaint."""
    return rating is not None and rating / scale_max >= 0.8 - 1e-9
