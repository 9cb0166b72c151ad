"""Sending one attempt within its time and size: the whole answer by the attempt's deadline,
and no more bytes than the client accepts.

httpx's timeouts bound each socket operation, so a server that sends one byte every 0.3 s
holds a call for as long as it likes. The async client bounds a whole attempt with
``_timeouts.within``. The sync client's own pool (:class:`~._deadline_pool.DeadlineTransport`,
imported with httpcore when a client first opens it) cuts every
connect, read and write to the time left before the attempt's deadline, which the sending
thread sets with :func:`attempt_deadline`; for any pool, :class:`BodyReader` also checks the
clock and the size between the chunks of a body.
"""

from __future__ import annotations

import threading
import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from ._exceptions import ResponseFormatError

__all__ = [
    "ERROR_BODY_BYTES",
    "BodyReader",
    "attempt_deadline",
    "cut_to_attempt",
]

#: Bytes of an error answer that are read: enough for any message, however large the page.
ERROR_BODY_BYTES = 64 * 1024

_attempt = threading.local()


@contextmanager
def attempt_deadline(expires: float | None) -> Iterator[None]:
    """Within the block, this thread's reads, writes and connects end by ``expires``
    (``time.monotonic()``), on the pools of :class:`~._deadline_pool.DeadlineTransport`."""
    previous = getattr(_attempt, "expires", None)
    _attempt.expires = expires
    try:
        yield
    finally:
        _attempt.expires = previous


def cut_to_attempt(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's attempt; past it, ``error``."""
    expires: float | None = getattr(_attempt, "expires", None)
    if expires is None:
        return timeout
    left = expires - time.monotonic()
    if left <= 0:
        raise error("the attempt's time ran out")
    return left if timeout is None else min(timeout, left)


def __getattr__(name: str) -> typing.Any:
    # The pool needs httpcore, imported only when a client opens its own sync pool.
    if name == "DeadlineTransport":
        from ._deadline_pool import DeadlineTransport

        return DeadlineTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class BodyReader:
    """Collects an answer's body, refusing one larger than ``max_bytes`` while it arrives.

    An error answer is cut at :data:`ERROR_BODY_BYTES` instead: its start is all a message
    needs. ``expires`` (``time.monotonic()``) bounds the reading, checked between chunks.
    """

    def __init__(
        self, response: httpx.Response, max_bytes: int, expires: float | None, url: str
    ) -> None:
        self._error = not response.is_success
        self._limit = ERROR_BODY_BYTES if self._error else max_bytes
        self._expires = expires
        self._url = url
        self._chunks: list[bytes] = []
        self._size = 0
        self._request = response.request
        declared = response.headers.get("content-length", "")
        if not self._error and declared.isdigit() and int(declared) > max_bytes:
            raise self._too_large(f"declares {int(declared):,} bytes")

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; ``False`` once an error answer has given enough."""
        if self._expires is not None and time.monotonic() > self._expires:
            raise httpx.ReadTimeout("the attempt's time ran out", request=self._request)
        room = self._limit - self._size
        if len(chunk) > room:
            if self._error:
                self._chunks.append(chunk[:room])
                self._size = self._limit
                return False
            raise self._too_large(f"sent more than {self._limit:,} bytes")
        self._chunks.append(chunk)
        self._size += len(chunk)
        return True

    def content(self) -> bytes:
        """The body as received (an error answer's start)."""
        return b"".join(self._chunks)

    def _too_large(self, what: str) -> ResponseFormatError:
        return ResponseFormatError(
            f"invalid rerank answer from {self._url}: the answer {what}, more than "
            f"max_response_bytes={self._limit:,}; raise it if such answers are expected"
        )
