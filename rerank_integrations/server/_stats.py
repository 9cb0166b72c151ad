"""Request counters a test reads to see what its client really sent."""

from __future__ import annotations

import threading

from ._attrs import ReadOnly
from ._config import FAULT_KINDS, LIMIT_KINDS

__all__ = ["ServerStats"]


class ServerStats:
    """The counters of one running application.

    The server writes them from its event loop, tests read them from their own thread, so
    every access takes a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._zero()

    requests: ReadOnly[int] = ReadOnly(
        "Rerank requests received since the start or the last :meth:`reset`.", locked=True
    )
    in_flight: ReadOnly[int] = ReadOnly("Rerank requests being handled now.", locked=True)
    max_in_flight: ReadOnly[int] = ReadOnly(
        "The most rerank requests handled at once: how concurrent the client really was.",
        locked=True,
    )
    faults: ReadOnly[dict[str, int]] = ReadOnly(
        "Injected faults by kind (a copy; the kinds are :data:`FAULT_KINDS`).", locked=True
    )
    refused: ReadOnly[dict[str, int]] = ReadOnly(
        "Requests refused for their size, by limit (a copy; the limits are :data:`LIMIT_KINDS`).",
        locked=True,
    )
    rate_limited: ReadOnly[int] = ReadOnly(
        "Requests answered 429 by ``rate_limit_rpm`` (the rate-limit fault counts in "
        ":attr:`faults`).",
        locked=True,
    )
    truncated: ReadOnly[int] = ReadOnly(
        "Documents scored on their first tokens only, because they were too long.", locked=True
    )

    def reset(self) -> None:
        """Zero the counters; ``max_in_flight`` restarts from the requests still in flight."""
        with self._lock:
            self._zero()

    def _zero(self) -> None:
        """Every counter but ``in_flight`` from zero (under the lock, or before it is shared)."""
        self._requests = 0
        self._max_in_flight = self._in_flight
        self._faults = dict.fromkeys(FAULT_KINDS, 0)
        self._refused = dict.fromkeys(LIMIT_KINDS, 0)
        self._truncated = 0
        self._rate_limited = 0

    def _enter(self) -> None:
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _record_fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def _record_refusal(self, limit: str) -> None:
        with self._lock:
            self._refused[limit] += 1

    def _record_rate_limited(self) -> None:
        with self._lock:
            self._rate_limited += 1

    def _record_truncated(self, documents: int) -> None:
        with self._lock:
            self._truncated += documents

    def __repr__(self) -> str:
        return (
            f"ServerStats(requests={self.requests}, in_flight={self.in_flight}, "
            f"max_in_flight={self.max_in_flight}, faults={self.faults}, "
            f"rate_limited={self.rate_limited}, refused={self.refused}, "
            f"truncated={self.truncated})"
        )
