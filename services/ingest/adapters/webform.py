"""Web tickets and contact forms: what a site's form posts.

``application/x-www-form-urlencoded`` (a plain HTML form) or JSON (form builders' webhooks:
``{"form_id", "submission_id", "submitted_at", "fields": {...}}`` or the fields at the top
level). Field names vary between sites; the usual spellings are recognised, in any case:
also a product field and a region, country or US state field (a CFPB-style complaint form
posts ``Product`` and ``State``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from shared.events.common import Channel
from shared.events.complaint import Contact
from shared.service import Rejected

from .base import (
    IntakeMeta,
    JsonObject,
    author,
    build_contact,
    decode_text,
    first_text,
    load_object,
    parse_time,
    require,
    text_at,
)

_MESSAGE = ("message", "description", "comments", "complaint", "body", "your-message", "text")
_SUBJECT = ("subject", "topic", "title", "your-subject")
_NAME = ("name", "full_name", "your-name")
_EMAIL = ("email", "e-mail", "your-email", "email_address")
_PHONE = ("phone", "telephone", "tel", "phone_number", "mobile")
_PRODUCT = ("product", "product_name", "your-product")
_REGION = ("region", "country", "state", "your-country")


def _fields(raw: bytes, meta: IntakeMeta) -> JsonObject:
    content_type = (meta.content_type or "").lower()
    urlencoded = "x-www-form-urlencoded" in content_type or (
        not content_type and not raw.lstrip().startswith((b"{", b"["))
    )
    if urlencoded:
        text = decode_text(raw)
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
        except (ValueError, UnicodeDecodeError) as exc:
            raise Rejected("invalid_field", f"form body: {exc}"[:300]) from None
        return {k.lower(): v for k, v in pairs}
    body = load_object(raw)
    fields = body.get("fields")
    merged = {str(k).lower(): v for k, v in body.items()}
    if isinstance(fields, dict):
        merged.update({str(k).lower(): v for k, v in fields.items()})
    elif isinstance(fields, list):  # [{"name"/"key"/"label", "value"}]
        for item in fields:
            if isinstance(item, dict):
                key = first_text(item, ("name",), ("key",), ("label",))
                if key:
                    merged[key.lower()] = item.get("value")
    return merged


def _pick(fields: JsonObject, names: tuple[str, ...]) -> str | None:
    return first_text(fields, *((n,) for n in names))


def adapt(raw: bytes, meta: IntakeMeta) -> Contact | None:
    fields = _fields(raw, meta)
    text = require(_pick(fields, _MESSAGE), "message")
    email = _pick(fields, _EMAIL)
    phone = _pick(fields, _PHONE)
    external_id = first_text(fields, ("submission_id",), ("ticket_id",), ("id",))
    order = first_text(fields, ("order_number",), ("order",), ("order_id",))
    return build_contact(
        raw,
        meta,
        external_id=external_id,
        source="webform",
        channel=Channel.WEB,
        platform=text_at(fields, "form_id") or "webform",
        subject=_pick(fields, _SUBJECT),
        text=text,
        author=author(
            name=_pick(fields, _NAME),
            email=email,
            phone=phone,
            crm_id=text_at(fields, "customer_id"),
            region=meta.default_phone_region,
        ),
        received_at=parse_time(
            first_text(fields, ("submitted_at",), ("created_at",), ("timestamp",)),
            "submitted_at",
        ),
        external_ids={"order": order} if order else {},
        url=text_at(fields, "page_url"),
        product=_pick(fields, _PRODUCT),
        region=_pick(fields, _REGION),
    )
