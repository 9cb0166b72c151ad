"""RerankClient protocol behaviour through httpx.MockTransport, on the sync and async paths."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import httpx
import pytest
from support import (
    API_KEY,
    SEED_DOCUMENTS,
    SEED_QUERY,
    SEED_RESPONSE,
    MockAPI,
    Sleeps,
    keyword_score,
    run_mode,
)

import rerank_integrations
from rerank_integrations import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    RerankClient,
    RerankError,
    RerankResponse,
    ResponseFormatError,
    ServerError,
)


def call(mode: str, client: RerankClient, *args: Any, **kwargs: Any) -> RerankResponse:
    return run_mode(
        mode, lambda: client.rerank(*args, **kwargs), lambda: client.arerank(*args, **kwargs)
    )


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_public_surface_is_pinned() -> None:
    assert sorted(rerank_integrations.__all__) == sorted(
        [
            "APIConnectionError",
            "APIStatusError",
            "APITimeoutError",
            "AuthenticationError",
            "BadRequestError",
            "ClientSettings",
            "ConfigurationError",
            "Cost",
            "DIALECTS",
            "EvalInputError",
            "EvalRunError",
            "GatewayTimeoutError",
            "Image",
            "Limiter",
            "NOT_GIVEN",
            "NotGiven",
            "Price",
            "PromptTemplate",
            "RateLimit",
            "RateLimitError",
            "RateLimiter",
            "RequestTimeoutError",
            "RerankCache",
            "RerankClient",
            "RerankError",
            "RerankResponse",
            "RerankResult",
            "RerankStats",
            "ResponseFormatError",
            "RetryPolicy",
            "ServerError",
            "SharedCache",
            "ToolInputError",
            "Usage",
            "__version__",
            "parse_retry_after",
            "register_dialect",
        ]
    )
    for name in rerank_integrations.__all__:
        assert getattr(rerank_integrations, name) is not None


# -- the seed example and the request we send ---------------------------------------------


def test_seed_example_is_reordered_with_scores(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    mock_api.queue(json_reply(200, SEED_RESPONSE))
    client = make_client(model="jina-reranker-v2-base-multilingual")
    response = call(mode, client, SEED_QUERY, SEED_DOCUMENTS, top_n=3)
    assert [r.index for r in response.results] == [0, 6, 4]
    assert [r.relevance_score for r in response.results] == [
        0.8783142566680908,
        0.8783142566680908,
        0.8624675869941711,
    ]
    assert [r.document for r in response.results] == [SEED_DOCUMENTS[i] for i in (0, 6, 4)]
    assert response.usage is not None
    assert response.usage.total_tokens == 815
    assert response.model == "jina-reranker-v2-base-multilingual"


def test_request_matches_the_documented_format(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    client = make_client(model="m-1", headers={"X-Team": "search"})
    call(mode, client, "q", ["a", "b", "c"], top_n=2, truncate=True)
    (request,) = mock_api.requests
    assert request.method == "POST"
    assert str(request.url) == "https://rerank.test/v1/rerank"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-team"] == "search"
    assert request.headers["user-agent"].startswith("rerank-integrations/")
    assert json.loads(request.content) == {
        "model": "m-1",
        "query": "q",
        "top_n": 2,
        "documents": ["a", "b", "c"],
        "return_documents": False,
        "truncate": True,
    }


def test_model_is_omitted_when_unset_and_overridable_per_call(
    mode: str, make_client: Any, mock_api: MockAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RERANK_MODEL", raising=False)
    client = make_client()
    call(mode, client, "q", ["a", "b"])
    call(mode, client, "q", ["a", "b"], model="per-call")
    first, second = mock_api.bodies
    assert "model" not in first
    assert "top_n" not in first
    assert second["model"] == "per-call"


def test_no_key_means_no_authorization_header(
    mode: str, make_client: Any, mock_api: MockAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    call(mode, make_client(api_key=None), "q", ["a"])
    assert "authorization" not in mock_api.requests[0].headers


# -- input handling ------------------------------------------------------------------------


def test_empty_documents_send_nothing(mode: str, make_client: Any, mock_api: MockAPI) -> None:
    response = call(mode, make_client(), "q", [], top_n=3)
    assert response.results == []
    assert mock_api.requests == []


@pytest.mark.parametrize("top_n", [None, 3, 50])
def test_top_n_none_or_too_large_returns_all(
    mode: str, make_client: Any, mock_api: MockAPI, top_n: int | None
) -> None:
    response = call(mode, make_client(), "apple", ["apple pie", "pear", "apple"], top_n=top_n)
    assert sorted(r.index for r in response.results) == [0, 1, 2]
    assert "top_n" not in mock_api.bodies[0]


@pytest.mark.parametrize(
    ("query", "documents", "top_n", "error", "words"),
    [
        (None, ["a"], None, TypeError, "query"),
        (b"q", ["a"], None, TypeError, "query"),
        ("q", "abc", None, TypeError, "documents"),
        ("q", None, None, TypeError, "documents"),
        ("q", ["a", 3], None, TypeError, "documents[1]"),
        ("q", ["a", None], None, TypeError, "documents[1]"),
        ("q", ["a"], 0, ValueError, "top_n"),
        ("q", ["a"], -2, ValueError, "top_n"),
        ("q", ["a"], 1.5, TypeError, "top_n"),
        ("q", ["a"], True, TypeError, "top_n"),
        ("q", ["a"], "3", TypeError, "top_n"),
    ],
)
def test_bad_input_is_refused_before_any_request(
    mode: str,
    make_client: Any,
    mock_api: MockAPI,
    query: Any,
    documents: Any,
    top_n: Any,
    error: type[Exception],
    words: str,
) -> None:
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        call(mode, make_client(), query, documents, top_n=top_n)
    assert mock_api.requests == []


def test_server_that_ignores_top_n_and_sorting_still_yields_a_sorted_trimmed_ranking(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    unsorted = {
        "results": [
            {"index": 2, "relevance_score": 0.1},
            {"index": 0, "relevance_score": 0.7},
            {"index": 3, "relevance_score": 0.9},
            {"index": 1, "relevance_score": 0.7},
        ]
    }
    mock_api.queue(json_reply(200, unsorted))
    response = call(mode, make_client(), "q", ["a", "b", "c", "d"], top_n=3)
    assert [(r.index, r.relevance_score) for r in response.results] == [
        (3, 0.9),
        (0, 0.7),
        (1, 0.7),
    ]


def test_identical_texts_are_sent_once_and_every_copy_is_scored(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    documents = ["apple pie", "pear", "apple pie", "apple", "pear", "apple pie"]
    response = call(mode, make_client(), "apple pie", documents)
    assert mock_api.bodies[0]["documents"] == ["apple pie", "pear", "apple"]
    assert [r.index for r in response.results] == [0, 2, 5, 3, 1, 4]
    scores = {r.index: r.relevance_score for r in response.results}
    assert scores[0] == scores[2] == scores[5]
    assert scores[1] == scores[4]


def test_dedup_keeps_top_n_right(mode: str, make_client: Any, mock_api: MockAPI) -> None:
    documents = ["x y", "x y", "x y", "x", "z"]
    response = call(mode, make_client(), "x y", documents, top_n=4)
    assert mock_api.bodies[0]["top_n"] == 3  # asked for no more distinct texts than exist
    assert [r.index for r in response.results] == [0, 1, 2, 3]


# -- batching ------------------------------------------------------------------------------


def corpus(size: int) -> list[str]:
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa"]
    return [
        f"doc {i} " + " ".join(words[(i * k) % 7] for k in range(1, 1 + i % 5)) for i in range(size)
    ]


def expected_ranking(query: str, documents: list[str], top_n: int) -> list[int]:
    scored = sorted(range(len(documents)), key=lambda i: (-keyword_score(query, documents[i]), i))
    return scored[:top_n]


def test_large_calls_are_split_and_merged_into_one_ranking(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    documents = corpus(2300)
    client = make_client(max_documents_per_request=1000)
    response = call(mode, client, "alpha omega", documents, top_n=10)
    sizes = sorted(len(body["documents"]) for body in mock_api.bodies)
    assert sizes == [300, 1000, 1000]
    assert all(body["top_n"] == 10 for body in mock_api.bodies)
    assert [r.index for r in response.results] == expected_ranking("alpha omega", documents, 10)


def test_batches_are_in_flight_together(mode: str, mock_api: MockAPI) -> None:
    """Three batches: each request is held until all three have arrived."""
    documents = corpus(25)
    arrived: list[int] = []
    sync_barrier = threading.Barrier(3, timeout=5)

    def sync_handler(request: httpx.Request) -> httpx.Response:
        arrived.append(1)
        sync_barrier.wait()
        return mock_api(request)

    async def async_handler(request: httpx.Request) -> httpx.Response:
        arrived.append(1)
        for _ in range(500):
            if len(arrived) >= 3:
                break
            await asyncio.sleep(0.001)
        assert len(arrived) >= 3, "batches were sent one after another"
        return mock_api(request)

    client = RerankClient(
        "https://rerank.test",
        max_documents_per_request=10,
        http_client=httpx.Client(transport=httpx.MockTransport(sync_handler)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(async_handler)),
    )
    response = call(mode, client, "alpha", documents, top_n=5)
    assert len(mock_api.requests) == 3
    assert [r.index for r in response.results] == expected_ranking("alpha", documents, 5)


def test_max_concurrency_bounds_batches_in_flight(mode: str, mock_api: MockAPI) -> None:
    in_flight = [0, 0]  # now, most
    lock = threading.Lock()

    def enter() -> None:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])

    def leave() -> None:
        with lock:
            in_flight[0] -= 1

    def sync_handler(request: httpx.Request) -> httpx.Response:
        enter()
        threading.Event().wait(0.01)
        leave()
        return mock_api(request)

    async def async_handler(request: httpx.Request) -> httpx.Response:
        enter()
        await asyncio.sleep(0.01)
        leave()
        return mock_api(request)

    client = RerankClient(
        "https://rerank.test",
        max_documents_per_request=2,
        max_concurrency=2,
        http_client=httpx.Client(transport=httpx.MockTransport(sync_handler)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(async_handler)),
    )
    call(mode, client, "alpha", corpus(20))
    assert len(mock_api.requests) == 10
    assert in_flight[1] == 2


def test_failed_batch_fails_the_call(mode: str, make_client: Any, mock_api: MockAPI) -> None:
    mock_api.queue(
        lambda r: mock_api_reply_ok(r), json_reply(400, {"error": {"message": "bad batch"}})
    )
    client = make_client(max_documents_per_request=5)
    with pytest.raises(BadRequestError, match="bad batch"):
        call(mode, client, "alpha", corpus(10))


def mock_api_reply_ok(request: httpx.Request) -> httpx.Response:
    count = len(json.loads(request.content)["documents"])
    results = [{"index": i, "relevance_score": 0.5} for i in range(count)]
    return httpx.Response(200, json={"results": results})


# -- retries -------------------------------------------------------------------------------


def test_429_is_retried_after_the_servers_retry_after(
    mode: str, make_client: Any, mock_api: MockAPI, sleeps: Sleeps
) -> None:
    mock_api.queue(json_reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "2"}))
    response = call(mode, make_client(), "apple", ["apple", "pear"])
    assert [r.index for r in response.results] == [0, 1]
    assert len(mock_api.requests) == 2
    assert sleeps == [2.0]


def test_retry_after_beyond_the_cap_gives_up(
    mode: str, make_client: Any, mock_api: MockAPI, sleeps: Sleeps
) -> None:
    mock_api.queue(json_reply(503, {"error": "maintenance"}, {"Retry-After": "86400"}))
    with pytest.raises(ServerError, match="maintenance"):
        call(mode, make_client(), "apple", ["apple", "pear"])
    assert len(mock_api.requests) == 1
    assert sleeps == []


def test_503_is_retried_with_growing_backoff(
    mode: str, make_client: Any, mock_api: MockAPI, sleeps: Sleeps
) -> None:
    mock_api.queue(json_reply(503, {"error": "busy"}), json_reply(502, {}))
    call(mode, make_client(), "apple", ["apple", "pear"])
    assert len(mock_api.requests) == 3
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5
    assert 0.75 <= sleeps[1] <= 1.0


@pytest.mark.parametrize(
    "failure",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.ReadTimeout("timed out"),
    ],
)
def test_transport_failures_are_retried(
    mode: str, make_client: Any, mock_api: MockAPI, sleeps: Sleeps, failure: Exception
) -> None:
    mock_api.queue(failure)
    response = call(mode, make_client(), "apple", ["apple", "pear"])
    assert len(response.results) == 2
    assert len(mock_api.requests) == 2
    assert len(sleeps) == 1


def test_exhausted_retries_raise_the_last_error(
    mode: str, make_client: Any, mock_api: MockAPI, sleeps: Sleeps
) -> None:
    mock_api.queue(*[json_reply(503, {"error": {"message": "overloaded"}})] * 3)
    with pytest.raises(ServerError, match="overloaded") as info:
        call(mode, make_client(max_retries=2), "q", ["a"])
    assert info.value.status_code == 503
    assert len(mock_api.requests) == 3
    assert len(sleeps) == 2


def test_timeouts_become_api_timeout_errors(mode: str, make_client: Any, mock_api: MockAPI) -> None:
    mock_api.queue(*[httpx.ReadTimeout("read timed out")] * 2)
    with pytest.raises(APITimeoutError) as info:
        call(mode, make_client(max_retries=1), "q", ["a"])
    assert isinstance(info.value, APIConnectionError)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_connection_errors_become_api_connection_errors(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    mock_api.queue(httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError, match="refused"):
        call(mode, make_client(max_retries=0), "q", ["a"])


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, BadRequestError),
        (413, BadRequestError),
        (422, BadRequestError),
        (418, APIStatusError),
    ],
)
def test_client_errors_are_not_retried(
    mode: str,
    make_client: Any,
    mock_api: MockAPI,
    sleeps: Sleeps,
    status: int,
    error: type[APIStatusError],
) -> None:
    mock_api.queue(json_reply(status, {"detail": "nope"}))
    with pytest.raises(error) as info:
        call(mode, make_client(), "q", ["a"])
    assert type(info.value) is error
    assert info.value.status_code == status
    assert len(mock_api.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "error"), [(408, APIStatusError), (409, APIStatusError), (429, RateLimitError)]
)
def test_retryable_client_statuses(
    mode: str, make_client: Any, mock_api: MockAPI, status: int, error: type[APIStatusError]
) -> None:
    mock_api.queue(*[json_reply(status, {"message": "again"})] * 2)
    with pytest.raises(error):
        call(mode, make_client(max_retries=1), "q", ["a"])
    assert len(mock_api.requests) == 2


# -- error messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            b'{"error": {"message": "model not found", "type": "invalid_request_error"}}',
            "application/json",
            "model not found",
        ),
        (b'{"message": "invalid api token"}', "application/json", "invalid api token"),
        (b'{"detail": "Input validation error"}', "application/json", "Input validation error"),
        (
            b'{"detail": [{"loc": ["body", "query"], "msg": "field required"}]}',
            "application/json",
            "body.query: field required",
        ),
        (
            b'{"code": 20015, "message": "length exceeded", "data": null}',
            "application/json",
            "length exceeded",
        ),
        (
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "text/html",
            "502 Bad Gateway",
        ),
        (b"upstream connect error", "text/plain", "upstream connect error"),
    ],
)
def test_error_messages_carry_the_servers_words(
    mode: str, make_client: Any, mock_api: MockAPI, body: bytes, content_type: str, expected: str
) -> None:
    mock_api.queue(
        httpx.Response(
            400, content=body, headers={"content-type": content_type, "x-request-id": "req-42"}
        )
    )
    with pytest.raises(BadRequestError) as info:
        call(mode, make_client(), "q", ["a"])
    message = str(info.value)
    assert message.startswith("HTTP 400 Bad Request: ")
    assert expected in message
    assert "req-42" in message
    assert info.value.request_id == "req-42"


def test_empty_error_body_is_said(mode: str, make_client: Any, mock_api: MockAPI) -> None:
    mock_api.queue(httpx.Response(401, content=b""))
    with pytest.raises(AuthenticationError, match="empty body"):
        call(mode, make_client(), "q", ["a"])


def test_error_body_echoing_the_key_is_redacted(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    mock_api.queue(
        json_reply(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}})
    )
    with pytest.raises(AuthenticationError) as info:
        call(mode, make_client(), "q", ["a"])
    assert API_KEY not in str(info.value)
    assert API_KEY not in repr(info.value.args)
    assert "***" in str(info.value)


def test_long_bodies_are_excerpted(mode: str, make_client: Any, mock_api: MockAPI) -> None:
    mock_api.queue(httpx.Response(500, content=b"x" * 50_000))
    with pytest.raises(ServerError) as info:
        call(mode, make_client(max_retries=0), "q", ["a"])
    assert len(str(info.value)) < 1000


# -- answers that are not rankings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"<html>hello</html>", "not JSON"),
        (b"", "not JSON"),
        (b'{"results": [{"index": 0, "relevance_score": NaN}]}', "not"),
        (b'"ok"', "not an object"),
        (b"{}", "no 'results'"),
        (b'{"usage": {"total_tokens": 3}}', "no 'results'"),
        (b'{"results": {"index": 0}}', "not a list"),
        (b'{"results": []}', "no results"),
        (b'{"results": ["a"]}', "not an object"),
        (b'{"results": [{"relevance_score": 0.5}]}', "no 'index'"),
        (b'{"results": [{"index": 0}]}', "no 'relevance_score'"),
        (b'{"results": [{"index": 2, "relevance_score": 0.5}]}', "out of range"),
        (b'{"results": [{"index": -1, "relevance_score": 0.5}]}', "out of range"),
        (b'{"results": [{"index": "0", "relevance_score": 0.5}]}', "not an integer"),
        (b'{"results": [{"index": true, "relevance_score": 0.5}]}', "not an integer"),
        (
            b'{"results": [{"index": 0, "relevance_score": 0.5},'
            b' {"index": 0, "relevance_score": 0.4}]}',
            "more than once",
        ),
        (b'{"results": [{"index": 0, "relevance_score": "0.5"}]}', "not a number"),
        (b'{"results": [{"index": 0, "relevance_score": null}]}', "not a number"),
        (b'{"results": [{"index": 0, "relevance_score": 1e400}]}', "not"),
        (b'{"results": [{"index": 0, "relevance_score": true}]}', "not a number"),
    ],
)
def test_invalid_answers_raise_response_format_error(
    mode: str, make_client: Any, mock_api: MockAPI, content: bytes, words: str
) -> None:
    mock_api.queue(httpx.Response(200, content=content))
    with pytest.raises(ResponseFormatError, match=words) as info:
        call(mode, make_client(), "q", ["a", "b"])
    assert info.value.status_code == 200
    assert "HTTP 200" in str(info.value)
    assert len(mock_api.requests) == 1  # a bad answer is not retried


def test_error_reported_inside_a_200_is_typed(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    mock_api.queue(
        json_reply(200, {"error_code": 336221, "error_msg": "max number of documents is 64"})
    )
    with pytest.raises(BadRequestError, match="max number of documents is 64"):
        call(mode, make_client(), "q", ["a"])


def test_bare_list_and_score_key_are_understood(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    mock_api.queue(json_reply(200, [{"index": 1, "score": 2.5}, {"index": 0, "score": -1.0}]))
    response = call(mode, make_client(), "q", ["a", "b"])
    assert [(r.index, r.relevance_score) for r in response.results] == [(1, 2.5), (0, -1.0)]


# -- configuration -------------------------------------------------------------------------


def test_configuration_from_environment(
    mode: str, monkeypatch: pytest.MonkeyPatch, mock_api: MockAPI
) -> None:
    monkeypatch.setenv("RERANK_BASE_URL", "https://env.example/v1")
    monkeypatch.setenv("RERANK_API_KEY", "sk-from-env")
    monkeypatch.setenv("RERANK_MODEL", "env-model")
    transport = httpx.MockTransport(mock_api)
    client = RerankClient(
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    assert client.endpoint == "https://env.example/v1/rerank"
    assert client.model == "env-model"
    call(mode, client, "q", ["a"])
    assert mock_api.requests[0].headers["authorization"] == "Bearer sk-from-env"
    assert mock_api.bodies[0]["model"] == "env-model"


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANK_BASE_URL", "https://env.example")
    monkeypatch.setenv("RERANK_MODEL", "env-model")
    client = RerankClient("https://arg.example", model="arg-model")
    assert client.endpoint == "https://arg.example/v1/rerank"
    assert client.model == "arg-model"


def test_missing_base_url_names_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError) as info:
        RerankClient()
    assert "base_url" in str(info.value)
    assert "RERANK_BASE_URL" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("base_url", "endpoint"),
    [
        ("https://h", "https://h/v1/rerank"),
        ("https://h/", "https://h/v1/rerank"),
        ("https://h/v1", "https://h/v1/rerank"),
        ("https://h/v1/", "https://h/v1/rerank"),
        ("https://h/v2", "https://h/v2/rerank"),
        ("https://h/v1/rerank", "https://h/v1/rerank"),
        ("https://h/rerank", "https://h/rerank"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/rerank"),
        ("https://gw.example/proxy/v1", "https://gw.example/proxy/v1/rerank"),
        ("https://gw.example/proxy", "https://gw.example/proxy/v1/rerank"),
        ("https://h/v1?api-version=2", "https://h/v1/rerank?api-version=2"),
        ("https://h/compatible-api/v1/reranks", "https://h/compatible-api/v1/reranks"),
        ("http://127.0.0.1:8080/reranking", "http://127.0.0.1:8080/reranking"),
    ],
)
def test_base_url_rule(base_url: str, endpoint: str) -> None:
    assert RerankClient(base_url).endpoint == endpoint


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"base_url": "api.example.com"}, ConfigurationError, "base_url"),
        ({"base_url": "ftp://h"}, ConfigurationError, "base_url"),
        ({"base_url": "https://"}, ConfigurationError, "base_url"),
        ({"base_url": "http://h:99999"}, ConfigurationError, "port"),
        ({"base_url": "https://h", "timeout": -1}, ValueError, "timeout"),
        ({"base_url": "https://h", "timeout": 0}, ValueError, "timeout"),
        ({"base_url": "https://h", "timeout": "5"}, TypeError, "timeout"),
        ({"base_url": "https://h", "max_retries": -1}, ValueError, "max_retries"),
        (
            {"base_url": "https://h", "max_documents_per_request": 0},
            ValueError,
            "max_documents_per_request",
        ),
        ({"base_url": "https://h", "max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"base_url": "https://h", "dialect": "klingon"}, ValueError, "dialect"),
        ({"base_url": "https://h", "api_key": 123}, TypeError, "api_key"),
    ],
)
def test_bad_settings_name_the_argument(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        RerankClient(**kwargs)


# -- secrets and logs ----------------------------------------------------------------------


def test_key_is_never_shown(
    mode: str, make_client: Any, mock_api: MockAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client()
    mock_api.queue(json_reply(429, {"message": "later"}), json_reply(401, {"message": "bad key"}))
    with pytest.raises(AuthenticationError) as info:
        call(mode, client, "secret query text", ["secret document text"])
    shown = [repr(client), str(client), str(info.value), repr(info.value), repr(client.settings)]
    shown += [record.getMessage() for record in caplog.records]
    for text in shown:
        assert API_KEY not in text
    assert client.settings.api_key is not None
    assert client.settings.api_key.get_secret_value() == API_KEY


def test_logging_says_what_happens_without_text_or_key(
    mode: str, make_client: Any, mock_api: MockAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rerank_integrations")
    mock_api.queue(json_reply(503, {}, {"Retry-After": "1.5"}))
    call(mode, make_client(), "private query", ["private passage"])
    records = [r for r in caplog.records if r.name == "rerank_integrations"]
    debug = [r for r in records if r.levelno == logging.DEBUG]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(debug) == 1
    assert "https://rerank.test/v1/rerank" in debug[0].getMessage()
    assert len(warnings) == 1
    assert "HTTP 503" in warnings[0].getMessage()
    assert "1.50s" in warnings[0].getMessage()
    for record in records:
        text = record.getMessage()
        assert "private" not in text
        assert API_KEY not in text


# -- lifecycle -----------------------------------------------------------------------------


def test_callers_http_clients_are_not_closed(mock_api: MockAPI) -> None:
    http_client = httpx.Client(transport=httpx.MockTransport(mock_api))
    with RerankClient("https://h", http_client=http_client) as client:
        client.rerank("q", ["a"])
    assert not http_client.is_closed
    http_client.close()


def test_own_pools_are_closed() -> None:
    client = RerankClient("https://h")
    pool = client._get_http_client()
    client.close()
    assert pool.is_closed
    client.close()  # closing twice is harmless


async def test_aclose_closes_this_loops_pool() -> None:
    async with RerankClient("https://h") as client:
        pool = await client._get_async_http_client()
    assert pool.is_closed


def test_errors_share_one_base() -> None:
    for error in (
        APIStatusError,
        AuthenticationError,
        BadRequestError,
        RateLimitError,
        ServerError,
        APIConnectionError,
        APITimeoutError,
        ResponseFormatError,
        ConfigurationError,
    ):
        assert issubclass(error, RerankError)


def test_a_pickled_client_opens_its_own_pools(mock_api: MockAPI) -> None:
    import pickle

    client = RerankClient("https://h/v1", api_key=API_KEY, model="m", max_retries=4)
    client._get_http_client()
    copy = pickle.loads(pickle.dumps(client))
    assert copy.endpoint == client.endpoint
    assert copy.settings == client.settings
    assert copy._engine.pools._http_client is None  # opened on first use
    client.close()


# -- the per-call deadline -----------------------------------------------------------------


def test_deadline_stops_retrying_when_the_wait_would_overrun(
    mode: str, make_client: Any, mock_api: MockAPI, sleeps: Sleeps
) -> None:
    mock_api.queue(json_reply(503, {"error": "busy"}, {"Retry-After": "30"}))
    with pytest.raises(ServerError, match="busy"):
        call(mode, make_client(max_retries=5), "q", ["a"], deadline=2.0)
    assert len(mock_api.requests) == 1
    assert sleeps == []


def test_deadline_allows_retries_that_fit(
    mode: str, make_client: Any, mock_api: MockAPI, sleeps: Sleeps
) -> None:
    mock_api.queue(json_reply(503, {}, {"Retry-After": "0.5"}))
    response = call(mode, make_client(deadline=5.0), "apple", ["apple", "pear"])
    assert response.results[0].index == 0
    assert sleeps == [0.5]


def test_deadline_shortens_each_requests_timeout(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    call(mode, make_client(timeout=60), "q", ["a"], deadline=1.5)
    timeout = mock_api.requests[0].extensions["timeout"]
    assert 0 < timeout["read"] <= 1.5
    assert 0 < timeout["connect"] <= 1.5
    call(mode, make_client(timeout=60), "q", ["a"])
    assert mock_api.requests[1].extensions["timeout"]["read"] == 60


@pytest.mark.parametrize(
    ("deadline", "error"), [(0, ValueError), (-1, ValueError), ("5", TypeError), (True, TypeError)]
)
def test_bad_deadline_is_refused_before_any_request(
    mode: str, make_client: Any, mock_api: MockAPI, deadline: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="deadline"):
        call(mode, make_client(), "q", ["a"], deadline=deadline)
    with pytest.raises(error, match="deadline"):
        make_client(deadline=deadline)
    assert mock_api.requests == []


# -- score transform -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logit", "probability"),
    [
        (0.0, 0.5),
        (2.0, 0.8807970779778823),
        (-2.0, 0.11920292202211755),
        (800.0, 1.0),
        (-800.0, 0.0),
    ],
)
def test_sigmoid_is_exact_and_never_overflows(logit: float, probability: float) -> None:
    from rerank_integrations._checks import sigmoid

    assert sigmoid(logit) == pytest.approx(probability, abs=1e-300)


def test_logits_pass_through_unless_asked(mode: str, make_client: Any, mock_api: MockAPI) -> None:
    logits = {
        "results": [{"index": 1, "relevance_score": 3.5}, {"index": 0, "relevance_score": -7.25}]
    }
    mock_api.queue(json_reply(200, logits), json_reply(200, logits))
    raw = call(mode, make_client(), "q", ["a", "b"])
    mapped = call(mode, make_client(score_transform="sigmoid"), "q", ["a", "b"])
    assert [(r.index, r.relevance_score) for r in raw.results] == [(1, 3.5), (0, -7.25)]
    assert [r.index for r in mapped.results] == [1, 0]
    assert [round(r.relevance_score, 6) for r in mapped.results] == [0.970688, 0.00071]


@pytest.mark.parametrize("name", ["softmax", "SIGMOID", 1])
def test_unknown_score_transform_is_refused(name: Any) -> None:
    with pytest.raises(ValueError, match="score_transform"):
        RerankClient("https://h", score_transform=name)
