"""The timer loop: claim due timers, fire them, publish, then mark them done.

Publishing comes before marking done: a crash in between re-fires the timer after its
lease, and the re-fired events carry the same ids, so the CRM drops the duplicate. The
other order could lose a follow-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from shared.events.lifecycle import FollowupRequest
from shared.service import OUTAGE_ERRORS, Outgoing

from . import metrics
from .context import Followup
from .firing import fire, read_cases
from .timers import Timer

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]


async def fire_due_timers(ctx: Followup, publish: Publish, owner: str) -> int:
    """One round: up to ``followup_timer_batch`` due timers. Returns how many were claimed."""
    settings = ctx.settings
    now = ctx.clock()
    claimed = await ctx.timers.claim_many(
        now, owner, settings.followup_lease_seconds, limit=settings.followup_timer_batch
    )
    due: list[Timer] = []
    for timer in claimed:
        if timer.attempts > settings.followup_timer_max_attempts:
            log.error(
                "timer %s (%s) failed %d times; giving up",
                timer.timer_id,
                timer.kind,
                timer.attempts - 1,
            )
            await ctx.timers.release(timer, owner, retry_at=now, give_up=True)
            continue
        due.append(timer)
    # One read of the round's cases; a case's second timer of the round reads it again,
    # so it sees what the first one wrote.
    cases = await read_cases(ctx, due)
    fired: list[tuple[Timer, list[Outgoing]]] = []
    seen: set[str] = set()
    for timer in due:
        try:
            fresh = timer.case_id in seen
            seen.add(timer.case_id)
            fired.append((timer, await fire(ctx, timer, None if fresh else cases)))
        except OUTAGE_ERRORS:
            raise  # the claimed timers come back after their lease
        except Exception:
            log.exception("timer %s (%s) failed; retrying later", timer.timer_id, timer.kind)
            retry_at = now + timedelta(
                seconds=settings.followup_poll_interval_seconds * 2**timer.attempts
            )
            await ctx.timers.release(timer, owner, retry_at=retry_at, give_up=False)
    await publish([item for _, outs in fired for item in outs])
    completed = await ctx.timers.complete_many([t for t, _ in fired], owner, ctx.clock())
    for timer, outs in fired:
        if timer.timer_id not in completed:
            log.warning("timer %s: lease lost before completion (fired twice)", timer.timer_id)
        metrics.timers_fired.labels(timer.kind).inc()
        metrics.timer_fire_delay.observe(max(0.0, (now - timer.due_at).total_seconds()))
        for item in outs:
            if isinstance(item.payload, FollowupRequest):
                metrics.followups_sent.labels(item.payload.kind).inc()
    return len(claimed)


async def run_timer_loop(ctx: Followup, publish: Publish, owner: str) -> None:
    """Fire timers until cancelled; drains a backlog without sleeping between rounds."""
    batch = ctx.settings.followup_timer_batch
    while True:
        claimed = await fire_due_timers(ctx, publish, owner)
        if claimed < batch:
            await asyncio.sleep(ctx.settings.followup_poll_interval_seconds)
