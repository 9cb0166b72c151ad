"""Tests of the embedded rerank server: tokenizer, BM25, HTTP API, faults, counters and CLI."""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerank_integrations.server import (
    RERANK_PATHS,
    LocalRerankServer,
    ServerConfig,
    _cli,
    bm25_scores,
    count_tokens,
    serve_in_thread,
    to_relevance,
    tokenize,
)
from rerank_integrations.server._bm25 import (
    RELEVANCE_HALF_SCORE,
    SPELLING_VARIANTS,
    STOP_WORDS,
    analyze,
    score_tokens,
)

# Example documents of the rerank API's documentation, plus unrelated ones.
ENGLISH_SKINCARE = (
    "Organic skincare for sensitive skin with aloe vera and chamomile: Imagine the soothing "
    "embrace of nature with our organic skincare range, crafted specifically for sensitive skin."
)
CHINESE_SKINCARE = (
    "针对敏感肌专门设计的天然有机护肤产品:体验由芦荟和洋甘菊提取物带来的自然呵护。"
    "我们的护肤产品特别为敏感肌设计,温和滋润,保护您的肌肤不受刺激。"
)
SPANISH_SKINCARE = (
    "Cuidado de la piel orgánico para piel sensible con aloe vera y manzanilla: Descubre el "
    "poder de la naturaleza con nuestra línea de cuidado de la piel orgánico."
)
FOOTBALL = "New football boots with a lighter sole and better grip for wet pitches."
LAPTOP = "Our new laptop has a brighter screen, a faster processor and a longer battery life."
PHONE = "新的智能手机配备更大的屏幕和更长的电池续航时间。"
MULTILINGUAL = [ENGLISH_SKINCARE, FOOTBALL, CHINESE_SKINCARE, LAPTOP, SPANISH_SKINCARE, PHONE]

PAYLOAD: dict[str, Any] = {"query": "organic skincare", "documents": ["organic skincare", "boots"]}


def post(
    server: LocalRerankServer, body: Any = None, *, path: str = "/v1/rerank", **kw: Any
) -> httpx.Response:
    """POST a JSON body (or raw ``content=``) to the server."""
    if "content" in kw:
        return httpx.post(server.base_url + path, **kw)
    return httpx.post(server.base_url + path, json=PAYLOAD if body is None else body, **kw)


@pytest.fixture(scope="module")
def default_server() -> Iterator[LocalRerankServer]:
    """A server with the default configuration, shared by the module."""
    with serve_in_thread() as server:
        yield server


@pytest.fixture(scope="module")
def guarded_server() -> Iterator[LocalRerankServer]:
    """A server that requires an API key and accepts at most three documents."""
    with serve_in_thread(api_key="sk-local-SECRET", max_documents=3) as server:
        yield server


# --------------------------------------------------------------------------- tokenizer


def test_tokenize_english_words_casefolded_digits_kept() -> None:
    assert tokenize("Organic SKINCARE, for Sensitive-Skin! Model X200 (2024)") == [
        "organic",
        "skincare",
        "for",
        "sensitive",
        "skin",
        "model",
        "x200",
        "2024",
    ]


def test_tokenize_applies_nfkc_and_casefold() -> None:
    assert tokenize("ＦＵＬＬ-width Straße Crème") == ["full", "width", "strasse", "crème"]


def test_tokenize_chinese_japanese_korean_bigrams() -> None:
    assert tokenize("敏感肌") == ["敏感", "感肌"]
    assert tokenize("東京タワー") == ["東京", "京タ", "タワ", "ワー"]
    assert tokenize("ｶﾀｶﾅ") == ["カタ", "タカ", "カナ"]  # half-width katakana via NFKC
    assert tokenize("한국어 텍스트") == ["한국", "국어", "텍스", "스트"]
    assert tokenize("肌") == ["肌"]
    assert tokenize("护肤。肌") == ["护肤", "肌"]  # punctuation ends a run


def test_tokenize_mixed_scripts_split_into_runs() -> None:
    assert tokenize("iPhone15手机 and 新的智能手机!") == [
        "iphone15",
        "手机",
        "and",
        "新的",
        "的智",
        "智能",
        "能手",
        "手机",
    ]
    assert tokenize("aloe芦荟vera") == ["aloe", "芦荟", "vera"]


def test_tokenize_empty_and_punctuation_only() -> None:
    assert tokenize("") == []
    assert tokenize(" ,.!? -- 。、") == []


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_tokenize_ascii_fast_path_matches_word_regex(text: str) -> None:
    assert tokenize(text) == re.findall(r"\w+", text.lower())


@given(st.text())
def test_tokenize_is_deterministic_and_yields_clean_tokens(text: str) -> None:
    tokens = tokenize(text)
    assert tokens == tokenize(text)
    assert all(token and not any(ch.isspace() for ch in token) for token in tokens)


# --------------------------------------------------------------------------- stop words


def test_every_stop_word_and_spelling_is_a_token_of_its_own() -> None:
    words = [*STOP_WORDS, *SPELLING_VARIANTS, *SPELLING_VARIANTS.values()]
    assert [word for word in words if tokenize(word) != [word]] == []
    assert not STOP_WORDS & {*SPELLING_VARIANTS, *SPELLING_VARIANTS.values()}


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("How do I fix a flat tyre?", ["fix", "flat", "tire"]),
        ("Wie wechsle ich den Schlauch am Fahrrad?", ["wechsle", "schlauch", "fahrrad"]),
        (
            "¿Cómo reparo un pinchazo en la cámara de la bicicleta?",
            ["reparo", "pinchazo", "cámara", "bicicleta"],
        ),
        ("Comment réparer une crevaison sur mon vélo ?", ["réparer", "crevaison", "vélo"]),
        ("如何冲咖啡", ["何冲", "冲咖", "咖啡"]),
        ("多肉植物应该怎么浇水？", ["多肉", "肉植", "植物", "物应", "该怎", "么浇", "浇水"]),
    ],
)
def test_analyze_leaves_out_the_stop_words_of_each_language(text: str, terms: list[str]) -> None:
    assert analyze(text) == terms


def test_content_words_of_one_language_are_not_stop_words_of_another() -> None:
    # French "pour" and "car", German "hat", "man", "die" and "dir", and command-line options.
    kept = "pour car hat man die dir python m venv pip install e"
    text = "pour car hat man die dir: python -m venv, pip install -e"
    assert analyze(text) == kept.split()


def test_stop_words_keep_function_words_from_deciding_the_ranking() -> None:
    query = "how do I fix a flat tyre"
    coffee = "Here is how I do it: a cup a day, and I do like it a lot when it is strong."
    bicycle = "To fix a flat tire, take the wheel off and patch the inner tube."
    raw = score_tokens(tokenize(query), [tokenize(coffee), tokenize(bicycle)])
    assert raw[0] > raw[1]  # what the server did with every token counted
    scores = bm25_scores(query, [coffee, bicycle])
    assert scores[0] == 0.0
    assert scores[1] > 0.0


# --------------------------------------------------------------------------- BM25


def test_bm25_ranks_the_matching_document_first() -> None:
    documents = [
        "The cat sat on the mat.",
        "Dogs are loyal and friendly pets.",
        "A guide to growing tomatoes in small gardens.",
        "Cats and dogs can live together peacefully.",
    ]
    cases = {"growing tomatoes": 2, "loyal dogs": 1, "cat mat": 0}
    for query, expected in cases.items():
        scores = bm25_scores(query, documents)
        assert max(range(len(scores)), key=scores.__getitem__) == expected, query


def test_bm25_multilingual_example() -> None:
    def best(query: str) -> int:
        scores = bm25_scores(query, MULTILINGUAL)
        return max(range(len(scores)), key=scores.__getitem__)

    assert best("敏感肌护肤产品") == 2
    assert best("organic skincare for sensitive skin") == 0
    assert best("cuidado de la piel sensible") == 4
    assert best("智能手机电池") == 5


def test_bm25_edge_cases() -> None:
    assert bm25_scores("anything", []) == []
    assert bm25_scores("apple", ["apple pie"])[0] > 0  # positive IDF even for N=1
    assert bm25_scores("...", ["a", "b"]) == [0.0, 0.0]
    assert bm25_scores("apple", ["", ""]) == [0.0, 0.0]
    scores = bm25_scores("apple", ["apple", "pear", "apple apple apple"])
    assert scores[1] == 0.0
    assert scores[2] > scores[0] > 0
    assert bm25_scores("apple apple", ["apple", "pear"]) == bm25_scores("apple", ["apple", "pear"])
    with pytest.raises(ValueError, match="k1"):
        bm25_scores("a", ["a"], k1=-1)
    with pytest.raises(ValueError, match="b must"):
        bm25_scores("a", ["a"], b=2)


def test_bm25_matches_the_formula() -> None:
    documents = ["x b c", "x x d e f", "g"]  # no stop words, so every token is a term
    n, avgdl, k1, b = 3, 9 / 3, 1.2, 0.75
    df_x = 2
    idf = math.log(1 + (n - df_x + 0.5) / (df_x + 0.5))
    expected0 = idf * 1 * (k1 + 1) / (1 + k1 * (1 - b + b * 3 / avgdl))
    expected1 = idf * 2 * (k1 + 1) / (2 + k1 * (1 - b + b * 5 / avgdl))
    scores = bm25_scores("x", documents)
    assert scores[0] == pytest.approx(expected0)
    assert scores[1] == pytest.approx(expected1)
    assert scores[2] == 0.0


def test_bm25_is_fast_for_a_thousand_documents() -> None:
    rng = random.Random(7)
    vocabulary = ["".join(rng.choice("abcdefghijklmnop") for _ in range(6)) for _ in range(3000)]
    documents = [" ".join(rng.choice(vocabulary) for _ in range(120)) for _ in range(1000)]
    query = " ".join(vocabulary[:8])
    bm25_scores(query, documents[:10])  # warm up
    started = time.perf_counter()
    scores = bm25_scores(query, documents)
    elapsed = time.perf_counter() - started
    assert len(scores) == 1000
    assert elapsed < 0.25, f"took {elapsed * 1000:.0f} ms"


def test_score_tokens_reuses_tokens() -> None:
    documents = ["red apple", "green pear"]
    tokens = [tokenize(d) for d in documents]
    assert score_tokens(tokenize("apple"), tokens) == bm25_scores("apple", documents)


def test_to_relevance_is_a_monotone_map_to_unit_interval() -> None:
    assert to_relevance(0.0) == 0.0
    assert to_relevance(-3.0) == 0.0
    assert to_relevance(float("nan")) == 0.0
    assert to_relevance(float("inf")) == 1.0
    assert to_relevance(RELEVANCE_HALF_SCORE) == pytest.approx(0.5)
    values = [to_relevance(s) for s in (0.01, 0.5, 1, 2, 5, 10, 100, 1e6)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert all(0 < v < 1 for v in values)
    with pytest.raises(ValueError, match="half_score"):
        to_relevance(1.0, half_score=0)


# --------------------------------------------------------------------------- HTTP API


def test_health(default_server: LocalRerankServer) -> None:
    response = httpx.get(default_server.base_url + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_base_url_and_port(default_server: LocalRerankServer) -> None:
    assert default_server.base_url == f"http://127.0.0.1:{default_server.port}"
    assert default_server.port > 0
    assert default_server.rerank_url == default_server.base_url + "/v1/rerank"
    assert default_server.running


@pytest.mark.parametrize("path", RERANK_PATHS)
def test_all_rerank_routes_answer_the_same(default_server: LocalRerankServer, path: str) -> None:
    response = post(default_server, path=path)
    assert response.status_code == 200
    assert response.json() == post(default_server).json()


def test_response_shape_order_and_usage(default_server: LocalRerankServer) -> None:
    query = "organic skincare for sensitive skin"
    response = post(default_server, {"query": query, "documents": MULTILINGUAL})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"model", "results", "usage"}
    assert body["model"] == "bm25"
    results = body["results"]
    assert [set(item) for item in results] == [{"index", "relevance_score", "document"}] * 6
    assert sorted(item["index"] for item in results) == list(range(6))
    assert results[0]["index"] == 0
    assert all(item["document"] == {"text": MULTILINGUAL[item["index"]]} for item in results)
    scores = [item["relevance_score"] for item in results]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score < 1.0 for score in scores)
    expected_scores = [to_relevance(s) for s in bm25_scores(query, MULTILINGUAL)]
    assert all(item["relevance_score"] == expected_scores[item["index"]] for item in results)
    tokens = sum(count_tokens(query) + count_tokens(d) for d in MULTILINGUAL)  # query per pair
    assert body["usage"] == {
        "prompt_tokens": tokens,
        "completion_tokens": 0,
        "total_tokens": tokens,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [("敏感肌护肤产品", 2), ("cuidado de la piel sensible", 4), ("organic skincare", 0)],
)
def test_multilingual_example_over_http(
    default_server: LocalRerankServer, query: str, expected: int
) -> None:
    body = post(default_server, {"query": query, "documents": MULTILINGUAL, "top_n": 3}).json()
    assert body["results"][0]["index"] == expected
    assert len(body["results"]) == 3


def test_documents_as_text_objects_and_model_echo(default_server: LocalRerankServer) -> None:
    body = post(
        default_server,
        {
            "model": "jina-reranker-v2-base-multilingual",
            "query": "laptop battery",
            "documents": [{"text": FOOTBALL}, LAPTOP],
        },
    ).json()
    assert body["model"] == "jina-reranker-v2-base-multilingual"
    assert [item["index"] for item in body["results"]] == [1, 0]
    assert body["results"][1]["document"] == {"text": FOOTBALL}


def test_top_n_trims_and_larger_top_n_returns_all(default_server: LocalRerankServer) -> None:
    documents = [FOOTBALL, LAPTOP, ENGLISH_SKINCARE, "skin skin", PHONE]
    body = {"query": "sensitive skin", "documents": documents}
    full = [item["index"] for item in post(default_server, body).json()["results"]]
    assert sorted(full[:2]) == [2, 3]
    trimmed = post(default_server, {**body, "top_n": 2}).json()["results"]
    assert [item["index"] for item in trimmed] == full[:2]
    everything = post(default_server, {**body, "top_n": 99}).json()["results"]
    assert [item["index"] for item in everything] == full


def test_ties_keep_lower_index_first(default_server: LocalRerankServer) -> None:
    documents = ["beta", "alpha", "gamma", "alpha", "delta", "alpha"]
    results = post(default_server, {"query": "alpha", "documents": documents}).json()["results"]
    assert [item["index"] for item in results] == [1, 3, 5, 0, 2, 4]
    results = post(default_server, {"query": "alpha", "documents": documents, "top_n": 2}).json()
    assert [item["index"] for item in results["results"]] == [1, 3]


def test_return_documents_false_omits_documents(default_server: LocalRerankServer) -> None:
    body = post(
        default_server,
        {"query": "boots", "documents": [LAPTOP, FOOTBALL], "return_documents": False},
    ).json()
    assert [set(item) for item in body["results"]] == [{"index", "relevance_score"}] * 2
    assert body["results"][0]["index"] == 1


def test_empty_documents_list_gives_empty_results(default_server: LocalRerankServer) -> None:
    response = post(default_server, {"query": "anything", "documents": []})
    assert response.status_code == 200
    body = response.json()
    assert body["results"] == []
    assert body["usage"]["total_tokens"] == 0  # no document, no query-document pair


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"this is not json", None),
        (b'{"query": "q", "documents": ["a"]', None),
        (b"[1, 2]", None),
        (b'"just a string"', None),
        (b'{"documents": ["a"]}', "query"),
        (b'{"query": 5, "documents": ["a"]}', "query"),
        (b'{"query": null, "documents": ["a"]}', "query"),
        (b'{"query": "", "documents": ["a"]}', "query"),
        (b'{"query": "   ", "documents": ["a"]}', "query"),
        (b'{"query": "q"}', "documents"),
        (b'{"query": "q", "documents": "a"}', "documents"),
        (b'{"query": "q", "documents": {"text": "a"}}', "documents"),
        (b'{"query": "q", "documents": ["a", 3]}', "documents[1]"),
        (b'{"query": "q", "documents": [null]}', "documents[0]"),
        (b'{"query": "q", "documents": [{"txt": "a"}]}', "documents[0]"),
        (b'{"query": "q", "documents": ["a"], "top_n": 0}', "top_n"),
        (b'{"query": "q", "documents": ["a"], "top_n": -2}', "top_n"),
        (b'{"query": "q", "documents": ["a"], "top_n": "3"}', "top_n"),
        (b'{"query": "q", "documents": ["a"], "top_n": true}', "top_n"),
        (b'{"query": "q", "documents": ["a"], "top_n": 2.5}', "top_n"),
        (b'{"query": "q", "documents": ["a"], "return_documents": "no"}', "return_documents"),
        (b'{"model": 7, "query": "q", "documents": ["a"]}', "model"),
    ],
)
def test_validation_errors(
    default_server: LocalRerankServer, content: bytes, param: str | None
) -> None:
    response = post(default_server, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["code"], str)


def test_null_optional_fields_mean_defaults(default_server: LocalRerankServer) -> None:
    body = {"model": None, "query": "boots", "documents": [FOOTBALL], "top_n": None}
    response = post(default_server, {**body, "return_documents": None})
    assert response.status_code == 200
    assert response.json()["results"][0]["document"] == {"text": FOOTBALL}


def test_too_many_documents_is_413_naming_the_limit(guarded_server: LocalRerankServer) -> None:
    headers = {"Authorization": "Bearer sk-local-SECRET"}
    ok = post(guarded_server, {"query": "q", "documents": ["a", "b", "c"]}, headers=headers)
    assert ok.status_code == 200
    response = post(guarded_server, {"query": "q", "documents": ["a"] * 4}, headers=headers)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "too_many_documents"
    assert "3" in error["message"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": ""}, "missing_api_key"),
        ({"Authorization": "Bearer wrong-key"}, "invalid_api_key"),
        ({"Authorization": "Basic sk-local-SECRET"}, "invalid_api_key"),
        ({"Authorization": "Bearer"}, "invalid_api_key"),
        ({"Authorization": "sk-local-SECRET"}, "invalid_api_key"),
    ],
)
def test_auth_failures_are_401(
    guarded_server: LocalRerankServer, headers: dict[str, str], code: str
) -> None:
    response = post(guarded_server, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["code"] == code
    assert "SECRET" not in response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_auth_success_and_health_needs_no_key(guarded_server: LocalRerankServer) -> None:
    for header in ("Bearer sk-local-SECRET", "bearer sk-local-SECRET"):
        assert post(guarded_server, headers={"Authorization": header}).status_code == 200
    assert httpx.get(guarded_server.base_url + "/health").status_code == 200


def test_auth_is_checked_before_validation(guarded_server: LocalRerankServer) -> None:
    response = post(guarded_server, content=b"not json")
    assert response.status_code == 401


def test_unknown_path_and_wrong_method_are_json_errors(default_server: LocalRerankServer) -> None:
    missing = httpx.post(default_server.base_url + "/v1/nothing", json=PAYLOAD)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = httpx.get(default_server.base_url + "/v1/rerank")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "POST"


def test_cheap_scoring_is_query_independent_and_well_formed() -> None:
    documents = [FOOTBALL, LAPTOP, ENGLISH_SKINCARE, PHONE]
    with serve_in_thread(scoring="cheap") as server:
        first = post(server, {"query": "boots", "documents": documents}).json()
        second = post(server, {"query": "laptop", "documents": documents}).json()
    assert first["model"] == "cheap"
    assert first["results"] == second["results"]
    assert sorted(item["index"] for item in first["results"]) == [0, 1, 2, 3]
    scores = [item["relevance_score"] for item in first["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s < 1.0 for s in scores)
    assert first["usage"]["total_tokens"] > 0


# --------------------------------------------------------------------------- faults


def test_error_fault_json_body() -> None:
    with serve_in_thread(error_rate=1.0) as server:
        response = post(server)
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "server_error"
        assert response.json()["error"]["code"] == "service_unavailable"
        assert server.stats.faults["error"] == 1
        assert httpx.get(server.base_url + "/health").status_code == 200  # faults spare /health
    with serve_in_thread(error_rate=1.0, error_status=502) as server:
        assert post(server).status_code == 502


def test_error_fault_html_page() -> None:
    with serve_in_thread(error_rate=1.0, error_status=502, error_html=True) as server:
        response = post(server)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text
    assert "502 Bad Gateway" in response.text


def test_rate_limit_fault_sends_retry_after() -> None:
    with serve_in_thread(rate_limit_rate=1.0, retry_after=2) as server:
        response = post(server)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    with serve_in_thread(rate_limit_rate=1.0, retry_after=0.25) as server:
        assert post(server).headers["retry-after"] == "0.25"


def test_drop_fault_breaks_the_response() -> None:
    with serve_in_thread(drop_rate=1.0) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            post(server)
        with pytest.raises(httpx.TransportError):
            post(server)
        assert server.stats.faults["drop"] == 2
        assert server.stats.in_flight == 0
        assert httpx.get(server.base_url + "/health").status_code == 200


def test_stall_fault_outlasts_a_short_client_timeout() -> None:
    with serve_in_thread(stall_rate=1.0, stall_seconds=0.5) as server:
        with pytest.raises(httpx.ReadTimeout):
            post(server, timeout=0.1)
        assert server.stats.faults["stall"] == 1


def test_stall_fault_answers_normally_after_the_stall() -> None:
    with serve_in_thread(stall_rate=1.0, stall_seconds=0.05) as server:
        started = time.perf_counter()
        response = post(server)
        assert time.perf_counter() - started >= 0.05
    assert response.status_code == 200
    assert response.json()["results"][0]["index"] == 0


def test_stop_does_not_hang_during_a_long_stall() -> None:
    server = LocalRerankServer(ServerConfig(stall_rate=1.0, stall_seconds=30)).start()
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["response"] = post(server, timeout=10)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    client = threading.Thread(target=call)
    client.start()
    deadline = time.monotonic() + 2
    while server.stats.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    server.stop()
    assert time.perf_counter() - started < 2.5
    client.join(5)
    assert not server.running
    if "response" in outcome:
        assert outcome["response"].status_code == 503


def test_latency_is_added_to_every_rerank_request() -> None:
    with serve_in_thread(latency_ms=80) as server:
        started = time.perf_counter()
        assert post(server).status_code == 200
        assert time.perf_counter() - started >= 0.08
        started = time.perf_counter()
        assert post(server, content=b"nope").status_code == 400
        assert time.perf_counter() - started >= 0.08


def _status_sequence(seed: int, count: int) -> list[int]:
    config = ServerConfig(error_rate=0.4, rate_limit_rate=0.3, seed=seed)
    with LocalRerankServer(config) as server, httpx.Client() as client:
        return [client.post(server.rerank_url, json=PAYLOAD).status_code for _ in range(count)]


def test_seed_makes_the_fault_sequence_reproducible() -> None:
    first = _status_sequence(seed=1234, count=24)
    assert first == _status_sequence(seed=1234, count=24)
    rng = random.Random(1234)
    expected = []
    for _ in range(24):
        draw = rng.random()
        expected.append(429 if draw < 0.3 else 503 if draw < 0.7 else 200)
    assert first == expected
    assert {200, 429, 503} <= set(first)
    assert first != _status_sequence(seed=99, count=24)


# --------------------------------------------------------------------------- counters


def test_keep_alive_requests_are_not_delayed(default_server: LocalRerankServer) -> None:
    # Guards against Nagle/delayed-ACK stalls (about 40 ms per request).
    with httpx.Client(base_url=default_server.base_url) as client:
        client.post("/v1/rerank", json=PAYLOAD)
        started = time.perf_counter()
        for _ in range(20):
            assert client.post("/v1/rerank", json=PAYLOAD).status_code == 200
        elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"20 requests took {elapsed * 1000:.0f} ms"


def test_stats_count_requests_and_reset() -> None:
    with serve_in_thread() as server:
        assert server.stats.requests == 0
        for _ in range(3):
            post(server)
        post(server, content=b"bad")
        httpx.get(server.base_url + "/health")
        assert server.stats.requests == 4
        assert server.stats.max_in_flight == 1
        assert server.stats.in_flight == 0
        server.stats.reset()
        assert server.stats.requests == 0
        assert server.stats.max_in_flight == 0
        assert "requests=0" in repr(server.stats)


def test_max_in_flight_shows_concurrent_requests() -> None:
    async def burst(url: str, count: int) -> list[int]:
        async with httpx.AsyncClient() as client:
            responses = await asyncio.gather(
                *(client.post(url, json=PAYLOAD) for _ in range(count))
            )
        return [response.status_code for response in responses]

    with serve_in_thread(latency_ms=150) as server:
        statuses = asyncio.run(burst(server.rerank_url, 5))
        assert statuses == [200] * 5
        assert server.stats.requests == 5
        assert server.stats.max_in_flight > 1
        assert server.stats.in_flight == 0


# --------------------------------------------------------------------------- config and lifecycle


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"drop_rate": -0.1}, "drop_rate"),
        ({"stall_rate": float("nan")}, "stall_rate"),
        ({"error_rate": 0.6, "rate_limit_rate": 0.6}, "at most 1"),
        ({"error_status": 200}, "error_status"),
        ({"error_status": 600}, "error_status"),
        ({"max_documents": 0}, "max_documents"),
        ({"max_documents": True}, "max_documents"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"stall_seconds": float("inf")}, "stall_seconds"),
        ({"retry_after": -2}, "retry_after"),
        ({"scoring": "neural"}, "scoring"),
        ({"api_key": ""}, "api_key"),
        ({"seed": 1.5}, "seed"),
        ({"error_html": "yes"}, "error_html"),
    ],
)
def test_config_validation(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ServerConfig(**overrides)


def test_config_accepts_rates_summing_to_one() -> None:
    config = ServerConfig(drop_rate=0.1, stall_rate=0.2, rate_limit_rate=0.3, error_rate=0.4)
    assert config.fault_rate == pytest.approx(1.0)


def test_serve_in_thread_rejects_unknown_overrides() -> None:
    with pytest.raises(TypeError), serve_in_thread(latency=5):
        pass


def test_server_lifecycle_and_restart() -> None:
    server = LocalRerankServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port
    assert "not running" in repr(server)
    with server:
        assert post(server).status_code == 200
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    assert not server.running
    server.stop()  # stopping twice is harmless
    with server:
        assert post(server).status_code == 200
    assert server.stats.requests == 2
    with pytest.raises(ValueError, match="port"):
        LocalRerankServer(port=70000)


def test_server_start_is_fast() -> None:
    started = time.perf_counter()
    server = LocalRerankServer().start()
    try:
        assert time.perf_counter() - started < 1.0
    finally:
        server.stop()


# --------------------------------------------------------------------------- CLI


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rerank-integrations serve")
    _cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_cli.API_KEY_ENV, raising=False)
    args = _parse()
    assert args.host == "127.0.0.1"
    assert args.port == 8080
    assert _cli.config_from_args(args) == ServerConfig()


def test_cli_parses_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_cli.API_KEY_ENV, raising=False)
    args = _parse(
        "--host=0.0.0.0",
        "--port=9000",
        "--api-key=k",
        "--max-documents=50",
        "--latency-ms=12.5",
        "--error-rate=0.1",
        "--error-status=502",
        "--error-html",
        "--rate-limit-rate=0.2",
        "--retry-after=3",
        "--drop-rate=0.05",
        "--stall-rate=0.05",
        "--stall-seconds=2",
        "--seed=42",
        "--scoring=cheap",
    )
    assert (args.host, args.port) == ("0.0.0.0", 9000)
    assert _cli.config_from_args(args) == ServerConfig(
        api_key="k",
        max_documents=50,
        latency_ms=12.5,
        error_rate=0.1,
        error_status=502,
        error_html=True,
        rate_limit_rate=0.2,
        retry_after=3,
        drop_rate=0.05,
        stall_rate=0.05,
        stall_seconds=2,
        seed=42,
        scoring="cheap",
    )


def test_cli_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_cli.API_KEY_ENV, "from-env")
    assert _cli.config_from_args(_parse()).api_key == "from-env"
    assert _cli.config_from_args(_parse("--api-key", "flag")).api_key == "flag"
    monkeypatch.setenv(_cli.API_KEY_ENV, "")
    assert _cli.config_from_args(_parse()).api_key is None


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--error-rate", "2"], "error_rate"),
        (["--error-rate", "0.7", "--drop-rate", "0.7"], "at most 1"),
        (["--error-status", "200"], "error_status"),
        (["--max-documents", "0"], "max_documents"),
        (["--latency-ms", "-5"], "latency_ms"),
        (["--port", "70000"], "port"),
        (["--api-key", ""], "api_key"),
    ],
)
def test_cli_run_rejects_bad_values_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    needle: str,
) -> None:
    monkeypatch.delenv(_cli.API_KEY_ENV, raising=False)
    assert _cli.run(_parse(*argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rerank-integrations: error:")
    assert needle in lines[0]
    assert "Traceback" not in captured.err


def test_cli_run_rejects_invalid_scoring_from_a_namespace(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_cli.API_KEY_ENV, raising=False)
    args = _parse()
    args.scoring = "neural"
    assert _cli.run(args) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_cli_parser_rejects_unknown_scoring(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _parse("--scoring", "neural")
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_run_reports_a_busy_port(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_cli.API_KEY_ENV, raising=False)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert _cli.run(_parse("--port", str(port))) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert "cannot listen" in err[0]


# -- instructions -------------------------------------------------------------------------


def test_an_instruction_line_steers_what_the_query_found() -> None:
    from rerank_integrations.server._bm25 import (
        analyze,
        instructed_scores,
        score_tokens,
        split_instruction,
    )

    documents = [
        "Espresso is brewed at nine bars of pressure.",
        "Road bike tires hold 80 psi of pressure.",
        "Bicycle tires wear out on rough roads.",  # the instruction's words, not the query's
    ]
    tokens = [analyze(text) for text in documents]
    query = "What pressure should I use?"
    plain = instructed_scores(query, tokens)
    assert plain == score_tokens(analyze(query), tokens)  # one line: BM25 as before
    steered = instructed_scores(f"Prefer documents about bicycle tires\n{query}", tokens)
    assert plain[0] > plain[1] and steered[1] > steered[0]
    assert steered[0] == plain[0]  # nothing of the instruction in it
    assert steered[2] == plain[2] == 0.0  # the instruction alone makes nothing relevant
    assert split_instruction("a\nb\nc") == ("a\nb", "c")
    assert split_instruction("only a query") == (None, "only a query")
    assert split_instruction("\nq") == (None, "\nq")


def test_the_server_honours_a_client_instruction(mode: str) -> None:
    from support import run_mode

    from rerank_integrations import RerankClient

    documents = [
        "Espresso is brewed at nine bars of pressure.",
        "Road bike tires hold 80 psi of pressure.",
    ]
    with serve_in_thread() as server:
        client = RerankClient(server.base_url, instruction="Prefer documents about bicycle tires")
        try:
            steered = run_mode(
                mode,
                lambda: client.rerank("What pressure should I use?", documents),
                lambda: client.arerank("What pressure should I use?", documents),
            )
            plain = client.rerank("What pressure should I use?", documents, instruction=None)
        finally:
            client.close()
    assert [r.index for r in plain.results] == [0, 1]
    assert [r.index for r in steered.results] == [1, 0]
