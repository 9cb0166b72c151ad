"""``RerankRetriever``: a langchain-core retriever that reranks, as a Runnable (invoke, batch,
stream, LCEL, LangGraph), traced as a retriever run with its usage, and as an agent tool;
against a rerank server on 127.0.0.1, on the sync and the async path."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langgraph.graph import END, START, StateGraph
from pydantic import ValidationError
from support import API_KEY, ScriptedServer
from support.lc import (
    QUERY,
    ListRetriever,
    RecordingTracer,
    closed_url,
    expected_ids,
    passage_documents,
)

from rerank_integrations import APIConnectionError
from rerank_integrations.langchain import (
    SCORE_KEY,
    USAGE_EVENT,
    RerankCompressor,
    RerankRetriever,
)

TOP_N = 3


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A generic rerank server on 127.0.0.1 that wants ``API_KEY``."""
    with ScriptedServer(api_key=API_KEY) as scripted:
        yield scripted


@pytest.fixture
def reranker(server: ScriptedServer) -> Iterator[RerankCompressor]:
    """A compressor talking to ``server``; its pools are closed after the test."""
    compressor = RerankCompressor(
        base_url=server.base_url, api_key=API_KEY, top_n=TOP_N, timeout=5, max_retries=0
    )
    yield compressor
    compressor.close()


@pytest.fixture
def retriever(reranker: RerankCompressor) -> RerankRetriever:
    return RerankRetriever(
        base_retriever=ListRetriever(documents=passage_documents()), reranker=reranker
    )


def run(
    mode: str,
    reranker: RerankCompressor,
    sync_call: Callable[[], Any],
    async_call: Callable[[], Any],
) -> Any:
    """``sync_call()`` or ``await async_call()`` in a fresh loop, whose pool is closed on it."""
    if mode == "sync":
        return sync_call()

    async def main() -> Any:
        try:
            return await async_call()
        finally:
            await reranker.aclose()

    return asyncio.run(main())


def ids(documents: list[Document]) -> list[str | None]:
    return [document.id for document in documents]


EXPECTED = expected_ids(QUERY, passage_documents(), TOP_N)


# -- a retriever and a Runnable ----------------------------------------------------------


def test_invoke_reranks_what_the_base_retriever_found(
    mode: str, retriever: RerankRetriever, reranker: RerankCompressor, server: ScriptedServer
) -> None:
    found = run(mode, reranker, lambda: retriever.invoke(QUERY), lambda: retriever.ainvoke(QUERY))

    assert ids(found) == EXPECTED
    scores = [document.metadata[SCORE_KEY] for document in found]
    assert scores == sorted(scores, reverse=True)
    originals = {document.id: document for document in passage_documents()}
    for document in found:
        original = originals[document.id]
        assert document.page_content == original.page_content
        assert document.metadata == {**original.metadata, SCORE_KEY: document.metadata[SCORE_KEY]}
    (body,) = server.bodies
    assert body["query"] == QUERY
    assert len(body["documents"]) == len(passage_documents())
    assert isinstance(retriever, BaseRetriever)


def test_wrap_builds_the_same_retriever(reranker: RerankCompressor) -> None:
    base = ListRetriever(documents=passage_documents())

    wrapped = reranker.wrap(base)

    assert isinstance(wrapped, RerankRetriever)
    assert wrapped.base_retriever is base
    assert wrapped.reranker is reranker
    assert ids(wrapped.invoke(QUERY)) == EXPECTED


def test_settings_are_checked(reranker: RerankCompressor) -> None:
    base = ListRetriever(documents=[])
    with pytest.raises(ValidationError, match="reranker"):
        RerankRetriever(base_retriever=base, reranker="not a compressor")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="top_n"):
        RerankRetriever(base_retriever=base, reranker=reranker, top_n=3)  # type: ignore[call-arg]


def test_in_an_lcel_chain(
    mode: str, retriever: RerankRetriever, reranker: RerankCompressor
) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from these passages:\n{context}"), ("human", "{question}")]
    )

    def passages(documents: list[Document]) -> str:
        return "\n".join(f"{d.id}: {d.page_content}" for d in documents)

    chain = {"context": retriever | passages, "question": RunnablePassthrough()} | prompt
    value = run(mode, reranker, lambda: chain.invoke(QUERY), lambda: chain.ainvoke(QUERY))

    system, human = value.to_messages()
    assert human.content == QUERY
    lines = str(system.content).splitlines()[1:]
    assert [line.split(":", 1)[0] for line in lines] == EXPECTED


def test_batch_reranks_each_query(
    mode: str, retriever: RerankRetriever, reranker: RerankCompressor, server: ScriptedServer
) -> None:
    queries = [QUERY, "espresso coffee pressure", "oolong leaves steeped"]
    tracer = RecordingTracer()
    config = {"callbacks": [tracer]}

    results = run(
        mode,
        reranker,
        lambda: retriever.batch(queries, config=config),
        lambda: retriever.abatch(queries, config=config),
    )

    documents = passage_documents()
    assert [ids(found) for found in results] == [
        expected_ids(query, documents, TOP_N) for query in queries
    ]
    assert sorted(body["query"] for body in server.bodies) == sorted(queries)
    runs = tracer.named("RerankRetriever")
    assert len(runs) == 3
    assert sorted(event.run_id for event in tracer.events) == sorted(run.id for run in runs)


def test_stream_gives_the_documents_in_one_chunk(
    mode: str, retriever: RerankRetriever, reranker: RerankCompressor
) -> None:
    async def astream() -> list[Any]:
        return [chunk async for chunk in retriever.astream(QUERY)]

    chunks = run(mode, reranker, lambda: list(retriever.stream(QUERY)), astream)

    assert len(chunks) == 1
    assert ids(chunks[0]) == EXPECTED


def test_callback_handler_sees_the_retriever_run_and_the_usage(
    mode: str, retriever: RerankRetriever, reranker: RerankCompressor
) -> None:
    tracer = RecordingTracer()
    configured = retriever.with_config(run_name="tea_search", tags=["rag"])

    found = run(
        mode,
        reranker,
        lambda: configured.invoke(QUERY, config={"callbacks": [tracer]}),
        lambda: configured.ainvoke(QUERY, config={"callbacks": [tracer]}),
    )

    (rerank_run,) = tracer.named("tea_search")
    (base_run,) = tracer.named("ListRetriever")
    assert rerank_run.run_type == "retriever"
    assert "rag" in rerank_run.tags
    assert base_run.parent_run_id == rerank_run.id
    assert ids(rerank_run.outputs["documents"]) == EXPECTED
    (event,) = tracer.events
    assert event.name == USAGE_EVENT == "rerank_usage"
    assert event.run_id == rerank_run.id
    assert event.data["requests"] == 1
    assert event.data["endpoint"].endswith("/v1/rerank")
    assert API_KEY not in json.dumps(event.data)
    metadata = rerank_run.metadata
    assert metadata["rerank_usage"] == event.data
    assert metadata["rerank_scores"] == [d.metadata[SCORE_KEY] for d in found]
    assert metadata["reranked"] is True
    assert "rerank_usage" not in base_run.metadata


class GraphState(TypedDict, total=False):
    question: str
    documents: list[Document]


def test_in_a_langgraph_node(
    mode: str, retriever: RerankRetriever, reranker: RerankCompressor
) -> None:
    """In a node, the retriever is a child run of the node and the usage event reaches the
    graph's handlers with no callbacks passed by hand."""

    def retrieve(state: GraphState) -> GraphState:
        return {"documents": retriever.invoke(state["question"])}

    async def aretrieve(state: GraphState) -> GraphState:
        return {"documents": await retriever.ainvoke(state["question"])}

    builder = StateGraph(GraphState)
    builder.add_node("retrieve", RunnableLambda(retrieve, afunc=aretrieve))
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", END)
    graph = builder.compile()
    tracer = RecordingTracer()
    config = {"callbacks": [tracer]}

    state = run(
        mode,
        reranker,
        lambda: graph.invoke({"question": QUERY}, config=config),
        lambda: graph.ainvoke({"question": QUERY}, config=config),
    )

    assert ids(state["documents"]) == EXPECTED
    (rerank_run,) = tracer.named("RerankRetriever")
    assert rerank_run.parent_run_id in {node.id for node in tracer.named("retrieve")}
    (event,) = tracer.events
    assert event.run_id == rerank_run.id
    assert rerank_run.metadata["rerank_usage"]["requests"] == 1


def test_async_path_is_native(
    monkeypatch: pytest.MonkeyPatch, retriever: RerankRetriever, reranker: RerankCompressor
) -> None:
    client = reranker.rerank_client
    threads: list[threading.Thread] = []
    arerank = client.arerank

    def no_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async path called the sync client")

    async def recording_arerank(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return await arerank(*args, **kwargs)

    monkeypatch.setattr(client, "rerank", no_sync)
    monkeypatch.setattr(client, "arerank", recording_arerank)

    async def main() -> list[list[Document]]:
        try:
            found = [await retriever.ainvoke(QUERY)]
            found += await retriever.abatch([QUERY, QUERY])
            assert threads == [threading.current_thread()] * 3
            return found
        finally:
            await reranker.aclose()

    assert [ids(found) for found in asyncio.run(main())] == [EXPECTED] * 3
    with pytest.raises(AssertionError, match="sync client"):
        retriever.invoke(QUERY)


# -- when the API is down ------------------------------------------------------------------


def test_passthrough_when_the_api_is_down(mode: str) -> None:
    reranker = RerankCompressor(
        base_url=closed_url(), top_n=TOP_N, max_retries=0, on_error="passthrough"
    )
    retriever = reranker.wrap(ListRetriever(documents=passage_documents()))
    tracer = RecordingTracer()
    config = {"callbacks": [tracer]}

    found = run(
        mode,
        reranker,
        lambda: retriever.invoke(QUERY, config=config),
        lambda: retriever.ainvoke(QUERY, config=config),
    )

    assert ids(found) == ["p0", "p1", "p2"]  # the first top_n, in retrieval order
    for document in found:
        assert document.metadata["reranked"] is False
        assert document.metadata["rerank_error"] == "APIConnectionError"
        assert SCORE_KEY not in document.metadata
    assert tracer.events == []  # nothing was used
    (rerank_run,) = tracer.named("RerankRetriever")
    assert rerank_run.metadata["reranked"] is False
    assert rerank_run.metadata["rerank_error"] == "APIConnectionError"
    reranker.close()


def test_errors_are_raised_by_default(mode: str) -> None:
    reranker = RerankCompressor(base_url=closed_url(), max_retries=0)
    retriever = reranker.wrap(ListRetriever(documents=passage_documents()))

    with pytest.raises(APIConnectionError):
        run(mode, reranker, lambda: retriever.invoke(QUERY), lambda: retriever.ainvoke(QUERY))
    reranker.close()


# -- as an agent tool ------------------------------------------------------------------------


def test_as_tool_answers_a_query_with_the_best_passages(
    mode: str, retriever: RerankRetriever, reranker: RerankCompressor
) -> None:
    tool = retriever.as_tool()
    call = {"type": "tool_call", "id": "c1", "name": tool.name, "args": {"query": QUERY}}

    message = run(mode, reranker, lambda: tool.invoke(call), lambda: tool.ainvoke(call))

    assert tool.name == "search_passages"
    assert set(tool.args) == {"query"}
    assert f"at most {TOP_N}" in tool.description
    assert isinstance(message, ToolMessage)
    assert message.status == "success"
    passages = json.loads(str(message.content))
    assert [passage["id"] for passage in passages] == EXPECTED
    assert [passage["id"] for passage in passages] == ids(message.artifact)
    originals = {document.id: document.page_content for document in passage_documents()}
    for passage, document in zip(passages, message.artifact, strict=True):
        assert passage["text"] == originals[passage["id"]]
        assert passage["relevance_score"] == document.metadata[SCORE_KEY]


def test_as_tool_traces_the_retriever_inside_the_tool(
    retriever: RerankRetriever, reranker: RerankCompressor
) -> None:
    tool = retriever.as_tool(name="tea_docs", description="Search the tea notes.")
    tracer = RecordingTracer()

    text = tool.invoke({"query": QUERY}, config={"callbacks": [tracer]})

    assert [passage["id"] for passage in json.loads(text)] == EXPECTED
    (tool_run,) = tracer.named("tea_docs")
    (rerank_run,) = tracer.named("RerankRetriever")
    assert rerank_run.parent_run_id == tool_run.id
    assert tool.description == "Search the tea notes."


def test_as_tool_passthrough_says_not_reranked(mode: str) -> None:
    reranker = RerankCompressor(base_url=closed_url(), max_retries=0, on_error="passthrough")
    tool = reranker.wrap(ListRetriever(documents=passage_documents())).as_tool()

    text = run(
        mode,
        reranker,
        lambda: tool.invoke({"query": QUERY}),
        lambda: tool.ainvoke({"query": QUERY}),
    )

    passages = json.loads(text)
    assert [passage["id"] for passage in passages] == ["p0", "p1", "p2"]
    assert all(passage["reranked"] is False for passage in passages)
    assert all("relevance_score" not in passage for passage in passages)
    reranker.close()


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"name": "has space"}, ValueError, "tool name"),
        ({"description": ""}, ValueError, "description"),
        ({"args_schema": GraphState}, TypeError, "query string"),
        ({"arg_types": {"query": str}}, TypeError, "query string"),
    ],
)
def test_as_tool_refuses_what_it_cannot_use(
    retriever: RerankRetriever, arguments: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        retriever.as_tool(**arguments)
