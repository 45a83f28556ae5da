"""`amends case QUERY`: the whole timeline of one case in the terminal, or its raw JSON.

QUERY is a case id, an external id ``source:id`` (the case's ``external_ids`` or a
contact's ``external_ids``), an email address or a phone number (resolved through the
``customers`` identities ``email:...`` / ``phone:+E164``). Several cases of one customer:
they are listed newest first and the newest is shown, or all with ``--all``.
"""

from __future__ import annotations

import re
import sys
from argparse import Namespace
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from shared.settings import Settings
from shared.store import Document, Store

from .format import (
    CliError,
    as_utc,
    duration,
    excerpt,
    make_console,
    open_store,
    require_data,
    short_time,
    to_json,
)

MAX_MATCHES = 50
_PHONE_CHARS = re.compile(r"^\+?[\d\s().\-/]{6,}$")


# -- resolving a query to cases --------------------------------------------------------


def normalise_email(text: str) -> str:
    return text.strip().lower()


def normalise_phone(text: str) -> str | None:
    """E.164 (``+358401234567``) or None; a number without ``+`` may start with ``00``."""
    raw = text.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if not raw.startswith("+"):
        raw = "+" + raw
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def query_kind(query: str) -> str:
    """email, phone, external (``source:id``) or id."""
    text = query.strip()
    if "@" in text and ":" not in text.split("@")[0]:
        return "email"
    if _PHONE_CHARS.match(text) and sum(c.isdigit() for c in text) >= 6:
        return "phone"
    if ":" in text:
        return "external"
    return "id"


async def _cases_of_identity(store: Store, identity: str) -> list[Document]:
    customer = await store["customers"].find_one({"identities": identity}, {"_id": 1})
    if customer is None:
        return []
    cursor = (store["cases"].find({"customer_id": customer["_id"]}).sort("opened_at", -1)).limit(
        MAX_MATCHES
    )
    return [doc async for doc in cursor]


async def _cases_where(store: Store, query: Mapping[str, Any]) -> list[Document]:
    cursor = store["cases"].find(dict(query)).sort("opened_at", -1).limit(MAX_MATCHES)
    return [doc async for doc in cursor]


async def find_cases(store: Store, query: str) -> list[Document]:
    """Every case the query names, newest first (empty when none)."""
    text = query.strip()
    by_id = await store["cases"].find_one({"_id": text})
    if by_id is not None:
        return [by_id]
    kind = query_kind(text)
    if kind == "email":
        return await _cases_of_identity(store, f"email:{normalise_email(text)}")
    if kind == "phone":
        phone = normalise_phone(text)
        return await _cases_of_identity(store, f"phone:{phone}") if phone else []
    if kind == "external":
        return await _cases_of_external(store, text)
    return []


async def _cases_of_external(store: Store, text: str) -> list[Document]:
    found = await _cases_where(store, {"external_ids": text})
    if found:
        return found
    found = await _cases_of_identity(store, text)  # "email:..", "phone:..", handles
    if found:
        return found
    source, _, external = text.partition(":")
    if not source or not external or "." in source or source.startswith("$"):
        return []
    return await _cases_where(store, {f"contacts.external_ids.{source}": external})


def no_match(query: str) -> CliError:
    return CliError(
        f"no case matches {query!r}: try an email, phone or case id "
        "(or an external id like zendesk:12345)",
        exit_code=1,
    )


# -- rendering -------------------------------------------------------------------------


def _get(doc: Mapping[str, Any] | None, path: str, default: Any = None) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def _text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, datetime):
        return short_time(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def _fields(rows: Iterable[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for name, value in rows:
        table.add_row(name, value if isinstance(value, Text) else _text(value))
    return table


def _table(title: str | None, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False, show_lines=False)
    for column in columns:
        table.add_column(column)
    return table


def header(doc: Document) -> RenderableType:
    stages = doc.get("stages") or {}
    rows: list[tuple[str, Any]] = [
        ("status", Text(str(doc.get("status", "—")), style="bold")),
        ("customer", doc.get("customer_id")),
        ("customer tier", doc.get("customer_tier")),
        ("opened", doc.get("opened_at")),
        ("updated", doc.get("updated_at")),
        ("language", doc.get("language")),
        ("public", doc.get("public")),
        (
            "contacts",
            f"{doc.get('contact_count', len(doc.get('contacts') or []))} "
            f"({doc.get('repeat_contacts', 0)} repeat)",
        ),
        ("channels", doc.get("channels")),
        ("external ids", doc.get("external_ids")),
    ]
    rows += [
        (f"stage {name.removesuffix('_at')}", at)
        for name, at in sorted(stages.items(), key=lambda item: _sort_key(item[1]))
    ]
    return Panel(_fields(rows), title=f"case {doc['_id']}", title_align="left")


def _sort_key(value: Any) -> datetime:
    return as_utc(value) if isinstance(value, datetime) else datetime.max.replace(tzinfo=UTC)


def contacts_table(doc: Document) -> RenderableType | None:
    contacts = doc.get("contacts") or []
    if not contacts:
        return None
    table = _table("Contacts", "#", "received", "channel", "lang", "kind", "author", "text")
    for number, contact in enumerate(contacts, start=1):
        channel = contact.get("channel", "—")
        if contact.get("platform"):
            channel = f"{channel} ({contact['platform']})"
        author = contact.get("author") or {}
        who = (
            author.get("name") or author.get("email") or author.get("phone") or author.get("handle")
        )
        subject = contact.get("subject")
        body = excerpt(f"{subject} — {contact.get('text', '')}" if subject else contact.get("text"))
        table.add_row(
            str(number),
            short_time(contact.get("received_at")),
            channel,
            contact.get("language", "—"),
            contact.get("kind", "complaint"),
            _text(who),
            body,
        )
    return table


def urgency_section(doc: Document) -> RenderableType | None:
    urgency = _get(doc, "classification.urgency")
    if not urgency:
        return None
    score = urgency.get("score", doc.get("urgency_score"))
    title = f"Urgency {score}/100, priority {urgency.get('priority', doc.get('priority'))}"
    table = _table(title, "signal", "value", "weight", "points", "detail")
    for item in urgency.get("contributions") or []:
        table.add_row(
            str(item.get("signal")),
            _text(item.get("value")),
            _text(item.get("weight")),
            f"{item.get('points', 0):+.1f}"
            if isinstance(item.get("points"), int | float)
            else _text(item.get("points")),
            excerpt(item.get("detail"), 80),
        )
    return table


def classification_section(doc: Document) -> RenderableType | None:
    classification = doc.get("classification")
    if not classification:
        return None
    flags = classification.get("flags") or doc.get("flags") or {}
    raised = [name for name, on in flags.items() if on]
    confidence = classification.get("category_confidence")
    category = classification.get("category", doc.get("category"))
    if isinstance(confidence, int | float):
        category = f"{category} ({confidence:.0%})"
    rows = [
        ("category", category),
        ("profile", classification.get("profile", doc.get("profile"))),
        ("flags", Text(", ".join(raised) or "none", style="bold red" if raised else "")),
        ("hints", "\n".join(f"• {h}" for h in classification.get("hints") or []) or "—"),
        ("model", classification.get("model_version")),
    ]
    return Panel(_fields(rows), title="Classification", title_align="left")


def sla_state(due: datetime | None, done: datetime | None, now: datetime) -> Text:
    """met / breached (by how much) / time left / overdue."""
    if due is None:
        return Text("—")
    due = as_utc(due)
    if done is not None:
        late = (as_utc(done) - due).total_seconds()
        if late <= 0:
            return Text(f"met ({duration(-late)} to spare)", style="green")
        return Text(f"breached by {duration(late)}", style="bold red")
    left = (due - now).total_seconds()
    if left >= 0:
        return Text(f"{duration(left)} left", style="yellow")
    return Text(f"overdue by {duration(-left)}", style="bold red")


def sla_section(doc: Document, now: datetime) -> RenderableType | None:
    sla = doc.get("sla")
    if not sla:
        return None
    stages = doc.get("stages") or {}
    table = _table(
        f"SLA ({sla.get('policy', '—')}, calendar {sla.get('calendar', '—')})",
        "clock",
        "due",
        "done",
        "state",
    )
    for name, due_key, done_key in (
        ("first response", "first_response_due", "first_response_at"),
        ("resolution", "resolution_due", "resolved_at"),
    ):
        done = stages.get(done_key)
        table.add_row(
            name,
            short_time(sla.get(due_key)),
            short_time(done),
            sla_state(sla.get(due_key), done, now),
        )
    return table


def assignment_section(doc: Document) -> RenderableType | None:
    assignment = doc.get("assignment")
    history = doc.get("assignment_history") or []
    if not assignment and not history:
        return None
    parts: list[RenderableType] = []
    if assignment:
        person = assignment.get("assignee", assignment)
        rows = [
            ("assignee", f"{person.get('name', '—')} ({person.get('person_id', '—')})"),
            ("team", person.get("team")),
            ("email", person.get("email")),
            ("assigned", assignment.get("assigned_at") or _get(doc, "stages.assigned_at")),
            ("continuity", assignment.get("continuity")),
            (
                "waited",
                duration(assignment.get("waited_seconds"))
                if assignment.get("waited_seconds") is not None
                else None,
            ),
            ("reasons", "\n".join(f"• {r}" for r in assignment.get("reasons") or []) or "—"),
        ]
        parts.append(_fields(rows))
    if history:
        table = _table("History", "at", "person", "team", "reasons")
        for entry in history:
            person = entry.get("assignee", entry)
            table.add_row(
                short_time(entry.get("assigned_at") or entry.get("at")),
                _text(person.get("name") or person.get("person_id")),
                _text(person.get("team")),
                excerpt("; ".join(entry.get("reasons") or []) or entry.get("reason"), 90),
            )
        parts.append(table)
    return Panel(Group(*parts), title="Assignment", title_align="left")


def _list_table(
    doc: Document, field: str, title: str, columns: tuple[tuple[str, str], ...]
) -> RenderableType | None:
    entries = doc.get(field) or []
    if not entries:
        return None
    table = _table(title, *(label for label, _ in columns))
    for entry in entries:
        table.add_row(*(excerpt(_text(_get(entry, path)), 90) for _, path in columns))
    return table


def escalations_section(doc: Document) -> RenderableType | None:
    escalations = doc.get("escalations") or []
    if not escalations:
        return None
    table = _table("Escalations", "at", "kind", "to", "person", "reason")
    for item in escalations:
        table.add_row(
            short_time(item.get("escalated_at") or item.get("at")),
            _text(item.get("kind")),
            _text(item.get("to_role")),
            _text(item.get("to_person_id")),
            excerpt(item.get("reason"), 90),
        )
    return table


PROMISE_STYLES = {"kept": "green", "kept_late": "yellow", "broken": "bold red", "open": ""}


def promises_section(doc: Document, now: datetime) -> RenderableType | None:
    promises = doc.get("promises") or []
    if not promises:
        return None
    table = _table("Promises", "id", "made", "promise", "due", "kept", "state")
    for promise in promises:
        due = promise.get("due_at") or promise.get("due") or promise.get("promise_due")
        kept = promise.get("kept_at")
        state = promise.get("state")
        if state and state != "open":
            shown = Text(state.replace("_", " "), style=PROMISE_STYLES.get(state, ""))
        else:
            shown = sla_state(due, kept, now) if due else Text("kept" if kept else "open")
        table.add_row(
            _text(promise.get("promise_id") or promise.get("id")),
            short_time(promise.get("made_at") or promise.get("at")),
            excerpt(promise.get("text") or promise.get("promise_text"), 70),
            short_time(due),
            short_time(kept),
            shown,
        )
    return table


def followup_section(doc: Document) -> RenderableType | None:
    followup = doc.get("followup")
    if not followup:
        return None
    parts: list[RenderableType] = []
    scalars = [(k, v) for k, v in followup.items() if not isinstance(v, list)]
    if scalars:
        parts.append(_fields(scalars))
    for name, value in followup.items():
        if isinstance(value, list) and value and isinstance(value[0], Mapping):
            keys = list(dict.fromkeys(k for item in value for k in item))[:6]
            table = _table(name, *keys)
            for item in value:
                table.add_row(*(excerpt(_text(item.get(k)), 60) for k in keys))
            parts.append(table)
        elif isinstance(value, list):
            parts.append(_fields([(name, value)]))
    return Panel(Group(*parts), title="Follow-up", title_align="left")


SATISFACTION_SHOWN = {
    "kind",
    "survey_kind",
    "score",
    "raw_score",
    "scale_max",
    "answered_at",
    "at",
    "comment",
}


def satisfaction_section(doc: Document) -> RenderableType | None:
    answer = doc.get("satisfaction")
    if not answer:
        return None
    kind = answer.get("survey_kind") or answer.get("kind") or "csat"
    score = answer.get("score")
    raw, scale = answer.get("raw_score"), answer.get("scale_max")
    shown = f"{kind} {score}/5" if raw is not None else f"{kind} {score}/{scale or 5}"
    if raw is not None and (raw != score or scale != 5):
        shown += f" (answered {raw}/{scale})"
    rows = [
        ("answer", shown if score is not None else "—"),
        ("at", answer.get("answered_at") or answer.get("at")),
        ("comment", answer.get("comment")),
        *((k, v) for k, v in answer.items() if k not in SATISFACTION_SHOWN),
    ]
    return Panel(_fields(rows), title="Satisfaction", title_align="left")


def mapping_section(doc: Document, field: str, title: str) -> RenderableType | None:
    value = doc.get(field)
    if not value or not isinstance(value, Mapping):
        return None
    return Panel(_fields(list(value.items())), title=title, title_align="left")


def timeline_events(doc: Document) -> list[tuple[datetime, str, str]]:
    """Every dated thing that happened to the case, oldest first."""
    events: list[tuple[datetime, str, str]] = []

    def add(at: Any, what: str, detail: str = "") -> None:
        if isinstance(at, datetime):
            events.append((as_utc(at), what, detail))

    for contact in doc.get("contacts") or []:
        add(
            contact.get("received_at"),
            f"contact ({contact.get('channel')})",
            excerpt(contact.get("text"), 70),
        )
    history = doc.get("assignment_history") or []
    for name, at in (doc.get("stages") or {}).items():
        if name == "assigned_at" and history:
            continue  # the history below says it, with the person
        add(at, name.removesuffix("_at").replace("_", " "))
    for entry in history:
        person = entry.get("assignee", entry)
        add(
            entry.get("assigned_at") or entry.get("at"),
            _text(entry.get("action") or "assigned"),
            _text(person.get("name") or person.get("person_id")),
        )
    for escalation in doc.get("escalations") or []:
        add(
            escalation.get("escalated_at") or escalation.get("at"),
            f"escalated ({escalation.get('kind')})",
            _text(escalation.get("to_role")),
        )
    for promise in doc.get("promises") or []:
        text = excerpt(promise.get("text") or promise.get("promise_text"), 60)
        add(promise.get("made_at") or promise.get("at"), "promise made", text)
        add(promise.get("kept_at"), "promise kept", text)
        add(promise.get("broken_at"), "promise broken", text)
    answer = doc.get("satisfaction") or {}
    add(
        answer.get("answered_at") or answer.get("at"),
        "satisfaction",
        f"{answer.get('score')}/{answer.get('scale_max')}",
    )
    return sorted(events, key=lambda event: event[0])


def timeline_table(doc: Document) -> RenderableType | None:
    events = timeline_events(doc)
    if not events:
        return None
    table = _table("Timeline", "at", "what", "detail")
    for at, what, detail in events:
        table.add_row(short_time(at), what, detail)
    return table


def render_case(doc: Document, now: datetime | None = None) -> list[RenderableType]:
    now = now or datetime.now(UTC)
    sections = [
        header(doc),
        timeline_table(doc),
        contacts_table(doc),
        urgency_section(doc),
        classification_section(doc),
        sla_section(doc, now),
        assignment_section(doc),
        escalations_section(doc),
        promises_section(doc, now),
        followup_section(doc),
        satisfaction_section(doc),
        mapping_section(doc, "lesson", "Lesson"),
        mapping_section(doc, "measures", "Measures"),
    ]
    return [section for section in sections if section is not None]


def matches_table(cases: list[Document]) -> Table:
    table = _table(
        f"{len(cases)} cases match (newest first)",
        "case",
        "opened",
        "status",
        "priority",
        "category",
        "channels",
    )
    for doc in cases:
        table.add_row(
            str(doc["_id"]),
            short_time(doc.get("opened_at")),
            _text(doc.get("status")),
            _text(doc.get("priority")),
            _text(doc.get("category")),
            _text(doc.get("channels")),
        )
    return table


# -- the command -----------------------------------------------------------------------


async def show_case(
    settings: Settings,
    query: str,
    *,
    as_json: bool = False,
    show_all: bool = False,
    console: Console | None = None,
) -> int:
    console = console or make_console()
    if not query.strip():
        raise CliError("give a case id, an external id (zendesk:12345), an email or a phone")
    store = await open_store(settings)
    try:
        cases = await find_cases(store, query)
        if not cases:
            await require_data(store, settings)  # a wrong database says so, not "no match"
    finally:
        await store.close()
    if not cases:
        raise no_match(query)
    shown = cases if show_all else cases[:1]
    if as_json:
        if len(cases) > 1 and not show_all:
            print(
                f"{len(cases)} cases match; showing the newest (--all for every one): "
                + ", ".join(str(c["_id"]) for c in cases),
                file=sys.stderr,
            )
        console.out(to_json(shown if show_all else shown[0]), highlight=False)
        return 0
    if len(cases) > 1:
        console.print(matches_table(cases))
        if not show_all:
            console.print("showing the newest; --all shows every one\n")
    for doc in shown:
        for section in render_case(doc):
            console.print(section)
    return 0


async def run(settings: Settings, args: Namespace) -> int:
    """`amends case` from its parsed arguments."""
    return await show_case(settings, args.query, as_json=args.json, show_all=args.all)
