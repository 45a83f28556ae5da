"""classify's decision: score a received contact in its case's context, store, announce.

Idempotent: each contact leaves one ``classification_history`` entry (guarded by its
contact id); a redelivered event finds its entry and republishes the same event (same
event id) rebuilt from it. A new contact on the case re-scores the case: flags said
earlier stay raised, the repeat contact adds urgency, and SLA deadlines only tighten.
Product and region (for route's spike detection) come from the contact, else from what
an earlier contact of the case said (the case's ``product`` / ``region``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from shared.events import catalogue
from shared.events.envelope import derived_id, utcnow
from shared.events.pipeline import Classification, ComplaintClassified, ComplaintReceived, SlaClock
from shared.service import Incoming, Outgoing, Rejected
from shared.store import Store

from . import metrics
from .scoring import Context, Verdict, score
from .sla import Policy
from .text.cascade import CascadeWorker, refined_text_signals
from .text.model import TextModel

STAGE = "classified"


def count_broken_promises(case: Mapping[str, Any], now: datetime) -> int:
    """Promises on the case (followup writes ``state``: open, kept, broken, kept_late;
    ``due_at``) that were broken, kept late, or are open past their due time."""
    broken = 0
    for promise in case.get("promises") or []:
        if not isinstance(promise, Mapping):
            continue
        if promise.get("broken") is True or promise.get("state") in ("broken", "kept_late"):
            broken += 1
            continue
        due = promise.get("due_at") or promise.get("due")
        kept = promise.get("kept_at") or promise.get("state") == "kept"
        if isinstance(due, datetime) and not kept and due < now:
            broken += 1
    return broken


def context_for(event: ComplaintReceived, case: Mapping[str, Any]) -> Context:
    contact = event.contact
    history = case.get("classification_history") or []
    earlier: Mapping[str, Any] = history[-1].get("signals", {}) if history else {}
    waited = (contact.received_at - event.case_opened_at).total_seconds() / 3600
    return Context(
        channel=contact.channel,
        public=contact.public,
        reach=contact.reach,
        rating=contact.rating,
        survey=contact.survey,
        repeat_contacts=event.repeat_contacts,
        waited_hours=max(0.0, waited),
        broken_promises=count_broken_promises(case, contact.received_at),
        customer_tier=event.customer_tier
        or contact.author.customer_tier
        or case.get("customer_tier"),
        praise=contact.kind == "praise",
        earlier_flags={k: bool(v) for k, v in earlier.items() if isinstance(v, bool)},
        earlier_upset=float(earlier.get("upset", 0.0)),
        earlier_anger=float(earlier.get("anger", 0.0)),
    )


def product_and_region(
    event: ComplaintReceived, case: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """The contact's product and region, else the case's latest known ones."""
    contact = event.contact

    def known(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    return (
        contact.product or known(case.get("product")),
        contact.region or known(case.get("region")),
    )


def _tightest(existing: Mapping[str, Any] | None, new: SlaClock) -> SlaClock:
    # A re-score may lower the priority; a deadline already promised is never loosened.
    if not existing:
        return new
    try:
        old = SlaClock.model_validate(existing)
    except ValueError:
        return new
    return SlaClock(
        policy=new.policy,
        calendar=new.calendar,
        first_response_due=min(old.first_response_due, new.first_response_due),
        resolution_due=min(old.resolution_due, new.resolution_due),
    )


def _outgoing(incoming: Incoming, event: ComplaintClassified) -> list[Outgoing]:
    return [
        Outgoing(
            spec=catalogue.CLASSIFIED,
            payload=event,
            key=event.case_id,
            event_id=derived_id(incoming.event.id, STAGE),
            subject=event.case_id,
        )
    ]


def _rebuild(
    incoming: Incoming, received: ComplaintReceived, entry: Mapping[str, Any]
) -> list[Outgoing]:
    contact = received.contact
    event = ComplaintClassified(
        case_id=received.case_id,
        customer_id=received.customer_id,
        contact_id=contact.contact_id,
        channel=contact.channel,
        language=entry.get("language", contact.language),
        public=contact.public,
        case_is_new=received.case_is_new,
        classification=Classification.model_validate(entry["classification"]),
        sla=SlaClock.model_validate(entry["sla"]),
        classified_at=entry["classified_at"],
        product=entry.get("product"),
        region=entry.get("region"),
    )
    return _outgoing(incoming, event)


def _history_entry(store_doc: Mapping[str, Any] | None, contact_id: str) -> Any:
    for entry in (store_doc or {}).get("classification_history") or []:
        if entry.get("contact_id") == contact_id:
            return entry
    return None


async def handle_received(
    store: Store,
    incoming: Incoming,
    *,
    policy: Policy,
    model: TextModel,
    cascade: CascadeWorker | None = None,
) -> list[Outgoing]:
    received = incoming.payload
    if not isinstance(received, ComplaintReceived):
        raise Rejected("invalid_payload", "expected ComplaintReceived")
    contact = received.contact
    cases = store["cases"]
    case = await cases.find_one({"_id": received.case_id}) or {}
    done = _history_entry(case, contact.contact_id)
    if done is not None:
        return _rebuild(incoming, received, done)

    language = contact.language or "und"
    text = "\n".join(part for part in (contact.subject, contact.text) if part)
    # The cascade (None: fast path only) refines "upset" where the fast model is unsure.
    signals = (await refined_text_signals(model, cascade, [text], [language]))[0]
    signals = replace(signals, upset_words=tuple(model.top_terms(text, language, "upset")))
    verdict: Verdict = score(signals, context_for(received, case))
    deadlines = policy.deadlines(
        verdict.urgency.priority, contact.channel, language, received.case_opened_at
    )
    sla = _tightest(
        case.get("sla"),
        SlaClock(
            policy=deadlines.policy,
            calendar=deadlines.calendar,
            first_response_due=deadlines.first_response_due,
            resolution_due=deadlines.resolution_due,
        ),
    )
    classification = Classification(
        urgency=verdict.urgency,
        category=verdict.category,
        category_confidence=verdict.category_confidence,
        profile=verdict.profile,
        flags=verdict.flags,
        hints=verdict.hints,
        model_version=model.version,
    )
    classified_at = utcnow()
    stored_classification = classification.model_dump(mode="json")
    stored_sla = sla.model_dump()
    product, region = product_and_region(received, case)
    entry = {
        "contact_id": contact.contact_id,
        "event_id": incoming.event.id,
        "language": language,
        "classified_at": classified_at,
        "classification": stored_classification,
        "sla": stored_sla,
        "signals": verdict.signals,
        "product": product,
        "region": region,
    }
    known = {name: value for name, value in (("product", product), ("region", region)) if value}
    update = {
        "$set": {
            **known,
            "classification": stored_classification,
            "urgency_score": verdict.urgency.score,
            "priority": verdict.urgency.priority.value,
            "category": verdict.category.value,
            "profile": verdict.profile.value,
            "flags": verdict.flags.model_dump(),
            "sla": stored_sla,
            "stages.classified_at": classified_at,
        },
        "$push": {"classification_history": entry},
    }
    try:
        await cases.update_one(
            {
                "_id": received.case_id,
                "classification_history.contact_id": {"$ne": contact.contact_id},
            },
            update,
            upsert=True,
        )
    except DuplicateKeyError:
        # Another delivery stored this contact first: publish what it stored.
        case = await cases.find_one({"_id": received.case_id}) or {}
        done = _history_entry(case, contact.contact_id)
        if done is None:
            raise
        return _rebuild(incoming, received, done)

    metrics.complaints_classified.labels(
        contact.channel.value,
        metrics.language_label(language),
        verdict.category.value,
        verdict.urgency.priority.value,
    ).inc()
    metrics.urgency_score.observe(verdict.urgency.score)
    for flag, raised in verdict.flags.model_dump().items():
        if raised:
            metrics.threat_flags.labels(flag).inc()
    event = ComplaintClassified(
        case_id=received.case_id,
        customer_id=received.customer_id,
        contact_id=contact.contact_id,
        channel=contact.channel,
        language=language,
        public=contact.public,
        case_is_new=received.case_is_new,
        classification=classification,
        sla=sla,
        classified_at=classified_at,
        product=product,
        region=region,
    )
    return _outgoing(incoming, event)
