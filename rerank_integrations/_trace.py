"""OpenTelemetry spans, when ``opentelemetry-api`` is installed (extra ``otel``).

Each call is a span with OpenInference's reranker attributes (``openinference.span.kind``
``RERANKER``, unless it nests in a reranker span an instrumentor opened around the adapter;
``reranker.model_name``, ``reranker.top_k``, the input and output documents
with their ids and scores), and each HTTP attempt a child span with its status, retry
number, wait and sizes. The query and the documents' text are recorded only with
``trace_content=True``. Nothing of the key, the headers or a URL's query string is
recorded. Without the package nothing is imported and each hook costs one ``if``.

The adapters know what the client does not (a document's id, a node's retrieval score);
they hand it over in a context variable, read only when a span records.
"""

from __future__ import annotations

import contextvars
import importlib.util
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from ._documents import Document, document_label
from ._exceptions import APIStatusError, RerankError
from ._text import display_url
from ._types import RerankResponse
from ._version import __version__

if TYPE_CHECKING:
    from ._actions import Answer, Send

__all__ = [
    "Describe",
    "attempt_span",
    "call_span",
    "described_documents",
    "framework_span_boundary",
    "inside_framework_span",
    "tracing",
]

SPAN_KIND = "openinference.span.kind"
INPUT = "reranker.input_documents"
OUTPUT = "reranker.output_documents"

_tracer: Any = None
_status: Any = None
_client_kind: Any = None
if importlib.util.find_spec("opentelemetry") is not None:  # pragma: no branch
    try:
        from opentelemetry import trace as _trace_api
        from opentelemetry.trace import SpanKind, Status, StatusCode
    except ImportError:  # pragma: no cover - a broken install
        pass
    else:
        _tracer = _trace_api.get_tracer("rerank_integrations", __version__)
        _status = (Status, StatusCode)
        _client_kind = SpanKind.CLIENT

#: What the adapters know of the documents of the call they make: a function giving each
#: document's id and retrieval score (``None`` where there is none).
Describe = Callable[[], tuple[Sequence[str | None], Sequence[float | None]]]
_described: contextvars.ContextVar[Describe | None] = contextvars.ContextVar(
    "rerank_described_documents", default=None
)


#: The OpenTelemetry span current where an adapter is called, before a framework's own span.
_outer_span: contextvars.ContextVar[Any] = contextvars.ContextVar("rerank_outer_span", default=None)
#: The span a framework's instrumentation opened for the adapter call in progress, if any.
_framework_span: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "rerank_framework_span", default=None
)


@contextmanager
def framework_span_boundary() -> Iterator[None]:
    """Around the call of an adapter method that the framework wraps in its own span:
    remembers the current span, to tell whether an instrumentor opens one for the call."""
    if _tracer is None:
        yield
        return
    token = _outer_span.set(_trace_api.get_current_span())
    try:
        yield
    finally:
        _outer_span.reset(token)


@contextmanager
def inside_framework_span() -> Iterator[None]:
    """In the body of that method: when an instrumentor (OpenInference's LlamaIndex one)
    opened an OpenTelemetry span for the call, that span is the call's reranker span, and
    the client's span nests in it as a plain step, so a trace shows one reranker per call."""
    if _tracer is None:
        yield
        return
    current = _trace_api.get_current_span()
    outer = _outer_span.get()
    opened = current.get_span_context().is_valid and (
        outer is None or _span_id(current) != _span_id(outer)
    )
    token = _framework_span.set(current if opened else None)
    try:
        yield
    finally:
        _framework_span.reset(token)


def _span_id(span: Any) -> int:
    return int(span.get_span_context().span_id)


def _inside_reranker_span() -> bool:
    """Whether the current span is the one a framework's instrumentation opened for this
    adapter call (see :func:`inside_framework_span`)."""
    framework = _framework_span.get()
    return framework is not None and _span_id(framework) == _span_id(_trace_api.get_current_span())


def tracing() -> bool:
    """Whether spans are made (``opentelemetry-api`` is installed)."""
    return _tracer is not None


def described_documents(describe: Describe | None) -> AbstractContextManager[None]:
    """Within the block, calls' spans name each document by ``describe()``'s ids and
    scores (called only if a span records)."""
    # Without tracing, the block costs no generator: every adapter call passes through here.
    if _tracer is None or describe is None:
        return _NOTHING
    return _described_by(describe)


_NOTHING: AbstractContextManager[None] = nullcontext()


@contextmanager
def _described_by(describe: Describe) -> Iterator[None]:
    token = _described.set(describe)
    try:
        yield
    finally:
        _described.reset(token)


class CallSpan:
    """What a call's span is told: its result, or nothing if it failed."""

    __slots__ = ("response",)

    def __init__(self) -> None:
        self.response: RerankResponse | None = None


@contextmanager
def call_span(
    documents: Sequence[Document],
    query: str,
    top_n: int | None,
    model: str | None,
    endpoint: str,
    dialect: str,
    trace_content: bool,
    cached: int = 0,
    instruction: str | None = None,
    carried: str = "none",
) -> Iterator[CallSpan]:
    """One call's span, current for the block (attempts nest in it); the block sets
    ``.response`` on what it yields. How an instruction was carried (``carried``) is always
    recorded; the instruction itself, like the query, only with ``trace_content``."""
    outcome = CallSpan()
    if _tracer is None:
        yield outcome
        return
    describe = _described.get()
    nested = _inside_reranker_span()
    with _tracer.start_as_current_span(
        "rerank", record_exception=False, set_status_on_exception=False
    ) as span:
        recording = span.is_recording()
        if recording:
            top_k = len(documents) if top_n is None else top_n  # the plan's: below the count
            span.set_attributes(
                {
                    "reranker.top_k": top_k,
                    "rerank.endpoint": display_url(endpoint),
                    "rerank.dialect": dialect,
                    "rerank.documents": len(documents),
                }
            )
            if not nested:
                span.set_attribute(SPAN_KIND, "RERANKER")
            if model:
                span.set_attribute("reranker.model_name", model)
            if instruction is not None:
                span.set_attribute("rerank.instruction.carried", carried)
            if trace_content:
                span.set_attribute("reranker.query", query)
                if instruction is not None:
                    span.set_attribute("rerank.instruction", instruction)
        try:
            yield outcome
        except BaseException as error:
            if recording:
                _failed(span, error)
                _documents(span, documents, describe, trace_content)
            raise
        if recording:
            response = outcome.response
            if response is not None:
                _answered(span, response, documents, describe, trace_content, cached)
            # Inputs last: a span's attribute limit drops the tail, and outputs matter more.
            _documents(span, documents, describe, trace_content)


def _answered(
    span: Any,
    response: RerankResponse,
    documents: Sequence[Document],
    describe: Describe | None,
    trace_content: bool,
    cached: int,
) -> None:
    attributes: dict[str, Any] = {
        "rerank.requests": response.requests,
        "rerank.results": len(response.results),
        "rerank.cache_hits": cached,
    }
    if response.model:
        attributes["reranker.model_name"] = response.model
    if response.endpoint:
        attributes["rerank.answered_by"] = response.endpoint
    if response.windows:
        attributes["rerank.windows"] = response.windows
    usage = response.usage
    if usage is not None and usage.total_tokens is not None:
        attributes["rerank.usage.total_tokens"] = usage.total_tokens
    if usage is not None and usage.billed_units is not None:
        attributes["rerank.usage.billed_units"] = usage.billed_units
    attributes.update(_usage_attributes(response))
    span.set_attributes(attributes)
    ids = describe()[0] if describe is not None else None
    for rank, result in enumerate(response.results):
        prefix = f"{OUTPUT}.{rank}.document."
        span.set_attribute(prefix + "id", _id(ids, result.index))
        span.set_attribute(prefix + "score", result.relevance_score)
        if trace_content:
            span.set_attribute(prefix + "content", document_label(documents[result.index]))


def _usage_attributes(response: RerankResponse) -> dict[str, Any]:
    """The usage counts known, the cost and the model asked for, as span attributes."""
    attributes: dict[str, Any] = {}
    usage = response.usage
    if usage is not None:
        attributes["rerank.usage.requests"] = usage.requests
        attributes["rerank.usage.documents"] = usage.documents
        if usage.search_units is not None:
            attributes["rerank.usage.search_units"] = usage.search_units
        if usage.input_tokens is not None:
            attributes["rerank.usage.input_tokens"] = usage.input_tokens
    if response.cost is not None:
        attributes["rerank.cost"] = float(response.cost)
    if response.requested_model and response.requested_model != response.model:
        attributes["rerank.requested_model"] = response.requested_model
    return attributes


def _documents(
    span: Any,
    documents: Sequence[Document],
    describe: Describe | None,
    trace_content: bool,
) -> None:
    """The input documents: each one's id, retrieval score (from an adapter) and text."""
    ids: Sequence[str | None] | None = None
    scores: Sequence[float | None] | None = None
    if describe is not None:
        ids, scores = describe()
    for index, text in enumerate(documents):
        prefix = f"{INPUT}.{index}.document."
        span.set_attribute(prefix + "id", _id(ids, index))
        score = None if scores is None or index >= len(scores) else scores[index]
        if score is not None:
            span.set_attribute(prefix + "score", score)
        if trace_content:
            span.set_attribute(prefix + "content", document_label(text))


def _id(ids: Sequence[str | None] | None, index: int) -> str:
    """A document's id as the adapter knows it, else its position in the call."""
    if ids is not None and index < len(ids) and ids[index] is not None:
        return str(ids[index])
    return str(index)


def _failed(span: Any, error: BaseException) -> None:
    status, code = _status
    # The message only: a traceback adds nothing a trace reader needs, and our messages
    # are scrubbed of secrets.
    span.set_attribute("error.type", type(error).__name__)
    if isinstance(error, APIStatusError):
        span.set_attribute("http.response.status_code", error.status_code)
    span.set_status(status(code.ERROR, str(error)[:500]))


class AttemptSpan:
    """What an attempt's span is told: the answer, or the error it failed with."""

    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    def answered(self, outcome: Answer | RerankError) -> None:
        span = self._span
        if span is None:
            return
        if not isinstance(outcome, RerankError):  # an Answer
            span.set_attribute("http.response.status_code", outcome.status_code)
            span.set_attribute("http.response.body.size", len(outcome.content))
            if outcome.status_code >= 400:
                status, code = _status
                span.set_attribute("error.type", str(outcome.status_code))
                span.set_status(status(code.ERROR, f"HTTP {outcome.status_code}"))
        else:
            _failed(span, outcome)


_NO_ATTEMPT_SPAN = AttemptSpan(None)


@contextmanager
def attempt_span(action: Send) -> Iterator[AttemptSpan]:
    """The span of one HTTP attempt, a child of the call's."""
    if _tracer is None:
        yield _NO_ATTEMPT_SPAN
        return
    with _tracer.start_as_current_span(
        f"POST {action.label}" if action.label else "POST",
        kind=_client_kind,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        if not span.is_recording():
            yield _NO_ATTEMPT_SPAN
            return
        span.set_attributes(
            {
                "http.request.method": "POST",
                "url.full": display_url(action.url),
                "http.request.body.size": len(action.content),
                "rerank.retry": action.retry,
                "rerank.wait_seconds": action.waited,
            }
        )
        yield AttemptSpan(span)
