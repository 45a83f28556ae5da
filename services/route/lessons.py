"""Lessons shared organisation-wide: who subscribes to what, and the periodic digest."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.events.lifecycle import Lesson
from shared.privacy import mask_pii

WILDCARD = "*"
TOP_ROOT_CAUSES = 5


@dataclass(frozen=True, slots=True)
class Subscription:
    department: str
    categories: frozenset[str]
    products: frozenset[str]

    def wants(self, category: str, product: str | None) -> bool:
        if WILDCARD in self.categories or category in self.categories:
            return True
        if product is None:
            return False
        return WILDCARD in self.products or _norm(product) in self.products


@dataclass(frozen=True, slots=True)
class Subscriptions:
    items: tuple[Subscription, ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Subscriptions:
        """``{department: {"categories": [...], "products": [...]}}``."""
        items = []
        for department, spec in sorted(data.items()):
            if department.startswith("_"):
                continue  # comments
            items.append(
                Subscription(
                    department,
                    frozenset(spec.get("categories") or ()),
                    frozenset(_norm(p) for p in spec.get("products") or ()),
                )
            )
        return cls(tuple(items))

    @classmethod
    def load(cls, path: Path) -> Subscriptions:
        return cls.from_mapping(json.loads(path.read_text(encoding="utf-8")))

    def departments_for(self, category: str, product: str | None) -> list[str]:
        return [s.department for s in self.items if s.wants(category, product)]

    @property
    def departments(self) -> list[str]:
        return [s.department for s in self.items]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def masked(lesson: Lesson) -> Lesson:
    """The lesson with personal data removed from its free text."""
    return lesson.model_copy(
        update={
            "root_cause": mask_pii(lesson.root_cause),
            "fix": mask_pii(lesson.fix),
            "outcome": mask_pii(lesson.outcome) if lesson.outcome else lesson.outcome,
            "product": mask_pii(lesson.product) if lesson.product else lesson.product,
        }
    )


def root_cause_key(text: str) -> str:
    return _norm(text).rstrip(".!;: ")


def _counts(values: Iterable[str | None]) -> dict[str, int]:
    return dict(Counter(v for v in values if v).most_common())


def build_digest(
    department: str,
    period_start: datetime,
    period_end: datetime,
    current: Sequence[Mapping[str, Any]],
    previous: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """One department's digest: counts, top root causes, trend against the period before.

    ``current``/``previous`` are stored lessons (``category``, ``product``, ``root_cause``,
    ``remedy``, ``outcome``) of the two periods, already filtered to the department.
    """
    now_causes = Counter(root_cause_key(x["root_cause"]) for x in current if x.get("root_cause"))
    before_causes = Counter(
        root_cause_key(x["root_cause"]) for x in previous if x.get("root_cause")
    )
    count, before = len(current), len(previous)
    delta = count - before
    return {
        "department": department,
        "period_start": period_start,
        "period_end": period_end,
        "count": count,
        "previous_count": before,
        "trend": {
            "delta": delta,
            "percent": round(100.0 * delta / before, 1) if before else None,
            "direction": "up" if delta > 0 else "down" if delta < 0 else "flat",
        },
        "by_category": _counts(x.get("category") for x in current),
        "by_product": _counts(x.get("product") for x in current),
        "by_remedy": _counts(x.get("remedy") for x in current),
        "top_root_causes": [
            {"root_cause": cause, "count": n, "previous_count": before_causes.get(cause, 0)}
            for cause, n in now_causes.most_common(TOP_ROOT_CAUSES)
        ],
    }
