"""What a sans-IO flow asks its driver to do, and what it is told back.

A flow (a generator) yields :class:`Send` (post a request), :class:`Sleep` (wait),
:class:`Run` (call a blocking function: a credential library's own refresh) or :class:`Wait`
(until another thread's or task's work is done: a token being fetched) and is sent back an
:class:`Answer` or the :class:`~rerank_integrations.RerankError` a failed send maps to,
``None`` after a sleep, the function's result (or the exception it raised) after a run, and
whether the :class:`Latch` opened after a wait.
The batch flow (``_flow``) and the credential flows (``_auth``) share these types.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from ._constants import DEFAULT_MAX_RESPONSE_BYTES
from ._exceptions import RerankError
from ._timeouts import bounded

__all__ = ["Answer", "Flow", "Latch", "Outcome", "Run", "Send", "Sleep", "Wait"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send one POST request and report the whole answer.

    ``headers`` carry the content type: JSON for rerank requests, a form for token requests.
    ``timeout`` bounds each phase as httpx does; ``limit`` bounds the attempt as a whole,
    connect to last byte (``None``: no bound); the body may be at most ``max_bytes`` long.
    ``label``, ``retry`` and ``waited`` (seconds slept since the attempt before) describe
    the attempt to traces.
    """

    url: str = field(repr=False)  # may carry credentials in its query
    content: bytes = field(repr=False)  # the caller's documents, or a token request's form
    headers: Mapping[str, str] = field(repr=False)  # carries credentials
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(None))
    limit: float | None = None
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    label: str = ""
    retry: int = 0
    waited: float = 0.0


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this many seconds, then carry on."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Run:
    """Call ``function`` (it may block: the async driver runs it in a worker thread) and
    report what it returned, or the exception it raised."""

    function: Callable[[], Any]


class Latch:
    """Opens once; until then threads block on :meth:`wait` and tasks of any event loop on
    :meth:`wait_async` (a thread that opens it wakes them through their own loop)."""

    def __init__(self) -> None:
        self._opened = threading.Event()
        self._lock = threading.Lock()
        self._tasks: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def open(self) -> None:
        """Let every waiter go, now and later."""
        with self._lock:
            self._opened.set()
            tasks, self._tasks = self._tasks, []
        for loop, future in tasks:
            with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                loop.call_soon_threadsafe(_settle, future)

    def wait(self, seconds: float | None) -> bool:
        """Block until open, for at most ``seconds`` (``None``: no bound); whether it is."""
        return self._opened.wait(seconds)

    async def wait_async(self, seconds: float | None) -> bool:
        """The async twin of :meth:`wait`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._opened.is_set():
                return True
            self._tasks.append((loop, future))
        try:
            async with bounded(seconds):
                await future
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock, contextlib.suppress(ValueError):  # opened meanwhile
                self._tasks.remove((loop, future))
        return self._opened.is_set()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait until ``latch`` opens, for at most ``seconds`` (``None``: no bound); report
    whether it opened. Not a pause the testing switch skips: another thread's or task's
    work (a token being fetched) is waited for."""

    latch: Latch
    seconds: float | None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server answered: status, reason phrase, headers and the whole body."""

    status_code: int
    reason: str
    headers: Mapping[str, str] = field(repr=False)  # a hostile server may echo secrets
    content: bytes = field(repr=False)


#: What a flow is sent back: the answer to a :class:`Send`, or the error it failed with;
#: ``None`` after a :class:`Sleep`; anything after a :class:`Run`; a ``bool`` after a
#: :class:`Wait`.
Outcome = Answer | RerankError | None
Flow = Generator[Send | Sleep | Run | Wait, Any, T]
