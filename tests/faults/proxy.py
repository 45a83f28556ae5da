"""What the fault proxies (``slowproxy``, ``killproxy``) share: accept clients on a local
port, open a connection to the target for each, and let the proxy's own ``pump`` carry
the bytes both ways."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Connection:
    """A client's connection to the proxy and the proxy's to the target, each way."""

    client_r: asyncio.StreamReader
    client_w: asyncio.StreamWriter
    server_r: asyncio.StreamReader
    server_w: asyncio.StreamWriter


Pump = Callable[[Connection], Awaitable[object]]


async def serve(listen: int, target: str, pump: Pump) -> None:
    """Proxy 127.0.0.1:``listen`` to ``target`` (HOST:PORT); prints ``listening on PORT``
    once clients may connect (the test waits for that line)."""
    host, port = target.rsplit(":", 1)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()  # the server is down: the client sees a refused connection
            return
        await pump(Connection(client_r, client_w, server_r, server_w))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print(f"listening on {listen}", flush=True)
    async with server:
        await server.serve_forever()


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main())``, exiting quietly on Ctrl-C."""
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
