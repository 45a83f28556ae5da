"""The README table and the model card are generated from the measured JSON, not typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.triage import table
from services.classify.training import card

SCORES = {
    "precision": 0.8,
    "recall": 0.9,
    "f1": 0.85,
    "macro_f1": 0.87,
    "support": 120,
    "positives": 60,
    "confusion": {"tp": 54, "fp": 13, "fn": 6, "tn": 47},
    "calibration": {"brier": 0.11, "ece": 0.03},
}


def result(version: str = "hashed-lr-test") -> dict[str, Any]:
    return {
        "model_version": version,
        "measured_at": "2026-12-07T03:00:00Z",
        "texts_per_second": 20000,
        "cascade_share": 0.0,
        "speed_baseline": {"texts_per_second": 40000, "text_part_ratio": 0.5},
        "in_domain_by_language": {"de": {"upset": SCORES}},
        "by_dataset": {"de_shop": {"upset": SCORES}, "de_offensive": {"abusive": SCORES}},
        "cues": {"de_offensive": {"abusive": SCORES}},
        "leave_one_domain_out": [
            {
                "language": "de",
                "domain": "hotel_reviews",
                "sets": ["de_shop"],
                "scores": SCORES,
                "with_domain_macro_f1": 0.9,
            }
        ],
        "targets": [{"target": "de: upset macro-F1 >= 0.85", "measured": 0.87, "holds": True}],
    }


def test_readme_table_is_rewritten_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{table.START}\nold figures\n{table.END}\nafter\n")
    measured = tmp_path / "triage.json"
    measured.write_text(json.dumps(result()))
    assert not table.update(readme, measured, check=True)
    table.update(readme, measured)
    text = readme.read_text()
    assert "old figures" not in text and text.startswith("intro") and text.endswith("after\n")
    assert (
        "| de | 0.800 | 0.900 | 0.850 | **0.870** | 0.110 | 0.030 | 54 / 13 / 6 / 47 | 120 |"
        in text
    )
    assert "hotel_reviews 0.870 (shipped 0.900)" in text and "20,000 texts per" in text
    assert table.update(readme, measured, check=True)


def test_model_card_shows_test_figures_only_for_its_own_version() -> None:
    meta = {
        "version": "hashed-lr-test",
        "bits": 19,
        "options": {"c": 4.0},
        "rows": {"de_shop": {"train": 10, "valid": 2, "test": 2}},
        "sets": {"de_shop": {"language": "de", "licence": "CC-BY-4.0", "citation": "A, B"}},
        "thresholds": {"upset": {"default": 0.5}},
        "training": {"upset": {"per_language": {"default": {"calibration": "platt", "n": 2}}}},
        "data": ["XED (Öhman et al.)"],
        "valid": {"in_domain_by_language": {"de": {"upset": SCORES}}, "by_dataset": {}},
    }
    same = card.render(meta, None, result())
    assert "Leave one domain out" in same and "| de | 0.800 |" in same
    assert "XED (Öhman et al.)" in same and "CC-BY-4.0" in same
    other = card.render(meta, None, result("hashed-lr-other"))
    assert "Not measured for this version yet" in other
