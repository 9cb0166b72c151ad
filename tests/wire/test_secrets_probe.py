"""The secrets probe: canary key and header values, every kind of error, every view of it.

A hostile server echoes the canaries back (plainly, JSON-escaped and URL-quoted) in every
answer. Whatever fails, no key or header canary may show in a repr, a message, an
exception's args or body, a traceback with its locals (every frame but the test's own), a
DEBUG log record, a dump of an adapter, a pickled error, a LangChain tracer run or a
LlamaIndex span or event. A secret in the base URL's query string is kept out of all of
this package's own views; httpx itself shows request URLs whole (in its ``Request`` objects
and its INFO log line), which is why the README advises ``api_key=`` or ``headers=``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import traceback
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import quote

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from support import DROP, HugeBody, Reply, ScriptedServer, TrickleBody, json_reply

from rerank_integrations import RerankClient, RerankError
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

KEY = "sk-probe/Canary+Key=="
HEADER = "hdr-probe-Canary-4711"
URL_SECRET = "url-probe-Canary-0815"
CANARIES = [KEY, HEADER, "Canary+Key", "Canary-4711"]
OWN_VIEW_CANARIES = [*CANARIES, URL_SECRET, "Canary-0815"]


def echoing(status: int) -> Reply:
    """An answer that repeats every canary, in every spelling a server might use."""
    forms = []
    for secret in (KEY, HEADER, URL_SECRET):
        forms += [secret, json.dumps(secret)[1:-1].replace("/", "\\/"), quote(secret, safe="")]
    text = " ".join(forms)
    body = json.dumps({"error": {"message": f"refused: {text}", "echo": {"headers": forms}}})
    return Reply(
        status, body.encode().replace(b"\\\\", b"\\"), {"Content-Type": "application/json"}
    )


FAILURES: list[tuple[str, list[Any]]] = [
    ("400", [echoing(400)]),
    ("401", [echoing(401)]),
    ("403", [echoing(403)]),
    ("404", [echoing(404)]),
    ("413", [echoing(413)] * 3),  # refused whole, then both halves
    ("422", [echoing(422)]),
    ("429", [echoing(429)] * 3),
    ("500", [echoing(500)] * 3),
    ("502 html", [Reply(502, f"<html><title>502 {KEY} {HEADER}</title></html>".encode())] * 3),
    ("error in 200", [echoing(200)]),
    ("not json", [Reply(200, f"oops {KEY} {HEADER}".encode())]),
    ("bad ranking", [json_reply(200, {"results": [{"index": 9, "relevance_score": KEY}]})]),
    ("too large", [HugeBody(2 * 1024 * 1024)]),
    ("dropped", [DROP] * 3),
    ("too slow", [TrickleBody(interval=0.2, limit=2)] * 3),
]


class Collector(BaseTracer):
    """A LangChain tracer that keeps every finished run."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        self.runs.append(run)


class Events(BaseEventHandler):
    """A LlamaIndex event handler that keeps every event."""

    seen: ClassVar[list[BaseEvent]] = []

    @classmethod
    def class_name(cls) -> str:
        return "Events"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.seen.append(event)


class Retrieved(BaseRetriever):
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [Document(page_content=text) for text in ("pear", "apple")]


@pytest.fixture
def llama_handlers() -> Iterator[tuple[Events, SimpleSpanHandler]]:
    root = get_dispatcher()
    Events.seen.clear()
    events, spans = Events(), SimpleSpanHandler()
    root.add_event_handler(events)
    root.add_span_handler(spans)
    yield events, spans
    root.event_handlers.remove(events)
    root.span_handlers.remove(spans)


def foreign_frames(error: BaseException) -> str:
    """Every local variable of every frame in the traceback (and its causes) that is not
    this test's own, as an error tracker capturing locals records them."""
    report: traceback.TracebackException | None = traceback.TracebackException.from_exception(
        error, capture_locals=True
    )
    texts: list[str] = []
    while report is not None:
        texts += [repr(f.locals) for f in report.stack if f.filename != __file__]
        report = report.__cause__ or report.__context__
    return "".join(texts)


def own_views_of(error: BaseException) -> list[str]:
    views = [repr(error), str(error), repr(error.args), repr(vars(error))]
    return [*views, repr(pickle.dumps(error)), str(pickle.loads(pickle.dumps(error)))]


@pytest.mark.parametrize(("kind", "replies"), FAILURES, ids=[kind for kind, _ in FAILURES])
def test_no_canary_leaks_from_any_failure(
    kind: str,
    replies: list[Any],
    scripted_server: ScriptedServer,
    caplog: pytest.LogCaptureFixture,
    llama_handlers: tuple[Events, SimpleSpanHandler],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore
    base_url = f"{scripted_server.base_url}/v1/rerank?key={URL_SECRET}"
    settings: dict[str, Any] = {
        "base_url": base_url,
        "api_key": KEY,
        "headers": {"X-Api-Key": HEADER},
        "timeout": 0.5,
        "max_retries": 2,
        "max_response_bytes": 512 * 1024,
    }
    client = RerankClient(**settings)
    compressor = RerankCompressor(top_n=1, **settings)
    postprocessor = RerankPostprocessor(top_n=1, **settings)
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=Retrieved()
    )
    tracer = Collector()
    nodes = [NodeWithScore(node=TextNode(text=text)) for text in ("pear", "apple")]
    calls = [
        lambda: client.rerank("apple", ["pear", "apple"]),
        lambda: asyncio.run(client.arerank("apple", ["pear", "apple"])),
        lambda: retriever.invoke("apple", config={"callbacks": [tracer]}),
        lambda: asyncio.run(retriever.ainvoke("apple", config={"callbacks": [tracer]})),
        lambda: postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle("apple")),
        lambda: asyncio.run(
            postprocessor.apostprocess_nodes(nodes, query_bundle=QueryBundle("apple"))
        ),
    ]
    seen: list[str] = []  # views of this package's own
    everywhere: list[str] = []  # views that include httpx's and httpcore's
    for run in calls:
        scripted_server.queue(*replies)
        with pytest.raises(RerankError) as caught:
            run()
        seen += own_views_of(caught.value)
        everywhere.append(foreign_frames(caught.value))
        scripted_server.replies.clear()

    events, spans = llama_handlers
    seen += [repr(event) for event in events.seen] + [e.model_dump_json() for e in events.seen]
    seen += [repr(span) for span in spans.completed_spans + spans.dropped_spans]
    assert tracer.runs, "the tracer saw the retriever's runs"
    seen += [run.model_dump_json() for run in tracer.runs]
    seen += [repr(r.__dict__) for r in caplog.records if r.name.startswith("rerank_integrations")]
    everywhere += [repr(record.__dict__) for record in caplog.records]
    for adapter in (compressor, postprocessor):
        seen += [repr(adapter), str(adapter.model_dump()), adapter.model_dump_json()]
    seen += [str(postprocessor.to_dict()), postprocessor.to_json()]
    seen += [repr(client), repr(client.settings), repr(client._connection)]
    assert scripted_server.received, "the calls reached the server"
    leaks = [(c, text[:200]) for text in seen for c in OWN_VIEW_CANARIES if c in text]
    leaks += [(c, text[:200]) for text in everywhere + seen for c in CANARIES if c in text]
    assert leaks == []
    for closing in (client, compressor, postprocessor):
        closing.close()


def test_the_canaries_were_really_sent(scripted_server: ScriptedServer) -> None:
    """The probe is only meaningful if the secrets really travel: they do, in the clear."""
    client = RerankClient(
        f"{scripted_server.base_url}/v1/rerank?key={URL_SECRET}",
        api_key=KEY,
        headers={"X-Api-Key": HEADER},
    )
    client.rerank("apple", ["pear", "apple"])
    received = scripted_server.received[0]
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert received.headers["x-api-key"] == HEADER
    assert URL_SECRET in received.path
    client.close()


def test_the_probe_would_see_a_leak() -> None:
    """A message that does carry a canary is caught by the same scan."""
    error = RerankError(f"leaked {KEY}")
    assert any(canary in text for text in own_views_of(error) for canary in CANARIES)
    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads(KEY)  # the decoder's frames hold the text it was given
    assert any(canary in foreign_frames(caught.value) for canary in CANARIES)
