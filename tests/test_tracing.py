"""Traces and usage in the frameworks' own events: OpenTelemetry spans checked with the SDK's
in-memory exporter, a canary key that must reach no span, the counters as OTel metrics, and
usage in LlamaIndex's ReRankEndEvent and LangChain's callbacks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from support import MockAPI, run_mode

pytest.importorskip("opentelemetry.sdk")

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from rerank_integrations import RerankClient, RerankResponse, ServerError
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor
from rerank_integrations.server import serve_in_thread

QUERY = "apple pie"
TEXTS = ["pear tart", "apple pie", "plum cake", "apple crumble"]
CANARY = "sk-canary-0123456789abcdef"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Spans of the package recorded in memory, for this test only (no global provider)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(
        "rerank_integrations._trace._tracer", provider.get_tracer("rerank_integrations")
    )
    yield exporter
    provider.shutdown()


def call(client: RerankClient, mode: str, **kwargs: Any) -> RerankResponse:
    return run_mode(
        mode,
        lambda: client.rerank(QUERY, TEXTS, **kwargs),
        lambda: client.arerank(QUERY, TEXTS, **kwargs),
    )


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name.startswith(name)]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_call_is_a_reranker_span_with_ids_and_scores(
    mode: str, make_client: Callable[..., RerankClient], spans: InMemorySpanExporter
) -> None:
    client = make_client(model="rerank-small")
    response = call(client, mode, top_n=2)
    (span,) = named(spans, "rerank")
    found = attributes(span)
    assert found["openinference.span.kind"] == "RERANKER"
    assert found["reranker.model_name"] == "rerank-small"
    assert found["reranker.top_k"] == 2
    assert found["rerank.requests"] == 1
    for rank, result in enumerate(response.results):
        prefix = f"reranker.output_documents.{rank}.document."
        assert found[prefix + "id"] == str(result.index)
        assert found[prefix + "score"] == result.relevance_score
    assert [found[f"reranker.input_documents.{i}.document.id"] for i in range(4)] == [
        "0",
        "1",
        "2",
        "3",
    ]
    # Private by default: neither the query nor any text.
    assert "reranker.query" not in found
    assert not [key for key in found if key.endswith(".content")]
    assert span.status.status_code != StatusCode.ERROR


def test_content_is_recorded_only_when_asked(
    mode: str, make_client: Callable[..., RerankClient], spans: InMemorySpanExporter
) -> None:
    call(make_client(trace_content=True), mode, top_n=1)
    found = attributes(named(spans, "rerank")[0])
    assert found["reranker.query"] == QUERY
    assert found["reranker.output_documents.0.document.content"] == "apple pie"
    assert found["reranker.input_documents.2.document.content"] == "plum cake"


def test_each_attempt_is_a_child_span_with_status_retry_wait_and_sizes(
    mode: str,
    make_client: Callable[..., RerankClient],
    mock_api: MockAPI,
    spans: InMemorySpanExporter,
    sleeps: list[float],
) -> None:
    mock_api.queue(httpx.Response(503, json={"error": {"message": "busy"}}))
    client = make_client()
    call(client, mode)
    (parent,) = named(spans, "rerank")
    attempts = sorted(named(spans, "POST"), key=lambda span: span.start_time or 0)
    assert [attributes(a)["http.response.status_code"] for a in attempts] == [503, 200]
    assert [attributes(a)["rerank.retry"] for a in attempts] == [0, 1]
    assert attributes(attempts[0])["rerank.wait_seconds"] == 0.0
    assert attributes(attempts[1])["rerank.wait_seconds"] == pytest.approx(sleeps[0])
    assert attempts[0].status.status_code == StatusCode.ERROR
    for attempt in attempts:
        assert attempt.parent is not None and attempt.parent.span_id == parent.context.span_id
        found = attributes(attempt)
        assert found["http.request.body.size"] > 0 and found["http.response.body.size"] > 0
        assert found["url.full"] == "https://rerank.test/v1/rerank"


def test_batches_in_threads_and_tasks_nest_in_the_call(
    mode: str, make_client: Callable[..., RerankClient], spans: InMemorySpanExporter
) -> None:
    call(make_client(max_documents_per_request=1, max_concurrency=4), mode)
    (parent,) = named(spans, "rerank")
    attempts = named(spans, "POST")
    assert len(attempts) == 4
    assert {a.parent.span_id for a in attempts if a.parent} == {parent.context.span_id}
    assert sorted(a.name for a in attempts) == [f"POST batch {n}/4 (1 documents)" for n in "1234"]


def test_a_failed_call_says_why(
    mode: str,
    make_client: Callable[..., RerankClient],
    mock_api: MockAPI,
    spans: InMemorySpanExporter,
) -> None:
    mock_api.queue(*[httpx.Response(500, json={"error": {"message": "boom"}}) for _ in range(3)])
    with pytest.raises(ServerError):
        call(make_client(), mode)
    (span,) = named(spans, "rerank")
    assert span.status.status_code == StatusCode.ERROR
    found = attributes(span)
    assert found["error.type"] == "ServerError"
    assert found["http.response.status_code"] == 500
    assert "reranker.input_documents.0.document.id" in found
    assert len(named(spans, "POST")) == 3


def test_a_fallback_is_a_call_span_inside_the_primarys(
    mode: str, make_client: Callable[..., RerankClient], spans: InMemorySpanExporter
) -> None:
    backup = make_client(base_url="https://backup.test/v1")
    primary = RerankClient(
        "http://127.0.0.1:9/v1",  # the discard port: nothing answers
        max_retries=0,
        fallbacks=[backup],
    )
    call(primary, mode)
    calls = named(spans, "rerank")
    assert len(calls) == 2
    outer = next(span for span in calls if span.parent is None)
    inner = next(span for span in calls if span.parent is not None)
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert attributes(outer)["rerank.answered_by"] == "https://backup.test/v1/rerank"
    primary.close()


def test_a_canary_key_reaches_no_span(mode: str, spans: InMemorySpanExporter) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        # A hostile or careless server that echoes the credentials it was sent.
        headers = request.headers
        said = f"bad key {headers.get('authorization')} {headers.get('x-tenant-token')}"
        return httpx.Response(401, json={"error": {"message": said}})

    transport = httpx.MockTransport(echo)
    client = RerankClient(
        f"https://rerank.test/v1?api_key={CANARY}",
        api_key=CANARY,
        headers={"X-Tenant-Token": CANARY[::-1]},
        trace_content=True,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    with pytest.raises(Exception, match="bad key"):
        call(client, mode)
    assert len(named(spans, "rerank")) == 1 and len(named(spans, "POST")) == 1
    for span in spans.get_finished_spans():
        text = json.loads(span.to_json())
        dumped = json.dumps(text)
        assert CANARY not in dumped and CANARY[::-1] not in dumped, span.name
        assert "authorization" not in dumped.lower()


def test_adapters_name_documents_by_their_ids(
    mode: str, make_client: Callable[..., RerankClient], spans: InMemorySpanExporter
) -> None:
    compressor = RerankCompressor(client=make_client(), top_n=2)
    documents = [Document(page_content=text, id=f"doc-{i}") for i, text in enumerate(TEXTS)]
    run_mode(
        mode,
        lambda: compressor.compress_documents(documents, QUERY),
        lambda: compressor.acompress_documents(documents, QUERY),
    )
    found = attributes(named(spans, "rerank")[0])
    assert found["reranker.output_documents.0.document.id"] == "doc-1"
    assert found["reranker.input_documents.3.document.id"] == "doc-3"

    postprocessor = RerankPostprocessor(client=make_client(), top_n=2)
    nodes = [
        NodeWithScore(node=TextNode(text=text, id_=f"node-{i}"), score=0.9 - i / 10)
        for i, text in enumerate(TEXTS)
    ]
    bundle = QueryBundle(QUERY)
    spans.clear()
    run_mode(
        mode,
        lambda: postprocessor.postprocess_nodes(nodes, query_bundle=bundle),
        lambda: postprocessor.apostprocess_nodes(nodes, query_bundle=bundle),
    )
    found = attributes(named(spans, "rerank")[0])
    assert found["reranker.output_documents.0.document.id"] == "node-1"
    assert found["reranker.input_documents.2.document.id"] == "node-2"
    assert found["reranker.input_documents.2.document.score"] == pytest.approx(0.7)


def test_spans_over_the_wire(mode: str, spans: InMemorySpanExporter) -> None:
    with serve_in_thread() as server:
        client = RerankClient(server.base_url, api_key=CANARY, model="local-bm25")
        call(client, mode, top_n=2)
        client.close()
        endpoint = client.endpoint
    (span,) = named(spans, "rerank")
    (attempt,) = named(spans, "POST")
    assert attributes(attempt)["http.response.status_code"] == 200
    assert attributes(span)["rerank.answered_by"] == endpoint
    assert CANARY not in "".join(s.to_json() for s in spans.get_finished_spans())


# -- the counters as metrics -------------------------------------------------------------------


def test_the_counters_are_otel_metrics(
    mode: str, make_client: Callable[..., RerankClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: provider)
    client = make_client()
    call(client, mode)
    call(client, mode)
    data = reader.get_metrics_data()
    assert data is not None
    values = {
        metric.name: sum(point.value for point in metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert values["rerank.calls"] == 2
    assert values["rerank.requests"] == 2
    assert values["rerank.documents"] == 8
    provider.shutdown()


# -- usage in the frameworks' events ------------------------------------------------------------


class EndEvents(BaseEventHandler):
    seen: list[ReRankEndEvent]

    @classmethod
    def class_name(cls) -> str:
        return "EndEvents"

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, ReRankEndEvent):
            self.seen.append(event)


def test_llama_index_end_event_carries_usage(
    mode: str, make_client: Callable[..., RerankClient]
) -> None:
    handler = EndEvents(seen=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        postprocessor = RerankPostprocessor(client=make_client(), top_n=2)
        nodes = [NodeWithScore(node=TextNode(text=text), score=0.5) for text in TEXTS]
        bundle = QueryBundle(QUERY)
        run_mode(
            mode,
            lambda: postprocessor.postprocess_nodes(nodes, query_bundle=bundle),
            lambda: postprocessor.apostprocess_nodes(nodes, query_bundle=bundle),
        )
    finally:
        root.event_handlers.remove(handler)
    (event,) = handler.seen
    assert event.tags["usage"] == {
        "total_tokens": 40,
        "billed_units": None,
        "requests": 1,
        "model": None,
        "endpoint": "https://rerank.test/v1/rerank",
    }


class Usage(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, UUID]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))


def test_langchain_callbacks_get_usage(mode: str, make_client: Callable[..., RerankClient]) -> None:
    handler = Usage()
    compressor = RerankCompressor(client=make_client(), top_n=2)
    documents = [Document(page_content=text) for text in TEXTS]
    run_mode(
        mode,
        lambda: compressor.compress_documents(documents, QUERY, callbacks=[handler]),
        lambda: compressor.acompress_documents(documents, QUERY, callbacks=[handler]),
    )
    (event,) = handler.events
    assert event[0] == "rerank_usage"
    assert event[1]["total_tokens"] == 40 and event[1]["requests"] == 1


def test_a_retriever_run_gets_usage_as_its_own_event(
    mode: str, make_client: Callable[..., RerankClient]
) -> None:
    pytest.importorskip("langchain_classic")
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.retrievers import BaseRetriever

    class Fixed(BaseRetriever):
        def _get_relevant_documents(self, query: str, **kwargs: Any) -> list[Document]:
            return [Document(page_content=text) for text in TEXTS]

    handler = Usage()
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(client=make_client(), top_n=2), base_retriever=Fixed()
    )
    config = {"callbacks": [handler]}
    run_mode(
        mode,
        lambda: retriever.invoke(QUERY, config=config),
        lambda: retriever.ainvoke(QUERY, config=config),
    )
    assert [name for name, _, _ in handler.events] == ["rerank_usage"]


def test_without_opentelemetry_nothing_is_imported_and_calls_work() -> None:
    import subprocess
    import sys

    script = """
import sys
sys.modules["opentelemetry"] = None  # as if it were not installed
import httpx
from rerank_integrations import RerankClient
from rerank_integrations._trace import tracing
transport = httpx.MockTransport(lambda request: httpx.Response(
    200, json={"results": [{"index": 0, "relevance_score": 0.5}]}))
client = RerankClient("https://h/v1", http_client=httpx.Client(transport=transport))
assert client.rerank("q", ["d"]).results[0].relevance_score == 0.5
assert not tracing()
assert not [name for name in sys.modules if name.startswith("opentelemetry.")]
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_instruction_is_recorded_with_the_query_only_when_content_is(
    mode: str, make_client: Callable[..., RerankClient], spans: InMemorySpanExporter
) -> None:
    call(make_client(instruction="prefer pies"), mode)
    (span,) = named(spans, "rerank")
    recorded = attributes(span)
    assert recorded["rerank.instruction.carried"] == "prefix"
    assert "rerank.instruction" not in recorded and "reranker.query" not in recorded
    spans.clear()
    call(make_client(instruction="prefer pies", trace_content=True), mode)
    (span,) = named(spans, "rerank")
    recorded = attributes(span)
    assert recorded["rerank.instruction"] == "prefer pies"
    assert recorded["reranker.query"] == QUERY  # the caller's query, not the one sent
    spans.clear()
    call(make_client(), mode)
    (span,) = named(spans, "rerank")
    assert not any(name.startswith("rerank.instruction") for name in attributes(span))
