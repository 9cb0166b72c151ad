"""The retry policy as data and pure functions: whether to retry, and how long to wait.

The wait before retry number ``n`` (counting from 0) is::

    the server asked (retry-after-ms, Retry-After):  asked, or give up if asked > max_retry_after
    otherwise:  min(initial_delay * multiplier**n, max_delay) * (1 - jitter * u)

where ``u`` is uniform in [0, 1). :func:`next_wait` makes the whole decision; the sync and the
async client only sleep what it returns. Under :func:`set_testing` every wait is recorded and
none is slept.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from ._constants import (
    DEFAULT_MAX_RETRIES,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RETRY_JITTER,
    RETRY_MULTIPLIER,
)

#: Statuses worth another try: timeout, conflict, rate limit and every server error.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 429, *range(500, 600)})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry one request.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        initial_delay: the first computed wait, in seconds.
        max_delay: the cap on a computed wait.
        multiplier: how much each computed wait grows over the one before.
        jitter: the fraction of a computed wait that is randomly taken off (0..1).
        max_retry_after: the longest wait a server may ask for; asking more means giving up.
        retry_statuses: the HTTP statuses that are retried (connection errors and timeouts
            always are).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    multiplier: float = RETRY_MULTIPLIER
    jitter: float = RETRY_JITTER
    max_retry_after: float = MAX_RETRY_AFTER
    retry_statuses: Collection[int] = field(default=RETRYABLE_STATUSES)

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError(f"max_retries must be an integer, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be at least 0, got {self.max_retries}")
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            _check_seconds(name, getattr(self, name))
        _check_number("multiplier", self.multiplier, low=1.0)
        _check_number("jitter", self.jitter, low=0.0, high=1.0)
        given = self.retry_statuses
        # A copy (the caller may change its set), made once (an iterator is read once).
        statuses = None if isinstance(given, (str, bytes)) else _as_tuple(given)
        if statuses is None or not all(
            isinstance(status, int) and not isinstance(status, bool) for status in statuses
        ):
            raise TypeError(f"retry_statuses must be a collection of integers, got {given!r}")
        object.__setattr__(self, "retry_statuses", frozenset(statuses))


def _as_tuple(values: object) -> tuple[object, ...] | None:
    try:
        return tuple(values)  # type: ignore[arg-type]
    except TypeError:  # not iterable
        return None


def _check_number(name: str, value: object, *, low: float, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (low <= value <= high) or math.isnan(value):
        bounds = f"between {low:g} and {high:g}" if math.isfinite(high) else f"at least {low:g}"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")


def _check_seconds(name: str, value: object) -> None:
    _check_number(name, value, low=0.0)
    if not math.isfinite(value):  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")


def is_retryable_status(status_code: int, policy: RetryPolicy | None = None) -> bool:
    """Whether an answer with this status may succeed if sent again."""
    statuses = RETRYABLE_STATUSES if policy is None else policy.retry_statuses
    return status_code in statuses


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, or ``None`` if it does not say.

    Reads ``retry-after-ms`` (milliseconds), then ``retry-after`` as seconds, then
    ``retry-after`` as an HTTP date. ``headers`` should look names up case-insensitively
    (``httpx.Headers`` does); a plain dict must use lower-case names. Negative or unreadable
    values count as not given; a date in the past means zero.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            millis = float(raw_ms)
        except ValueError:
            millis = math.nan
        if math.isfinite(millis) and millis >= 0:
            return millis / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 7231 dates are GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_delay(retries_done: int, policy: RetryPolicy, random_value: float) -> float:
    """Exponential backoff with jitter: the wait before retry number ``retries_done``.

    ``random_value`` is uniform in [0, 1); passing it in keeps this function pure.
    """
    try:
        grown = policy.initial_delay * policy.multiplier**retries_done
    except OverflowError:
        grown = math.inf
    base = min(grown, policy.max_delay)
    return max(0.0, base * (1.0 - policy.jitter * random_value))


def next_wait(
    policy: RetryPolicy,
    retries_done: int,
    status_code: int | None,
    headers: Mapping[str, str],
    random_value: float,
    time_left: float | None = None,
    message: str | None = None,
) -> float | None:
    """Seconds to wait before retrying a failed attempt, or ``None`` to give up.

    Args:
        policy: the retry policy.
        retries_done: retries already made for this request.
        status_code: the answer's status; ``None`` for a connection error or timeout.
        headers: the answer's headers (``{}`` when there was no answer).
        random_value: uniform in [0, 1), for the jitter.
        time_left: seconds left before the call's deadline; ``None`` for no deadline.
        message: the server's error message, for a wait it states when no header gives one
            (used up to ``max_retry_after``).

    Gives up when the retries are used up, the status is not retryable, the server asks
    for a wait longer than ``max_retry_after``, or the retry could not finish in time.
    """
    if retries_done >= policy.max_retries:
        return None
    if status_code is not None and status_code not in policy.retry_statuses:
        return None
    asked = parse_retry_after(headers)
    stated: float | None = None
    if asked is None and message:
        from ._refusals import wait_stated_in  # with the first retry, not with the package

        stated = wait_stated_in(message)
    if stated is not None:
        wait = min(stated, policy.max_retry_after)
    elif asked is None:
        wait = backoff_delay(retries_done, policy, random_value)
    elif asked > policy.max_retry_after:
        return None
    else:
        wait = asked
    if time_left is not None and wait >= time_left:
        return None
    return wait


# -- the testing switch -----------------------------------------------------------------------


class _Testing:
    """Whether waits are skipped, and the waits asked for meanwhile."""

    def __init__(self) -> None:
        self.enabled = False
        self.waits: list[float] = []
        self.lock = threading.Lock()


_TESTING = _Testing()


def set_testing(enabled: bool = True) -> None:
    """Skip every wait (retry backoff, ``Retry-After``) from now on, or stop skipping.

    For test suites: behaviour is otherwise unchanged, and deadlines still count the waits
    that were skipped.
    """
    with _TESTING.lock:
        _TESTING.enabled = bool(enabled)
        _TESTING.waits = []


@contextmanager
def no_waits() -> Iterator[list[float]]:
    """Within the block, skip every wait and collect the seconds asked for in the list given."""
    with _TESTING.lock:
        before = _TESTING.enabled, _TESTING.waits
        waits: list[float] = []
        _TESTING.enabled, _TESTING.waits = True, waits
    try:
        yield waits
    finally:
        with _TESTING.lock:
            _TESTING.enabled, _TESTING.waits = before


def seconds_to_sleep(seconds: float) -> float:
    """``seconds`` (``0`` for a negative wait, which ``time.sleep`` refuses), or ``0`` under
    the testing switch (which records the wait)."""
    if not _TESTING.enabled:
        return max(0.0, seconds)
    _TESTING.waits.append(seconds)
    return 0.0
