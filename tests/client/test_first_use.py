"""What a new user meets first: bad input refused before sending, overrides that mean what
they say, retry policies passed in, connections released, copies that keep the caller's pool."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import pickle
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.documents import Document
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rerank_integrations import (
    RerankClient,
    RetryPolicy,
    ServerError,
    ToolInputError,
    testing,
)
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor
from rerank_integrations.server import serve_in_thread

ADAPTERS = [RerankCompressor, RerankPostprocessor]


class Recorder:
    """A mock transport handler that ranks by position and records every request."""

    def __init__(self, *replies: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self.replies = list(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.replies:
            return self.replies.pop(0)
        documents = json.loads(request.content)["documents"]
        results = [{"index": i, "relevance_score": 1 - i / 100} for i in range(len(documents))]
        return httpx.Response(200, json={"results": results})


def mocked(recorder: Recorder, **settings: Any) -> RerankClient:
    transport = httpx.MockTransport(recorder)
    return RerankClient(
        "https://rerank.test",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **settings,
    )


def both(mode: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` (sync) or its ``a``-prefixed twin (async) by ``mode``."""
    owner, name = function.__self__, function.__name__
    if mode == "sync":
        return getattr(owner, name)(*args, **kwargs)
    return asyncio.run(getattr(owner, "a" + name)(*args, **kwargs))


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- bad input, refused before any request ---------------------------------------------------


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_an_empty_query_is_refused_by_the_client(mode: str, query: str) -> None:
    recorder = Recorder()
    client = mocked(recorder)
    with pytest.raises(ValueError, match="query must not be empty"):
        both(mode, client.rerank, query, ["a", "b"])
    assert recorder.requests == []


@pytest.mark.parametrize("query", ["", "  "])
def test_an_empty_query_is_refused_by_both_adapters(mode: str, query: str) -> None:
    recorder = Recorder()
    compressor = RerankCompressor(client=mocked(recorder))
    with pytest.raises(ValueError, match="query"):
        both(mode, compressor.compress_documents, [Document(page_content="a")], query)
    postprocessor = RerankPostprocessor(client=mocked(recorder))
    nodes = [NodeWithScore(node=TextNode(text="a"))]
    with pytest.raises(ValueError, match="query"):
        both(mode, postprocessor.postprocess_nodes, nodes, query_str=query)
    assert recorder.requests == []


def test_an_empty_query_is_a_tool_input_error(mode: str) -> None:
    runner_owner = RerankPostprocessor(client=mocked(Recorder()))
    tool = runner_owner.as_tool()
    arguments = {"query": "   ", "passages": ["a"]}
    with pytest.raises(ToolInputError, match="query"):
        tool.fn(**arguments) if mode == "sync" else asyncio.run(tool.async_fn(**arguments))


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (TextNode(text="a"), r"nodes\[1\] must be a NodeWithScore, got TextNode \(wrap it"),
        ("a string", r"nodes\[1\] must be a NodeWithScore, got str"),
    ],
)
def test_nodes_that_are_not_node_with_score_are_refused(
    mode: str, item: object, message: str
) -> None:
    recorder = Recorder()
    postprocessor = RerankPostprocessor(client=mocked(recorder))
    nodes = [NodeWithScore(node=TextNode(text="ok")), item]
    with pytest.raises(TypeError, match=message):
        both(mode, postprocessor.postprocess_nodes, nodes, query_str="q")
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("field", "meant"), [("top_k", "top_n"), ("toop_n", "top_n"), ("modle", "model")]
)
def test_a_misspelt_argument_is_refused_with_a_suggestion(
    mode: str, field: str, meant: str
) -> None:
    recorder = Recorder()
    client = mocked(recorder)
    with pytest.raises(TypeError, match=f"did you mean {meant}="):
        both(mode, client.rerank, "q", ["a", "b"], **{field: 1})
    assert recorder.requests == []


def test_other_extra_fields_are_still_sent(mode: str) -> None:
    recorder = Recorder()
    both(mode, mocked(recorder).rerank, "q", ["a", "b"], truncate="END", raw_scores=True)
    body = json.loads(recorder.requests[0].content)
    assert (body["truncate"], body["raw_scores"]) == ("END", True)


# -- per-call overrides ----------------------------------------------------------------------


def test_deadline_none_turns_the_clients_deadline_off(mode: str) -> None:
    busy = httpx.Response(503, json={"error": "busy"}, headers={"Retry-After": "30"})
    recorder = Recorder(busy)
    client = mocked(recorder, deadline=2.0)
    with pytest.raises(ServerError):  # 30 s cannot fit in the client's deadline of 2 s
        both(mode, client.rerank, "q", ["a", "b"])
    recorder.replies.append(busy)
    with testing.no_waits() as waits:
        both(mode, client.rerank, "q", ["a", "b"], deadline=None)
    assert waits == [30.0]


# -- the retry policy ------------------------------------------------------------------------


def test_a_retry_policy_can_be_passed_to_the_client(mode: str) -> None:
    failing = [httpx.Response(502, json={}) for _ in range(3)]
    policy = RetryPolicy(max_retries=3, initial_delay=0.1, multiplier=3, jitter=0)
    recorder = Recorder(*failing)
    with testing.no_waits() as waits:
        both(mode, mocked(recorder, retry=policy).rerank, "q", ["a", "b"])
    assert waits == pytest.approx([0.1, 0.3, 0.9])
    assert len(recorder.requests) == 4


def test_max_retries_overrides_the_policy(mode: str) -> None:
    recorder = Recorder(*[httpx.Response(502, json={}) for _ in range(3)])
    client = mocked(recorder, retry=RetryPolicy(max_retries=5), max_retries=1)
    with pytest.raises(ServerError):
        both(mode, client.rerank, "q", ["a"])
    assert len(recorder.requests) == 2


def test_statuses_to_retry_are_the_policys(mode: str) -> None:
    recorder = Recorder(httpx.Response(503, json={}))
    client = mocked(recorder, retry=RetryPolicy(retry_statuses={429}))
    with pytest.raises(ServerError):
        both(mode, client.rerank, "q", ["a"])
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_adapters_take_a_retry_policy(adapter: Any) -> None:
    policy = RetryPolicy(max_retries=4, initial_delay=0.01)
    instance = adapter(base_url="https://h", retry=policy)
    assert instance.rerank_client.settings.retry == policy
    assert adapter(base_url="https://h", retry=policy, max_retries=0).rerank_client.settings.retry
    assert adapter(base_url="https://h").rerank_client.settings.retry == RetryPolicy()


# -- connections -----------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[Any]:
    with serve_in_thread() as running:
        yield running


def test_separate_event_loops_leave_no_unclosed_transport(server: Any) -> None:
    client = RerankClient(server.base_url)

    async def once() -> int:
        return (await client.arerank("apple", ["pear", "apple"])).results[0].index

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert [asyncio.run(once()) for _ in range(5)] == [1] * 5
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert len(client._async_pools) == 0  # each loop's pool went with its loop
    client.close()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapters_release_their_connections(server: Any, adapter: Any) -> None:
    instance = adapter(base_url=server.base_url)
    pool = instance.rerank_client._get_http_client()
    instance.close()
    assert pool.is_closed

    async def use_and_close() -> bool:
        async_pool = await instance.rerank_client._get_async_http_client()
        await instance.aclose()
        return async_pool.is_closed

    assert asyncio.run(use_and_close())


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapters_leave_a_callers_client_open(adapter: Any) -> None:
    client = RerankClient("https://h")
    pool = client._get_http_client()
    adapter(client=client).close()
    assert not pool.is_closed
    client.close()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_changed_setting_closes_the_client_it_replaces(adapter: Any) -> None:
    instance = adapter(base_url="https://first")
    old_pool = instance.rerank_client._get_http_client()
    instance.base_url = "https://second"
    assert instance.rerank_client.endpoint == "https://second/v1/rerank"
    assert old_pool.is_closed


# -- copies ----------------------------------------------------------------------------------


def test_copies_keep_the_callers_http_client() -> None:
    http_client = httpx.Client(transport=httpx.MockTransport(Recorder()))
    client = RerankClient("https://h", http_client=http_client)
    for duplicate in (copy.copy(client), copy.deepcopy(client)):
        assert duplicate._get_http_client() is http_client
        assert duplicate.endpoint == client.endpoint
    http_client.close()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapter_copies_keep_the_callers_http_client(adapter: Any) -> None:
    recorder = Recorder()
    http_client = httpx.Client(transport=httpx.MockTransport(recorder))
    instance = adapter(client=RerankClient("https://h", http_client=http_client))
    for duplicate in (copy.deepcopy(instance), instance.model_copy(deep=True)):
        assert duplicate.rerank_client._get_http_client() is http_client
    http_client.close()


def test_a_client_on_a_callers_pool_refuses_to_be_pickled() -> None:
    http_client = httpx.Client()
    client = RerankClient("https://h", http_client=http_client)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(client)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(RerankCompressor(client=client))
    http_client.close()


# -- instrumentation -------------------------------------------------------------------------


def test_both_llama_index_paths_open_a_span(mode: str) -> None:
    handler = SimpleSpanHandler()
    root = get_dispatcher()
    root.add_span_handler(handler)
    try:
        postprocessor = RerankPostprocessor(client=mocked(Recorder()), top_n=1)
        nodes = [NodeWithScore(node=TextNode(text=t)) for t in ("a", "b")]
        bundle = QueryBundle("q")
        both(mode, postprocessor.postprocess_nodes, nodes, query_bundle=bundle)
    finally:
        root.span_handlers.remove(handler)
    names = [span.id_.split("-")[0] for span in handler.completed_spans]
    wanted = "RerankPostprocessor._postprocess_nodes"
    if mode == "async":
        wanted = "RerankPostprocessor._apostprocess_nodes"
    assert wanted in names


# -- extra body fields -----------------------------------------------------------------------


def test_extra_body_on_the_client_and_the_call_merge_in_order(mode: str) -> None:
    recorder = Recorder()
    client = mocked(recorder, extra_body={"truncate": "END", "parameters": {"a": 1}})
    both(mode, client.rerank, "q", ["a"], extra_body={"parameters": {"b": 2}}, raw_scores=True)
    both(mode, client.rerank, "q", ["a"], extra_body={"truncate": "NONE"})
    first, second = (json.loads(request.content) for request in recorder.requests)
    assert (first["truncate"], first["parameters"], first["raw_scores"]) == (
        "END",
        {"a": 1, "b": 2},
        True,
    )
    assert second["truncate"] == "NONE"
    assert "raw_scores" not in second


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_adapters_send_extra_body(mode: str, adapter: Any) -> None:
    recorder = Recorder()
    transport = httpx.MockTransport(recorder)
    instance = adapter(
        base_url="https://rerank.test",
        extra_body={"truncate": "END"},
        top_n=1,
    )
    client = instance.rerank_client
    client._user_http_client = httpx.Client(transport=transport)
    client._user_async_http_client = httpx.AsyncClient(transport=transport)
    both(mode, instance.rank, "q", ["a", "b"])
    assert json.loads(recorder.requests[0].content)["truncate"] == "END"
    assert "extra_body" in instance.model_dump()


@pytest.mark.parametrize("bad", [["x"], {1: "x"}, {"x": object()}])
def test_extra_body_that_cannot_be_sent_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError, match="extra_body"):
        RerankClient("https://h", extra_body=bad)
