"""The raw socket sink behind scenario 2's physical-limit rows, run as a separate process.

Each connection first sends one frame, the answer to give; then, for every frame it sends
(8 bytes of length, then that many bytes), the sink reads it whole and sends that answer
back. No HTTP and no JSON: what is left is the loopback round trip of the bytes.

Run it alone with ``python -m benchmarks.sink --port 0``.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading

__all__ = ["main"]


def _read(connection: socket.socket, size: int) -> bytes | None:
    view = bytearray(size)
    got = 0
    while got < size:
        count = connection.recv_into(memoryview(view)[got:])
        if not count:
            return None
        got += count
    return bytes(view)


def _frame(connection: socket.socket) -> bytes | None:
    head = _read(connection, 8)
    return None if head is None else _read(connection, struct.unpack("!Q", head)[0])


def _serve(connection: socket.socket) -> None:
    with connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answer = _frame(connection)
        if answer is None:
            return
        reply = struct.pack("!Q", len(answer)) + answer
        while _frame(connection) is not None:
            connection.sendall(reply)


def main(argv: list[str] | None = None) -> int:
    """Listen, print ``listening on host:port``, serve every connection in a thread."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with socket.create_server((args.host, args.port)) as server:
        host, port = server.getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        while True:
            connection, _ = server.accept()
            threading.Thread(target=_serve, args=(connection,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
