# ruff: noqa: RUF001  (Turkish and Persian test sentences)
"""Urgency: contributions explain (and add up to) every score; metadata signals; profiles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from services.classify.scoring import (
    PRIORITY_FLOORS,
    WEIGHTS,
    Context,
    TextSignals,
    categorise,
    score,
    text_signals,
)
from services.classify.text.model import default_model
from shared.events.common import Category, Channel, CustomerProfile, Priority
from shared.events.complaint import SurveyAnswer


def signals(text: str, language: str = "en") -> TextSignals:
    return text_signals(default_model(), [text], [language])[0]


CALM = "Hello, could you tell me when the parcel will be delivered?"
ANGRY = "This is the worst service ever, I am furious and fed up with you."


@pytest.mark.parametrize(
    "ctx",
    [
        Context(channel=Channel.EMAIL),
        Context(channel=Channel.SOCIAL, public=True, reach=250_000, repeat_contacts=3),
        Context(
            channel=Channel.REVIEW,
            public=True,
            rating=1,
            waited_hours=200,
            broken_promises=3,
            customer_tier="vip",
            repeat_contacts=5,
        ),
        Context(channel=Channel.SURVEY, survey=SurveyAnswer(kind="nps", score=2, scale_max=10)),
        Context(channel=Channel.EMAIL, praise=True),
    ],
)
@pytest.mark.parametrize("text", [CALM, ANGRY, "I will sue you and burn down your shop"])
def test_contributions_add_up_to_the_score(ctx: Context, text: str) -> None:
    v = score(signals(text), ctx)
    total = sum(c.points for c in v.urgency.contributions)
    assert abs(total - v.urgency.score) <= 0.5
    assert 0 <= v.urgency.score <= 100
    for c in v.urgency.contributions:
        assert c.signal and c.detail
        if c.signal not in ("cap", "floor"):
            assert c.weight == WEIGHTS[c.signal]


def test_every_metadata_signal_shows_up() -> None:
    ctx = Context(
        channel=Channel.SOCIAL,
        public=True,
        reach=5_000,
        rating=2,
        repeat_contacts=1,
        waited_hours=30,
        broken_promises=1,
        customer_tier="gold",
    )
    names = {c.signal for c in score(signals(CALM), ctx).urgency.contributions}
    assert {
        "base",
        "upset",
        "anger",
        "public",
        "reach",
        "rating",
        "repeat_contacts",
        "time_waited",
        "broken_promises",
        "customer_tier",
    } <= names


def test_urgency_rises_with_each_signal() -> None:
    text = signals(ANGRY)
    base = score(text, Context(channel=Channel.EMAIL)).urgency.score
    for extra in (
        {"public": True},
        {"reach": 100_000},
        {"rating": 1.0},
        {"repeat_contacts": 2},
        {"waited_hours": 48.0},
        {"broken_promises": 1},
        {"customer_tier": "vip"},
    ):
        assert score(text, Context(channel=Channel.EMAIL, **extra)).urgency.score > base, extra


def test_angry_text_outscores_calm_text() -> None:
    ctx = Context(channel=Channel.EMAIL)
    assert score(signals(ANGRY), ctx).urgency.score > score(signals(CALM), ctx).urgency.score


def test_priority_mapping() -> None:
    floors = dict(PRIORITY_FLOORS)
    assert floors[Priority.P1] > floors[Priority.P2] > floors[Priority.P3]
    calm = score(signals(CALM), Context(channel=Channel.EMAIL))
    assert calm.urgency.priority in (Priority.P3, Priority.P4)
    loaded = score(
        signals(ANGRY),
        Context(
            channel=Channel.SOCIAL,
            public=True,
            reach=1_000_000,
            repeat_contacts=3,
            broken_promises=2,
            customer_tier="vip",
        ),
    )
    assert loaded.urgency.score >= floors[Priority.P1]
    assert loaded.urgency.priority is Priority.P1
    # A safety threat is P1 whatever the points; a legal threat at least P2.
    assert (
        score(signals("I will bomb your office"), Context(channel=Channel.EMAIL)).urgency.priority
        is Priority.P1
    )
    legal = score(signals("I will sue you"), Context(channel=Channel.EMAIL, praise=True))
    assert legal.urgency.priority is Priority.P2


def test_repeat_contact_keeps_earlier_flags_and_raises_urgency() -> None:
    first = score(signals("My lawyer will sue you."), Context(channel=Channel.EMAIL))
    again = score(
        signals("Any news?"),
        Context(
            channel=Channel.EMAIL,
            repeat_contacts=1,
            earlier_flags={k: v for k, v in first.signals.items() if isinstance(v, bool)},
            earlier_upset=first.signals["upset"],
            earlier_anger=first.signals["anger"],
        ),
    )
    assert again.flags.legal_threat
    assert again.urgency.score > first.urgency.score
    legal = next(c for c in again.urgency.contributions if c.signal == "legal_threat")
    assert legal.detail == "said in an earlier contact"
    assert "acknowledge_repeat" in again.hints


def test_profiles_and_hints() -> None:
    public = Context(channel=Channel.SOCIAL, public=True, reach=50_000)
    v = score(signals("My order never arrived and nobody answers, terrible."), public)
    assert v.profile is CustomerProfile.PUBLIC_LEVERAGE
    assert v.hints[0] == "answer_publicly_then_private"

    troll = score(
        signals("lol what a bunch of clowns, idiots"), Context(channel=Channel.SOCIAL, public=True)
    )
    assert troll.profile is CustomerProfile.TROLL
    assert "do_not_engage" in troll.hints and "answer_publicly_then_private" not in troll.hints

    abusive = score(signals("You stupid idiots broke my phone"), Context(channel=Channel.EMAIL))
    assert abusive.profile is CustomerProfile.ABUSIVE
    assert "may_end_conversation" in abusive.hints and "offer_call" not in abusive.hints

    freebie = score(
        signals("I expect compensation and a voucher for free."), Context(channel=Channel.EMAIL)
    )
    assert freebie.profile is CustomerProfile.FREEBIE_SEEKER
    assert "judge_case_by_case" in freebie.hints

    plain = score(signals("The blender arrived broken."), Context(channel=Channel.EMAIL))
    assert plain.profile is CustomerProfile.LEGITIMATELY_UNHAPPY

    repeat = score(
        signals("The blender arrived broken."), Context(channel=Channel.EMAIL, repeat_contacts=1)
    )
    assert "offer_call" in repeat.hints


@pytest.mark.parametrize(
    ("text", "language", "category"),
    [
        (
            "The kettle stopped working after two days, it is defective.",
            "en",
            Category.DEFECTIVE_PRODUCT,
        ),
        ("Tuote on ollut loppu varastosta jo kuukauden.", "fi", Category.OUT_OF_STOCK),
        ("Paket saya belum sampai, kurir tidak jelas.", "id", Category.DELIVERY),
        ("Kartımdan iki kez ücret çekildi, iade istiyorum.", "tr", Category.BILLING_REFUND),
        (
            "Der Mitarbeiter an der Hotline war unfreundlich und arrogant.",
            "de",
            Category.STAFF_BEHAVIOUR,
        ),
        (
            "Aucune réponse depuis trois semaines, j'attends toujours.",
            "fr",
            Category.LACK_OF_FOLLOW_UP,
        ),
        ("No puedo iniciar sesión, mi cuenta bloqueada.", "es", Category.ACCOUNT_ACCESS),
        ("Tellimus pole kohale jõudnud, kuller kadus.", "et", Category.DELIVERY),
        ("رمز عبور کار نمی کند و حساب کاربری مسدود شد", "fa", Category.ACCOUNT_ACCESS),
        ("Just wanted to say hello.", "en", Category.OTHER),
    ],
)
def test_categories(text: str, language: str, category: Category) -> None:
    assert categorise(signals(text, language), Context(channel=Channel.EMAIL))[0] is category


def test_broken_promises_make_it_lack_of_follow_up() -> None:
    ctx = Context(channel=Channel.EMAIL, broken_promises=1)
    assert categorise(signals("Hello?"), ctx)[0] is Category.LACK_OF_FOLLOW_UP


def test_model_explains_with_words() -> None:
    terms = default_model().top_terms(
        "I am so disappointed, terrible and awful service", "en", "upset"
    )
    assert terms and set(terms) <= {"disappointed", "terrible", "awful", "service", "and"}


def test_urgency_is_monotonic_in_the_upset_probability() -> None:
    base = signals(CALM)
    ctx = Context(channel=Channel.EMAIL)
    scores = [
        score(replace(base, upset=p), ctx).urgency.score for p in np.linspace(0.001, 0.999, 60)
    ]
    assert scores == sorted(scores) and scores[-1] > scores[0]


@pytest.mark.parametrize("language", ["en", "fi", "et", "id", "tr", "fa", "de", "xx"])
def test_calibrated_probability_is_monotonic_in_the_model_logit(language: str) -> None:
    model = default_model()
    logits = np.column_stack([np.linspace(-8, 8, 200)] * 2)
    probs = model.calibrated(logits, [language] * 200)
    assert np.all(np.diff(probs, axis=0) >= 0)
    assert probs.min() > 0 and probs.max() < 1


def test_the_upset_contribution_names_the_words_that_drove_it() -> None:
    text = "The courier lost my parcel, terrible and useless service, I want a refund"
    model = default_model()
    words = tuple(model.top_terms(text, "en", "upset"))
    verdict = score(replace(signals(text), upset_words=words), Context(channel=Channel.EMAIL))
    upset = next(p for p in verdict.urgency.contributions if p.signal == "upset")
    assert words and all(f'"{w}"' in upset.detail for w in words)
