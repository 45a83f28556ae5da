"""The followup service: registrations only (the decisions live in progress.py, answers.py
and firing.py)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from shared.batch import BatchHandler, Handled, Incoming
from shared.events import catalogue
from shared.service import Service

from .answers import on_received
from .context import Followup
from .loop import run_timer_loop
from .progress import on_activity, on_assigned, on_resolved
from .settings import FollowupSettings
from .timers import CLAIM_INDEXES, DONE_INDEXES, TIMER_INDEXES, TimerStore

NAME = "followup"


def build_service(settings: FollowupSettings | None = None) -> Service:
    settings = settings or FollowupSettings()
    service = Service(NAME, settings, indexes=[TIMER_INDEXES, DONE_INDEXES, CLAIM_INDEXES])
    ctx = Followup(settings=settings, store=service.store, timers=TimerStore(service.store))

    def bind(
        fn: Callable[[Followup, Sequence[Incoming]], Awaitable[Handled]],
    ) -> BatchHandler:
        return partial(fn, ctx)

    # Each topic's records of a poll go to its handler as one unit.
    service.consume_batch(catalogue.ASSIGNED, bind(on_assigned))
    service.consume_batch(catalogue.ACTIVITY, bind(on_activity))
    service.consume_batch(catalogue.RESOLVED, bind(on_resolved))
    service.consume_batch(catalogue.RECEIVED, bind(on_received))
    service.declare_publisher(catalogue.FOLLOWUP_REQUESTS)
    service.declare_publisher(catalogue.ESCALATED)

    # One owner per running instance: a restarted process must not inherit old leases.
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def timer_loop() -> None:
        await run_timer_loop(ctx, service.publish, owner)

    service.background(timer_loop)
    return service
