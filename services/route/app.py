"""The route service: registrations and background loops only; decisions in handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from shared.events.catalogue import (
    ACTIVITY,
    ASSIGNED,
    CLASSIFIED,
    DIRECTORY,
    ESCALATED,
    LESSONS,
    PRESENCE,
    RESOLVED,
    SPIKES,
)
from shared.service import Outgoing, Service

from .directory import seed_directory
from .handlers import Router
from .lessons import Subscriptions
from .settings import RouteSettings
from .state import INDEXES

log = logging.getLogger(__name__)


def build(settings: RouteSettings | None = None) -> tuple[Service, Router]:
    """The service and its router (tests drive the router's passes directly)."""
    settings = settings or RouteSettings()
    service = Service("route", settings, indexes=INDEXES)

    async def publish(outgoing: Sequence[Outgoing]) -> None:
        # Looked up at each call: a wrapper set on the service later (the crash-after-write
        # fault test) sees route's outbox flushes too.
        await service.publish(outgoing)

    router = Router(
        service.store, settings, publish, Subscriptions.load(settings.route_departments_path)
    )
    service.consume_batch(CLASSIFIED, router.handle_classified)
    service.consume_batch(DIRECTORY, router.handle_directory)
    service.consume_batch(PRESENCE, router.handle_presence)
    service.consume_batch(ACTIVITY, router.handle_activity)
    service.consume_batch(RESOLVED, router.handle_resolved)
    # followup's reopened cases come back to be routed (route's own kinds are ignored).
    service.consume_batch(ESCALATED, router.handle_escalated)
    for spec in (ASSIGNED, ESCALATED, LESSONS, SPIKES):
        service.declare_publisher(spec)

    if settings.route_seed_path is not None:
        seed_path = settings.route_seed_path

        async def seed() -> None:
            await seed_directory(service.store, seed_path)

        service.on_startup(seed)

    async def drain_loop() -> None:
        # Woken at once when capacity may have freed; periodically for shift changes.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    router.wake.wait(), timeout=settings.route_drain_interval_seconds
                )
            router.wake.clear()
            await router.drain()

    service.background(drain_loop)
    service.background(_every(settings.route_sla_sweep_seconds, router.sla_sweep))
    service.background(_every(settings.route_outbox_sweep_seconds, router.outbox_sweep))
    service.background(_every(settings.route_spike_check_seconds, router.detect_spikes))
    service.background(_every(settings.route_digest_check_seconds, router.produce_digests))
    service.background(_every(settings.route_metrics_seconds, router.refresh_gauges))
    return service, router


def build_service(settings: RouteSettings | None = None) -> Service:
    return build(settings)[0]


def _every(seconds: float, work: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    async def loop() -> None:
        while True:
            await work()
            await asyncio.sleep(seconds)

    loop.__name__ = f"every_{getattr(work, '__name__', 'pass')}"
    return loop
