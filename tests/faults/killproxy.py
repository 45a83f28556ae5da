"""A TCP proxy to MongoDB that kills the server in the middle of a bulk write:
``python -m tests.faults.killproxy --listen PORT --target HOST:PORT --pid-file FILE``.

It forwards the wire protocol unchanged, reading the client's side message by message
(OP_MSG framing). Once armed (SIGUSR1), the first write command (insert, update, delete)
carrying at least ``--min-statements`` statements is forwarded whole, and the moment it
has been sent the server named by ``--pid-file`` gets SIGKILL: the server dies while it
applies the batch, before any reply, so the client cannot know how much of it was stored.
One line ``killed <command> <collection> <statements>`` goes to stdout."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import struct
from pathlib import Path

import bson

from .proxy import Connection, run, serve

OP_MSG = 2013
WRITE_COMMANDS = {"insert": "documents", "update": "updates", "delete": "deletes"}
HEADER = struct.Struct("<iiii")


def write_statements(message: bytes) -> tuple[str, str, int] | None:
    """(command, collection, statements) of an OP_MSG write command, else None."""
    _length, _request, _response_to, opcode = HEADER.unpack_from(message)
    if opcode != OP_MSG:
        return None
    flags = struct.unpack_from("<I", message, 16)[0]
    end = len(message) - (4 if flags & 1 else 0)  # checksumPresent
    position = 20
    body: dict[str, object] | None = None
    sequences: dict[str, int] = {}
    while position < end:
        kind = message[position]
        position += 1
        if kind == 0:
            size = struct.unpack_from("<i", message, position)[0]
            body = bson.decode(message[position : position + size])
            position += size
        elif kind == 1:
            size = struct.unpack_from("<i", message, position)[0]
            section_end = position + size
            name_end = message.index(b"\x00", position + 4)
            name = message[position + 4 : name_end].decode()
            count, doc = 0, name_end + 1
            while doc < section_end:
                doc += struct.unpack_from("<i", message, doc)[0]
                count += 1
            sequences[name] = count
            position = section_end
        else:
            return None
    if not body:
        return None
    command = next(iter(body))
    field = WRITE_COMMANDS.get(command)
    if field is None:
        return None
    inline = body.get(field)
    statements = sequences.get(field, len(inline) if isinstance(inline, list) else 0)
    return command, str(body[command]), statements


class Trigger:
    def __init__(self, pid_file: Path, min_statements: int) -> None:
        self.pid_file = pid_file
        self.min_statements = min_statements
        self.armed = False

    def fire_after(self, message: bytes) -> str | None:
        """The report line when ``message`` is the one to die on (and disarm)."""
        if not self.armed:
            return None
        found = write_statements(message)
        if found is None or found[2] < self.min_statements:
            return None
        self.armed = False
        return "killed {} {} {}".format(*found)

    def kill_server(self) -> None:
        os.kill(int(self.pid_file.read_text().strip()), signal.SIGKILL)


async def client_to_server(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trigger: Trigger
) -> None:
    try:
        while True:
            header = await reader.readexactly(HEADER.size)
            length = HEADER.unpack(header)[0]
            message = header + await reader.readexactly(length - HEADER.size)
            report = trigger.fire_after(message)
            writer.write(message)
            await writer.drain()
            if report is not None:
                trigger.kill_server()
                print(report, flush=True)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def server_to_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--min-statements", type=int, default=3)
    args = parser.parse_args()
    trigger = Trigger(args.pid_file, args.min_statements)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(trigger, "armed", True))

    async def both_ways(c: Connection) -> None:
        await asyncio.gather(
            client_to_server(c.client_r, c.server_w, trigger),
            server_to_client(c.server_r, c.client_w),
        )

    await serve(args.listen, args.target, both_ways)


if __name__ == "__main__":
    run(main)
