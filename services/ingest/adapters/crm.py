"""CRM systems: Salesforce, Zendesk, HubSpot, and any CloudEvents 1.0 producer.

* Salesforce: Change Data Capture ``CaseChangeEvent`` (``payload.ChangeEventHeader`` with
  ``entityName: Case``, ``changeType: CREATE``, ``recordIds``) or a Platform Event
  (``Complaint__e`` with ``Case_Id__c``, ``Subject__c``, ``Description__c``...), either as
  the Pub/Sub or CometD delivery (``{"data": {"payload", "event"}, "channel"}``) or bare;
* Zendesk: event webhooks ``zen:event-type:ticket.created`` and
  ``zen:event-type:ticket.comment_added`` (``detail`` is the ticket; ``event.comment``);
  the requester's email travels in ``detail.requester`` when a trigger adds it;
* HubSpot: webhooks v3 ticket events (``subscriptionType: ticket.creation`` /
  ``ticket.propertyChange``, ``objectId``, ``propertyName``/``propertyValue``), grouped per
  ticket by the HTTP intake, or the ticket object a workflow webhook sends
  (``{"objectId"|"id", "properties": {...}}``);
* CloudEvents 1.0 in structured mode (``specversion``, ``id``, ``source``, ``type``,
  ``data``), with the complaint's fields in ``data``.

Product and region, where the record carries them: Salesforce's ``Product__c`` (the
standard Case layout's product picklist) and a ``Region__c`` / ``Country__c`` field;
HubSpot's ``product`` and ``region`` / ``country`` ticket properties; ``data.product`` and
``data.region`` / ``data.country`` of a CloudEvent. Zendesk's ticket events carry no custom
fields. Without a region, the contact falls back to the country of the author's phone.
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
    as_object,
    author,
    build_contact,
    dig,
    first_text,
    html_to_text,
    load_json,
    load_object,
    obj_at,
    parse_time,
    require,
    text_at,
)

# The channel the customer used, from each CRM's own vocabulary.
_CHANNELS = {
    "email": Channel.EMAIL,
    "mail": Channel.EMAIL,
    "phone": Channel.PHONE,
    "voice": Channel.PHONE,
    "web": Channel.WEB,
    "web_form": Channel.WEB,
    "webform": Channel.WEB,
    "form": Channel.WEB,
    "chat": Channel.CHAT,
    "messaging": Channel.CHAT,
    "native_messaging": Channel.CHAT,
    "whatsapp": Channel.CHAT,
    "twitter": Channel.SOCIAL,
    "facebook": Channel.SOCIAL,
    "instagram": Channel.SOCIAL,
    "social": Channel.SOCIAL,
}


def _channel(value: Any) -> Channel:
    name = value.strip().lower().replace(" ", "_") if isinstance(value, str) else ""
    return _CHANNELS.get(name, Channel.CRM)


# -- Salesforce -----------------------------------------------------------------------


def salesforce(raw: bytes, meta: IntakeMeta) -> Contact | None:
    body = load_object(raw)
    envelope = obj_at(body, "data") or body
    payload = as_object(envelope.get("payload"), "payload")
    event = obj_at(envelope, "event")
    header = payload.get("ChangeEventHeader")
    if header is not None:
        header = as_object(header, "ChangeEventHeader")
        if header.get("entityName") != "Case":
            raise Rejected("invalid_field", f"entityName is {header.get('entityName')!r}")
        if header.get("changeType") not in ("CREATE", "GAP_CREATE"):
            return None  # updates to a case are the CRM's activity, not a new complaint
        record_ids = as_list(header.get("recordIds"), "recordIds")
        case_id = require(record_ids and str(record_ids[0]), "ChangeEventHeader.recordIds")
        created = header.get("commitTimestamp") or payload.get("CreatedDate")
    else:  # a Platform Event: custom fields end in __c
        case_id = require(
            first_text(payload, ("Case_Id__c",), ("CaseId__c",)) or text_at(event, "EventUuid"),
            "Case_Id__c",
        )
        created = payload.get("CreatedDate")

    def get(name: str) -> Any:  # standard fields, or custom ones (``__c``)
        value = payload.get(name)
        return payload.get(f"{name}__c") if value is None else value

    text = require(
        html_to_text(str(get("Description") or get("Comments") or "")).strip(), "Description"
    )
    contact_ref = get("ContactId")

    def string(name: str) -> str | None:
        value = get(name)
        return value if isinstance(value, str) else None

    return build_contact(
        raw,
        meta,
        external_id=case_id,
        source="salesforce",
        channel=_channel(get("Origin")),
        platform="salesforce",
        subject=get("Subject") if isinstance(get("Subject"), str) else None,
        text=text,
        author=author(
            name=get("SuppliedName") if isinstance(get("SuppliedName"), str) else None,
            email=get("SuppliedEmail") if isinstance(get("SuppliedEmail"), str) else None,
            phone=get("SuppliedPhone") if isinstance(get("SuppliedPhone"), str) else None,
            crm_id=f"salesforce:{contact_ref}" if isinstance(contact_ref, str) else None,
            customer_tier=get("Customer_Tier") if isinstance(get("Customer_Tier"), str) else None,
            region=meta.default_phone_region,
        ),
        received_at=parse_time(created, "CreatedDate"),
        external_ids={"salesforce_case_number": str(get("CaseNumber") or "")},
        product=string("Product"),
        region=string("Region") or string("Country"),
    )


# -- Zendesk --------------------------------------------------------------------------


def zendesk(raw: bytes, meta: IntakeMeta) -> Contact | None:
    body = load_object(raw)
    event_type = require(text_at(body, "type"), "type")
    detail = as_object(body.get("detail"), "detail")
    ticket_id = require(text_at(detail, "id"), "detail.id")
    requester = obj_at(detail, "requester")
    requester_id = first_text(detail, ("requester_id",), ("requester", "id"))
    common: dict[str, Any] = {
        "source": "zendesk",
        "platform": "zendesk",
        "channel": _channel(text_at(detail, "via", "channel")),
        "subject": text_at(detail, "subject"),
        "public": False,
        "thread": Thread(conversation_id=f"zendesk:{ticket_id}"),
        "external_ids": {"zendesk_ticket": ticket_id},
    }
    who = author(
        name=text_at(requester, "name"),
        email=text_at(requester, "email"),
        phone=text_at(requester, "phone"),
        crm_id=f"zendesk:{requester_id}" if requester_id else None,
        customer_tier=text_at(requester, "tier"),
        region=meta.default_phone_region,
    )
    if event_type == "zen:event-type:ticket.created":
        return build_contact(
            raw,
            meta,
            external_id=ticket_id,
            text=require(text_at(detail, "description"), "detail.description"),
            author=who,
            received_at=parse_time(detail.get("created_at") or body.get("time"), "created_at"),
            **common,
        )
    if event_type == "zen:event-type:ticket.comment_added":
        comment = as_object(dig(body, "event", "comment"), "event.comment")
        comment_author = obj_at(comment, "author")
        if comment_author.get("is_staff") or (
            requester_id and text_at(comment_author, "id") not in (None, requester_id)
        ):
            return None  # an agent's reply or a third party
        comment_id = require(text_at(comment, "id"), "event.comment.id")
        return build_contact(
            raw,
            meta,
            external_id=f"{ticket_id}:{comment_id}",
            text=require(text_at(comment, "body"), "event.comment.body"),
            author=who,
            received_at=parse_time(body.get("time"), "time"),
            **common,
        )
    if event_type.startswith("zen:event-type:ticket."):
        return None  # status, priority, assignee... changes
    raise Rejected("invalid_field", f"type {event_type[:60]!r} is not a ticket event")


# -- HubSpot --------------------------------------------------------------------------

_HUBSPOT_SOURCES = {"EMAIL": "email", "CHAT": "chat", "FORM": "web", "PHONE": "phone"}


def _hubspot_props(body: Any) -> tuple[str, JsonObject, Any]:
    """(ticket id, properties, created) from a v3 event batch or a ticket object."""
    if isinstance(body, list):
        events = [e for e in body if isinstance(e, dict)]
        if not events:
            raise Rejected("missing_field", "no webhook events")
        ticket_ids = {str(e.get("objectId")) for e in events}
        if len(ticket_ids) != 1:
            raise Rejected("invalid_field", "events for several tickets in one record")
        props: JsonObject = {}
        created: Any = None
        for event in events:
            kind = str(event.get("subscriptionType", ""))
            if not kind.startswith("ticket."):
                raise Rejected("invalid_field", f"subscriptionType {kind[:40]!r}")
            if kind == "ticket.propertyChange" and event.get("propertyName"):
                props[str(event["propertyName"])] = event.get("propertyValue")
            created = created or event.get("occurredAt")
        return ticket_ids.pop(), props, created
    obj = as_object(body, "ticket")
    ticket_id = require(first_text(obj, ("objectId",), ("id",)), "objectId")
    raw_props = as_object(obj.get("properties"), "properties")
    props = {
        k: (v.get("value") if isinstance(v, dict) else v)  # workflow v1 {"value": ...}
        for k, v in raw_props.items()
    }
    return ticket_id, props, obj.get("createdAt") or props.get("createdate")


def hubspot(raw: bytes, meta: IntakeMeta) -> Contact | None:
    ticket_id, props, created = _hubspot_props(load_json(raw))
    text = text_at(props, "content")
    if not text:
        if any(k in props for k in ("subject", "content")):
            raise Rejected("missing_field", "properties.content")
        return None  # a creation or stage change without the ticket's text
    source_type = (text_at(props, "source_type") or "").upper()
    contact_ref = text_at(props, "hs_contact_id") or text_at(props, "associatedcontactid")
    return build_contact(
        raw,
        meta,
        external_id=ticket_id,
        source="hubspot",
        channel=_channel(_HUBSPOT_SOURCES.get(source_type)),
        platform="hubspot",
        subject=text_at(props, "subject"),
        text=html_to_text(text),
        author=author(
            name=text_at(props, "hs_contact_name"),
            email=first_text(props, ("hs_contact_email",), ("email",)),
            phone=text_at(props, "phone"),
            crm_id=f"hubspot:{contact_ref}" if contact_ref else None,
            customer_tier=text_at(props, "customer_tier"),
            region=meta.default_phone_region,
        ),
        received_at=parse_time(created, "createdate"),
        thread=Thread(conversation_id=text_at(props, "hs_conversations_originating_thread_id")),
        product=text_at(props, "product"),
        region=first_text(props, ("region",), ("country",)),
    )


# -- CloudEvents 1.0 ------------------------------------------------------------------


def cloudevents(raw: bytes, meta: IntakeMeta) -> Contact | None:
    event = load_object(raw)
    if event.get("specversion") != "1.0":
        raise Rejected("invalid_field", f"specversion {event.get('specversion')!r} is not 1.0")
    for name in ("id", "source", "type"):
        require(text_at(event, name), name)
    data = event.get("data")
    if data is None and isinstance(event.get("data_base64"), str):
        raise Rejected("invalid_field", "data_base64 is not supported; send JSON data")
    data = as_object(data, "data")
    customer = obj_at(data, "customer")
    text = first_text(data, ("text",), ("message",), ("description",), ("body",), ("comment",))
    source = str(event["source"])
    external = text_at(data, "id") or str(event["id"])
    return build_contact(
        raw,
        meta,
        external_id=f"{source}#{external}",
        source="cloudevents",
        channel=_channel(text_at(data, "channel")),
        platform=text_at(data, "platform") or source.rsplit("/", 1)[-1][:40] or None,
        subject=first_text(data, ("subject",), ("title",)) or text_at(event, "subject"),
        text=require(text, "data.text"),
        public=data.get("public") is True,
        author=author(
            name=text_at(customer, "name"),
            email=text_at(customer, "email"),
            phone=text_at(customer, "phone"),
            handle=(text_at(customer, "handle") or "").lower() or None,
            crm_id=text_at(customer, "crm_id"),
            customer_tier=text_at(customer, "tier"),
            region=meta.default_phone_region,
        ),
        received_at=parse_time(event.get("time"), "time"),
        url=text_at(data, "url"),
        thread=Thread(conversation_id=text_at(data, "conversation_id")),
        product=text_at(data, "product"),
        region=first_text(data, ("region",), ("country",)),
    )
