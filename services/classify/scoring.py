"""Urgency 0-100 as a sum of explained contributions; category, profile, flags and hints.

Every point of the score comes from one ``Contribution`` (signal, value, weight, points),
so the assignee sees why a case scored as it did; the points always add up to the
score (a ``cap`` contribution takes off what exceeds 100). The text part is batched
(``text_signals``) so the evaluation measures exactly what the service runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.events.common import Category, Channel, CustomerProfile, Priority
from shared.events.complaint import SurveyAnswer
from shared.events.pipeline import Contribution, Flags, Urgency

from .text.cues import find_cues
from .text.doubts import MAX_CUE_CHARS, all_doubts, sanitise
from .text.lexicons import CATEGORY_CUES
from .text.model import TextModel

# Points a signal adds at full strength (value 1). Tuned so that one strong threat or
# several metadata signals reach P1, and a mild one-off complaint stays P3/P4.
WEIGHTS: dict[str, float] = {
    "base": 5,
    "upset": 20,
    "anger": 12,
    # Explicit words beside the model: its training text (subtitles, tweets, reviews) is
    # not complaint mail, so a plain "I am disappointed" must count on its own.
    "dissatisfaction_words": 8,
    "anger_words": 8,
    "legal_threat": 20,
    "safety_threat": 45,
    "churn_intent": 12,
    "abusive_language": 6,
    "manager_requested": 6,
    "exposure_threat": 6,
    "public": 8,
    "reach": 16,
    "rating": 10,
    "survey": 10,
    "repeat_contacts": 18,
    "time_waited": 10,
    "broken_promises": 16,
    "customer_tier": 12,
    "praise": -15,
    # Adds nothing: says the text part could not be trusted for this text, and why.
    "low_confidence": 0,
}
TIER_VALUE: dict[str, float] = {
    "vip": 1.0,
    "platinum": 1.0,
    "enterprise": 1.0,
    "gold": 0.66,
    "premium": 0.66,
    "silver": 0.33,
    "business": 0.33,
}
PRIORITY_FLOORS: tuple[tuple[Priority, int], ...] = (
    (Priority.P1, 70),
    (Priority.P2, 45),
    (Priority.P3, 25),
)
HINTS: dict[str, str] = {
    "escalate_safety_now": "A threat of harm or a danger to people: escalate to security now.",
    "answer_publicly_then_private": "Answer on the same public channel, then take it private.",
    "cool_off_before_answering": "Hostile message: cool off before answering (rule of five).",
    "do_not_engage": "Looks like a troll: do not engage in public; watch, answer facts only.",
    "offer_call": "Offer a call (phone or video) to settle it personally.",
    "involve_legal": "Legal or regulatory threat: a senior handler, legal informed.",
    "judge_case_by_case": "Asks for compensation: judge case by case, set no precedent.",
    "may_end_conversation": "Abusive language: staff may end the conversation.",
    "acknowledge_repeat": "Repeat contact: acknowledge we already failed once.",
}
CATEGORY_ORDER = tuple(Category)
_STICKY_FLAGS = ("legal_threat", "safety_threat", "churn_intent", "abusive", "manager_requested")


@dataclass(frozen=True)
class TextSignals:
    """What the text of one contact says: model probabilities and lexicon cues."""

    language: str
    upset: float
    anger: float
    upset_flag: bool
    anger_flag: bool
    cues: Mapping[str, list[str]]
    upset_words: tuple[str, ...] = ()  # the words that pushed the model most (service only)
    upset_fast: float | None = None  # the fast model's upset when the cascade refined it
    doubts: tuple[str, ...] = ()  # why the text part may be wrong here (``text/doubts.py``)
    refined_by: str = ""  # the cascade encoder that refined ``upset``

    def has(self, cue: str) -> bool:
        return bool(self.cues.get(cue))


def text_signals(
    model: TextModel, texts: Sequence[str], languages: Sequence[str]
) -> list[TextSignals]:
    """The whole text part of the score for a batch (what `triage-eval` times). Any
    string is scored: bad input gets its probabilities plus the reasons to doubt them."""
    texts = [sanitise(t) for t in texts]
    probs = model.probabilities(texts, languages)
    reasons = all_doubts(texts, languages, [model.knows(lang) for lang in languages])
    out = []
    for i, (text, language) in enumerate(zip(texts, languages, strict=True)):
        upset, anger = float(probs[i, 0]), float(probs[i, 1])
        out.append(
            TextSignals(
                language=language,
                upset=upset,
                anger=anger,
                upset_flag=upset >= model.threshold("upset", language),
                anger_flag=anger >= model.threshold("anger", language),
                cues=find_cues(text[:MAX_CUE_CHARS], language),
                doubts=reasons[i],
            )
        )
    return out


@dataclass(frozen=True)
class Context:
    """What the case and the contact's metadata say (not the text)."""

    channel: Channel
    public: bool = False
    reach: int | None = None
    rating: float | None = None
    survey: SurveyAnswer | None = None
    repeat_contacts: int = 0
    waited_hours: float = 0.0
    broken_promises: int = 0
    customer_tier: str | None = None
    praise: bool = False
    earlier_flags: Mapping[str, bool] = field(default_factory=dict)
    earlier_upset: float = 0.0
    earlier_anger: float = 0.0


@dataclass(frozen=True)
class Verdict:
    urgency: Urgency
    category: Category
    category_confidence: float
    profile: CustomerProfile
    flags: Flags
    hints: list[str]
    signals: dict[str, Any]  # what the next contact's re-scoring carries forward


def _c(signal: str, value: float | str | bool, strength: float, detail: str = "") -> Contribution:
    weight = WEIGHTS[signal]
    return Contribution(
        signal=signal,
        value=round(value, 3) if isinstance(value, float) else value,
        weight=weight,
        points=round(weight * strength, 1),
        detail=detail,
    )


def _quote(terms: Sequence[str]) -> str:
    return ", ".join(f'"{t}"' for t in list(dict.fromkeys(terms))[:3])


def categorise(text: TextSignals, ctx: Context) -> tuple[Category, float]:
    votes = {cue[4:]: len(text.cues.get(cue, ())) for cue in CATEGORY_CUES}
    # Metadata says "we failed to follow up" louder than any word.
    votes["lack_of_follow_up"] += 2 * min(ctx.broken_promises, 2) + (ctx.repeat_contacts >= 2)
    total = sum(votes.values())
    if total == 0:
        return Category.OTHER, 0.0
    best = max(CATEGORY_ORDER[:-1], key=lambda c: (votes[c.value], -CATEGORY_ORDER.index(c)))
    return best, round(votes[best.value] / total, 3)


def score(text: TextSignals, ctx: Context) -> Verdict:
    """Score one contact in its case's context."""
    earlier = ctx.earlier_flags
    flags = Flags(
        legal_threat=text.has("legal") or earlier.get("legal_threat", False),
        safety_threat=text.has("safety") or earlier.get("safety_threat", False),
        churn_intent=text.has("churn") or earlier.get("churn_intent", False),
        abusive=text.has("abuse") or earlier.get("abusive", False),
        manager_requested=text.has("manager") or earlier.get("manager_requested", False),
    )
    upset = max(text.upset, ctx.earlier_upset)
    anger = max(text.anger, ctx.earlier_anger)
    parts: list[Contribution] = [_c("base", 1.0, 1.0, "every complaint")]
    upset_detail = "text model: probability the customer is upset"
    if text.upset_words:
        upset_detail += f"; strongest words {_quote(text.upset_words)}"
    if text.upset_fast is not None:
        upset_detail += (
            f"; the fast model was unsure ({text.upset_fast:.2f}), "
            f"the {text.refined_by} encoder refined it to {text.upset:.2f}"
        )
    parts.append(_c("upset", upset, upset, upset_detail))
    parts.append(_c("anger", anger, anger, "text model: probability of anger"))
    if text.doubts:
        parts.append(_c("low_confidence", True, 1.0, "; ".join(text.doubts)))
    if text.has("upset"):
        parts.append(_c("dissatisfaction_words", True, 1.0, _quote(text.cues["upset"])))
    if text.has("anger"):
        parts.append(_c("anger_words", True, 1.0, _quote(text.cues["anger"])))
    for flag, signal, cue in (
        ("legal_threat", "legal_threat", "legal"),
        ("safety_threat", "safety_threat", "safety"),
        ("churn_intent", "churn_intent", "churn"),
        ("abusive", "abusive_language", "abuse"),
        ("manager_requested", "manager_requested", "manager"),
    ):
        if getattr(flags, flag):
            terms = text.cues.get(cue)
            parts.append(
                _c(signal, True, 1.0, _quote(terms) if terms else "said in an earlier contact")
            )
    if text.has("exposure"):
        parts.append(_c("exposure_threat", True, 1.0, _quote(text.cues["exposure"])))
    if ctx.public:
        parts.append(_c("public", True, 1.0, f"posted publicly ({ctx.channel.value})"))
    if ctx.reach and ctx.reach > 10:
        strength = min(1.0, math.log10(ctx.reach) / 6)  # 1M followers: full weight
        parts.append(_c("reach", float(ctx.reach), strength, "audience size"))
    if ctx.rating is not None:
        strength = min(1.0, max(0.0, (5 - ctx.rating) / 4))
        parts.append(_c("rating", float(ctx.rating), strength, "stars given, of 5"))
    if ctx.survey is not None and ctx.survey.scale_max > 0:
        strength = min(1.0, max(0.0, 1 - ctx.survey.score / ctx.survey.scale_max))
        parts.append(
            _c(
                "survey",
                float(ctx.survey.score),
                strength,
                f"{ctx.survey.kind} {ctx.survey.score}/{ctx.survey.scale_max}",
            )
        )
    if ctx.repeat_contacts > 0:
        parts.append(
            _c(
                "repeat_contacts",
                float(ctx.repeat_contacts),
                min(ctx.repeat_contacts, 3) / 3,
                "contacts after the first one",
            )
        )
    if ctx.waited_hours >= 1:
        parts.append(
            _c(
                "time_waited",
                round(ctx.waited_hours, 1),
                min(1.0, ctx.waited_hours / 72),
                "hours since the case opened",
            )
        )
    if ctx.broken_promises > 0:
        parts.append(
            _c(
                "broken_promises",
                float(ctx.broken_promises),
                min(ctx.broken_promises, 2) / 2,
                "promises to this customer not kept",
            )
        )
    tier_value = TIER_VALUE.get((ctx.customer_tier or "").lower(), 0.0)
    if tier_value:
        parts.append(_c("customer_tier", ctx.customer_tier or "", tier_value, "CRM value tier"))
    if ctx.praise:
        parts.append(_c("praise", True, 1.0, "the contact is praise, not a complaint"))
    raw = sum(p.points for p in parts)
    if raw > 100:
        parts.append(
            Contribution(
                signal="cap",
                value=100.0,
                weight=1.0,
                points=round(100 - raw, 1),
                detail="the score tops out at 100",
            )
        )
    elif raw < 0:
        parts.append(
            Contribution(
                signal="floor",
                value=0.0,
                weight=1.0,
                points=round(-raw, 1),
                detail="the score bottoms out at 0",
            )
        )
    value = max(0, min(100, round(sum(p.points for p in parts))))
    priority = Priority.P4
    for level, floor in PRIORITY_FLOORS:
        if value >= floor:
            priority = level
            break
    if flags.safety_threat:
        priority = Priority.P1
    elif flags.legal_threat and priority in (Priority.P3, Priority.P4):
        priority = Priority.P2
    category, confidence = categorise(text, ctx)
    hostile = flags.abusive or text.anger_flag
    profile = _profile(text, ctx, flags, category)
    hints = _hints(profile, flags, ctx, hostile, priority)
    return Verdict(
        urgency=Urgency(score=value, priority=priority, contributions=parts),
        category=category,
        category_confidence=confidence,
        profile=profile,
        flags=flags,
        hints=hints,
        signals={
            "upset": round(upset, 4),
            "anger": round(anger, 4),
            **{f: getattr(flags, f) for f in _STICKY_FLAGS},
        },
    )


def _profile(text: TextSignals, ctx: Context, flags: Flags, category: Category) -> CustomerProfile:
    if flags.safety_threat:
        return CustomerProfile.ABUSIVE  # "abusive or threatening": a safety matter
    if flags.legal_threat:
        return CustomerProfile.LITIGANT
    # A troll mocks or insults in public with no concrete problem and no history with us.
    no_problem = category is Category.OTHER
    if ctx.public and no_problem and (text.has("troll") or flags.abusive) and not ctx.customer_tier:
        return CustomerProfile.TROLL
    if flags.abusive:
        return CustomerProfile.ABUSIVE
    if text.has("freebie") and (no_problem or len(text.cues["freebie"]) >= 2):
        return CustomerProfile.FREEBIE_SEEKER
    if ctx.public and ((ctx.reach or 0) >= 1000 or text.has("exposure")):
        return CustomerProfile.PUBLIC_LEVERAGE
    if text.has("exposure"):
        return CustomerProfile.PUBLIC_LEVERAGE
    return CustomerProfile.LEGITIMATELY_UNHAPPY


def _hints(
    profile: CustomerProfile, flags: Flags, ctx: Context, hostile: bool, priority: Priority
) -> list[str]:
    hints: list[str] = []
    if flags.safety_threat:
        hints.append("escalate_safety_now")
    if profile is CustomerProfile.TROLL:
        hints.append("do_not_engage")
    elif ctx.public:
        hints.append("answer_publicly_then_private")
    if hostile:
        hints.append("cool_off_before_answering")
    if flags.abusive:
        hints.append("may_end_conversation")
    if flags.legal_threat:
        hints.append("involve_legal")
    if profile is CustomerProfile.FREEBIE_SEEKER:
        hints.append("judge_case_by_case")
    if ctx.repeat_contacts > 0:
        hints.append("acknowledge_repeat")
    if profile not in (CustomerProfile.TROLL, CustomerProfile.ABUSIVE) and (
        priority in (Priority.P1, Priority.P2) or ctx.repeat_contacts > 0
    ):
        hints.append("offer_call")
    return hints
