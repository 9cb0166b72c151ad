"""Client-side rate limits and adaptive concurrency, as pure pieces with their clock passed in.

Three names, three parts: a :class:`RateLimit` is the setting (the budget a client is given,
a value); a :class:`RateLimiter` is the protocol of anything that hands budget out
(``reserve`` a :class:`Cost`); a :class:`Limiter` is the built-in rate limiter, the one a
``RateLimit`` gets. A budget shared by many processes is a ``RateLimiter`` of one's own.

A :class:`RateLimit` is a budget per minute of requests, tokens and documents (any subset).
:class:`Limiter` spreads it out with the generic cell rate algorithm: each dimension keeps
the theoretical time its budget is next free, a request of cost ``c`` moves it on by
``c / rate``, and a request may go once that time is at most one second ahead, so that a
burst is at most one second's worth (600 a minute: about 10 at once, then 10 a second).

:class:`AdaptiveGate` keeps a client's batches in flight under a limit that halves on a 429
and grows back by one per round of successes (AIMD).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["AdaptiveGate", "Cost", "Limiter", "RateLimit", "RateLimiter", "limiter_for"]

#: How far ahead of now a budget may be spent: one second's worth.
BURST_SECONDS = 1.0
#: How much a round of successes grows the adaptive limit: one place per ten rounds, so that
#: a limit the server just showed is tried again only now and then.
GROWTH = 0.1


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A budget per minute, shared by every call and thread of a client: the value passed
    as ``rate_limit=``, which the client hands to a :class:`Limiter` of its own.

    Attributes:
        requests_per_minute: requests sent (retries included).
        tokens_per_minute: tokens sent, the query counted once per document (estimated
            unless a ``tokenizer`` is set).
        documents_per_minute: documents (or windows) sent.
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    documents_per_minute: float | None = None

    def __post_init__(self) -> None:
        given = False
        for name in ("requests_per_minute", "tokens_per_minute", "documents_per_minute"):
            value = getattr(self, name)
            if value is None:
                continue
            given = True
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not given:
            raise ValueError(
                "a RateLimit needs requests_per_minute, tokens_per_minute or documents_per_minute"
            )


@dataclass(frozen=True, slots=True)
class Cost:
    """What one request spends of a budget: what :meth:`RateLimiter.reserve` is given."""

    requests: int = 1
    tokens: int = 0
    documents: int = 0


@runtime_checkable
class RateLimiter(Protocol):
    """Anything that hands out a budget (a :class:`Limiter`, or one a cluster shares): pass
    one as ``rate_limit=`` to use it as it is. Implementing it is implementing
    :meth:`reserve`."""

    def reserve(self, cost: Cost, max_wait: float | None) -> float | None:
        """Reserve ``cost`` and return the seconds to wait before sending; ``None`` (and
        nothing reserved) when the wait would be longer than ``max_wait``."""


class Limiter:
    """The built-in :class:`RateLimiter`: a :class:`RateLimit` held by one process, safe to
    share between threads.

    Args:
        limit: the budget.
        clock: the time in seconds (``time.monotonic``; tests pass a fake one).
    """

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        rates = (
            limit.requests_per_minute,
            limit.tokens_per_minute,
            limit.documents_per_minute,
        )
        self._rates = [None if rate is None else rate / 60.0 for rate in rates]
        self._free_at = [0.0, 0.0, 0.0]  # when each budget is next free (theoretical)
        #: Whether a request's tokens need counting for this budget.
        self.counts_tokens = limit.tokens_per_minute is not None

    def __repr__(self) -> str:
        return f"Limiter({self.limit!r})"

    def reserve(self, cost: Cost, max_wait: float | None) -> float | None:
        """See :meth:`RateLimiter.reserve`."""
        amounts = (cost.requests, cost.tokens, cost.documents)
        with self._lock:
            now = self._clock()
            wait = 0.0
            for rate, amount, free_at in zip(self._rates, amounts, self._free_at, strict=True):
                if rate is not None and amount:
                    # The budget spent ahead of now, this request's included, may not exceed
                    # one second's worth; a request larger than that alone waits for none.
                    ahead = max(free_at, now) - now
                    wait = max(wait, ahead + min(amount / rate, BURST_SECONDS) - BURST_SECONDS)
            if max_wait is not None and wait > max_wait:
                return None
            start = now + wait
            for position, (rate, amount) in enumerate(zip(self._rates, amounts, strict=True)):
                if rate is not None and amount:
                    self._free_at[position] = max(self._free_at[position], start) + amount / rate
            return wait


def limiter_for(rate_limit: object) -> RateLimiter | None:
    """The limiter of a ``rate_limit`` setting: a :class:`RateLimit` is held by this client;
    any other :class:`RateLimiter` (one a cluster shares) is used as it is.

    Raises:
        TypeError: ``rate_limit`` is neither.
    """
    if rate_limit is None:
        return None
    if isinstance(rate_limit, RateLimit):
        return Limiter(rate_limit, time.monotonic)
    if isinstance(rate_limit, RateLimiter):
        return rate_limit
    raise TypeError(
        f"rate_limit must be a RateLimit or a rate limiter, got {type(rate_limit).__name__}"
    )


class AdaptiveGate:
    """How many batches of a client may be in flight: halved on a 429, grown back by one
    every ten rounds of successes, between 1 and ``ceiling``. Safe for threads and event
    loops.

    A batch takes a place with :meth:`acquire` (or :meth:`aacquire`) and gives it back with
    :meth:`release`; the answers it gets are told with :meth:`congested` (a 429, with the
    :attr:`epoch` read when the request was sent, so that one burst of 429s halves the
    limit once) and :meth:`succeeded`. A 429's wait also pauses every send of the client.
    A task cancelled while it waits (``wait_for``, a client gone) never takes a wake-up with
    it: one meant for it passes to the next waiter.
    """

    def __init__(self, ceiling: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self.in_flight = 0
        self.epoch = 0  # counts halvings
        self._clock = clock
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    def _room(self) -> bool:
        return self.in_flight < max(1, int(self.limit))

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait (blocking) for a place, at most ``timeout`` seconds (``None``: no bound);
        whether one was taken."""
        ends = None if timeout is None else time.monotonic() + timeout
        with self._free:
            while not self._room():  # a waiter woken for a place takes it, never gives up
                left = None if ends is None else ends - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._free.wait(left)
            self.in_flight += 1
            return True

    async def aacquire(self) -> None:
        """Wait (on the event loop) for a place."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._room():
                    self.in_flight += 1
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                with self._lock:
                    if (loop, waiter) in self._waiters:
                        self._waiters.remove((loop, waiter))
                    elif self._room():
                        # Woken (a place came free for it) but cancelled before it could
                        # take it: the wake-up goes to the next waiter, or it is lost and a
                        # call behind this one waits forever with nothing in flight.
                        self._wake_one()
                raise

    def release(self) -> None:
        """Give a place back."""
        with self._lock:
            self.in_flight -= 1
            self._wake_one()

    def congested(self, epoch: int, wait: float | None = None) -> None:
        """A 429 for a request sent in ``epoch``: halve the limit, once per epoch; with the
        ``wait`` the server asked for, no batch of the client sends until it is over."""
        with self._lock:
            if wait:
                self._paused_until = max(self._paused_until, self._clock() + wait)
            if epoch == self.epoch:
                self.limit = max(1.0, self.limit / 2)
                self.epoch += 1

    def pause(self) -> float:
        """Seconds to wait before sending: what is left of a pause a 429 asked for."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    def succeeded(self) -> None:
        """An answer: grow the limit by one over a round of successes."""
        with self._lock:
            before = int(self.limit)
            growth = GROWTH / max(1.0, self.limit)
            self.limit = min(float(self.ceiling), self.limit + growth)
            if int(self.limit) > before:
                self._wake_one()

    def _wake_one(self) -> None:
        self._free.notify()
        while self._waiters:  # one waiter on an event loop looks again (it may queue anew)
            loop, waiter = self._waiters.popleft()
            try:
                loop.call_soon_threadsafe(_wake, waiter)
                return
            except RuntimeError:  # its loop has closed
                continue


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
