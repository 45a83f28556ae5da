"""Training: the corpus loader (de-duplication, missing data), calibration, thresholds,
and a reproducible rebuild (same data -> byte-identical files)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

from services.classify.text.calibration import Calibration, calibrate
from services.classify.text.model import TextModel
from services.classify.training import corpus, train
from services.classify.training.corpus import MissingData, deduplicate

GOOD = [
    "Thank you, great service and fast delivery",
    "Everything arrived on time, lovely staff",
    "Very happy with the product, works perfectly",
    "Quick answer from support, problem solved",
    "Kiitos, todella hyvä palvelu",
    "Paketti tuli ajallaan, kaikki kunnossa",
    "Erinomainen tuote, suosittelen",
    "Nopea toimitus ja ystävällinen asiakaspalvelu",
]
BAD = [
    "The parcel never arrived and nobody answers",
    "Worst service ever, I want my money back",
    "Broken on arrival, terrible quality",
    "I was charged twice and support ignores me",
    "Paketti ei koskaan saapunut, kukaan ei vastaa",
    "Huonoin palvelu ikinä, haluan rahani takaisin",
    "Tuote rikki, surkea laatu",
    "Minulta veloitettiin kahdesti eikä kukaan auta",
]


def rows_for(split: str, copies: int) -> list[dict[str, Any]]:
    out = []
    for k in range(copies):
        for label, texts in ((0, GOOD), (1, BAD)):
            for i, text in enumerate(texts):
                language = "fi" if i >= 4 else "en"
                out.append(
                    {
                        "text": f"{text} ({split} {k})",
                        "language": language,
                        "labels": {"upset": label, "anger": label if k % 2 else 0},
                        "source": f"{language}_shop",
                        "split": split,
                        "domain": "product_reviews",
                    }
                )
    return out


def write_set(directory: Path, name: str, rows: list[dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with gzip.open(directory / f"{name}.jsonl.gz", "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def test_a_text_in_valid_or_test_is_removed_from_every_train_split() -> None:
    rows = [
        {"text": "Same  TEXT", "split": "test", "source": "a"},
        {"text": "same text", "split": "train", "source": "b"},
        {"text": "same text", "split": "valid", "source": "c"},
        {"text": "only in train", "split": "train", "source": "b"},
        {"text": "valid one", "split": "valid", "source": "a"},
        {"text": "Valid one", "split": "train", "source": "c"},
    ]
    kept, removed, removed_valid = deduplicate(rows)
    assert [r["text"] for r in kept] == ["Same  TEXT", "only in train", "valid one"]
    assert removed == {"b": 1, "c": 1} and removed_valid == {"c": 1}


def test_missing_sets_are_named(tmp_path: Path) -> None:
    sets = tmp_path / "sets"
    sets.mkdir()
    (sets / "de_shop.yaml").write_text("id: de_shop\nlanguage: de\n")
    with pytest.raises(MissingData) as caught:
        corpus.load(tmp_path / "no-eval", tmp_path / "data", dirs=[sets])
    message = str(caught.value)
    assert "de_shop" in message and "convert.de_shop" in message and "shared/eval" in message
    assert "no converted set" in message


def test_calibrations_are_monotonic_and_round_trip() -> None:
    z = np.linspace(-6, 6, 200)
    y = (np.random.default_rng(1).random(200) < 1 / (1 + np.exp(-2 * z))).astype(int)
    for cal in (train.fit_platt(z, y), train.fit_isotonic(z, y)):
        p = cal.apply(z)
        assert np.all(np.diff(p) >= 0) and p.min() > 0 and p.max() < 1
        assert np.allclose(Calibration.from_json(cal.to_json()).apply(z), p)
    table = {"default": Calibration(kind="platt", a=1.0, b=0.0), "fi": train.fit_platt(z, y)}
    langs = np.array(["fi", "xx"])
    out = calibrate(table, np.array([1.0, 1.0]), langs)
    assert out[1] == pytest.approx(1 / (1 + np.exp(-1.0)), abs=1e-3) and out[0] != out[1]


def test_threshold_is_chosen_where_it_separates() -> None:
    prob = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    y = np.array([False, False, False, True, True, True])
    t = train.best_threshold("upset", y, prob)
    assert 0.3 < t <= 0.6


def test_training_is_reproducible_and_stores_per_language_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    write_set(data, "shop", rows_for("train", 6) + rows_for("valid", 3) + rows_for("test", 1))
    monkeypatch.setattr(train, "MIN_LANGUAGE_ROWS", 20)
    monkeypatch.setattr(train, "MIN_CLASS_ROWS", 5)
    options = train.Options(bits=12, c=1.0)
    outputs = []
    for name in ("one", "two"):
        out = tmp_path / name
        train.train(tmp_path / "no-eval", data, out, options, require=False)
        outputs.append(out)
    for file in ("text_model.npz", "text_model.json"):
        assert (outputs[0] / file).read_bytes() == (outputs[1] / file).read_bytes(), file
    meta = json.loads((outputs[0] / "text_model.json").read_text())
    assert {"default", "en", "fi"} <= set(meta["thresholds"]["upset"])
    assert meta["dedup_removed"]["train"] == {}
    assert (outputs[0] / "MODEL.md").read_text().startswith("# Text model card")
    model = TextModel.load(outputs[0])
    probs = model.probabilities(["Worst service ever, I want my money back"], ["en"])
    assert probs.shape == (1, 2) and probs[0, 0] > 0.5
    assert model.threshold("upset", "tr") == meta["thresholds"]["upset"]["default"]
    assert model.knows("fi") and not model.knows("tr")


def _fit_objective(c: float) -> float:
    rows = train.shared_rows()
    model, _ = train.build(rows, train.Options(bits=12, c=c), ("upset",), train.shared_cache())
    return float(train.validation_score(model, rows)["objective"])


def test_forked_fits_give_the_same_figures_as_fits_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(train, "MIN_LANGUAGE_ROWS", 20)
    monkeypatch.setattr(train, "MIN_CLASS_ROWS", 5)
    rows = rows_for("train", 6) + rows_for("valid", 3)
    features = train.Options(bits=12)
    alone = train.fork_map(_fit_objective, [0.5, 2.0], rows, 1, features)
    forked = train.fork_map(_fit_objective, [0.5, 2.0], rows, 2, features)
    assert alone == forked and all(0 < x <= 1 for x in alone)


def test_general_sets_join_the_upset_head_only_where_chosen() -> None:
    def row(language: str, domain: str, split: str = "train") -> dict[str, Any]:
        return {
            "text": f"{language} {domain} {split}",
            "language": language,
            "labels": {"upset": 1},
            "source": f"{language}_{domain}",
            "split": split,
            "domain": domain,
        }

    rows = [
        row("de", "hotel_reviews"),
        row("de", "film_subtitles"),
        row("fi", "film_subtitles"),
        row("de", "hotel_reviews", "valid"),
        row("de", "film_subtitles", "valid"),
        row("fi", "film_subtitles", "valid"),
    ]

    def used(general: str) -> set[str]:
        return {
            r["source"] for r in train.training_rows(rows, "upset", train.Options(general=general))
        }

    assert used("all") == {"de_hotel_reviews", "de_film_subtitles", "fi_film_subtitles"}
    assert used("none") == {"de_hotel_reviews"}
    assert used("uncovered") == {"de_hotel_reviews", "fi_film_subtitles"}
    # Every language is judged: customer text where it has some, XED where it has none.
    assert {r["source"] for r in train.objective_sets(rows)} == {
        "de_hotel_reviews",
        "fi_film_subtitles",
    }
    # Anger is trained on every set that labels it.
    assert len(train.training_rows(rows, "anger", train.Options(general="none"))) == 0
