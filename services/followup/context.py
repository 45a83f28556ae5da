"""What every followup handler shares: its context (settings, store, timers, clock) and
the statuses and escalation kinds it deals in.

Case status moves (followup's part of it):
  resolved --satisfied--> closed          resolved --no answer, reminder, no answer--> closed
  resolved --unsatisfied--> reopened      resolved/closed --public complaint in watch--> reopened
``followup.cycle`` counts reopenings; timers carry the cycle they belong to and do nothing
once the case moved on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection

from shared.events import utcnow
from shared.events.common import CaseStatus
from shared.store import Document, Store

from .settings import FollowupSettings
from .timers import TimerStore

log = logging.getLogger(__name__)


RESOLVED = CaseStatus.RESOLVED.value
CLOSED = CaseStatus.CLOSED.value
REOPENED = CaseStatus.REOPENED.value
AFTER_RESOLUTION = (RESOLVED, CLOSED)

# Escalation kinds followup raises (route re-queues the two reopen kinds).
PROMISE_BROKEN = "promise_broken"
DISSATISFIED = "dissatisfied"
REOPENED_PUBLIC = "reopened"


@dataclass(slots=True)
class Followup:
    """What every handler needs: settings, the store, the timers and a clock."""

    settings: FollowupSettings
    store: Store
    timers: TimerStore
    clock: Callable[[], datetime] = field(default=utcnow)

    @property
    def cases(self) -> AsyncCollection[Document]:
        return self.store["cases"]

    def seconds(self, value: float) -> timedelta:
        return timedelta(seconds=value)
