"""The registry: ``ce_sourceformat`` name -> adapter, and how webhook batches split.

A webhook delivery can carry several items (a HubSpot batch, a Graph API ``entry`` list,
a Trustpilot ``events`` list, a YouTube list response); the HTTP intake splits it into
one intake record per item with ``split_batch`` so each record is one contact.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from shared.service import Rejected

from . import chat, crm, email, reviews, social, survey, voice, webform
from .base import Adapter, IntakeMeta

ADAPTERS: dict[str, Adapter] = {
    "email": email.adapt,
    "phone": voice.adapt,
    "chat": chat.adapt,
    "chatbot": chat.adapt,
    "webform": webform.adapt,
    "twitter": social.twitter,
    "facebook": social.facebook,
    "instagram": social.instagram,
    "youtube": social.youtube,
    "google_business": reviews.google_business,
    "yelp": reviews.yelp,
    "trustpilot": reviews.trustpilot,
    "glassdoor": reviews.glassdoor,
    "angi": reviews.angi,
    "consumeraffairs": reviews.consumeraffairs,
    "app_store": reviews.app_store,
    "google_play": reviews.google_play,
    "survey": survey.adapt,
    "salesforce": crm.salesforce,
    "zendesk": crm.zendesk,
    "hubspot": crm.hubspot,
    "cloudevents": crm.cloudevents,
}

__all__ = ["ADAPTERS", "Adapter", "IntakeMeta", "Rejected", "adapter_for", "split_batch"]


def adapter_for(source_format: str | None) -> Adapter:
    adapter = ADAPTERS.get((source_format or "").strip().lower())
    if adapter is None:
        raise Rejected("unknown_source", f"no adapter for sourceformat {source_format!r}")
    return adapter


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def split_batch(source_format: str, body: bytes) -> list[bytes]:
    """One record per item of a batched webhook body; the body itself when not a batch.

    Anything that does not parse is returned whole: the adapter dead-letters it with
    the precise reason.
    """
    if source_format in ("email", "webform"):
        return [body]
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [body]
    if source_format == "hubspot" and isinstance(value, list):
        by_ticket: dict[str, list[Any]] = defaultdict(list)
        for event in value:
            key = str(event.get("objectId")) if isinstance(event, dict) else "?"
            by_ticket[key].append(event)
        return [_dumps(events) for events in by_ticket.values()] or [body]
    if not isinstance(value, dict):
        return [body]
    if source_format in ("facebook", "instagram") and isinstance(value.get("entry"), list):
        parts = []
        for entry in value["entry"]:
            if not isinstance(entry, dict):
                return [body]
            for key in ("changes", "messaging"):
                if isinstance(entry.get(key), list):
                    for item in entry[key]:
                        parts.append(_dumps({**value, "entry": [{**entry, key: [item]}]}))
        return parts or [body]
    list_keys = {"trustpilot": "events", "yelp": "reviews", "twitter": "tweet_create_events"}
    list_key = list_keys.get(source_format)
    if list_key and isinstance(value.get(list_key), list) and len(value[list_key]) > 1:
        return [_dumps({**value, list_key: [item]}) for item in value[list_key]]
    if source_format == "youtube" and isinstance(value.get("items"), list):
        return [_dumps(item) for item in value["items"]] or [body]
    if source_format == "app_store" and isinstance(value.get("data"), list):
        return [_dumps({**value, "data": item}) for item in value["data"]] or [body]
    return [body]
