"""classify's decision: score each received contact in its case's context, store, announce.

Per Kafka poll: one ``$in`` read of the cases named, text signals for every new contact
in one call (the cascade refines the unsure ones as one batch), decisions in memory, one
unordered ``bulk_write``, one ComplaintClassified per contact. A new contact on a case
re-scores the case: flags said earlier stay raised, the repeat contact adds urgency, and
SLA deadlines only tighten; contacts of one case in one poll are decided in order, each
seeing the ones before it. Product and region (for route's spike detection) come from the
contact, else from what an earlier contact of the case said.

Exactly-once effects: each contact leaves one ``classification_history`` entry, appended
only while the case's ``classified_count`` is the one read (see ``_guarded_update``). A
redelivered contact finds its entry and is announced again from it with the same event
id (``derived_id``), so downstream sees one event however often Kafka delivers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from shared.batch import Handled, Incoming, Outgoing, Rejected, group_by
from shared.events import catalogue
from shared.events.envelope import derived_id
from shared.events.pipeline import Classification, ComplaintClassified, ComplaintReceived, SlaClock
from shared.store import Store, stored_now
from shared.writes import guarded_bulk_write, in_conflict_rounds

from . import metrics
from .scoring import Context, TextSignals, Verdict, score
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


def _classified(incoming: Incoming, event: ComplaintClassified) -> Outgoing:
    return Outgoing(
        spec=catalogue.CLASSIFIED,
        payload=event,
        key=event.case_id,
        event_id=derived_id(incoming.event.id, STAGE),
        subject=event.case_id,
    )


def _event(received: ComplaintReceived, entry: Mapping[str, Any]) -> ComplaintClassified:
    """The announcement of a stored history entry: the same whether just decided or
    rebuilt for a redelivered contact (so its event id and content never differ)."""
    contact = received.contact
    return ComplaintClassified(
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


def _history_entry(case: Mapping[str, Any], contact_id: str) -> Any:
    for entry in case.get("classification_history") or []:
        if entry.get("contact_id") == contact_id:
            return entry
    return None


def contact_text(received: ComplaintReceived) -> str:
    contact = received.contact
    return "\n".join(part for part in (contact.subject, contact.text) if part)


def decide(
    received: ComplaintReceived,
    incoming: Incoming,
    case: Mapping[str, Any],
    signals: TextSignals,
    *,
    policy: Policy,
    model_version: str,
    now: datetime,
) -> tuple[dict[str, Any], Verdict]:
    """The history entry for a new contact of ``case``: score, flags, hints, SLA."""
    contact = received.contact
    language = contact.language or "und"
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
        model_version=model_version,
    )
    product, region = product_and_region(received, case)
    entry = {
        "contact_id": contact.contact_id,
        "event_id": incoming.event.id,
        "language": language,
        "classified_at": now,
        "classification": classification.model_dump(mode="json"),
        "sla": sla.model_dump(),
        "signals": verdict.signals,
        "product": product,
        "region": region,
    }
    return entry, verdict


def case_fields(entry: Mapping[str, Any], verdict: Verdict) -> dict[str, Any]:
    """What the case document says after ``entry``: its latest classification."""
    known = {name: entry[name] for name in ("product", "region") if entry.get(name)}
    return {
        **known,
        "classification": entry["classification"],
        "urgency_score": verdict.urgency.score,
        "priority": verdict.urgency.priority.value,
        "category": verdict.category.value,
        "profile": verdict.profile.value,
        "flags": verdict.flags.model_dump(),
        "sla": entry["sla"],
        "stages.classified_at": entry["classified_at"],
    }


def _count(received: ComplaintReceived, verdict: Verdict) -> None:
    contact = received.contact
    metrics.complaints_classified.labels(
        contact.channel.value,
        metrics.language_label(contact.language or "und"),
        verdict.category.value,
        verdict.urgency.priority.value,
    ).inc()
    metrics.urgency_score.observe(verdict.urgency.score)
    for flag, raised in verdict.flags.model_dump().items():
        if raised:
            metrics.threat_flags.labels(flag).inc()


# What classify reads of a case: the earlier decisions, the SLA it may only tighten, the
# promises followup keeps, what earlier contacts said. Not the contacts themselves.
CASE_PROJECTION = {
    name: 1
    for name in (
        "classification_history",
        "classified_count",
        "sla",
        "promises",
        "customer_tier",
        "product",
        "region",
    )
}


@dataclass(slots=True)
class _CasePlan:
    """One case's records of the poll, decided in order against its state."""

    read_count: int
    entries: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[tuple[ComplaintReceived, Verdict]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[Incoming, ComplaintClassified]] = field(default_factory=list)


async def handle_received(
    store: Store,
    records: Sequence[Incoming],
    *,
    policy: Policy,
    model: TextModel,
    cascade: CascadeWorker | None = None,
) -> Handled:
    """A poll of ComplaintReceived: one read of the cases it names, decisions in memory
    (contacts of one case in order, each seeing the ones before it), one bulk write,
    one event per contact. A contact already in its case's history (a redelivery) is
    announced again from what was stored, with the same event id."""
    handled = Handled()
    received: list[tuple[Incoming, ComplaintReceived]] = []
    for incoming in records:
        if isinstance(incoming.payload, ComplaintReceived):
            received.append((incoming, incoming.payload))
        else:
            reason = Rejected("invalid_payload", "expected ComplaintReceived")
            handled.rejected.append((incoming, reason))
    announced: dict[int, Outgoing] = {}  # by id() of the Incoming

    async def attempt(pending: Sequence[tuple[Incoming, ComplaintReceived]]) -> set[str]:
        return await _classify_round(
            store, pending, announced, policy=policy, model=model, cascade=cascade
        )

    await in_conflict_rounds(received, lambda item: item[1].case_id, attempt)
    handled.outgoing.extend(announced[id(incoming)] for incoming, _ in received)
    return handled


async def _classify_round(
    store: Store,
    received: Sequence[tuple[Incoming, ComplaintReceived]],
    announced: dict[int, Outgoing],
    *,
    policy: Policy,
    model: TextModel,
    cascade: CascadeWorker | None,
) -> set[str]:
    """Read, decide, write once; fills ``announced`` for every case whose write held and
    returns the ids of cases another writer changed meanwhile (to do again)."""
    cases = store["cases"]
    by_case = group_by(received, lambda item: item[1].case_id)
    stored = {
        doc["_id"]: doc
        async for doc in cases.find({"_id": {"$in": list(by_case)}}, CASE_PROJECTION)
    }
    # Text signals for every contact not decided before, in one call (one cascade batch).
    new: dict[str, ComplaintReceived] = {}
    for case_id, items in by_case.items():
        for _, item in items:
            if _history_entry(stored.get(case_id, {}), item.contact.contact_id) is None:
                new.setdefault(item.contact.contact_id, item)
    texts = [contact_text(r) for r in new.values()]
    languages = [r.contact.language or "und" for r in new.values()]
    signals = dict(
        zip(new, await refined_text_signals(model, cascade, texts, languages), strict=True)
    )

    now = stored_now()
    plans: dict[str, _CasePlan] = {}
    writes: list[tuple[str, UpdateOne]] = []
    for case_id, items in by_case.items():
        case: dict[str, Any] = dict(stored.get(case_id, {}))
        history = list(case.get("classification_history") or [])
        plan = plans[case_id] = _CasePlan(read_count=int(case.get("classified_count") or 0))
        for incoming, item in items:
            contact_id = item.contact.contact_id
            entry = _history_entry(case, contact_id)
            if entry is None:
                text = contact_text(item)
                language = item.contact.language or "und"
                top = tuple(model.top_terms(text, language, "upset"))
                entry, verdict = decide(
                    item,
                    incoming,
                    case,
                    replace(signals[contact_id], upset_words=top),
                    policy=policy,
                    model_version=model.version,
                    now=now,
                )
                plan.entries.append(entry)
                plan.verdicts.append((item, verdict))
                plan.fields = case_fields(entry, verdict)
                # Later contacts of the case in this poll see this one.
                history.append(entry)
                case["classification_history"] = history
                case["sla"] = entry["sla"]
                case.update({k: entry[k] for k in ("product", "region") if entry.get(k)})
            plan.events.append((incoming, _event(item, entry)))
        if plan.entries:
            writes.append((case_id, _guarded_update(case_id, plan)))
    conflicted = await guarded_bulk_write(cases, writes)
    for case_id, plan in plans.items():
        if case_id in conflicted:
            continue
        for item, verdict in plan.verdicts:
            _count(item, verdict)
        for incoming, event in plan.events:
            announced[id(incoming)] = _classified(incoming, event)
    return conflicted


def _guarded_update(case_id: str, plan: _CasePlan) -> UpdateOne:
    """Append the case's new entries only if its history is still the one we read:
    ``classified_count`` is the case's version for classify. A redelivered poll finds
    its entries stored and writes nothing; a stale writer's update matches no document
    and, as an upsert, fails on the duplicate ``_id`` -- a conflict, not a second entry."""
    count = plan.read_count
    guard: dict[str, Any] = (
        {"classified_count": count} if count else {"classified_count": {"$exists": False}}
    )
    return UpdateOne(
        {"_id": case_id, **guard},
        {
            "$set": {**plan.fields, "classified_count": count + len(plan.entries)},
            "$push": {"classification_history": {"$each": plan.entries}},
        },
        upsert=True,
    )
