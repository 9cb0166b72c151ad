"""``RerankMiddleware`` in ``langchain.agents.create_agent`` agents with a scripted chat model:
the context it puts before each model call, the tool results it trims, and the agent running
on when the rerank API is down (``on_error="passthrough"``); sync and async, against a rerank
server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, tool
from support import API_KEY, ScriptedServer
from support.lc import (
    QUERY,
    ListRetriever,
    RecordingTracer,
    ScriptedChatModel,
    closed_url,
    expected_ids,
    passage_documents,
)

from rerank_integrations import APIConnectionError
from rerank_integrations.langchain import SCORE_KEY, RerankCompressor, RerankMiddleware

#: Before Python 3.11, asyncio cannot hand a task the caller's context, and LangChain
#: documents that its callbacks then reach a child run only through a config passed by
#: hand, which agent middleware hooks are not given: the runs and events the middleware's
#: async hooks make are traced from 3.11 on (sync hooks on every Python).
_RUNS_NEST_IN_ASYNC_HOOKS = sys.version_info >= (3, 11)

TOP_N = 3
QUESTION = "How hot should the water be for green tea?"
TOOL_QUERY = QUERY  # what the model asks the search tool for


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(api_key=API_KEY) as scripted:
        yield scripted


@pytest.fixture
def reranker(server: ScriptedServer) -> Iterator[RerankCompressor]:
    compressor = RerankCompressor(
        base_url=server.base_url, api_key=API_KEY, top_n=TOP_N, timeout=5, max_retries=0
    )
    yield compressor
    compressor.close()


@pytest.fixture
def down() -> Iterator[RerankCompressor]:
    """A compressor whose API is down, passing documents through."""
    compressor = RerankCompressor(
        base_url=closed_url(), top_n=TOP_N, max_retries=0, on_error="passthrough"
    )
    yield compressor
    compressor.close()


def run_agent(
    mode: str, agent: Any, reranker: RerankCompressor, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One agent run for ``QUESTION``, by ``mode``; the async pool is closed on its loop."""
    state = {"messages": [HumanMessage(QUESTION)]}
    if mode == "sync":
        result: dict[str, Any] = agent.invoke(state, config=config)
        return result

    async def main() -> dict[str, Any]:
        try:
            result: dict[str, Any] = await agent.ainvoke(state, config=config)
            return result
        finally:
            await reranker.aclose()

    return asyncio.run(main())


def search_tool(documents: list[Document], name: str = "search_notes") -> BaseTool:
    """A retrieval tool returning ``documents`` as its artifact (and all their text)."""

    def search(query: str) -> tuple[str, list[Document]]:
        return "\n\n".join(d.page_content for d in documents), documents

    async def asearch(query: str) -> tuple[str, list[Document]]:
        return search(query)

    return StructuredTool.from_function(
        func=search,
        coroutine=asearch,
        name=name,
        description="Search the tea notes.",
        response_format="content_and_artifact",
    )


def calling(*calls: tuple[str, dict[str, Any]]) -> ScriptedChatModel:
    """A model that asks for ``calls`` (tool name, arguments) in one turn, then answers."""
    tool_calls = [
        {"name": name, "args": args, "id": f"call-{number}"}
        for number, (name, args) in enumerate(calls)
    ]
    script = iter([AIMessage("", tool_calls=tool_calls), AIMessage("About 80 degrees.")])
    return ScriptedChatModel(messages=script)


def answering() -> ScriptedChatModel:
    return ScriptedChatModel(messages=iter([AIMessage("About 80 degrees.")]))


def tool_messages(state: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in state["messages"] if isinstance(m, ToolMessage)]


def ids(documents: Sequence[Document]) -> list[str | None]:
    return [document.id for document in documents]


# -- two-step RAG: context before each model call ----------------------------------------


def test_rag_puts_the_best_passages_into_the_model_context(
    mode: str, reranker: RerankCompressor, server: ScriptedServer
) -> None:
    base = ListRetriever(documents=passage_documents())
    model = answering()
    agent = create_agent(
        model,
        system_prompt="You answer questions about tea.",
        middleware=[RerankMiddleware(reranker=reranker, retriever=base)],
    )
    tracer = RecordingTracer()

    state = run_agent(mode, agent, reranker, {"callbacks": [tracer]})

    assert base.queries == [QUESTION]
    assert server.bodies[0]["query"] == QUESTION
    (seen,) = model.seen
    system, human = seen
    assert isinstance(system, SystemMessage)
    text = str(system.content)
    assert text.startswith("You answer questions about tea.\n\n")
    best = expected_ids(QUESTION, passage_documents(), TOP_N)
    by_id = {d.id: d.page_content for d in passage_documents()}
    for number, document_id in enumerate(best, 1):
        assert f"[{number}] {by_id[document_id]}" in text
    left_out = set(by_id) - set(best)
    assert not any(by_id[document_id] in text for document_id in left_out)
    assert human.content == QUESTION
    # The agent's own messages are the question and the answer: nothing injected there.
    assert [type(m) for m in state["messages"]] == [HumanMessage, AIMessage]
    assert state["messages"][0].content == QUESTION
    if not _RUNS_NEST_IN_ASYNC_HOOKS and mode == "async":
        return
    (rerank_run,) = tracer.named("RerankRetriever")
    assert rerank_run.metadata["reranked"] is True
    assert len(rerank_run.metadata["rerank_scores"]) == TOP_N
    (event,) = tracer.events
    assert event.name == "rerank_usage"
    assert event.run_id == rerank_run.id


def test_rag_without_a_system_prompt_adds_one(mode: str, reranker: RerankCompressor) -> None:
    model = answering()
    agent = create_agent(
        model,
        middleware=[
            RerankMiddleware(
                reranker=reranker,
                retriever=ListRetriever(documents=passage_documents()),
                context_header="Notes:",
            )
        ],
    )

    run_agent(mode, agent, reranker)

    system = model.seen[0][0]
    assert isinstance(system, SystemMessage)
    assert str(system.content).startswith("Notes:\n\n[1] ")


def test_rag_gives_the_same_context_whether_or_not_a_run_is_traced(
    mode: str, reranker: RerankCompressor
) -> None:
    # Untraced, the middleware skips its own retriever run (nobody would see it); what
    # the model is given must not depend on that.
    contexts = []
    for config in (None, {"callbacks": [RecordingTracer()]}):
        base = ListRetriever(documents=passage_documents())
        model = answering()
        middleware = RerankMiddleware(reranker=reranker, retriever=base)
        run_agent(mode, create_agent(model, middleware=[middleware]), reranker, config)
        assert base.queries == [QUESTION]
        contexts.append(str(model.seen[0][0].content))
    assert contexts[0] == contexts[1]
    assert "[1] " in contexts[0]


def test_an_agent_gets_only_the_hooks_the_settings_use(reranker: RerankCompressor) -> None:
    # create_agent adds a tools node for a middleware whose class wraps tool calls, and a
    # wrapper to every model call for one whose class wraps model calls.
    base = ListRetriever(documents=[])
    rag = RerankMiddleware(reranker=reranker, retriever=base)
    trims = RerankMiddleware(reranker=reranker, tools="*")
    both = RerankMiddleware(reranker=reranker, retriever=base, tools=["search_notes"])
    for middleware in (rag, trims, both, RerankMiddleware(reranker=reranker)):
        assert isinstance(middleware, RerankMiddleware)
        assert middleware.name == "RerankMiddleware"
    assert "tools" not in create_agent(answering(), middleware=[rag]).nodes
    assert "tools" in create_agent(answering(), middleware=[both]).nodes
    for hook in ("wrap_model_call", "awrap_model_call"):
        assert getattr(type(trims), hook) is getattr(AgentMiddleware, hook)
        assert getattr(type(rag), hook) is getattr(RerankMiddleware, hook)
    for hook in ("wrap_tool_call", "awrap_tool_call"):
        assert getattr(type(rag), hook) is getattr(AgentMiddleware, hook)
        assert getattr(type(trims), hook) is getattr(RerankMiddleware, hook)

    class Mine(RerankMiddleware):
        """A subclass keeps every hook it inherits."""

    assert "tools" in create_agent(answering(), middleware=[Mine(reranker=reranker)]).nodes


def test_rag_with_the_api_down_passes_the_passages_through(
    mode: str, down: RerankCompressor
) -> None:
    model = answering()
    agent = create_agent(
        model,
        middleware=[
            RerankMiddleware(reranker=down, retriever=ListRetriever(documents=passage_documents()))
        ],
    )

    state = run_agent(mode, agent, down)

    assert state["messages"][-1].content == "About 80 degrees."
    text = str(model.seen[0][0].content)
    documents = passage_documents()
    for number, document in enumerate(documents[:TOP_N], 1):
        assert f"[{number}] {document.page_content}" in text
    assert documents[TOP_N].page_content not in text
    assert "could not be reranked" in text


def test_rag_raises_when_the_reranker_does(mode: str) -> None:
    reranker = RerankCompressor(base_url=closed_url(), max_retries=0)
    agent = create_agent(
        answering(),
        middleware=[
            RerankMiddleware(
                reranker=reranker, retriever=ListRetriever(documents=passage_documents())
            )
        ],
    )

    with pytest.raises(APIConnectionError):
        run_agent(mode, agent, reranker)
    reranker.close()


# -- trimming what retrieval tools return ---------------------------------------------


def test_tool_results_are_trimmed_to_the_best(
    mode: str, reranker: RerankCompressor, server: ScriptedServer
) -> None:
    documents = passage_documents()
    before = copy.deepcopy(documents)
    search = search_tool(documents)
    model = calling(("search_notes", {"query": TOOL_QUERY}))
    agent = create_agent(
        model,
        tools=[search],
        middleware=[RerankMiddleware(reranker=reranker, tools=["search_notes"])],
    )
    tracer = RecordingTracer()

    state = run_agent(mode, agent, reranker, {"callbacks": [tracer]})

    (message,) = tool_messages(state)
    best = expected_ids(TOOL_QUERY, documents, TOP_N)
    passages = json.loads(str(message.content))
    assert [passage["id"] for passage in passages] == best
    assert ids(message.artifact) == best
    assert [p["relevance_score"] for p in passages] == [
        d.metadata[SCORE_KEY] for d in message.artifact
    ]
    assert message.tool_call_id == "call-0"
    assert message.name == "search_notes"
    (body,) = server.bodies
    assert body["query"] == TOOL_QUERY
    assert len(body["documents"]) == len(documents)
    # The model reads the trimmed result.
    second_call = model.seen[1]
    assert second_call[-1].content == message.content
    assert documents == before  # the tool's documents were not changed
    if not _RUNS_NEST_IN_ASYNC_HOOKS and mode == "async":
        return
    (event,) = tracer.events
    assert event.name == "rerank_usage"
    (traced,) = [run for run in tracer.runs if "rerank_scores" in run.metadata]
    assert traced.id == event.run_id
    assert traced.metadata["rerank_scores"] == [p["relevance_score"] for p in passages]


def test_only_the_named_tools_are_trimmed(mode: str, reranker: RerankCompressor) -> None:
    documents = passage_documents()
    model = calling(("search_notes", {"query": TOOL_QUERY}), ("search_web", {"query": TOOL_QUERY}))
    agent = create_agent(
        model,
        tools=[search_tool(documents), search_tool(documents, "search_web")],
        middleware=[RerankMiddleware(reranker=reranker, tools=["search_notes"])],
    )

    state = run_agent(mode, agent, reranker)

    by_name = {message.name: message for message in tool_messages(state)}
    assert len(json.loads(str(by_name["search_notes"].content))) == TOP_N
    assert by_name["search_web"].content == "\n\n".join(d.page_content for d in documents)
    assert ids(by_name["search_web"].artifact) == ids(documents)


def test_star_trims_every_tool_and_falls_back_to_the_user_message(
    mode: str, reranker: RerankCompressor, server: ScriptedServer
) -> None:
    documents = passage_documents()

    def lookup(topic: str) -> tuple[str, list[Document]]:
        return "all notes", documents

    async def alookup(topic: str) -> tuple[str, list[Document]]:
        return lookup(topic)

    lookup_tool = StructuredTool.from_function(
        func=lookup,
        coroutine=alookup,
        name="lookup",
        description="Look a topic up.",
        response_format="content_and_artifact",
    )
    model = calling(("lookup", {"topic": "tea"}))
    agent = create_agent(
        model, tools=[lookup_tool], middleware=[RerankMiddleware(reranker=reranker, tools="*")]
    )

    state = run_agent(mode, agent, reranker)

    (message,) = tool_messages(state)
    assert ids(message.artifact) == expected_ids(QUESTION, documents, TOP_N)
    (body,) = server.bodies
    assert body["query"] == QUESTION  # no query argument: the latest user message


def test_tool_results_without_documents_pass_unchanged(
    mode: str, reranker: RerankCompressor, server: ScriptedServer
) -> None:
    @tool
    def clock() -> str:
        """The time."""
        return "noon"

    model = calling(("clock", {}))
    agent = create_agent(
        model, tools=[clock], middleware=[RerankMiddleware(reranker=reranker, tools="*")]
    )

    state = run_agent(mode, agent, reranker)

    (message,) = tool_messages(state)
    assert message.content == "noon"
    assert server.bodies == []


def test_tool_results_with_the_api_down_pass_through(mode: str, down: RerankCompressor) -> None:
    documents = passage_documents()
    model = calling(("search_notes", {"query": TOOL_QUERY}))
    agent = create_agent(
        model,
        tools=[search_tool(documents)],
        middleware=[RerankMiddleware(reranker=down, tools=["search_notes"])],
    )

    state = run_agent(mode, agent, down)

    assert state["messages"][-1].content == "About 80 degrees."
    (message,) = tool_messages(state)
    passages = json.loads(str(message.content))
    assert [passage["id"] for passage in passages] == ["p0", "p1", "p2"]
    assert all(passage["reranked"] is False for passage in passages)
    assert message.response_metadata["reranked"] is False
    assert message.response_metadata["rerank_error"] == "APIConnectionError"
    assert all(d.metadata["reranked"] is False for d in message.artifact)


def test_both_modes_together(mode: str, reranker: RerankCompressor) -> None:
    documents = passage_documents()
    model = calling(("search_notes", {"query": TOOL_QUERY}))
    middleware = RerankMiddleware(
        reranker=reranker,
        retriever=ListRetriever(documents=documents),
        tools=["search_notes"],
    )
    agent = create_agent(model, tools=[search_tool(documents)], middleware=[middleware])

    state = run_agent(mode, agent, reranker)

    assert len(model.seen) == 2
    for seen in model.seen:
        assert isinstance(seen[0], SystemMessage)
        assert "[1] " in str(seen[0].content)
    (message,) = tool_messages(state)
    assert len(message.artifact) == TOP_N
    assert middleware.tools == []  # registers no tools of its own


# -- the rerank tool of RerankCompressor.as_tool() in an agent --------------------------


def test_as_tool_in_an_agent_with_the_api_down(mode: str, down: RerankCompressor) -> None:
    tool_ = down.as_tool()
    passages = [d.page_content for d in passage_documents()]
    model = calling((tool_.name, {"query": QUERY, "passages": passages}))
    agent = create_agent(model, tools=[tool_])

    state = run_agent(mode, agent, down)

    assert state["messages"][-1].content == "About 80 degrees."
    (message,) = tool_messages(state)
    assert message.status == "success"
    answer = json.loads(str(message.content))
    assert [item["index"] for item in answer] == [0, 1, 2]
    assert [item["text"] for item in answer] == passages[:TOP_N]
    assert all(item["reranked"] is False for item in answer)
    assert all(item["rerank_error"] == "APIConnectionError" for item in answer)
    assert message.artifact == answer


# -- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"reranker": "x"}, "reranker must be a RerankCompressor"),
        ({"retriever": "x"}, "retriever must be"),
        ({"tools": "search_notes"}, "tools must be a list"),
        ({"tools": ["ok", ""]}, "non-empty strings"),
        ({"context_header": 3}, "context_header"),
    ],
)
def test_bad_settings_are_refused(
    reranker: RerankCompressor, arguments: dict[str, Any], match: str
) -> None:
    settings: dict[str, Any] = {"reranker": reranker, **arguments}
    with pytest.raises(TypeError, match=match):
        RerankMiddleware(**settings)


def test_settings_are_kept(reranker: RerankCompressor) -> None:
    base = ListRetriever(documents=[])
    middleware = RerankMiddleware(reranker=reranker, retriever=base, tools=["a", "b"])

    assert middleware.reranker is reranker
    assert middleware.retriever is base
    assert middleware.reranked_tools == frozenset({"a", "b"})
    assert RerankMiddleware(reranker=reranker, tools="*").reranked_tools == "*"
    assert RerankMiddleware(reranker=reranker).reranked_tools == frozenset()
