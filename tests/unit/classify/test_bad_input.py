"""Bad input gets a valid score and a "low confidence" contribution, never a crash."""

from __future__ import annotations

import pytest

from services.classify.scoring import WEIGHTS, Context, score, text_signals
from services.classify.text.doubts import doubts, sanitise, scripts
from services.classify.text.features import featurise
from services.classify.text.model import default_model
from shared.events.common import Channel

INVALID_UTF8 = b"Minu pakk ei j\xf5udnud kohale, \xff\xfe teenindus ei vasta.".decode(
    "utf-8", errors="replace"
)
CASES = {
    "empty": ("", "en", "no words to read"),
    "spaces": ("   \n\t ", "en", "no words to read"),
    "emoji only": ("😡😡😡🤬", "en", "no words to read"),
    "punctuation only": ("?!?!... ,,, !!!", "fi", "no words to read"),
    "mixed scripts": ("Заказ не пришёл order never arrived سفارش نرسید", "en", "mixed scripts"),
    "100 KB": ("The refund never came. " * 4500, "en", "very long text"),
    "wrong language tag": ("سفارش من هنوز نرسیده و کسی جواب نمی‌دهد", "de", "language tag 'de'"),
    "unknown language tag": ("My parcel never arrived.", "xx-klingon", "no data for language"),
    "invalid UTF-8 from a channel": (INVALID_UTF8, "et", "undecodable characters"),
    "lone surrogate": ("bad \ud800 service", "en", "undecodable characters"),
    "NUL and control characters": ("broken\x00 again\x07\x1b", "en", None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_scored_with_a_low_confidence_reason(name: str) -> None:
    text, language, reason = CASES[name]
    signal = text_signals(default_model(), [text], [language])[0]
    assert 0.0 < signal.upset < 1.0 and 0.0 < signal.anger < 1.0
    verdict = score(signal, Context(channel=Channel.EMAIL))
    parts = verdict.urgency.contributions
    assert 0 <= verdict.urgency.score <= 100
    assert round(sum(p.points for p in parts)) == verdict.urgency.score
    low = [p for p in parts if p.signal == "low_confidence"]
    if reason is None:
        assert not low
        return
    assert len(low) == 1 and low[0].points == 0 and WEIGHTS["low_confidence"] == 0
    assert reason in low[0].detail


def test_a_clean_text_has_no_low_confidence_contribution() -> None:
    signal = text_signals(default_model(), ["My parcel never arrived, I want a refund."], ["en"])[0]
    assert signal.doubts == ()
    verdict = score(signal, Context(channel=Channel.EMAIL))
    assert all(p.signal != "low_confidence" for p in verdict.urgency.contributions)


def test_a_bad_text_in_a_batch_does_not_shift_the_others() -> None:
    model = default_model()
    good = ["This is the worst service ever", "Kiitos, kaikki toimi hyvin"]
    alone = model.probabilities(good, ["en", "fi"])
    mixed = model.probabilities([good[0], "a\x00b\x00c", "\ud800", good[1]], ["en"] * 3 + ["fi"])
    assert mixed.shape == (4, 2)
    assert abs(mixed[0, 0] - alone[0, 0]) < 1e-9 and abs(mixed[3, 0] - alone[1, 0]) < 1e-9


def test_featurise_keeps_one_row_per_text_whatever_the_text_holds() -> None:
    batch = featurise(["a\x00b", "", "\ud83d", "x" * 100_000], ["en"] * 4, 12)
    assert batch.size == 4 and int(batch.rows.max()) == 3


def test_top_terms_survive_bad_text() -> None:
    model = default_model()
    assert model.top_terms("", "en", "upset") == []
    assert isinstance(model.top_terms("awful \ud800 awful\x00", "en", "upset"), list)


def test_sanitise_and_scripts() -> None:
    assert sanitise("a\x00b\ud800") == "a b\ufffd"
    assert sanitise("plain") == "plain"
    assert scripts("Hyvä palvelu") == {"Latin": 11}
    assert set(scripts("سلام hello")) == {"Arabic", "Latin"}
    assert doubts("Tämä toimii hyvin", "fi", True) == ()
