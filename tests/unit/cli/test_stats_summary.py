"""`amends stats`: the CSAT summary computed from the server's score groups."""

from __future__ import annotations

from cli.stats import summarise_satisfaction


def test_csat_mean_and_distribution() -> None:
    summary = summarise_satisfaction(
        [("csat", 5, 5, 3), ("csat", 1, 5, 1), (None, 4, 5, 2), ("csat", None, 5, 9)]
    )
    assert summary == {
        "responses": 6,
        "mean": round((15 + 1 + 8) / 6, 3),
        "scale_max": 5,
        "distribution": {"1": 1, "4": 2, "5": 3},
    }


def test_nps_is_separate() -> None:
    summary = summarise_satisfaction([("nps", 10, 10, 6), ("nps", 8, 10, 2), ("nps", 3, 10, 2)])
    assert summary["responses"] == 0 and summary["mean"] is None
    assert summary["nps"] == {"responses": 10, "score": 40.0}
