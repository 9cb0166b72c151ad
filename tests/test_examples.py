"""The examples in ``examples/`` that build on the framework adapters, run against a rerank
server on 127.0.0.1 with scripted models, on the sync and the async path."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.messages import AIMessage, SystemMessage
from llama_index.core.base.base_retriever import BaseRetriever as LlamaRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from support import API_KEY, ScriptedServer
from support.lc import (
    QUERY,
    ListRetriever,
    RecordingTracer,
    ScriptedChatModel,
    expected_ids,
    passage_documents,
)

from rerank_integrations.langchain import SCORE_KEY, RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

ROOT = Path(__file__).resolve().parent.parent
TOP_N = 3


def load_example(name: str) -> ModuleType:
    """``examples/NAME.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # type hints are resolved through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def reranker() -> Iterator[RerankCompressor]:
    with ScriptedServer(api_key=API_KEY) as server:
        compressor = RerankCompressor(
            base_url=server.base_url, api_key=API_KEY, top_n=TOP_N, timeout=5, max_retries=0
        )
        yield compressor
        compressor.close()


def run_graph(mode: str, graph: Any, reranker: RerankCompressor, tracer: RecordingTracer) -> Any:
    state = {"question": QUERY}
    config = {"callbacks": [tracer]}
    if mode == "sync":
        return graph.invoke(state, config=config)

    async def main() -> Any:
        try:
            return await graph.ainvoke(state, config=config)
        finally:
            await reranker.aclose()

    return asyncio.run(main())


# -- LangGraph: retrieve -> rerank -> grade -> generate -------------------------------------


def test_langgraph_rag_generates_from_the_best_passages(
    mode: str, reranker: RerankCompressor
) -> None:
    example = load_example("langgraph_rag.py")
    model = ScriptedChatModel(messages=iter([AIMessage("About 80 degrees [1].")]))
    graph = example.build_graph(
        ListRetriever(documents=passage_documents()), reranker, model, min_score=0.1
    )
    tracer = RecordingTracer()

    state = run_graph(mode, graph, reranker, tracer)

    best = expected_ids(QUERY, passage_documents(), TOP_N)
    assert [d.id for d in state["documents"]] == best
    assert len(state["candidates"]) == len(passage_documents())
    assert state["answer"] == "About 80 degrees [1]."
    (seen,) = model.seen
    system = seen[0]
    assert isinstance(system, SystemMessage)
    by_id = {d.id: d.page_content for d in passage_documents()}
    assert f"[1] {by_id[best[0]]}" in str(system.content)
    assert seen[1].content == QUERY
    # The usage event reached the graph's handler, on the rerank node's run, with no
    # callbacks passed to compress_documents.
    (event,) = tracer.events
    assert event.name == "rerank_usage"
    assert event.run_id in {run.id for run in tracer.named("rerank")}


def test_langgraph_rag_declines_below_the_score_gate(mode: str, reranker: RerankCompressor) -> None:
    example = load_example("langgraph_rag.py")
    model = ScriptedChatModel(messages=iter([]))
    graph = example.build_graph(
        ListRetriever(documents=passage_documents()), reranker, model, min_score=1e9
    )

    state = run_graph(mode, graph, reranker, RecordingTracer())

    assert state["answer"] == example.DECLINED
    assert state["documents"][0].metadata[SCORE_KEY] < 1e9
    assert model.seen == []  # no model call spent


def test_langgraph_rag_script_runs_offline() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langgraph_rag.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "water temperature to brew coffee" in lines[0]
    assert lines[-1] == "(the model's answer, citing [1])"


# -- LlamaIndex: a workflow awaiting apostprocess_nodes -------------------------------------


class NodeListRetriever(LlamaRetriever):
    """A LlamaIndex retriever that returns the passages as nodes for any query."""

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=TextNode(id_=d.id, text=d.page_content), score=0.5)
            for d in passage_documents()
        ]


@pytest.fixture
def postprocessor() -> Iterator[RerankPostprocessor]:
    with ScriptedServer(api_key=API_KEY) as server:
        reranker = RerankPostprocessor(
            base_url=server.base_url, api_key=API_KEY, top_n=TOP_N, timeout=5, max_retries=0
        )
        yield reranker
        reranker.close()


@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")
def test_llama_index_workflow_awaits_the_reranker(
    monkeypatch: pytest.MonkeyPatch, postprocessor: RerankPostprocessor
) -> None:
    example = load_example("llama_index_workflow.py")
    workflow = example.RerankWorkflow(
        NodeListRetriever(), postprocessor, MockLLM(max_tokens=4), timeout=30
    )
    client = postprocessor.rerank_client

    def no_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the workflow called the sync client")

    monkeypatch.setattr(client, "rerank", no_sync)
    queries = [QUERY, "espresso coffee pressure"]

    async def main() -> list[dict[str, Any]]:
        try:
            results: list[dict[str, Any]] = await example.run(workflow, queries)
            return results
        finally:
            await postprocessor.aclose()

    results = asyncio.run(main())

    for query, result in zip(queries, results, strict=True):
        assert [item.node.node_id for item in result["nodes"]] == expected_ids(
            query, passage_documents(), TOP_N
        )
        scores = [item.score for item in result["nodes"]]
        assert scores == sorted(scores, reverse=True)
        assert result["answer"]


def test_llama_index_workflow_script_runs_offline() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "llama_index_workflow.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "water temperature to brew coffee" in result.stdout.splitlines()[0]
