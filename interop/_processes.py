"""Server processes the kit starts, and the guarantee that it stops every one of them.

Each server runs in its own session (process group), so that stopping it also stops the
workers it spawned (Xinference starts one per model). :class:`Processes` stops them all, in
reverse order, when its ``with`` block ends for any reason: success, failure, Ctrl-C, or a
SIGTERM (turned into ``KeyboardInterrupt`` by :func:`stop_on_sigterm`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType

import httpx

STOP_GRACE_SECONDS = 15.0


class ServerFailed(RuntimeError):
    """A server did not start, or died; the message ends with the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class ServerProcess:
    """One server command, its log file, and how to tell that it is ready."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def fail(self, message: str) -> ServerFailed:
        return ServerFailed(
            f"{self.name}: {message}\n--- {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until it is true; fail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                code = None if self._process is None else self._process.returncode
                raise self.fail(f"exited with status {code} before {what}")
            with contextlib.suppress(httpx.HTTPError, OSError):
                if ready():
                    return
            time.sleep(0.5)
        raise self.fail(f"not {what} after {timeout:.0f}s")

    def wait_for_http(self, url: str, timeout: float) -> None:
        """Wait until ``GET url`` answers with any status below 500."""

        def ready() -> bool:
            return httpx.get(url, timeout=5).status_code < 500

        self.wait_until(ready, timeout, f"answering GET {url}")

    def stop(self) -> None:
        """SIGTERM to the whole process group, then SIGKILL after a grace period."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        # Workers that outlived their parent are still in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


class Processes:
    """The servers started so far; all are stopped when the ``with`` block ends."""

    def __init__(self) -> None:
        self._started: list[ServerProcess] = []

    def start(self, server: ServerProcess) -> ServerProcess:
        self._started.append(server)
        server.start()
        return server

    def stop(self, server: ServerProcess) -> None:
        server.stop()
        if server in self._started:
            self._started.remove(server)

    def stop_all(self) -> None:
        while self._started:
            self._started.pop().stop()

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP) into ``KeyboardInterrupt``, so ``finally`` blocks run."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
