"""Measures kept per case (``cases.measures``) and their aggregates per team and channel.

Per case, followup stores plain values as they become known: ``team``, ``channel``,
``silent`` (the case started from a survey answer), ``ttfr_seconds``, ``ttr_seconds``,
``first_response_sla`` / ``resolution_sla`` ("met" / "breached"), ``csat`` (1-5),
``reopens`` and ``resolved``.

The aggregates are one ``$match``/``$group`` on the server (``pipeline``); ``fold`` is the
same arithmetic in Python over plain documents, for tests and small exports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from shared.store import Store

GroupField = Literal["team", "channel"]
SlaOutcome = Literal["met", "breached"]

UNKNOWN = "unknown"
_PRIORITY_UP = {"P4": "P3", "P3": "P2", "P2": "P1", "P1": "P1"}


# -- per case ------------------------------------------------------------------------


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """Elapsed seconds, never negative (clock skew between sources); None if unknown."""
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def sla_outcome(at: datetime | None, due: datetime | None) -> SlaOutcome | None:
    if at is None or due is None:
        return None
    return "met" if at <= due else "breached"


def csat_score(score: int, scale_max: int, kind: str = "csat") -> int:
    """Any survey answer on the 1-5 CSAT scale (NPS 0-10 and other scales are rescaled)."""
    low = 0 if kind == "nps" else 1
    high = max(scale_max, low + 1)
    clamped = min(max(score, low), high)
    if kind == "csat" and high == 5:
        return clamped
    return round(1 + 4 * (clamped - low) / (high - low))


def raised_priority(priority: str | None) -> str:
    """One step more urgent (a reopened case must not wait behind new ones)."""
    return _PRIORITY_UP.get(priority or "", "P2")


# -- aggregates ----------------------------------------------------------------------


@dataclass(slots=True)
class MeasureSummary:
    """The measures of a group of cases (one team, one channel, or both)."""

    team: str | None
    channel: str | None
    cases: int = 0
    resolved: int = 0
    first_responses: int = 0
    ttfr_seconds_sum: float = 0.0
    ttr_seconds_sum: float = 0.0
    ttr_count: int = 0
    first_response_sla_met: int = 0
    first_response_sla_breached: int = 0
    resolution_sla_met: int = 0
    resolution_sla_breached: int = 0
    csat_sum: int = 0
    csat_count: int = 0
    reopened: int = 0
    silent: int = 0

    @property
    def avg_time_to_first_response_seconds(self) -> float | None:
        return _ratio(self.ttfr_seconds_sum, self.first_responses)

    @property
    def avg_time_to_resolution_seconds(self) -> float | None:
        return _ratio(self.ttr_seconds_sum, self.ttr_count)

    @property
    def sla_met_rate(self) -> float | None:
        """Share of resolved cases resolved within their resolution SLA."""
        return _ratio(
            self.resolution_sla_met, self.resolution_sla_met + self.resolution_sla_breached
        )

    @property
    def csat_average(self) -> float | None:
        return _ratio(self.csat_sum, self.csat_count)

    @property
    def reopen_rate(self) -> float | None:
        """Share of resolved cases that were reopened at least once."""
        return _ratio(self.reopened, self.resolved)

    @property
    def silent_share(self) -> float | None:
        """Share of cases that started from a survey answer (the silent unhappy)."""
        return _ratio(self.silent, self.cases)

    def add(self, measures: Mapping[str, Any]) -> None:
        self.cases += 1
        if measures.get("resolved"):
            self.resolved += 1
        ttfr = _number(measures.get("ttfr_seconds"))
        if ttfr is not None:
            self.first_responses += 1
            self.ttfr_seconds_sum += ttfr
        ttr = _number(measures.get("ttr_seconds"))
        if ttr is not None:
            self.ttr_count += 1
            self.ttr_seconds_sum += ttr
        fr = measures.get("first_response_sla")
        self.first_response_sla_met += fr == "met"
        self.first_response_sla_breached += fr == "breached"
        res = measures.get("resolution_sla")
        self.resolution_sla_met += res == "met"
        self.resolution_sla_breached += res == "breached"
        csat = _number(measures.get("csat"))
        if csat is not None:
            self.csat_count += 1
            self.csat_sum += int(csat)
        if int(measures.get("reopens") or 0) > 0:
            self.reopened += 1
        if measures.get("silent"):
            self.silent += 1

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            avg_time_to_first_response_seconds=self.avg_time_to_first_response_seconds,
            avg_time_to_resolution_seconds=self.avg_time_to_resolution_seconds,
            sla_met_rate=self.sla_met_rate,
            csat_average=self.csat_average,
            reopen_rate=self.reopen_rate,
            silent_share=self.silent_share,
        )
        return data


def fold(
    rows: Iterable[Mapping[str, Any]], by: Sequence[GroupField] = ("team", "channel")
) -> list[MeasureSummary]:
    """Group per-case ``measures`` documents by ``by`` (empty: one overall row)."""
    groups: dict[tuple[str | None, str | None], MeasureSummary] = {}
    for measures in rows:
        team = str(measures.get("team") or UNKNOWN) if "team" in by else None
        channel = str(measures.get("channel") or UNKNOWN) if "channel" in by else None
        summary = groups.get((team, channel))
        if summary is None:
            summary = groups[(team, channel)] = MeasureSummary(team=team, channel=channel)
        summary.add(measures)
    return [groups[key] for key in sorted(groups, key=lambda k: (k[0] or "", k[1] or ""))]


def _present(path: str) -> dict[str, Any]:
    """Count of documents where the field holds a value (missing or null count 0)."""
    return {"$sum": {"$cond": [{"$eq": [{"$ifNull": [path, None]}, None]}, 0, 1]}}


def _equals(path: str, value: Any) -> dict[str, Any]:
    return {"$sum": {"$cond": [{"$eq": [path, value]}, 1, 0]}}


def pipeline(
    by: Sequence[GroupField] = ("team", "channel"),
    *,
    opened_since: datetime | None = None,
    opened_until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The aggregation over ``cases``: one row of sums and counts per group."""
    match: dict[str, Any] = {"measures": {"$exists": True}}
    opened: dict[str, datetime] = {}
    if opened_since is not None:
        opened["$gte"] = opened_since
    if opened_until is not None:
        opened["$lt"] = opened_until
    if opened:
        match["opened_at"] = opened
    group_id = {name: {"$ifNull": [f"$measures.{name}", UNKNOWN]} for name in by}
    return [
        {"$match": match},
        {
            "$group": {
                "_id": group_id or None,
                "cases": {"$sum": 1},
                "resolved": _equals("$measures.resolved", True),
                "first_responses": _present("$measures.ttfr_seconds"),
                "ttfr_seconds_sum": {"$sum": "$measures.ttfr_seconds"},
                "ttr_count": _present("$measures.ttr_seconds"),
                "ttr_seconds_sum": {"$sum": "$measures.ttr_seconds"},
                "first_response_sla_met": _equals("$measures.first_response_sla", "met"),
                "first_response_sla_breached": _equals("$measures.first_response_sla", "breached"),
                "resolution_sla_met": _equals("$measures.resolution_sla", "met"),
                "resolution_sla_breached": _equals("$measures.resolution_sla", "breached"),
                "csat_count": _present("$measures.csat"),
                "csat_sum": {"$sum": "$measures.csat"},
                "reopened": {
                    "$sum": {"$cond": [{"$gt": [{"$ifNull": ["$measures.reopens", 0]}, 0]}, 1, 0]}
                },
                "silent": _equals("$measures.silent", True),
            }
        },
    ]


_SUMMED = (
    "cases",
    "resolved",
    "first_responses",
    "ttfr_seconds_sum",
    "ttr_count",
    "ttr_seconds_sum",
    "first_response_sla_met",
    "first_response_sla_breached",
    "resolution_sla_met",
    "resolution_sla_breached",
    "csat_count",
    "csat_sum",
    "reopened",
    "silent",
)


async def aggregate_measures(
    store: Store,
    by: Sequence[GroupField] = ("team", "channel"),
    *,
    opened_since: datetime | None = None,
    opened_until: datetime | None = None,
) -> list[MeasureSummary]:
    """Measures of every case followup has seen, grouped per team and/or channel (one
    aggregation on the server; ``amends stats`` calls this too)."""
    stages = pipeline(by, opened_since=opened_since, opened_until=opened_until)
    rows = await (await store["cases"].aggregate(stages)).to_list()
    summaries = []
    for row in rows:
        key = row.get("_id") or {}
        summary = MeasureSummary(
            team=str(key.get("team")) if "team" in by else None,
            channel=str(key.get("channel")) if "channel" in by else None,
        )
        for name in _SUMMED:
            value = row.get(name) or 0
            setattr(summary, name, float(value) if name.endswith("_sum") else int(value))
        summary.csat_sum = int(summary.csat_sum)
        summaries.append(summary)
    return sorted(summaries, key=lambda s: (s.team or "", s.channel or ""))


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)
