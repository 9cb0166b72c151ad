"""The retry policy's pure functions, pinned by tables."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from rerank_integrations import RetryPolicy, parse_retry_after, testing
from rerank_integrations._refusals import wait_stated_in
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
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "bogus", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-5", "retry-after": "2"}, 2.0),
        ({"retry-after-ms": "0", "retry-after": "5"}, 0.0),  # zero is a wait, not "not given"
        ({"retry-after-ms": "-0.001"}, None),
        ({"retry-after-ms": "1"}, 0.001),
        ({"retry-after": "-0.5"}, None),
        ({"retry-after": "1e400"}, None),
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
        (407, False),
        (410, False),
        (428, False),
        (430, False),
        (499, False),
        (600, False),
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
        # a configuration file gives strings: 429 would then never be retried
        (
            {"retry_statuses": ["429"]},
            r"retry_statuses must be a collection of integers, got \['429'\]",
        ),
        ({"retry_statuses": [True]}, "retry_statuses must be a collection of integers"),
        ({"retry_statuses": [429.0]}, "retry_statuses must be a collection of integers"),
        ({"retry_statuses": b"429"}, "retry_statuses must be a collection of integers"),
        ({"retry_statuses": 429}, "retry_statuses must be a collection of integers, got 429"),
        ({"jitter": True}, "jitter must be a number, got True"),
        ({"jitter": -0.1}, "jitter must be between 0 and 1"),
        ({"jitter": float("nan")}, "jitter must be between 0 and 1"),
        ({"initial_delay": "1"}, "initial_delay must be a number, got '1'"),
        ({"max_delay": "8"}, "max_delay must be a number, got '8'"),
        ({"max_retry_after": "60"}, "max_retry_after must be a number, got '60'"),
        ({"multiplier": "2"}, "multiplier must be a number, got '2'"),
        ({"max_retry_after": -1}, "max_retry_after must be at least 0"),
        ({"max_retries": True}, "max_retries must be an integer"),
        ({"max_retries": "3"}, "max_retries must be an integer"),
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


def test_the_policy_edges_are_accepted() -> None:
    edges = RetryPolicy(
        max_retries=0, initial_delay=0, max_delay=0, multiplier=1, jitter=1, max_retry_after=0
    )
    assert (edges.max_retries, edges.jitter, edges.multiplier) == (0, 1, 1)
    assert RetryPolicy(jitter=0).jitter == 0
    assert RetryPolicy(retry_statuses=[]).retry_statuses == frozenset()


def test_the_policy_keeps_a_copy_of_the_statuses() -> None:
    statuses = {429, 503}
    policy = RetryPolicy(retry_statuses=statuses)
    statuses.add(400)
    statuses.discard(429)
    assert policy.retry_statuses == frozenset({429, 503})
    assert isinstance(policy.retry_statuses, frozenset)
    assert next_wait(policy, 0, 429, {}, 0.0) is not None
    assert next_wait(policy, 0, 400, {}, 0.0) is None


def test_statuses_given_once_as_an_iterator_are_all_kept() -> None:
    policy = RetryPolicy(retry_statuses=iter([429, 503]))
    assert policy.retry_statuses == frozenset({429, 503})


@pytest.mark.parametrize("multiplier", [2, 2.0, 1.5])
@pytest.mark.parametrize("retries_done", [1_024, 5_000, 100_000])
def test_the_backoff_stays_at_its_cap_however_many_retries(
    multiplier: float, retries_done: int
) -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0, multiplier=multiplier, jitter=0.5)
    assert backoff_delay(retries_done, policy, 0.0) == 8.0
    assert backoff_delay(retries_done, policy, 0.5) == 6.0
    assert next_wait(
        RetryPolicy(max_retries=retries_done + 1, multiplier=multiplier, max_delay=8.0),
        retries_done,
        503,
        {},
        0.0,
    ) == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("headers", "message", "expected"),
    [
        ({"retry-after-ms": "0"}, None, 0.0),
        ({"retry-after-ms": "0", "retry-after": "30"}, None, 0.0),
        ({"retry-after-ms": "-1"}, None, 1.0),  # not given: the backoff
        ({"retry-after": "-3"}, None, 1.0),
        ({"retry-after": email.utils.formatdate(0, usegmt=True)}, None, 0.0),  # past: no wait
        ({}, "Try again in 2 seconds", 2.0),
        ({}, "retry after -2 seconds", 1.0),  # no negative wait is read from a message
        ({}, "Try again in 5 minutes", 60.0),  # a stated wait is held to max_retry_after
        ({"retry-after": "4"}, "Try again in 9 seconds", 4.0),  # the header first
    ],
)
def test_a_wait_is_never_negative(
    headers: dict[str, str], message: str | None, expected: float
) -> None:
    wait = next_wait(POLICY, 1, 429, headers, 0.0, None, message)
    assert wait == pytest.approx(expected)
    assert wait is not None and wait >= 0


def test_a_negative_wait_is_not_slept() -> None:
    from rerank_integrations._retry import seconds_to_sleep

    testing.set_testing(False)
    try:
        assert seconds_to_sleep(-0.5) == 0.0  # time.sleep would raise on it
        assert seconds_to_sleep(0.25) == 0.25
    finally:
        testing.set_testing(False)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (None, None),
        ("", None),
        ("Rate limit reached. Please try again in 5 seconds.", 5.0),
        ("retry after 200ms", 0.2),
        ("Retry after 1 millisecond", 0.001),
        ("Try again in 250 milliseconds", 0.25),
        ("try again in 1.5s", 1.5),
        ("Try again in 2 minutes", 120.0),
        ("try again in 1 min", 60.0),
        ("retry the request after 3 secs", 3.0),
        ("try again later", None),
        ("try again in 5 hours", None),
    ],
)
def test_a_wait_stated_in_a_message_is_read_in_its_unit(
    message: str | None, expected: float | None
) -> None:
    assert wait_stated_in(message) == (None if expected is None else pytest.approx(expected))
