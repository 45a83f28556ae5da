"""Spike detection: the recent window of one category/product/region against its own past.

Cases are counted in small time buckets (a sixth of the window). The window's count is
compared with the counts of the window-sized periods of the baseline before it:
z = (count - mean) / stddev, where stddev has a Poisson floor (sqrt(mean), at least 1)
so that a quiet, perfectly regular baseline does not turn one extra case into a spike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

DIMENSIONS = ("category", "product", "region")
BUCKETS_PER_WINDOW = 6


@dataclass(frozen=True, slots=True)
class Windows:
    window: float
    baseline: float

    @property
    def bucket(self) -> int:
        return max(1, round(self.window / BUCKETS_PER_WINDOW))

    @property
    def per_window(self) -> int:
        return max(1, round(self.window / self.bucket))

    @property
    def periods(self) -> int:
        return max(1, round(self.baseline / (self.per_window * self.bucket)))

    def bucket_of(self, epoch_seconds: float) -> int:
        return int(epoch_seconds // self.bucket) * self.bucket

    def window_start(self, now: float) -> int:
        return self.bucket_of(now) - (self.per_window - 1) * self.bucket

    def expires(self, bucket_start: int) -> float:
        """When a bucket is older than any evaluation reads (plus a day of slack): the
        TTL index deletes it then, so the collection holds one baseline, not all time."""
        return bucket_start + self.window + self.baseline + 86_400

    def horizon(self, now: float) -> int:
        """Oldest bucket the evaluation reads."""
        return self.window_start(now) - self.periods * self.per_window * self.bucket


@dataclass(frozen=True, slots=True)
class SpikeStat:
    window_count: int
    baseline_mean: float
    baseline_stddev: float
    z_score: float


def evaluate(counts: Mapping[int, int], now: float, windows: Windows) -> SpikeStat:
    """Window count and z-score from ``bucket start -> count`` (missing buckets are 0)."""
    step = windows.bucket
    start = windows.window_start(now)

    def period(first: int) -> int:
        return sum(counts.get(first + i * step, 0) for i in range(windows.per_window))

    current = period(start)
    width = windows.per_window * step
    history = [period(start - k * width) for k in range(1, windows.periods + 1)]
    mean = sum(history) / len(history)
    stddev = math.sqrt(sum((x - mean) ** 2 for x in history) / len(history))
    floor = max(stddev, math.sqrt(mean), 1.0)
    return SpikeStat(current, mean, stddev, (current - mean) / floor)


def is_spike(stat: SpikeStat, threshold: float, min_count: int) -> bool:
    return stat.window_count >= min_count and stat.z_score >= threshold


def has_ended(stat: SpikeStat, threshold: float, min_count: int) -> bool:
    """Hysteresis: a raised spike re-arms only once clearly back to normal (no flapping)."""
    return stat.window_count < min_count or stat.z_score < threshold / 2
