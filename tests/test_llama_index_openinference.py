"""``RerankPostprocessor`` under OpenInference's LlamaIndex instrumentor: one ``RERANKER`` span
per call, carrying what our rerank events say (query, top_k, documents in and out), not two
(the instrumentor's and the client's) and not none; sync and async, against a rerank server on
127.0.0.1. Needs ``openinference-instrumentation-llama-index`` (the ``dev`` group)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("openinference.instrumentation.llama_index")

from llama_index.core.schema import NodeWithScore, TextNode
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from support import API_KEY, ScriptedServer, keyword_score

from rerank_integrations.llama_index import RerankPostprocessor

KIND = "openinference.span.kind"
QUERY = "green tea water"
TEXTS = ["black tea", "green tea with hot water", "espresso", "green tea"]


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TracerProvider, Any]]:
    """A tracer provider recording in memory, used by the package's own spans too."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(
        "rerank_integrations._trace._tracer", tracer_provider.get_tracer("rerank_integrations")
    )
    yield tracer_provider, exporter
    tracer_provider.shutdown()


@pytest.fixture
def instrumented(provider: tuple[TracerProvider, Any]) -> Iterator[InMemorySpanExporter]:
    """OpenInference's LlamaIndex instrumentor on, for this test only."""
    tracer_provider, exporter = provider
    instrumentor = LlamaIndexInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    yield exporter
    instrumentor.uninstrument()


@pytest.fixture
def reranker() -> Iterator[RerankPostprocessor]:
    with ScriptedServer(api_key=API_KEY) as server:
        postprocessor = RerankPostprocessor(
            base_url=server.base_url, api_key=API_KEY, top_n=2, timeout=5, max_retries=0
        )
        yield postprocessor
        postprocessor.close()


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(id_=f"n{i}", text=text), score=0.5)
        for i, text in enumerate(TEXTS)
    ]


def rerank_twice(mode: str, reranker: RerankPostprocessor) -> list[list[NodeWithScore]]:
    if mode == "sync":
        return [reranker.postprocess_nodes(nodes(), query_str=QUERY) for _ in range(2)]

    async def main() -> list[list[NodeWithScore]]:
        try:
            return [await reranker.apostprocess_nodes(nodes(), query_str=QUERY) for _ in range(2)]
        finally:
            await reranker.aclose()

    return asyncio.run(main())


def rerankers(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [span for span in spans if (span.attributes or {}).get(KIND) == "RERANKER"]


def test_one_reranker_span_per_call(
    mode: str, instrumented: InMemorySpanExporter, reranker: RerankPostprocessor
) -> None:
    results = rerank_twice(mode, reranker)

    spans = instrumented.get_finished_spans()
    found = rerankers(spans)
    assert len(found) == 2  # one per call
    best = sorted(range(len(TEXTS)), key=lambda i: (-keyword_score(QUERY, TEXTS[i]), i))[:2]
    for span, result in zip(found, results, strict=True):
        assert span.name.startswith("RerankPostprocessor._")
        attributes = dict(span.attributes or {})
        # What the ReRankStartEvent and ReRankEndEvent we dispatch told the instrumentor.
        assert attributes["reranker.query"] == QUERY
        assert attributes["reranker.top_k"] == 2
        assert attributes["reranker.input_documents.3.document.id"] == "n3"
        for position, index in enumerate(best):
            assert attributes[f"reranker.output_documents.{position}.document.id"] == f"n{index}"
        assert [item.node.node_id for item in result] == [f"n{i}" for i in best]
        # The client's span is a step inside it, not a second reranker.
        (client_span,) = [
            s for s in spans if s.name == "rerank" and s.parent and s.parent.span_id == _id(span)
        ]
        assert KIND not in (client_span.attributes or {})
        assert client_span.attributes["rerank.requests"] == 1  # type: ignore[index]


def test_without_the_instrumentor_the_client_span_is_the_reranker(
    mode: str, provider: tuple[TracerProvider, InMemorySpanExporter], reranker: RerankPostprocessor
) -> None:
    rerank_twice(mode, reranker)

    found = rerankers(provider[1].get_finished_spans())
    assert [span.name for span in found] == ["rerank", "rerank"]


def _id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return int(context.span_id)
