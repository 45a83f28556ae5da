"""A TCP proxy that adds latency: ``python -m tests.faults.slowproxy --listen PORT
--target HOST:PORT --delay-ms N``. Every chunk is forwarded ``N`` ms after it arrived (both
directions, order kept). SIGUSR1 switches the delay on, SIGUSR2 off (it starts off unless
``--on``), so a test can slow the database down mid-stream."""

from __future__ import annotations

import argparse
import asyncio
import signal

from .proxy import Connection, run, serve


class Latency:
    def __init__(self, seconds: float, on: bool) -> None:
        self.seconds = seconds
        self.on = on

    @property
    def current(self) -> float:
        return self.seconds if self.on else 0.0


async def pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: Latency
) -> None:
    # Chunks are delayed by a queue, so latency does not cap throughput at one chunk/delay.
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def forward() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()

    forwarder = asyncio.create_task(forward())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((loop.time() + latency.current, chunk))
            if not chunk:
                break
        await forwarder
    except (ConnectionError, asyncio.CancelledError):
        forwarder.cancel()
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", default="127.0.0.1:27017")
    parser.add_argument("--delay-ms", type=float, default=30.0)
    parser.add_argument("--on", action="store_true")
    args = parser.parse_args()
    latency = Latency(args.delay_ms / 1000, args.on)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(latency, "on", True))
    loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(latency, "on", False))

    async def both_ways(c: Connection) -> None:
        await asyncio.gather(
            pipe(c.client_r, c.server_w, latency), pipe(c.server_r, c.client_w, latency)
        )

    await serve(args.listen, args.target, both_ways)


if __name__ == "__main__":
    run(main)
