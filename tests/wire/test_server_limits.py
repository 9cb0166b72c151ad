"""The local server's limits: its token count, and each limit refused as the service that
has it refuses it (nginx's 413 page, TEI's 413, a batch token budget's 400, OpenAI's 429)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerank_integrations import BadRequestError, RerankClient
from rerank_integrations.server import (
    LIMIT_KINDS,
    LocalRerankServer,
    ServerConfig,
    _cli,
    count_tokens,
    serve_in_thread,
    truncate_tokens,
)
from rerank_integrations.server._limits import RateLimiter

NGINX_413 = (
    "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
    "<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def rerank(server: LocalRerankServer, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(server.rerank_url, json=body, **kwargs)


def words(count: int, word: str = "filler") -> str:
    return " ".join([word] * count)


# --------------------------------------------------------------------------- the token count


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        (" \n\t ", 0),
        ("hello world", 2),
        ("Don't over-steep: 4 minutes, max!", 12),
        ("1,000 g", 4),
        ("https://pypi.org/simple", 9),  # https : / / pypi . org / simple
        ("手冲咖啡 V60", 5),  # one token a CJK character
        ("東京タワー", 5),
        ("ｶﾀｶﾅ", 4),  # half-width katakana too
        ("한국어", 3),
        ("cafe\u0301 au lait", 3),  # a combining accent belongs to its word
        ("हिन्दी", 1),  # so do Devanagari vowel signs
        ("🙂👍", 2),
        ("snake_case_name", 1),
    ],
)
def test_count_tokens(text: str, tokens: int) -> None:
    assert count_tokens(text) == tokens


@given(st.text(), st.text())
def test_count_tokens_adds_up_across_white_space(first: str, second: str) -> None:
    assert count_tokens(f"{first} {second}") == count_tokens(first) + count_tokens(second)


@given(st.text(), st.integers(min_value=0, max_value=40))
def test_truncate_tokens_keeps_exactly_the_first_tokens(text: str, limit: int) -> None:
    cut = truncate_tokens(text, limit)
    assert text.startswith(cut)
    assert count_tokens(cut) == min(limit, count_tokens(text))
    if count_tokens(text) <= limit:
        assert cut == text


def test_truncate_tokens_cuts_after_a_whole_token() -> None:
    assert truncate_tokens("Hello, world! Again", 3) == "Hello, world"
    assert truncate_tokens("手冲咖啡", 2) == "手冲"
    assert truncate_tokens("anything", 0) == ""


# --------------------------------------------------------------------------- per document


@pytest.fixture(scope="module")
def tei_like() -> Iterator[LocalRerankServer]:
    """At most 8 tokens of query and document together, as TEI with a short model."""
    with serve_in_thread(max_tokens_per_document=8) as server:
        yield server


def test_a_document_too_long_is_refused_like_tei(tei_like: LocalRerankServer) -> None:
    tei_like.stats.reset()
    query = "apple pie"  # 2 tokens
    fits = words(6)  # 2 + 6 = 8: at the limit
    too_long = words(7)  # 2 + 7 = 9

    assert rerank(tei_like, {"query": query, "documents": [fits]}).status_code == 200
    response = rerank(tei_like, {"query": query, "documents": [fits, too_long]})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": "Input validation error: `inputs` must have less than 8 tokens. Given: 9",
        "error_type": "Validation",
    }
    assert tei_like.stats.refused["document_tokens"] == 1


def test_the_client_reports_the_servers_words(tei_like: LocalRerankServer) -> None:
    with (
        RerankClient(tei_like.base_url, max_retries=0) as client,
        pytest.raises(BadRequestError) as caught,
    ):
        client.rerank("apple pie", [words(20)])

    assert caught.value.status_code == 413
    assert "must have less than 8 tokens. Given: 22" in str(caught.value)


@pytest.mark.parametrize("truncate", [True, "END", "end"])
def test_truncate_scores_a_long_document_on_its_first_tokens(
    tei_like: LocalRerankServer, truncate: object
) -> None:
    tei_like.stats.reset()
    query = "apple pie"
    early = "apple " + words(20)  # "apple" within the first 6 tokens
    late = words(20) + " apple"  # "apple" long after them
    body = {"query": query, "documents": [late, early], "truncate": truncate}

    response = rerank(tei_like, body)

    assert response.status_code == 200
    results = response.json()["results"]
    scores = {item["index"]: item["relevance_score"] for item in results}
    assert scores[1] > 0.0  # seen
    assert scores[0] == 0.0  # never seen: the model reads only its first tokens
    assert [item["document"]["text"] for item in results] == [early, late]  # shown whole
    assert response.json()["usage"]["total_tokens"] == 2 * 8
    assert tei_like.stats.truncated == 2
    assert tei_like.stats.refused["document_tokens"] == 0


@pytest.mark.parametrize("truncate", [False, "NONE", None])
def test_without_truncate_a_long_document_is_refused(
    tei_like: LocalRerankServer, truncate: object
) -> None:
    body = {"query": "apple pie", "documents": [words(20)], "truncate": truncate}
    assert rerank(tei_like, body).status_code == 413


def test_a_bad_truncate_value_is_a_400(tei_like: LocalRerankServer) -> None:
    response = rerank(tei_like, {"query": "q", "documents": ["a"], "truncate": "START"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "truncate"


def test_auto_truncate_is_the_default_a_request_can_turn_off() -> None:
    body: dict[str, Any] = {"query": "apple pie", "documents": [words(20)]}
    with serve_in_thread(max_tokens_per_document=8, auto_truncate=True) as server:
        assert rerank(server, body).status_code == 200
        assert rerank(server, {**body, "truncate": False}).status_code == 413
        assert server.stats.truncated == 1


def test_the_query_is_never_cut() -> None:
    with serve_in_thread(max_tokens_per_document=4, auto_truncate=True) as server:
        response = rerank(server, {"query": words(6, "apple"), "documents": ["apple", "pear"]})
    assert response.status_code == 200
    assert [item["relevance_score"] for item in response.json()["results"]] == [0.0, 0.0]


# --------------------------------------------------------------------------- per request


def test_a_batch_over_the_token_budget_is_a_400_saying_so() -> None:
    query = "apple pie"  # 2 tokens, counted once per document
    documents = [words(5)] * 3  # 3 * (2 + 5) = 21 tokens
    with serve_in_thread(max_tokens_per_request=20) as server:
        assert rerank(server, {"query": query, "documents": documents[:2]}).status_code == 200
        response = rerank(server, {"query": query, "documents": documents})
        refused = server.stats.refused

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "too_many_tokens_in_batch"
    assert error["param"] == "documents"
    assert error["message"].startswith("Batch too large: ")
    assert "max allowed tokens per submitted batch is 20" in error["message"]
    assert "Your batch has 21 tokens" in error["message"]
    assert refused["request_tokens"] == 1


def test_the_budget_counts_documents_after_truncation() -> None:
    body = {"query": "apple pie", "documents": [words(100)] * 3, "truncate": True}
    with serve_in_thread(max_tokens_per_document=8, max_tokens_per_request=24) as server:
        response = rerank(server, body)
    assert response.status_code == 200
    assert response.json()["usage"]["total_tokens"] == 24


def test_usage_is_the_token_count_of_every_pair(tei_like: LocalRerankServer) -> None:
    query, documents = "apple pie?", ["one apple.", "two pears, no apple"]
    response = rerank(tei_like, {"query": query, "documents": documents})
    expected = sum(count_tokens(query) + count_tokens(text) for text in documents)
    assert response.json()["usage"]["total_tokens"] == expected == 2 * 3 + 3 + 5


# --------------------------------------------------------------------------- request bytes


@pytest.fixture(scope="module")
def behind_nginx() -> Iterator[LocalRerankServer]:
    """At most 300 bytes of body, and a key, as a gateway behind nginx."""
    with serve_in_thread(max_request_bytes=300, api_key="sk-key") as server:
        yield server


def test_a_body_over_the_byte_limit_gets_nginxs_page(behind_nginx: LocalRerankServer) -> None:
    behind_nginx.stats.reset()
    headers = {"Authorization": "Bearer sk-key"}
    small = {"query": "q", "documents": ["a", "b"]}
    assert rerank(behind_nginx, small, headers=headers).status_code == 200

    response = rerank(behind_nginx, {"query": "q", "documents": [words(60)]}, headers=headers)

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == NGINX_413
    assert behind_nginx.stats.refused["request_bytes"] == 1


def test_the_byte_limit_comes_before_the_key(behind_nginx: LocalRerankServer) -> None:
    response = rerank(behind_nginx, {"query": "q", "documents": [words(60)]})
    assert response.status_code == 413  # the proxy answers; the application never sees it
    assert rerank(behind_nginx, {"query": "q", "documents": ["a"]}).status_code == 401


def test_a_large_body_is_read_to_its_end_before_the_413(behind_nginx: LocalRerankServer) -> None:
    body = b'{"query": "q", "documents": ["' + b"x" * 4_000_000 + b'"]}'
    with httpx.Client() as client:
        for _ in range(2):  # and the connection stays usable
            response = client.post(behind_nginx.rerank_url, content=body)
            assert response.status_code == 413


def test_exactly_the_byte_limit_passes() -> None:
    with serve_in_thread(max_request_bytes=64) as server:

        def body(size: int) -> bytes:
            return b'{"query": "q", "documents": ["' + b"a" * (size - 33) + b'"]}'

        assert len(body(64)) == 64
        assert httpx.post(server.rerank_url, content=body(64)).status_code == 200
        assert httpx.post(server.rerank_url, content=body(65)).status_code == 413


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"max_request_bytes": 0}, "max_request_bytes"),
        ({"max_tokens_per_document": -1}, "max_tokens_per_document"),
        ({"max_tokens_per_document": 1.5}, "max_tokens_per_document"),
        ({"max_tokens_per_request": True}, "max_tokens_per_request"),
        ({"auto_truncate": "yes"}, "auto_truncate"),
    ],
)
def test_bad_limits_are_refused(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ServerConfig(**overrides)


def test_the_serve_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_cli.API_KEY_ENV, raising=False)
    parser = argparse.ArgumentParser()
    _cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--max-request-bytes=1048576",
            "--max-tokens-per-document=512",
            "--max-tokens-per-request=300000",
            "--auto-truncate",
        ]
    )
    assert _cli.config_from_args(args) == ServerConfig(
        max_request_bytes=1048576,
        max_tokens_per_document=512,
        max_tokens_per_request=300000,
        auto_truncate=True,
    )
    assert _cli.config_from_args(parser.parse_args([])) == ServerConfig()


def test_refusals_are_counted_by_limit_and_reset() -> None:
    with serve_in_thread(max_documents=1) as server:
        assert rerank(server, {"query": "q", "documents": ["a", "b"]}).status_code == 413
        assert server.stats.refused == {**dict.fromkeys(LIMIT_KINDS, 0), "documents": 1}
        server.stats.reset()
        assert server.stats.refused == dict.fromkeys(LIMIT_KINDS, 0)
        assert server.stats.truncated == 0


# --------------------------------------------------------------------------- requests a minute


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_limiter_spreads_a_minute_over_its_seconds() -> None:
    clock = FakeClock()
    limiter = RateLimiter(600, clock=clock)  # 10 a second

    assert [limiter.acquire() for _ in range(10)] == [0.0] * 10  # one second's worth at once
    assert limiter.acquire() == pytest.approx(0.1)  # then one every tenth of a second
    clock.now += 0.05
    assert limiter.acquire() == pytest.approx(0.05)
    clock.now += 0.05
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(0.1)
    clock.now += 60  # an idle minute refills one second's worth, no more
    assert [limiter.acquire() for _ in range(11)][-2:] == [0.0, pytest.approx(0.1)]


def test_a_low_rate_still_lets_one_request_through_at_a_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock)  # one every 6 seconds

    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(6.0)
    clock.now += 5.0
    assert limiter.acquire() == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.acquire() == 0.0


def test_a_request_past_the_rate_gets_openais_429() -> None:
    with serve_in_thread(rate_limit_rpm=60) as server:  # one a second
        started = time.monotonic()
        assert rerank(server, {"query": "q", "documents": ["a"]}).status_code == 200
        response = rerank(server, {"query": "q", "documents": ["a"]})
        # The wait the server states is the second's rest since the first request: a busy
        # machine takes some of that second between the two requests.
        elapsed_ms = (time.monotonic() - started) * 1000
        stats = server.stats

    assert response.status_code == 429
    assert response.json()["error"]["type"] == "requests"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert response.json()["error"]["param"] is None
    message = response.json()["error"]["message"]
    assert message.startswith("Rate limit reached on requests per min (RPM): Limit 60, ")
    assert "Please try again in " in message
    wait_ms = int(response.headers["retry-after-ms"])
    assert 1000 - elapsed_ms - 1 <= wait_ms <= 1000
    assert response.headers["retry-after"] == "1"  # whole seconds, rounded up
    assert response.headers["x-ratelimit-limit-requests"] == "60"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert (stats.requests, stats.rate_limited, stats.faults["rate_limit"]) == (2, 1, 0)


@pytest.mark.real_waits  # the server's limiter runs on the real clock
def test_a_client_that_honours_retry_after_gets_in_on_its_next_try() -> None:
    # One a second, one at once: the second call comes well within the second however slow
    # the machine (thirty calls at 20 a second could take longer than the refill on a busy
    # one, and then nobody waited).
    calls = 3
    with (
        serve_in_thread(rate_limit_rpm=60) as server,
        RerankClient(server.base_url, max_retries=10) as client,
    ):
        rankings = [
            client.rerank("apple", ["pear", "apple"]).results[0].index for _ in range(calls)
        ]
        requests, limited = server.stats.requests, server.stats.rate_limited

    assert rankings == [1] * calls
    assert limited >= 1  # the call beyond one second's worth had to wait
    assert requests - limited == calls
    assert limited <= calls - 1  # and each wait was long enough: one 429 per late call


def test_the_rate_limit_comes_after_the_key() -> None:
    with serve_in_thread(rate_limit_rpm=60, api_key="sk-key") as server:
        for _ in range(3):
            assert rerank(server, {"query": "q", "documents": ["a"]}).status_code == 401
        headers = {"Authorization": "Bearer sk-key"}
        assert (
            rerank(server, {"query": "q", "documents": ["a"]}, headers=headers).status_code == 200
        )
        assert server.stats.rate_limited == 0


def test_bad_rates_are_refused_and_the_option_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="rate_limit_rpm"):
            ServerConfig(rate_limit_rpm=bad)  # type: ignore[arg-type]
    monkeypatch.delenv(_cli.API_KEY_ENV, raising=False)
    parser = argparse.ArgumentParser()
    _cli.add_arguments(parser)
    args = parser.parse_args(["--rate-limit-rpm", "60"])
    assert _cli.config_from_args(args) == ServerConfig(rate_limit_rpm=60)
