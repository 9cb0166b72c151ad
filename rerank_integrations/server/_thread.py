"""The local server in a background thread, for tests, notebooks and benchmarks that want a
real HTTP endpoint inside their own process::

    with serve_in_thread(latency_ms=20) as server:
        httpx.post(server.rerank_url, json={"query": "q", "documents": ["a"]})
        print(server.stats.max_in_flight)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from ._app import create_app
from ._attrs import ReadOnly
from ._config import ServerConfig
from ._stats import ServerStats

__all__ = ["LocalRerankServer", "serve_in_thread"]

_POLL_SECONDS = 0.005
_FORCED_EXIT_SECONDS = 5.0


def format_base_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 address in brackets."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (``0``: any free port).

    Binding before uvicorn starts lets the caller learn the port at once and report a busy
    one as an ``OSError``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP matters: asyncio only enables TCP_NODELAY on
    # accepted connections whose socket says it is TCP, and without it small
    # responses wait for delayed ACKs (about 40 ms per request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
            # Lets a fixed port be reused right after a previous server on
            # POSIX systems; skipped on Windows, where it means port sharing.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except BaseException:
        sock.close()
        raise
    return sock


class LocalRerankServer:
    """The rerank server, run by uvicorn in a daemon thread::

        server = LocalRerankServer(ServerConfig(api_key="secret")).start()
        try:
            ...  # talk to server.base_url
        finally:
            server.stop()

    As a context manager it starts on enter and stops on exit. A stopped server can start
    again (on a new port when ``port=0``); :attr:`stats` keeps counting across restarts.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        startup_timeout: float = 5.0,
        shutdown_timeout: float = 1.0,
    ) -> None:
        """Prepare a server; nothing is bound until :meth:`start`.

        Args:
            config: how it behaves (default: :class:`ServerConfig()`).
            host: the address to listen on.
            port: the port; ``0`` picks a free one.
            startup_timeout: seconds :meth:`start` waits for uvicorn to serve.
            shutdown_timeout: seconds :meth:`stop` gives requests in progress before it
                forces uvicorn to exit.
        """
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port!r}")
        self._config = config if config is not None else ServerConfig()
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._stats = ServerStats()
        self._shutdown_event = threading.Event()
        self._app = create_app(self._config, stats=self._stats, shutdown_event=self._shutdown_event)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    config: ReadOnly[ServerConfig] = ReadOnly("How the server behaves.")
    app: ReadOnly[Starlette] = ReadOnly("The Starlette application it serves.")
    stats: ReadOnly[ServerStats] = ReadOnly(
        "The request counters (``requests``, ``max_in_flight``, ``reset()``...)."
    )
    host: ReadOnly[str] = ReadOnly("The address it listens on.")

    @property
    def port(self) -> int:
        """The bound port; a ``RuntimeError`` when the server is not running."""
        if self._port is None:
            raise RuntimeError("the server is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """The root URL, such as ``http://127.0.0.1:54321`` (no trailing slash)."""
        return format_base_url(self._host, self.port)

    @property
    def rerank_url(self) -> str:
        """The full URL of ``POST /v1/rerank``."""
        return f"{self.base_url}/v1/rerank"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LocalRerankServer:
        """Bind the port, start uvicorn in a daemon thread and return once it serves.

        Returns this server, for chaining. Raises ``OSError`` when the address cannot be
        bound, and ``RuntimeError`` when the server already runs or does not start within
        ``startup_timeout``.
        """
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        sock = bind_socket(self._host, self._requested_port)
        self._shutdown_event.clear()
        self._error = None
        uvicorn_config = uvicorn.Config(
            self._app,
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=max(1, math.ceil(self._shutdown_timeout)),
        )
        server = uvicorn.Server(uvicorn_config)
        thread = threading.Thread(
            target=self._run, args=(server, sock), name="rerank-server", daemon=True
        )
        self._server, self._thread, self._socket = server, thread, sock
        self._port = int(sock.getsockname()[1])
        thread.start()

        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not thread.is_alive():
                error = self._error
                self._cleanup()
                raise RuntimeError(f"the rerank server failed to start: {error!r}") from error
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the rerank server did not start within {self._startup_timeout:g} seconds"
                )
            time.sleep(_POLL_SECONDS)
        return self

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        """The thread: serve until told to exit; a crash is kept for :meth:`start` to raise."""
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by start()
            self._error = exc

    def stop(self) -> None:
        """Shut the server down and join its thread; on a stopped server, nothing.

        Requests in progress get ``shutdown_timeout`` seconds (stalls end at once, with a
        503); then uvicorn is forced to exit.
        """
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        self._shutdown_event.set()
        server.should_exit = True
        thread.join(self._shutdown_timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_FORCED_EXIT_SECONDS)
        alive = thread.is_alive()
        self._cleanup()
        if alive:
            warnings.warn(
                "the rerank server thread did not exit; it is left running as a daemon",
                RuntimeWarning,
                stacklevel=2,
            )

    def _cleanup(self) -> None:
        """Forget the thread and close the listening socket."""
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None
        self._port = None

    def __enter__(self) -> LocalRerankServer:
        """Start the server unless it runs, and return it."""
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    def __repr__(self) -> str:
        """The address, or that it is not running."""
        where = self.base_url if self._port is not None else "not running"
        return f"LocalRerankServer({where})"


@contextlib.contextmanager
def serve_in_thread(
    config: ServerConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **overrides: Any,
) -> Iterator[LocalRerankServer]:
    """A :class:`LocalRerankServer` running for the ``with`` block.

    ``overrides`` are :class:`ServerConfig` fields that replace those of ``config``
    (``latency_ms=50``, ``error_rate=1.0``...): a name that is not a field raises
    ``TypeError``, a bad value ``ValueError``, before anything starts.
    """
    base = config if config is not None else ServerConfig()
    if overrides:
        base = dataclasses.replace(base, **overrides)
    with LocalRerankServer(base, host=host, port=port) as server:
        yield server
