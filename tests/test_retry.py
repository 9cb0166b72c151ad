"""The retry policy's pure functions, pinned by tables."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from rerank_integrations import RetryPolicy, backoff_delay, parse_retry_after
from rerank_integrations._retry import is_retryable_status, retry_wait

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
    ("retry_after", "expected"),
    [(None, 1.0), (0.0, 0.0), (3.0, 3.0), (60.0, 60.0), (3600.0, 60.0)],
)
def test_retry_wait_prefers_the_server_within_the_cap(
    retry_after: float | None, expected: float
) -> None:
    assert retry_wait(1, retry_after, POLICY, 0.0) == expected
