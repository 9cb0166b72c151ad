"""The benchmark's rerank server, run as a separate process.

Every contender of a scenario talks to the same server: the package's local rerank server
with ``scoring="cheap"`` (constant work per document), so that what differs between
contenders is the client side. Running it in its own process keeps its CPU time out of the
benchmark process's ``process_time``.

Run it alone with ``python -m benchmarks.server --port 0 --latency-ms 20``.
"""

from __future__ import annotations

import argparse
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["ServerProcess", "SinkProcess", "child_env", "main"]

_REPO_ROOT = Path(__file__).resolve().parent.parent
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 5.0

#: Where child processes keep compiled bytecode, outside the work tree.
BYTECODE_CACHE = Path(tempfile.gettempdir()) / "rerank-benchmark-pycache"


def child_env() -> dict[str, str]:
    """The environment for the benchmark's child processes.

    The repository root goes on ``PYTHONPATH`` so ``benchmarks`` is importable, and compiled
    bytecode is cached under :data:`BYTECODE_CACHE` (never in the work tree) so that the
    memory scenario's fresh processes do not recompile LangChain and LlamaIndex each time.
    Import time is never measured; this only shortens the run.
    """
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_REPO_ROOT) if not path else f"{_REPO_ROOT}{os.pathsep}{path}"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(BYTECODE_CACHE)
    return env


class ServerProcess:
    """A local rerank server in a child process, as a context manager.

    Args:
        latency_ms: delay the server adds to every request.
        max_documents: the most documents the server accepts in one request (413 above).
        max_request_bytes: the largest body it accepts (nginx's 413 above); ``None``: any.
        max_tokens_per_document: the most tokens of a document with the query (TEI's 413
            above); ``None``: any.
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        max_documents: int = 1000,
        max_request_bytes: int | None = None,
        max_tokens_per_document: int | None = None,
    ) -> None:
        self.latency_ms = latency_ms
        self.max_documents = max_documents
        self.max_request_bytes = max_request_bytes
        self.max_tokens_per_document = max_tokens_per_document
        self._process: subprocess.Popen[str] | None = None
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in __exit__
        self.base_url = ""

    @property
    def pid(self) -> int:
        """The server process's id (to read its CPU time)."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    @property
    def rerank_url(self) -> str:
        """The full rerank endpoint (Jina-style ``/v1/rerank``)."""
        return f"{self.base_url}/v1/rerank"

    def command(self) -> list[str]:
        """The command line of the child process."""
        command = [
            sys.executable,
            "-m",
            "benchmarks.server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--scoring",
            "cheap",
            "--latency-ms",
            str(self.latency_ms),
            "--max-documents",
            str(self.max_documents),
        ]
        if self.max_request_bytes is not None:
            command += ["--max-request-bytes", str(self.max_request_bytes)]
        if self.max_tokens_per_document is not None:
            command += ["--max-tokens-per-document", str(self.max_tokens_per_document)]
        return command

    def start(self) -> ServerProcess:
        """Start the process and wait until it listens."""
        self._process = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=_REPO_ROOT,
            env=child_env(),
        )
        line = self._first_line(self._process)
        marker = "listening on "
        if marker not in line:
            self.stop()
            self._stderr.seek(0)
            raise RuntimeError(f"the rerank server did not start: {line!r} {self._stderr.read()}")
        self.base_url = line.split(marker, 1)[1].split()[0]
        return self

    @staticmethod
    def _first_line(process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        deadline = time.monotonic() + _START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.1):
                    return process.stdout.readline()
                if process.poll() is not None:
                    return ""
        return ""

    def stop(self) -> None:
        """Stop the process (it exits on SIGTERM; killed if it does not)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._stderr.close()


class SinkProcess(ServerProcess):
    """The raw socket sink (:mod:`benchmarks.sink`) in a child process; ``base_url`` is its
    ``host:port``."""

    def command(self) -> list[str]:
        """The command line of the child process."""
        return [sys.executable, "-m", "benchmarks.sink", "--host", "127.0.0.1", "--port", "0"]


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground with the package's ``serve`` options."""
    from rerank_integrations.server._cli import add_arguments, run

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.server", description="the benchmark's local rerank server"
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
