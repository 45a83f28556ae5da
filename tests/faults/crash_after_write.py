"""``python -m tests.faults.crash_after_write <service> <polls>``: the service as it runs
in production, except that it kills itself (SIGKILL) once the handlers of its
``<polls>``-th poll with output returned -- their bulk writes stored -- and before that
poll's events are published and its offsets committed: the worst moment to die."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Sequence

from shared.batch import Outgoing
from shared.service import run


def main(name: str, polls: int) -> None:
    service = importlib.import_module(f"services.{name}.app").build_service()
    publish = service.publish
    seen = 0

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
    main(sys.argv[1], int(sys.argv[2]))
