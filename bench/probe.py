"""Watching the pipeline: consumer lag per service's group, CPU samples, and the verdict
on a window (sustained or not).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.figures import fig, log
from bench.machine import cpu_seconds
from bench.servers import server_pids
from cli.run import ServiceProcesses
from shared.events import catalogue
from shared.settings import Settings

# What each service's consumer group reads (shared/events/catalogue.py; services/*/app.py).
INPUTS: dict[str, tuple[str, ...]] = {
    "ingest": (catalogue.INTAKE.topic,),
    "classify": (catalogue.RECEIVED.topic,),
    "route": (
        catalogue.CLASSIFIED.topic,
        catalogue.DIRECTORY.topic,
        catalogue.PRESENCE.topic,
        catalogue.ACTIVITY.topic,
        catalogue.RESOLVED.topic,
    ),
    "followup": (
        catalogue.ASSIGNED.topic,
        catalogue.ACTIVITY.topic,
        catalogue.RESOLVED.topic,
        catalogue.RECEIVED.topic,
    ),
}


class LagProbe:
    """Consumer lag (end offset - committed offset) of each service's group, from Kafka."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
        self.partitions: dict[str, list[TopicPartition]] = {}

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()
        deadline = time.monotonic() + 60
        for service, topics in INPUTS.items():
            tps: list[TopicPartition] = []
            for topic in topics:
                name = self.settings.topic(topic)
                # Every input topic must be known, or its lag would silently count as 0.
                while not (parts := self.consumer.partitions_for_topic(name)):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"topic {name} has no partitions in the metadata")
                    await self.consumer._client.force_metadata_update()
                    await asyncio.sleep(0.5)
                tps.extend(TopicPartition(name, p) for p in sorted(parts))
            self.partitions[service] = tps

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def lag(self) -> dict[str, int]:
        all_tps = sorted({tp for tps in self.partitions.values() for tp in tps})
        ends = await self.consumer.end_offsets(all_tps) if all_tps else {}
        out = {}
        for service, tps in self.partitions.items():
            committed = await self.admin.list_consumer_group_offsets(
                self.settings.group_id(service)
            )
            total = 0
            for tp in tps:
                meta = committed.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else 0
                total += max(0, ends.get(tp, 0) - done)
            out[service] = total
        return out


@dataclass
class Window:
    rate: float
    duration: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    achieved: float = 0.0
    drain_seconds: float | None = None


async def monitor(
    probe: LagProbe, procs: ServiceProcesses, window: Window, stop: asyncio.Event
) -> None:
    started = time.monotonic()
    pids = {name: p.pid for name, p in procs.procs.items()} | server_pids()
    last_cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    last_t = started
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2.0)
        now = time.monotonic()
        try:
            lag = await probe.lag()
        except Exception as exc:
            log(f"lag probe failed: {exc!r}")
            continue
        cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        dt = max(1e-6, now - last_t)
        window.samples.append(
            {
                "t": round(now - started, 2),
                "lag": lag,
                "cpu_percent": {n: round(100 * (cpu[n] - last_cpu.get(n, 0)) / dt) for n in cpu},
            }
        )
        last_cpu, last_t = cpu, now


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def judge(window: Window) -> dict[str, Any]:
    """Sustained: the generator kept the rate and the total lag did not grow."""
    points = [
        (s["t"], float(sum(s["lag"].values())))
        for s in window.samples
        if s["t"] <= window.duration + 1
    ]
    half = [p for p in points if p[0] >= window.duration / 3]
    slope = _slope(half)
    final = points[-1][1] if points else 0.0
    peak = max((p[1] for p in points), default=0.0)
    cpu: dict[str, list[float]] = defaultdict(list)
    for s in window.samples:
        if s["t"] <= window.duration:
            for name, value in s["cpu_percent"].items():
                cpu[name].append(value)
    allowed_final = max(2.0 * window.rate, 400.0)
    sustained = (
        window.achieved >= 0.95 * window.rate
        and slope <= max(0.02 * window.rate, 2.0)
        and final <= allowed_final
    )
    return {
        "offered_rate": fig(window.rate, "complaints/s"),
        "achieved_send_rate": fig(window.achieved, "complaints/s"),
        "window": fig(window.duration, "s"),
        "lag_growth": fig(slope, "messages/s", note="least-squares slope, last 2/3 of window"),
        "lag_final": fig(final, "messages"),
        "lag_peak": fig(peak, "messages"),
        "drain_after_window": fig(window.drain_seconds, "s"),
        "cpu_mean": {
            n: fig(statistics.fmean(v), "% of one core") for n, v in sorted(cpu.items()) if v
        },
        "sustained": sustained,
    }
