"""The retry policy as pure functions: which failures to retry and how long to wait.

The wait before retry number ``n`` (counting from 0) is::

    the server asked (Retry-After, retry-after-ms):  min(asked, max_retry_after)
    otherwise:  min(initial * 2**n, max_delay) * (1 - jitter * u)

where ``u`` is uniform in [0, 1). Both the sync and the async client call these functions; they
differ only in how they sleep.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ._constants import (
    DEFAULT_MAX_RETRIES,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RETRY_JITTER,
)

#: Statuses worth another try besides every 5xx: timeout, conflict, rate limit.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry one request.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        initial_delay: the first computed wait, in seconds.
        max_delay: the cap on a computed wait.
        max_retry_after: the cap on a wait the server asks for.
        jitter: the fraction of a computed wait that is randomly taken off (0..1).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    max_retry_after: float = MAX_RETRY_AFTER
    jitter: float = RETRY_JITTER


def is_retryable_status(status_code: int) -> bool:
    """Whether an answer with this status may succeed if sent again."""
    return status_code in RETRYABLE_STATUSES or status_code >= 500


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
    base = min(policy.initial_delay * (2.0**retries_done), policy.max_delay)
    return max(0.0, base * (1.0 - policy.jitter * random_value))


def retry_wait(
    retries_done: int,
    retry_after: float | None,
    policy: RetryPolicy,
    random_value: float,
) -> float:
    """The wait before the next retry: the server's wish (capped) if it gave one, else backoff."""
    if retry_after is not None:
        return min(retry_after, policy.max_retry_after)
    return backoff_delay(retries_done, policy, random_value)
