from __future__ import annotations

import random

from services.route.spikes import Windows, evaluate, has_ended, is_spike

W = Windows(window=3600, baseline=86400)
NOW = 1_700_000_000.0


def steady(rate_per_window: int, seed: int = 1) -> dict[int, int]:
    """A Poisson-like steady flow over the baseline and the current window."""
    rng = random.Random(seed)
    counts: dict[int, int] = {}
    for b in range(W.horizon(NOW), W.bucket_of(NOW) + 1, W.bucket):
        counts[b] = sum(rng.random() < rate_per_window / W.per_window / 4 for _ in range(4))
    return counts


def test_window_geometry() -> None:
    assert W.bucket == 600 and W.per_window == 6 and W.periods == 24
    assert W.window_start(NOW) + 5 * 600 == W.bucket_of(NOW)


def test_buckets_expire_only_after_every_evaluation_that_reads_them() -> None:
    bucket = W.bucket_of(NOW)
    expires = W.expires(bucket)
    readers = [
        t
        for t in range(bucket, bucket + 2 * int(W.window + W.baseline), W.bucket)
        if W.horizon(t) <= bucket
    ]
    assert readers and max(readers) < expires  # every evaluation that reads it comes first
    assert W.horizon(expires) > bucket  # when it goes, nothing reads it any more
    assert expires - bucket <= W.window + W.baseline + 86_400  # bounded: not kept forever


def test_normal_traffic_is_not_a_spike() -> None:
    for seed in range(20):
        stat = evaluate(steady(3, seed), NOW, W)
        assert not is_spike(stat, 3.0, 5), stat


def test_burst_is_a_spike() -> None:
    counts = steady(3)
    counts[W.bucket_of(NOW)] = counts.get(W.bucket_of(NOW), 0) + 20
    stat = evaluate(counts, NOW, W)
    assert is_spike(stat, 3.0, 5)
    assert stat.window_count >= 20 and stat.z_score > 3


def test_new_value_needs_a_minimum_count() -> None:
    stat = evaluate({W.bucket_of(NOW): 3}, NOW, W)
    assert stat.baseline_mean == 0 and not is_spike(stat, 3.0, 5)
    assert is_spike(evaluate({W.bucket_of(NOW): 6}, NOW, W), 3.0, 5)


def test_hysteresis() -> None:
    raised = evaluate({W.bucket_of(NOW): 10}, NOW, W)
    assert not has_ended(raised, 3.0, 5)
    later = NOW + 2 * 3600
    assert has_ended(evaluate({W.bucket_of(NOW): 10}, later, W), 3.0, 5)
