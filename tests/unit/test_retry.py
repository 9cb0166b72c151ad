"""The retry policy's pure functions, pinned by tables."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from rerank_integrations import RetryPolicy, parse_retry_after, testing
from rerank_integrations._retry import backoff_delay, is_retryable_status, next_wait

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": " 1.5 "}, 1.5),
        ({"retry-after": "-2"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "120"}, 0.12),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "bogus", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-5", "retry-after": "2"}, 2.0),
        ({"retry-after": email.utils.formatdate(NOW + 7, usegmt=True)}, 7.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00"}, None),  # no zone: not an HTTP date
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_parse_retry_after_reads_headers_case_insensitively() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "4"}), now=NOW) == 4.0
    assert parse_retry_after(httpx.Headers({"Retry-After-Ms": "40"}), now=NOW) == 0.04


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (409, True),
        (413, False),
        (422, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
    ],
)
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


POLICY = RetryPolicy(
    max_retries=5, initial_delay=0.5, max_delay=8.0, max_retry_after=60, jitter=0.25
)


@pytest.mark.parametrize(
    ("retries_done", "random_value", "expected"),
    [
        (0, 0.0, 0.5),
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (3, 0.0, 4.0),
        (4, 0.0, 8.0),
        (5, 0.0, 8.0),  # capped
        (10, 0.0, 8.0),
        (0, 0.5, 0.4375),  # 0.5 * (1 - 0.25 * 0.5)
        (4, 0.999, 8.0 * (1 - 0.25 * 0.999)),
    ],
)
def test_backoff_delay(retries_done: int, random_value: float, expected: float) -> None:
    assert backoff_delay(retries_done, POLICY, random_value) == pytest.approx(expected)


def test_backoff_delay_stays_within_bounds_for_any_jitter() -> None:
    for retries_done in range(12):
        for step in range(100):
            delay = backoff_delay(retries_done, POLICY, step / 100)
            assert 0.75 * min(0.5 * 2**retries_done, 8.0) <= delay <= 8.0


@pytest.mark.parametrize(
    ("retries_done", "status", "headers", "time_left", "expected"),
    [
        (1, 503, {}, None, 1.0),  # backoff
        (1, None, {}, None, 1.0),  # a connection error or timeout is retried too
        (1, 429, {"retry-after": "0"}, None, 0.0),
        (1, 429, {"retry-after": "3"}, None, 3.0),  # the server's wish over backoff
        (1, 429, {"retry-after": "60"}, None, 60.0),
        (2, 503, {"retry-after": "60"}, None, 60.0),  # a 503's wish too, up to the cap
        (1, 429, {"retry-after": "3600"}, None, None),  # longer than the cap: give up
        (1, 400, {}, None, None),  # not retryable
        (1, 404, {"retry-after": "1"}, None, None),
        (5, 503, {}, None, None),  # retries used up
        (1, 503, {}, 1.5, 1.0),
        (1, 503, {}, 1.0, None),  # the retry could not finish in time
        (1, 429, {"retry-after": "3"}, 2.0, None),
    ],
)
def test_next_wait_decides_whether_and_how_long(
    retries_done: int,
    status: int | None,
    headers: dict[str, str],
    time_left: float | None,
    expected: float | None,
) -> None:
    assert next_wait(POLICY, retries_done, status, headers, 0.0, time_left) == expected


def test_the_policy_chooses_statuses_growth_and_jitter() -> None:
    policy = RetryPolicy(
        max_retries=3, initial_delay=1, multiplier=3, jitter=0, retry_statuses={429}
    )
    assert [backoff_delay(n, policy, 0.9) for n in range(3)] == [1.0, 3.0, 8.0]
    assert next_wait(policy, 0, 429, {}, 0.5) == 1.0
    assert next_wait(policy, 0, 503, {}, 0.5) is None
    assert next_wait(policy, 0, None, {}, 0.5) == 1.0
    assert policy.retry_statuses == frozenset({429})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_retries": -1}, "max_retries must be at least 0"),
        ({"max_retries": 1.5}, "max_retries must be an integer"),
        ({"initial_delay": -1}, "initial_delay must be at least 0"),
        ({"max_delay": float("inf")}, "max_delay must be a finite"),
        ({"multiplier": 0.5}, "multiplier must be at least 1"),
        ({"jitter": 2}, "jitter must be between 0 and 1"),
        ({"retry_statuses": "429"}, "retry_statuses must be a collection of integers"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        RetryPolicy(**arguments)  # type: ignore[arg-type]


def test_the_testing_switch_records_waits_and_restores() -> None:
    from rerank_integrations._retry import seconds_to_sleep

    with testing.no_waits() as outer:
        with testing.no_waits() as inner:
            assert seconds_to_sleep(2.5) == 0.0
        assert seconds_to_sleep(1.0) == 0.0
    assert (inner, outer) == ([2.5], [1.0])
