"""Rebuild the classify text model from the training corpus (``corpus.py``).

    pip install -e '.[train]'
    make train        # = amends triage-train: rebuild services/classify/models/
    make train-search # choose the options on validation, write training/options.json

Fits one logistic regression per head (``upset``, ``anger``) on hashed features
(``text/features.py``; every language pooled in one model; optionally each feature also
conjoined with the language), with naive-Bayes feature scaling (NBSVM), on the *train*
splits. On the *valid* splits it then fits, per language, the calibration of each head
(Platt or isotonic, chosen by 5-fold cross-validated Brier score within valid) and the
decision threshold (best macro-F1 for upset, F1 for anger); a language with too few
validation rows uses the pooled one. Test splits are never read here.

The options (features, C, class weights, per-set weights, whether the general emotion
sets XED/EmoT join the upset head) are chosen by ``--search`` on validation and kept in
``options.json``, so ``make train`` is one fixed, seeded fit: the same data gives
byte-identical ``text_model.npz`` and ``text_model.json``. ``MODEL.md`` is written from
the result (``card.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from scipy import sparse
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from services.classify.text.calibration import Calibration
from services.classify.text.features import featurise
from services.classify.text.model import HEADS, MODEL_DIR, TextModel
from services.classify.training import corpus as corpus_mod
from services.classify.training.corpus import Corpus, Row, in_domain
from services.classify.training.datasets import DEFAULT_EVAL_DIR

T = TypeVar("T")
R = TypeVar("R")
OPTIONS_PATH = Path(__file__).resolve().parent / "options.json"
SEED = 20261207
MIN_LANGUAGE_ROWS = 150  # valid rows a language needs for its own calibration/threshold
MIN_CLASS_ROWS = 20
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
ATTRIBUTION = [
    "XED (Öhman, Pàmies, Kajava, Tiedemann, COLING 2020), Helsinki-NLP/XED @ 76666d2, CC-BY 4.0",
    "IndoNLU SmSA, EmoT (Wilie et al., AACL 2020), IndoNLP/indonlu @ ce728f6, Apache-2.0",
]


@dataclass(frozen=True)
class Options:
    bits: int = 19
    conjoin: bool = False
    c: float = 4.0
    class_weight: str = "balanced"  # "balanced" | "none"
    set_weight: str = "none"  # "none" | "sqrt": a set of n rows weighs ~sqrt(n), not n
    # Whether the general emotion sets' (XED, EmoT) upset labels join the upset head:
    # "all", "none", or "uncovered": only for languages with no customer-text train rows
    # (so Finnish, Spanish, French still learn upset from something real).
    general: str = "all"

    @classmethod
    def read(cls, path: Path = OPTIONS_PATH) -> Options:
        if not path.exists():
            return cls()
        values = dict(json.loads(path.read_text())["options"])
        if isinstance(values.get("general"), bool):  # older records: True/False
            values["general"] = "all" if values["general"] else "none"
        return cls(**values)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- fitting --------------------------------------------------------------------------


def matrix(rows: Sequence[Row], bits: int, conjoin: bool) -> sparse.csr_matrix:
    batch = featurise([r["text"] for r in rows], [r["language"] for r in rows], bits, conjoin)
    m = sparse.csr_matrix(
        (batch.scale[batch.rows].astype(np.float32), (batch.rows, batch.buckets)),
        shape=(batch.size, 1 << bits),
    )
    m.sum_duplicates()
    return m


class NbLogistic:
    """Logistic regression on features scaled by their naive-Bayes log-count ratio
    (Wang & Manning 2012, "NBSVM"): generalises better than plain LR on small sentiment
    sets. The scaling folds into the weights, so inference stays one dot product."""

    def __init__(
        self,
        x: sparse.csr_matrix,
        y: np.ndarray,
        options: Options,
        sample_weight: np.ndarray | None = None,
    ) -> None:
        present = x.copy()
        present.data[:] = 1.0
        pos = np.asarray(present[y].sum(0)).ravel() + 1.0
        neg = np.asarray(present[~y].sum(0)).ravel() + 1.0
        self.ratio = np.log((pos / pos.sum()) / (neg / neg.sum()))
        self.model = LogisticRegression(
            C=options.c,
            solver="liblinear",
            max_iter=200,
            tol=1e-3,
            class_weight="balanced" if options.class_weight == "balanced" else None,
            random_state=SEED,
        )
        self.model.fit(x @ sparse.diags(self.ratio), y, sample_weight=sample_weight)

    @property
    def weights(self) -> np.ndarray:
        return self.model.coef_[0] * self.ratio

    @property
    def bias(self) -> float:
        return float(self.model.intercept_[0])


def set_weights(rows: Sequence[Row], how: str) -> np.ndarray | None:
    if how == "none":
        return None
    sizes = Counter(r["source"] for r in rows)
    # sqrt: a set of n rows weighs sqrt(n) in all, so no one big set drowns the others.
    w = np.array([1.0 / np.sqrt(sizes[r["source"]]) for r in rows])
    return w * len(rows) / w.sum()


def training_rows(rows: Sequence[Row], head: str, options: Options) -> list[Row]:
    train = [r for r in rows if r["split"] == "train" and head in r["labels"]]
    if head != "upset" or options.general == "all":
        return train
    covered = {r["language"] for r in train if in_domain(r)}
    if options.general == "uncovered":
        return [r for r in train if in_domain(r) or r["language"] not in covered]
    return [r for r in train if in_domain(r)]


def calibration_rows(rows: Sequence[Row], head: str) -> list[Row]:
    """Valid rows a head is calibrated and thresholded on: for upset the customer text
    (what it is for), and XED for a language without any (``objective_sets``); for
    anger every set that labels anger (XED, EmoT)."""
    if head == "upset":
        return objective_sets(rows)
    return [r for r in rows if r["split"] == "valid" and head in r["labels"]]


def fold_of(text: str, k: int = 5) -> int:
    return hashlib.blake2b(("fold:" + text).encode(), digest_size=4).digest()[0] % k


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2)) if len(y) else 0.0


def fit_platt(z: np.ndarray, y: np.ndarray) -> Calibration:
    model = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000)
    model.fit(z.reshape(-1, 1), y)
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    if a <= 0.05:  # a calibration must stay increasing in the model's evidence
        a, b = 1.0, 0.0
    return Calibration(kind="platt", a=round(a, 6), b=round(b, 6))


def fit_isotonic(z: np.ndarray, y: np.ndarray) -> Calibration:
    model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    model.fit(z, y.astype(float))
    xs = np.round(np.asarray(model.X_thresholds_, dtype=float), 5)
    ys = np.round(np.asarray(model.y_thresholds_, dtype=float), 5)
    return Calibration(kind="isotonic", x=tuple(xs.tolist()), y=tuple(ys.tolist()))


def choose_calibration(
    z: np.ndarray, y: np.ndarray, texts: Sequence[str]
) -> tuple[Calibration, dict[str, float]]:
    """Platt or isotonic, by Brier score over 5 folds of the validation rows; isotonic
    must win by a margin (it has far more freedom than two numbers)."""
    folds = np.array([fold_of(t) for t in texts])
    cv: dict[str, list[float]] = {"platt": [], "isotonic": []}
    for k in range(5):
        test, fit_on = folds == k, folds != k
        if test.sum() == 0 or len(set(y[fit_on].tolist())) < 2:
            continue
        for kind, fitter in (("platt", fit_platt), ("isotonic", fit_isotonic)):
            cal = fitter(z[fit_on], y[fit_on])
            cv[kind].append(brier(y[test], cal.apply(z[test])))
    scores = {k: round(float(np.mean(v)), 5) for k, v in cv.items() if v}
    use_isotonic = scores and scores["isotonic"] < scores["platt"] - 0.002
    final = fit_isotonic(z, y) if use_isotonic else fit_platt(z, y)
    return final, scores


def objective(head: str, y: np.ndarray, p: np.ndarray) -> float:
    tp = float(np.sum(y & p))
    fp = float(np.sum(~y & p))
    fn = float(np.sum(y & ~p))
    tn = float(len(y)) - tp - fp - fn
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    if head != "upset":
        return f1
    f1_neg = 2 * tn / (2 * tn + fp + fn) if tn else 0.0
    return (f1 + f1_neg) / 2


def best_threshold(head: str, y: np.ndarray, prob: np.ndarray) -> float:
    scores = [objective(head, y, prob >= t) for t in THRESHOLD_GRID]
    return float(THRESHOLD_GRID[int(np.argmax(scores))])


def own_groups(languages: np.ndarray, y: np.ndarray) -> list[str]:
    """Languages with enough validation rows of both classes for their own fit."""
    out = []
    for lang in sorted(set(languages.tolist())):
        mask = languages == lang
        pos = int(y[mask].sum())
        if mask.sum() >= MIN_LANGUAGE_ROWS and min(pos, int(mask.sum()) - pos) >= MIN_CLASS_ROWS:
            out.append(lang)
    return out


@dataclass
class Head:
    weights: np.ndarray
    bias: float
    calibration: dict[str, Calibration]
    thresholds: dict[str, float]
    report: dict[str, Any]


def fit_head(rows: Sequence[Row], head: str, options: Options, cache: MatrixCache) -> Head:
    train = training_rows(rows, head, options)
    if not train:
        raise corpus_mod.MissingData(f"no train rows labelled {head!r}")
    y = np.array([bool(r["labels"][head]) for r in train])
    started = time.process_time()
    model = NbLogistic(
        cache.get(train, options), y, options, set_weights(train, options.set_weight)
    )
    weights = model.weights.astype(np.float16).astype(np.float32)  # as shipped
    bias = model.bias
    valid = calibration_rows(rows, head)
    yv = np.array([bool(r["labels"][head]) for r in valid])
    xv = cache.get(valid, options)
    z = np.asarray(xv @ weights.astype(np.float64)).ravel() + bias
    languages = np.array([r["language"] for r in valid])
    texts = [r["text"] for r in valid]
    calibration: dict[str, Calibration] = {}
    thresholds: dict[str, float] = {}
    chosen: dict[str, Any] = {}
    # The pooled fallback: customer text only when there is some (for upset).
    pool = np.array([in_domain(r) for r in valid])
    if head != "upset" or not pool.any():
        pool[:] = True
    pooled_texts = [t for t, m in zip(texts, pool, strict=True) if m]
    pooled, pooled_cv = choose_calibration(z[pool], yv[pool], pooled_texts)
    calibration["default"] = pooled
    thresholds["default"] = best_threshold(head, yv[pool], pooled.apply(z[pool]))
    chosen["default"] = {"calibration": pooled.kind, "cv_brier": pooled_cv, "n": int(pool.sum())}
    for lang in own_groups(languages, yv):
        mask = languages == lang
        cal, cv = choose_calibration(
            z[mask], yv[mask], [t for t, m in zip(texts, mask, strict=True) if m]
        )
        calibration[lang] = cal
        thresholds[lang] = best_threshold(head, yv[mask], cal.apply(z[mask]))
        chosen[lang] = {"calibration": cal.kind, "cv_brier": cv, "n": int(mask.sum())}
    counts = Counter(r["language"] for r in train)
    report = {
        "train_rows": dict(sorted(counts.items())),
        "train_sets": dict(sorted(Counter(r["source"] for r in train).items())),
        "calibrated_on": dict(sorted(Counter(r["source"] for r in valid).items())),
        "per_language": chosen,
    }
    # Timing goes to the log, not the model files (they must be byte-identical).
    log(f"{head}: fitted on {len(train)} rows in {time.process_time() - started:.1f} CPU-s")
    return Head(weights, bias, calibration, thresholds, report)


class MatrixCache:
    """Feature matrices by (options' features, row set), so a search featurises once."""

    def __init__(self) -> None:
        self._store: dict[tuple[int, bool, int], sparse.csr_matrix] = {}
        self._ids: dict[tuple[int, bool], dict[int, int]] = {}

    def get(self, rows: Sequence[Row], options: Options) -> sparse.csr_matrix:
        key = (options.bits, options.conjoin)
        index = self._ids.setdefault(key, {})
        missing = [r for r in rows if id(r) not in index]
        if missing:
            new = matrix(missing, *key)
            base = self._store.get((*key, 0))
            offset = 0 if base is None else base.shape[0]
            for i, r in enumerate(missing):
                index[id(r)] = offset + i
            self._store[(*key, 0)] = new if base is None else sparse.vstack([base, new]).tocsr()
        return self._store[(*key, 0)][[index[id(r)] for r in rows]]


def build(
    rows: Sequence[Row],
    options: Options,
    heads: Sequence[str] = HEADS,
    cache: MatrixCache | None = None,
) -> tuple[TextModel, dict[str, Any]]:
    """A model in memory (weights rounded as shipped) and what the fit reports."""
    cache = cache or MatrixCache()
    weights = np.zeros((1 << options.bits, len(HEADS)), dtype=np.float32)
    bias = np.zeros(len(HEADS))
    thresholds: dict[str, dict[str, float]] = {}
    calibration: dict[str, dict[str, Calibration]] = {}
    report: dict[str, Any] = {}
    for column, head in enumerate(HEADS):
        if head not in heads:
            thresholds[head] = {"default": 1.0}
            calibration[head] = {}
            continue
        fitted = fit_head(rows, head, options, cache)
        weights[:, column] = fitted.weights
        bias[column] = fitted.bias
        thresholds[head] = fitted.thresholds
        calibration[head] = fitted.calibration
        report[head] = fitted.report
    languages = {lang for r in report.values() for lang in r["train_rows"]}
    model = TextModel(
        version="unsaved",
        bits=options.bits,
        conjoin=options.conjoin,
        weights=weights,
        bias=bias,
        thresholds=thresholds,
        calibration=calibration,
        languages=frozenset(languages),
    )
    return model, report


# -- measuring on validation ----------------------------------------------------------


def objective_sets(rows: Sequence[Row]) -> list[Row]:
    """The valid rows a language is judged on: its customer-text sets, or, for a
    language that has none, its general sets (XED): every language counts."""
    valid = [r for r in rows if r["split"] == "valid" and "upset" in r["labels"]]
    covered = {r["language"] for r in valid if in_domain(r)}
    return [r for r in valid if in_domain(r) or r["language"] not in covered]


def validation_score(model: TextModel, rows: Sequence[Row]) -> dict[str, Any]:
    """Upset macro-F1 on each validation set of ``objective_sets`` (per-language
    thresholds), and their mean over languages (each language the mean of its sets):
    the search objective."""
    from services.classify.evaluation import binary_scores

    valid = objective_sets(rows)
    if not valid:
        return {"objective": 0.0, "sets": {}}
    prob = model.probabilities([r["text"] for r in valid], [r["language"] for r in valid])[:, 0]
    flags = prob >= model.thresholds_for("upset", [r["language"] for r in valid])
    per_set: dict[str, dict[str, Any]] = {}
    sources = sorted({r["source"] for r in valid})
    for source in sources:
        idx = [i for i, r in enumerate(valid) if r["source"] == source]
        pairs = [(bool(valid[i]["labels"]["upset"]), bool(flags[i])) for i in idx]
        per_set[source] = {"language": valid[idx[0]]["language"], **binary_scores(pairs)}
    by_language: dict[str, list[float]] = {}
    for scores in per_set.values():
        by_language.setdefault(scores["language"], []).append(scores["macro_f1"])
    objective_value = float(np.mean([np.mean(v) for v in by_language.values()]))
    return {"objective": round(objective_value, 4), "sets": per_set}


SEARCH_STEPS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("general", ("all", "none", "uncovered")),
    ("conjoin", (False, True)),
    ("bits", (19, 20)),
    ("c", (1.0, 4.0, 16.0)),
    ("class_weight", ("balanced", "none")),
    ("set_weight", ("none", "sqrt")),
)


_SHARED: Sequence[Row] = ()  # rows forked workers read (set by ``fork_map``)
_SHARED_CACHE = MatrixCache()  # features computed before forking, shared copy-on-write


def fork_map(
    func: Callable[[T], R],
    tasks: Sequence[T],
    rows: Sequence[Row],
    workers: int,
    features: Options | None = None,
) -> list[R]:
    """``map`` over forked processes that share ``rows`` (copy-on-write, no pickling):
    each fit is seeded and independent, so results do not depend on ``workers``. With
    ``features``, the upset rows are featurised once, before forking (``shared_cache``)."""
    global _SHARED
    _SHARED = rows
    if features is not None:
        _SHARED_CACHE.get([r for r in rows if "upset" in r["labels"]], features)
    if workers <= 1 or len(tasks) <= 1:
        return [func(t) for t in tasks]
    with multiprocessing.get_context("fork").Pool(min(workers, len(tasks))) as pool:
        return pool.map(func, tasks, chunksize=1)


def shared_rows() -> Sequence[Row]:
    return _SHARED


def shared_cache() -> MatrixCache:
    return _SHARED_CACHE


def _measure(options: Options) -> dict[str, Any]:
    model, _ = build(_SHARED, options, heads=("upset",))
    result = validation_score(model, _SHARED)
    log(f"search {asdict(options)} -> {result['objective']}")
    return {"options": asdict(options), **result}


def search(rows: Sequence[Row], start: Options = Options(), workers: int = 2) -> dict[str, Any]:
    """Greedy, one option at a time (its values fitted in parallel), on the upset head's
    validation objective; ties keep the earlier (simpler) value."""
    tried: dict[str, dict[str, Any]] = {}

    def key(options: Options) -> str:
        return json.dumps(asdict(options), sort_keys=True)

    best = start
    for name, values in SEARCH_STEPS:
        candidates = [replace(best, **{name: v}) for v in values]
        todo = [c for c in candidates if key(c) not in tried]
        for options, result in zip(todo, fork_map(_measure, todo, rows, workers), strict=True):
            tried[key(options)] = result
        scored = [(tried[key(c)]["objective"], -i, c) for i, c in enumerate(candidates)]
        best = max(scored, key=lambda t: (t[0], t[1]))[2]
    return {
        "options": asdict(best),
        "objective": "mean over languages of upset macro-F1 on the validation sets of "
        "objective_sets (customer text; XED for a language without any)",
        "best": tried[key(best)]["objective"],
        "tried": list(tried.values()),
    }


# -- writing ------------------------------------------------------------------------


def write_npz(path: Path, weights: np.ndarray) -> None:
    """An .npz numpy reads, with fixed zip timestamps: same weights, same bytes."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, weights, allow_pickle=False)
    info = zipfile.ZipInfo("weights.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(info, buffer.getvalue(), compresslevel=9)


def data_fingerprint(rows: Sequence[Row]) -> str:
    digest = hashlib.sha256()
    for r in rows:
        if r["split"] in ("train", "valid"):
            digest.update(
                json.dumps(
                    [r["text"], r["language"], r["labels"], r["source"], r["split"]],
                    ensure_ascii=False,
                    sort_keys=True,
                ).encode()
            )
    return digest.hexdigest()[:16]


def save(
    model: TextModel,
    report: dict[str, Any],
    corpus: Corpus,
    options: Options,
    out_dir: Path,
    valid_figures: dict[str, Any],
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    weights16 = model.weights.astype(np.float16)
    calibration = {
        head: {lang: c.to_json() for lang, c in table.items()}
        for head, table in model.calibration.items()
    }
    body = {
        "bits": model.bits,
        "conjoin_language": model.conjoin,
        "heads": list(HEADS),
        "languages": sorted(model.languages),
        "bias": [round(float(b), 8) for b in model.bias],
        "thresholds": model.thresholds,
        "calibration": calibration,
    }
    digest = hashlib.sha256(weights16.tobytes() + json.dumps(body, sort_keys=True).encode())
    meta = {
        "version": f"hashed-lr-{digest.hexdigest()[:10]}",
        **body,
        "options": asdict(options),
        "seed": SEED,
        "data_fingerprint": data_fingerprint(corpus.rows),
        "training": report,
        "rows": corpus.counts(),
        "dedup_removed": {"train": corpus.removed, "valid": corpus.removed_valid},
        "sets": corpus.sets,
        "valid": valid_figures,
        "data": ATTRIBUTION,
        "rebuild": "make train  (= amends triage-train)",
    }
    write_npz(out_dir / "text_model.npz", weights16)
    (out_dir / "text_model.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    return meta


def valid_report(model: TextModel, rows: Sequence[Row]) -> dict[str, Any]:
    """Every figure of ``triage-eval`` on the valid splits (what thresholds were fit on)."""
    from services.classify.evaluation import evaluate

    valid = [r for r in rows if r["split"] == "valid"]
    report = evaluate(valid, model)
    return {k: report[k] for k in ("rows", "by_language", "by_dataset", "in_domain_by_language")}


def train(
    eval_dir: Path,
    triage_dir: Path | None,
    out_dir: Path,
    options: Options,
    require: bool = True,
) -> dict[str, Any]:
    corpus = corpus_mod.load(eval_dir, triage_dir, require=require)
    log(
        f"corpus: {len(corpus.rows)} rows; removed from train (in a valid/test split): "
        f"{sum(corpus.removed.values())}, from valid (in a test split): "
        f"{sum(corpus.removed_valid.values())}"
    )
    model, report = build(corpus.rows, options)
    version_free = valid_report(model, corpus.rows)
    meta = save(model, report, corpus, options, out_dir, version_free)
    from services.classify.training import card

    card.write(out_dir)
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="amends triage-train", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR)
    parser.add_argument(
        "--data", type=Path, default=None, help="converted sets (default $AMENDS_TRIAGE_DATA)"
    )
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--options", type=Path, default=OPTIONS_PATH)
    parser.add_argument(
        "--search",
        action="store_true",
        help="choose the options on validation and write them to --options first",
    )
    parser.add_argument("--allow-missing", action="store_true", help="train on the sets present")
    parser.add_argument("--workers", type=int, default=2, help="processes for --search")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    started = time.time()
    if args.search:
        corpus = corpus_mod.load(args.eval_dir, args.data, require=not args.allow_missing)
        found = search(corpus.rows, Options.read(args.options), args.workers)
        args.options.write_text(json.dumps(found, indent=1) + "\n")
        log(f"options: {found['options']} (validation objective {found['best']})")
    options = Options.read(args.options)
    meta = train(args.eval_dir, args.data, args.out, options, require=not args.allow_missing)
    log(f"wrote {args.out} ({meta['version']}) in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
