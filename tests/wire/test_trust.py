"""A hostile or broken server cannot hold a call, echo a secret or drop documents, on the sync
and the async path, through the client and both adapters."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import time
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import ValidationError
from support import HugeBody, ScriptedServer, TrickleBody, TrickleHeaders, json_reply, run_mode

from rerank_integrations import (
    APITimeoutError,
    AuthenticationError,
    RerankClient,
    ResponseFormatError,
)
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

ADAPTERS = [RerankCompressor, RerankPostprocessor]


def call(mode: str, client: RerankClient, *args: Any, **kwargs: Any) -> Any:
    return run_mode(
        mode, lambda: client.rerank(*args, **kwargs), lambda: client.arerank(*args, **kwargs)
    )


def adapt(mode: str, adapter: Any, texts: list[str], query: str = "apple") -> list[Any]:
    """Run either adapter on ``texts`` by ``mode``."""
    if isinstance(adapter, RerankCompressor):
        documents = [Document(page_content=text) for text in texts]
        return list(
            run_mode(
                mode,
                lambda: adapter.compress_documents(documents, query),
                lambda: adapter.acompress_documents(documents, query),
            )
        )
    nodes = [NodeWithScore(node=TextNode(text=text)) for text in texts]
    bundle = QueryBundle(query)
    return run_mode(
        mode,
        lambda: adapter.postprocess_nodes(nodes, query_bundle=bundle),
        lambda: adapter.apostprocess_nodes(nodes, query_bundle=bundle),
    )


def package_locals(error: BaseException) -> str:
    """The local variables of this package's frames in ``error``'s traceback (and causes),
    as a tracker that captures locals would record them."""
    report = traceback.TracebackException.from_exception(error, capture_locals=True)
    texts: list[str] = []
    while report is not None:
        for frame in report.stack:
            if "rerank_integrations" in frame.filename:
                texts.append(repr(frame.locals))
        report = report.__cause__ or report.__context__
    return "".join(texts)


def timed(function: Callable[[], Any]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        function()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


# -- a slow server cannot hold a call past its limits ----------------------------------------

TRICKLES = [TrickleHeaders(interval=0.3, limit=8), TrickleBody(interval=0.3, limit=8)]


@pytest.mark.parametrize("trickle", TRICKLES, ids=["headers", "body"])
def test_timeout_bounds_a_whole_attempt(
    mode: str, scripted_server: ScriptedServer, trickle: Any
) -> None:
    scripted_server.queue(trickle)
    client = RerankClient(scripted_server.base_url, timeout=1, max_retries=0)
    elapsed, error = timed(lambda: call(mode, client, "apple", ["pear", "apple"]))
    assert isinstance(error, APITimeoutError), error
    assert elapsed < 2.5
    client.close()


@pytest.mark.parametrize("trickle", TRICKLES, ids=["headers", "body"])
def test_deadline_bounds_a_whole_call(
    mode: str, scripted_server: ScriptedServer, trickle: Any
) -> None:
    scripted_server.queue(trickle, trickle, trickle)
    client = RerankClient(scripted_server.base_url, timeout=30, deadline=2, max_retries=5)
    elapsed, error = timed(lambda: call(mode, client, "apple", ["pear", "apple"]))
    assert isinstance(error, APITimeoutError), error
    assert "deadline of 2s" in str(error)
    assert elapsed < 3.5
    client.close()


@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_the_adapters_deadline_holds_against_a_trickle(
    mode: str, scripted_server: ScriptedServer, adapter_class: Any
) -> None:
    scripted_server.queue(TrickleBody(interval=0.3, limit=8))
    adapter = adapter_class(base_url=scripted_server.base_url, deadline=2, max_retries=0)
    elapsed, error = timed(lambda: adapt(mode, adapter, ["pear", "apple"]))
    assert isinstance(error, APITimeoutError), error
    assert elapsed < 3.5
    adapter.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["announced", "chunked"])
def test_an_oversized_answer_is_refused_while_it_arrives(
    mode: str, scripted_server: ScriptedServer, chunked: bool
) -> None:
    size = 8 * 1024 * 1024
    scripted_server.queue(HugeBody(size, chunked=chunked))
    client = RerankClient(scripted_server.base_url, max_response_bytes=256 * 1024)
    with pytest.raises(ResponseFormatError, match="max_response_bytes"):
        call(mode, client, "apple", ["pear", "apple"])
    assert len(scripted_server.received) == 1  # not retried: the same answer would come back
    client.close()


def test_the_size_cap_is_a_setting_of_both_adapters(scripted_server: ScriptedServer) -> None:
    for adapter_class in ADAPTERS:
        adapter = adapter_class(base_url=scripted_server.base_url, max_response_bytes=1234)
        assert adapter.rerank_client.settings.max_response_bytes == 1234


def test_a_large_answer_within_the_cap_is_read_whole(
    mode: str, scripted_server: ScriptedServer
) -> None:
    scripted_server.queue(HugeBody(3 * 1024 * 1024, chunked=True))
    client = RerankClient(scripted_server.base_url)
    assert call(mode, client, "apple", ["pear", "apple"]).results[0].index == 1
    client.close()


# -- a secret cannot come back in an error ---------------------------------------------------

KEY = "sk-ab/cd+ef=="
ESCAPED_FORMS = [
    json.dumps(KEY)[1:-1].replace("/", "\\/"),  # sk-ab\/cd+ef==
    "sk-ab/cd+ef\\u003d\\u003d",
    "sk-ab\\u002fcd\\u002bef==",
]


@pytest.mark.parametrize("echo", ESCAPED_FORMS)
def test_a_key_echoed_json_escaped_is_scrubbed(
    mode: str, scripted_server: ScriptedServer, echo: str
) -> None:
    body = ('{"error": {"message": "invalid key ' + echo + '", "key": "' + echo + '"}}').encode()
    scripted_server.queue(json_reply(401, None))
    scripted_server.replies[-1] = type(scripted_server.replies[-1])(401, body, {})
    client = RerankClient(scripted_server.base_url, api_key=KEY)
    with pytest.raises(AuthenticationError) as caught:
        call(mode, client, "q", ["a"])
    error = caught.value
    shown = str(error) + repr(error.body) + repr(error.args)
    assert KEY not in shown
    assert "sk-ab" not in shown
    assert "invalid key ***" in str(error)
    client.close()


@pytest.mark.parametrize(
    "headers",
    [{"api-key": "canary-header-1234"}, {"X-Api-Key": "canary-header-1234"}],
)
def test_secrets_in_headers_are_scrubbed(
    mode: str, scripted_server: ScriptedServer, headers: dict[str, str]
) -> None:
    scripted_server.queue(json_reply(403, {"error": "key canary-header-1234 is not allowed"}))
    client = RerankClient(scripted_server.base_url, headers=headers)
    with pytest.raises(AuthenticationError) as caught:
        call(mode, client, "q", ["a"])
    assert "canary-header-1234" not in str(caught.value) + repr(caught.value.body)
    assert "canary-header-1234" not in repr(client.settings)
    assert scripted_server.headers[0][next(iter(headers)).lower()] == "canary-header-1234"
    client.close()


def test_settings_hold_secrets_only_as_secret_strings() -> None:
    client = RerankClient(
        "https://h", api_key="sk-canary-77", headers={"x-api-key": "hdr-canary-88"}
    )
    as_dict = dataclasses.asdict(client.settings)
    dumped = orjson.dumps(as_dict, default=str).decode() + repr(as_dict)
    assert "sk-canary-77" not in dumped
    assert "hdr-canary-88" not in dumped
    assert client.settings.wire_headers()["x-api-key"] == "hdr-canary-88"


def test_a_short_key_is_scrubbed_only_as_a_whole_word(
    mode: str, scripted_server: ScriptedServer
) -> None:
    scripted_server.queue(json_reply(401, {"error": "the reranker key k was refused"}))
    client = RerankClient(scripted_server.base_url, api_key="k")
    with pytest.raises(AuthenticationError) as caught:
        call(mode, client, "q", ["a"])
    assert "the reranker key *** was refused" in str(caught.value)
    client.close()


def test_the_key_is_in_no_frame_of_a_failed_call(
    mode: str, scripted_server: ScriptedServer
) -> None:
    scripted_server.queue(json_reply(401, {"error": "no"}))
    client = RerankClient(scripted_server.base_url, api_key="sk-frame-canary-99")
    with pytest.raises(AuthenticationError) as caught:
        call(mode, client, "q", ["a"])
    report = package_locals(caught.value)
    assert "client" in report  # the frames were read
    assert "sk-frame-canary-99" not in report
    client.close()


def test_a_half_built_client_has_a_repr_that_does_not_raise() -> None:
    half = object.__new__(RerankClient)
    assert "RerankClient" in repr(half)
    try:
        RerankClient("not a url", api_key="sk-build-canary-5")
    except Exception as exc:
        report = package_locals(exc)
        assert "self" in report
        assert "sk-build-canary-5" not in report
    else:  # pragma: no cover
        pytest.fail("a malformed base URL must be refused")


def test_errors_survive_pickling(mode: str, scripted_server: ScriptedServer) -> None:
    scripted_server.queue(json_reply(401, {"error": "nope"}))
    client = RerankClient(scripted_server.base_url, api_key="sk-pickle-canary")
    with pytest.raises(AuthenticationError) as caught:
        call(mode, client, "q", ["a"])
    data = pickle.dumps(caught.value)
    copy = pickle.loads(data)
    assert (type(copy), copy.status_code, str(copy)) == (
        AuthenticationError,
        401,
        str(caught.value),
    )
    assert b"sk-pickle-canary" not in data
    client.close()


# -- a server cannot drop documents silently -------------------------------------------------


def partial(count: int) -> Any:
    return json_reply(
        200, {"results": [{"index": i, "relevance_score": 1.0} for i in range(count)]}
    )


@pytest.mark.parametrize(("top_n", "returned"), [(None, 1), (None, 2), (2, 1)])
def test_a_ranking_missing_documents_is_refused(
    mode: str, scripted_server: ScriptedServer, top_n: int | None, returned: int
) -> None:
    scripted_server.queue(partial(returned))
    client = RerankClient(scripted_server.base_url, max_retries=0)
    expected = 3 if top_n is None else top_n
    with pytest.raises(ResponseFormatError, match=f"{returned} results for 3 documents sent, "):
        call(mode, client, "q", ["a", "b", "c"], top_n=top_n)
    client.close()
    assert f"{expected} expected"


@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_the_adapters_refuse_a_ranking_missing_documents(
    mode: str, scripted_server: ScriptedServer, adapter_class: Any
) -> None:
    scripted_server.queue(partial(1))
    adapter = adapter_class(base_url=scripted_server.base_url, top_n=None)
    with pytest.raises(ResponseFormatError, match="1 results for 3 documents sent, 3 expected"):
        adapt(mode, adapter, ["a", "b", "c"])
    adapter.close()


# -- settings are checked when set -----------------------------------------------------------


@pytest.mark.parametrize("adapter_class", ADAPTERS)
@pytest.mark.parametrize(
    ("name", "value"),
    [("top_n", -10), ("max_documents_per_request", 0), ("score_threshold", "x"), ("timeout", 0)],
)
def test_settings_are_validated_on_assignment(adapter_class: Any, name: str, value: Any) -> None:
    adapter = adapter_class(base_url="https://h")
    with pytest.raises(ValidationError, match=name):
        setattr(adapter, name, value)
    assert getattr(adapter, name) != value


@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_an_assigned_key_becomes_a_secret(adapter_class: Any) -> None:
    adapter = adapter_class(base_url="https://h")
    adapter.api_key = "sk-assigned-canary"
    assert "sk-assigned-canary" not in repr(adapter)
    wire = adapter.rerank_client.settings.wire_headers()
    assert wire["Authorization"] == "Bearer sk-assigned-canary"


def test_httpx_clients_of_the_caller_keep_working(scripted_server: ScriptedServer) -> None:
    with httpx.Client() as http_client:
        client = RerankClient(
            scripted_server.base_url, http_client=http_client, timeout=1, max_retries=0
        )
        scripted_server.queue(TrickleBody(interval=0.3, limit=8))
        elapsed, error = timed(lambda: client.rerank("apple", ["pear", "apple"]))
        assert isinstance(error, APITimeoutError)
        assert elapsed < 3.5  # the body is bounded between its chunks on any pool

    async def on_their_loop() -> int:
        async with httpx.AsyncClient() as async_client:
            mine = RerankClient(scripted_server.base_url, async_http_client=async_client)
            return (await mine.arerank("apple", ["pear", "apple"])).results[0].index

    assert asyncio.run(on_their_loop()) == 1
