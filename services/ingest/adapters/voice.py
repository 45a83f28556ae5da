"""Phone: call-centre records with the caller's number and a transcript.

Two shapes are read:

* Amazon Connect: the contact record (``ContactId``, ``CustomerEndpoint.Address``,
  ``InitiationTimestamp``) with the Contact Lens analysis' ``Transcript`` turns and
  ``Participants`` (as a connector joins them);
* a generic call record from a telephony platform or CCaaS export: ``call_id``, ``from``
  (the caller's number, any format: normalised to E.164), ``started_at`` and a
  ``transcript`` that is a string or a list of ``{speaker, text}`` turns.
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
    join_texts,
    load_object,
    normalise_phone,
    obj_at,
    parse_time,
    require,
    text_at,
)

_CUSTOMER_ROLES = {"customer", "caller", "client", "user", "end_user", "asiakas"}


def _customer_turns(turns: list[Any], customer_ids: set[str]) -> list[str]:
    texts: list[str] = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise Rejected("invalid_field", "transcript turn is not an object")
        speaker = (
            first_text(turn, ("ParticipantId",), ("ParticipantRole",), ("speaker",), ("role",))
            or ""
        )
        if speaker.lower() in _CUSTOMER_ROLES or speaker in customer_ids:
            texts.append(first_text(turn, ("Content",), ("text",), ("content",)) or "")
    return texts


def adapt(raw: bytes, meta: IntakeMeta) -> Contact | None:
    record = load_object(raw)
    if "ContactId" in record or "CustomerEndpoint" in record:
        return _amazon_connect(raw, meta, record)
    call_id = require(first_text(record, ("call_id",), ("id",), ("call_sid",)), "call_id")
    caller = require(first_text(record, ("from",), ("caller",), ("caller_number",)), "from")
    phone = normalise_phone(caller, meta.default_phone_region)
    if phone is None:
        raise Rejected("invalid_field", f"caller number {caller[:30]!r} is not a phone number")
    transcript = record.get("transcript")
    if isinstance(transcript, str):
        text = transcript
    else:
        text = join_texts(_customer_turns(as_list(transcript, "transcript"), set()))
    require(text, "transcript (customer's words)")
    customer = obj_at(record, "customer")
    return build_contact(
        raw,
        meta,
        external_id=call_id,
        source="phone",
        channel=Channel.PHONE,
        platform=text_at(record, "platform") or "phone",
        text=text,
        subject=text_at(record, "reason"),
        author=author(
            name=text_at(customer, "name"),
            email=text_at(customer, "email"),
            phone=phone,
            crm_id=text_at(customer, "crm_id"),
            region=meta.default_phone_region,
        ),
        received_at=parse_time(first_text(record, ("started_at",), ("start_time",)), "started_at"),
        thread=Thread(conversation_id=text_at(record, "queue_call_id")),
    )


def _amazon_connect(raw: bytes, meta: IntakeMeta, record: JsonObject) -> Contact | None:
    contact_id = require(text_at(record, "ContactId"), "ContactId")
    caller = require(text_at(record, "CustomerEndpoint", "Address"), "CustomerEndpoint.Address")
    phone = normalise_phone(caller, meta.default_phone_region)
    if phone is None:
        raise Rejected("invalid_field", f"caller number {caller[:30]!r} is not a phone number")
    customer_ids = {
        str(p.get("ParticipantId"))
        for p in as_list(record.get("Participants"), "Participants")
        if isinstance(p, dict) and str(p.get("ParticipantRole", "")).upper() == "CUSTOMER"
    }
    text = join_texts(
        _customer_turns(as_list(record.get("Transcript"), "Transcript"), customer_ids)
    )
    require(text, "Transcript (customer's turns)")
    attributes = obj_at(record, "Attributes")
    return build_contact(
        raw,
        meta,
        external_id=contact_id,
        source="phone",
        channel=Channel.PHONE,
        platform="amazon_connect",
        text=text,
        author=author(
            name=text_at(attributes, "customerName"),
            email=text_at(attributes, "customerEmail"),
            phone=phone,
            crm_id=text_at(attributes, "crmId"),
            region=meta.default_phone_region,
        ),
        received_at=parse_time(text_at(record, "InitiationTimestamp"), "InitiationTimestamp"),
        thread=Thread(conversation_id=text_at(record, "InitialContactId")),
    )
