"""Chat and chatbot transcripts (multi-turn; the customer's turns are the complaint).

Two shapes are read:

* Intercom's ``conversation.user.created`` / ``conversation.user.replied`` webhook
  notification (``data.item`` is the conversation: ``source`` is the opening message,
  ``conversation_parts`` the later turns; authors are ``user``/``lead``/``contact``,
  ``admin`` or ``bot``);
* a generic transcript as live-chat and chatbot platforms export it: ``conversation_id``,
  ``customer {name, email, phone, id}``, ``messages [{role|sender, text, sent_at}]``.
"""

from __future__ import annotations

from typing import Any

from shared.events.common import Channel
from shared.events.complaint import Contact, Thread
from shared.service import Rejected

from .base import (
    IntakeMeta,
    JsonObject,
    as_list,
    author,
    build_contact,
    first_text,
    handle,
    html_to_text,
    join_texts,
    load_object,
    obj_at,
    parse_time,
    require,
    text_at,
)

_CUSTOMER = {"user", "lead", "contact", "customer", "visitor", "client", "end_user"}


def adapt(raw: bytes, meta: IntakeMeta) -> Contact | None:
    body = load_object(raw)
    if body.get("type") == "notification_event":
        return _intercom(raw, meta, body)
    conversation_id = require(
        first_text(body, ("conversation_id",), ("chat_id",), ("id",)), "conversation_id"
    )
    customer = obj_at(body, "customer")
    texts: list[str] = []
    first_at: Any = None
    for message in as_list(require(body.get("messages"), "messages"), "messages"):
        if not isinstance(message, dict):
            raise Rejected("invalid_field", "message is not an object")
        role = (first_text(message, ("role",), ("sender",), ("author",)) or "").lower()
        if role in _CUSTOMER:
            texts.append(first_text(message, ("text",), ("body",)) or "")
            first_at = first_at or message.get("sent_at") or message.get("timestamp")
    text = join_texts(texts)
    require(text, "customer's messages")
    bot = bool(body.get("bot")) or text_at(body, "kind") == "chatbot"
    return build_contact(
        raw,
        meta,
        external_id=conversation_id,
        source="chat",
        channel=Channel.CHAT,
        platform=text_at(body, "platform") or ("chatbot" if bot else "livechat"),
        text=text,
        author=author(
            name=text_at(customer, "name"),
            email=text_at(customer, "email"),
            phone=text_at(customer, "phone"),
            crm_id=text_at(customer, "crm_id"),
            region=meta.default_phone_region,
        ),
        received_at=parse_time(body.get("started_at") or first_at, "started_at"),
        thread=Thread(conversation_id=conversation_id),
    )


def _intercom(raw: bytes, meta: IntakeMeta, body: JsonObject) -> Contact | None:
    item = body.get("data", {}).get("item") if isinstance(body.get("data"), dict) else None
    if not isinstance(item, dict) or item.get("type") != "conversation":
        raise Rejected("missing_field", "data.item conversation")
    conversation_id = require(text_at(item, "id"), "data.item.id")
    source = obj_at(item, "source")
    turns: list[tuple[JsonObject, str | None]] = []
    if source:
        turns.append((source.get("author") or {}, text_at(source, "body")))
    parts = item.get("conversation_parts")
    for part in as_list(
        parts.get("conversation_parts") if isinstance(parts, dict) else None, "parts"
    ):
        if isinstance(part, dict) and part.get("part_type") in ("comment", None):
            turns.append((part.get("author") or {}, text_at(part, "body")))
    texts = [
        html_to_text(text)
        for who, text in turns
        if isinstance(who, dict) and who.get("type") in _CUSTOMER and text
    ]
    text = join_texts(texts)
    if not text:
        return None  # only agents or the bot spoke: nothing from the customer
    who = next(w for w, t in turns if isinstance(w, dict) and w.get("type") in _CUSTOMER)
    user_id = text_at(who, "id")
    return build_contact(
        raw,
        meta,
        external_id=f"{conversation_id}:{len(turns)}",
        source="chat",
        channel=Channel.CHAT,
        platform="intercom",
        subject=text_at(source, "subject"),
        text=text,
        author=author(
            name=text_at(who, "name"),
            email=text_at(who, "email"),
            handle=handle("intercom", user_id, at=False),
            region=meta.default_phone_region,
        ),
        received_at=parse_time(item.get("created_at") or body.get("created_at"), "created_at"),
        thread=Thread(conversation_id=f"intercom:{conversation_id}"),
        url=text_at(source, "url"),
    )
