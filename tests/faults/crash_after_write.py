"""``python -m tests.faults.crash_after_write <service> <polls> [output|handled]``: the
service as it runs in production, except that it kills itself (SIGKILL) once the handlers
of its ``<polls>``-th poll with output returned -- their bulk writes stored -- and before
that poll's events are published and its offsets committed: the worst moment to die.
``handled`` counts every topic's poll handled, output or not (followup's polls of the
fault scenarios announce nothing: they plan follow-ups)."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from shared.batch import BatchHandler, Outgoing
from shared.events.catalogue import EventSpec
from shared.service import run


def main(name: str, polls: int, mode: str = "output") -> None:
    service = importlib.import_module(f"services.{name}.app").build_service()
    publish = service.publish
    seen = 0

    if mode == "handled":
        runner = service.polls
        run_poll = runner.run

        async def run_or_die(spec: EventSpec, handler: BatchHandler, records: Sequence[Any]) -> Any:
            nonlocal seen
            outgoing = await run_poll(spec, handler, records)
            seen += 1
            if seen >= polls:
                print(f"crash_after_write: SIGKILL after poll {seen}'s writes", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return outgoing

        runner.run = run_or_die  # type: ignore[method-assign]
        run(service)
        return

    async def publish_or_die(outgoing: Sequence[Outgoing]) -> None:
        nonlocal seen
        if outgoing:
            seen += 1
            if seen >= polls:
                print(f"crash_after_write: SIGKILL after poll {seen}'s writes", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
        await publish(outgoing)

    service.publish = publish_or_die  # type: ignore[method-assign]
    run(service)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4])
