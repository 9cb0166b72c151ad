"""The Starlette application behind the local rerank server.

The application answers the Jina-style rerank format that OpenAI-compatible
gateways expose, scores documents with BM25 (see
:mod:`rerank_integrations.server._bm25`) and can inject faults so that client
code can be tested against drops, stalls, rate limits and server errors.

Order of operations for every rerank request:

1. the request is counted (:class:`ServerStats`);
2. authentication is checked when :attr:`ServerConfig.api_key` is set
   (a failure answers 401 and draws no fault);
3. one fault draw decides whether this request is dropped, stalled,
   rate limited, answered with an error, or served normally;
4. the body is read and :attr:`ServerConfig.latency_ms` is waited;
5. the drawn fault, if any, is applied (a stall waits and then serves the
   request normally);
6. the body is validated (4xx with an OpenAI-style error body) and scored.

Faults therefore come before body validation: a malformed request can still
be hit by a fault, and the fault sequence depends only on the order in which
authenticated rerank requests arrive.
"""

from __future__ import annotations

import asyncio
import heapq
import hmac
import json
import logging
import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._bm25 import score_tokens, to_relevance, tokenize

__all__ = [
    "FAULT_KINDS",
    "RERANK_PATHS",
    "SCORING_MODES",
    "ServerConfig",
    "ServerStats",
    "create_app",
]

SCORING_MODES: tuple[str, ...] = ("bm25", "cheap")
"""Accepted values of :attr:`ServerConfig.scoring`."""

RERANK_PATHS: tuple[str, ...] = ("/v1/rerank", "/rerank", "/v2/rerank")
"""Paths that accept ``POST`` rerank requests (all use the same handler)."""

FAULT_KINDS: tuple[str, ...] = ("drop", "stall", "rate_limit", "error")
"""Names of the injectable faults, in the order the fault draw checks them."""

_RATE_FIELDS = ("drop_rate", "stall_rate", "rate_limit_rate", "error_rate")
_RATE_TOLERANCE = 1e-9
_STALL_POLL_SECONDS = 0.05


def _check_non_negative(name: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number ``>= 0``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_rate(name: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is a probability in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Behaviour of the local rerank server.

    All fields are keyword-only and validated on construction; invalid
    values raise ``ValueError`` with a message naming the field.

    Attributes:
        api_key: When set, rerank requests must send
            ``Authorization: Bearer <api_key>``; otherwise they get a 401.
            ``None`` disables authentication.
        max_documents: Largest accepted number of documents per request;
            more gives a 413.
        latency_ms: Extra delay, in milliseconds, added to every rerank
            request that passes authentication (faulty and invalid ones
            included).
        error_rate: Probability of answering with ``error_status``.
        error_status: HTTP status of the error fault (400-599).
        error_html: Answer the error fault with an HTML page, like a reverse
            proxy would, instead of a JSON error body.
        rate_limit_rate: Probability of answering 429 with a ``Retry-After``
            header.
        retry_after: Seconds sent in ``Retry-After`` (fractions are sent
            with up to three decimals).
        drop_rate: Probability of aborting the connection after sending the
            response headers and part of the body, so that the client sees an
            incomplete response.
        stall_rate: Probability of waiting ``stall_seconds`` before
            answering normally.
        stall_seconds: Length of a stall.
        seed: Seed of the fault draws; the same seed and the same request
            order give the same faults.  ``None`` seeds from the system.
        scoring: ``"bm25"`` (Okapi BM25 over the request's documents) or
            ``"cheap"`` (a query-independent score computed in constant time
            per document from its position and length, for benchmarks that
            need the server's own cost to be negligible).

    The four ``*_rate`` fields are probabilities in ``[0, 1]`` whose sum must
    not exceed 1; each rerank request draws one number to pick at most one
    fault.
    """

    api_key: str | None = None
    max_documents: int = 1000
    latency_ms: float = 0
    error_rate: float = 0
    error_status: int = 503
    error_html: bool = False
    rate_limit_rate: float = 0
    retry_after: float = 1
    drop_rate: float = 0
    stall_rate: float = 0
    stall_seconds: float = 30
    seed: int | None = None
    scoring: str = "bm25"

    def __post_init__(self) -> None:
        """Validate the field values."""
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise ValueError("api_key must be a non-empty string or None")
        if (
            not isinstance(self.max_documents, int)
            or isinstance(self.max_documents, bool)
            or self.max_documents < 1
        ):
            raise ValueError(f"max_documents must be an integer >= 1, got {self.max_documents!r}")
        _check_non_negative("latency_ms", self.latency_ms)
        _check_non_negative("retry_after", self.retry_after)
        _check_non_negative("stall_seconds", self.stall_seconds)
        for name in _RATE_FIELDS:
            _check_rate(name, getattr(self, name))
        if self.fault_rate > 1 + _RATE_TOLERANCE:
            raise ValueError(
                "drop_rate + stall_rate + rate_limit_rate + error_rate must be at most 1, "
                f"got {self.fault_rate:g}"
            )
        if (
            not isinstance(self.error_status, int)
            or isinstance(self.error_status, bool)
            or not 400 <= self.error_status <= 599
        ):
            raise ValueError(
                "error_status must be an HTTP error status between 400 and 599, "
                f"got {self.error_status!r}"
            )
        if not isinstance(self.error_html, bool):
            raise ValueError(f"error_html must be a bool, got {self.error_html!r}")
        if self.seed is not None and (
            not isinstance(self.seed, int) or isinstance(self.seed, bool)
        ):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        if self.scoring not in SCORING_MODES:
            raise ValueError(
                f"scoring must be one of {', '.join(SCORING_MODES)}, got {self.scoring!r}"
            )

    @property
    def fault_rate(self) -> float:
        """Total probability that a rerank request gets a fault."""
        return float(self.drop_rate + self.stall_rate + self.rate_limit_rate + self.error_rate)


class ServerStats:
    """Thread-safe request counters of one running application.

    The server updates the counters from its event loop thread; tests read
    them from any thread.
    """

    def __init__(self) -> None:
        """Create counters that all start at zero."""
        self._lock = threading.Lock()
        self._requests = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._faults = dict.fromkeys(FAULT_KINDS, 0)

    @property
    def requests(self) -> int:
        """Number of rerank requests received since start or the last reset."""
        with self._lock:
            return self._requests

    @property
    def in_flight(self) -> int:
        """Number of rerank requests being handled right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """Largest number of rerank requests handled at the same time."""
        with self._lock:
            return self._max_in_flight

    @property
    def faults(self) -> dict[str, int]:
        """Number of injected faults by kind (a copy; see :data:`FAULT_KINDS`)."""
        with self._lock:
            return dict(self._faults)

    def reset(self) -> None:
        """Zero the counters; ``max_in_flight`` restarts from ``in_flight``."""
        with self._lock:
            self._requests = 0
            self._max_in_flight = self._in_flight
            self._faults = dict.fromkeys(FAULT_KINDS, 0)

    def _enter(self) -> None:
        """Record the start of a rerank request."""
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        """Record the end of a rerank request."""
        with self._lock:
            self._in_flight -= 1

    def _record_fault(self, kind: str) -> None:
        """Count one injected fault of ``kind``."""
        with self._lock:
            self._faults[kind] += 1

    def __repr__(self) -> str:
        """Show the current counter values."""
        return (
            f"ServerStats(requests={self.requests}, in_flight={self.in_flight}, "
            f"max_in_flight={self.max_in_flight}, faults={self.faults})"
        )


class _FaultPlan:
    """Deterministic fault draws: one ``random()`` per rerank request."""

    def __init__(self, config: ServerConfig) -> None:
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        thresholds: list[tuple[float, str]] = []
        upper = 0.0
        for kind, name in zip(FAULT_KINDS, _RATE_FIELDS, strict=True):
            rate = float(getattr(config, name))
            if rate > 0:
                upper += rate
                thresholds.append((upper, kind))
        self._thresholds = thresholds

    def draw(self) -> str | None:
        """Return the fault for the next request, or ``None`` for no fault."""
        with self._lock:
            value = self._rng.random()
        for upper, kind in self._thresholds:
            if value < upper:
                return kind
        return None


class _RequestError(Exception):
    """A client error that becomes an OpenAI-style JSON error response."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "invalid_value",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param


@dataclass(frozen=True)
class _RerankRequest:
    """A validated rerank request."""

    model: str | None
    query: str
    documents: list[str]
    top_n: int | None
    return_documents: bool


def _error_response(
    status: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    code: str | int | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Build a JSON error response in the OpenAI error format."""
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _status_code_name(status: int) -> str:
    """Return a snake_case name for ``status`` (``"error"`` if unknown)."""
    try:
        return HTTPStatus(status).name.lower()
    except ValueError:
        return "error"


def _status_phrase(status: int) -> str:
    """Return the reason phrase of ``status`` (``"Error"`` if unknown)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _format_seconds(seconds: float) -> str:
    """Format a ``Retry-After`` value: whole seconds as integers."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _parse_request(body: bytes, max_documents: int) -> _RerankRequest:
    """Validate a rerank request body; raise :class:`_RequestError` if invalid."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise _RequestError("Request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise _RequestError("Request body must be a JSON object.", code="invalid_type")

    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise _RequestError("'model' must be a string.", code="invalid_type", param="model")

    if "query" not in payload:
        raise _RequestError(
            "Missing required parameter: 'query'.", code="missing_required_parameter", param="query"
        )
    query = payload["query"]
    if not isinstance(query, str):
        raise _RequestError("'query' must be a string.", code="invalid_type", param="query")
    if not query.strip():
        raise _RequestError("'query' must not be empty.", code="invalid_value", param="query")

    if "documents" not in payload:
        raise _RequestError(
            "Missing required parameter: 'documents'.",
            code="missing_required_parameter",
            param="documents",
        )
    raw_documents = payload["documents"]
    if not isinstance(raw_documents, list):
        raise _RequestError(
            "'documents' must be a list of strings.", code="invalid_type", param="documents"
        )
    if len(raw_documents) > max_documents:
        raise _RequestError(
            f"Too many documents: got {len(raw_documents)}, "
            f"the limit is {max_documents} per request.",
            status=413,
            code="too_many_documents",
            param="documents",
        )
    documents: list[str] = []
    for index, item in enumerate(raw_documents):
        if isinstance(item, str):
            documents.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            documents.append(item["text"])
        else:
            raise _RequestError(
                f"'documents[{index}]' must be a string or an object with a string 'text' field.",
                code="invalid_type",
                param=f"documents[{index}]",
            )

    top_n = payload.get("top_n")
    if top_n is not None:
        if not isinstance(top_n, int) or isinstance(top_n, bool):
            raise _RequestError(
                "'top_n' must be a positive integer.", code="invalid_type", param="top_n"
            )
        if top_n < 1:
            raise _RequestError(
                "'top_n' must be a positive integer.", code="invalid_value", param="top_n"
            )

    return_documents = payload.get("return_documents")
    if return_documents is None:
        return_documents = True
    elif not isinstance(return_documents, bool):
        raise _RequestError(
            "'return_documents' must be a boolean.", code="invalid_type", param="return_documents"
        )

    return _RerankRequest(model, query, documents, top_n, return_documents)


def _estimate_tokens(characters: int) -> int:
    """Estimate a token count from a character count (4 characters a token)."""
    return (characters + 3) // 4


def _cheap_score(index: int, text: str) -> float:
    """Score a document in constant time from its position and length only."""
    mixed = (index * 2654435761 + len(text) * 40503 + 12345) % 1000003
    return mixed / 1000003


def _rank(request: _RerankRequest, scoring: str) -> tuple[list[int], list[float], int]:
    """Return the chosen document indexes best first, their relevances and the token count."""
    documents = request.documents
    if scoring == "cheap":
        raw = [_cheap_score(i, text) for i, text in enumerate(documents)]
        relevance = raw
        tokens = _estimate_tokens(len(request.query) + sum(map(len, documents)))
    else:
        query_tokens = tokenize(request.query)
        document_tokens = [tokenize(text) for text in documents]
        raw = score_tokens(query_tokens, document_tokens)
        relevance = [to_relevance(score) for score in raw]
        tokens = len(query_tokens) + sum(map(len, document_tokens))

    def key(i: int) -> tuple[float, int]:
        return (-raw[i], i)

    count = len(documents)
    if request.top_n is not None and request.top_n < count:
        order = heapq.nsmallest(request.top_n, range(count), key=key)
    else:
        order = sorted(range(count), key=key)
    return order, relevance, tokens


class _DroppedConnection(Exception):
    """Raised after a partial response so that the ASGI server aborts the connection."""


class _DropLogFilter(logging.Filter):
    """Hide the ASGI server's error log for connections dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Reject records whose exception is a deliberate connection drop."""
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DroppedConnection)


_FILTER_LOCK = threading.Lock()


def _install_drop_log_filter() -> None:
    """Attach :class:`_DropLogFilter` to uvicorn's error logger once."""
    logger = logging.getLogger("uvicorn.error")
    with _FILTER_LOCK:
        if not any(isinstance(item, _DropLogFilter) for item in logger.filters):
            logger.addFilter(_DropLogFilter())


class _DroppedResponse(Response):
    """Send headers announcing a body, part of the body, then abort."""

    _DECLARED_LENGTH = 4096
    _PARTIAL_BODY = b'{"model":"bm25","results":[{"index":0,'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Start the response and break the connection before it completes."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(self._DECLARED_LENGTH).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._PARTIAL_BODY, "more_body": True})
        _install_drop_log_filter()
        raise _DroppedConnection("connection dropped by fault injection")


_HTML_ERROR_TEMPLATE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class _RerankService:
    """Request handling shared by all rerank routes of one application."""

    def __init__(
        self,
        config: ServerConfig,
        stats: ServerStats,
        shutdown_event: threading.Event | None,
    ) -> None:
        self._config = config
        self._stats = stats
        self._shutdown_event = shutdown_event
        self._faults = _FaultPlan(config)

    async def handle(self, request: Request) -> Response:
        """Serve one rerank request, keeping the in-flight counters right."""
        self._stats._enter()
        try:
            return await self._handle(request)
        finally:
            self._stats._leave()

    async def _handle(self, request: Request) -> Response:
        """Authenticate, apply faults, validate and score one request."""
        config = self._config
        if config.api_key is not None:
            denied = self._check_auth(request, config.api_key)
            if denied is not None:
                return denied

        fault = self._faults.draw()
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(status_code=400)
        if config.latency_ms > 0:
            await self._sleep(config.latency_ms / 1000.0)

        if fault is not None:
            self._stats._record_fault(fault)
            if fault == "drop":
                return _DroppedResponse()
            if fault == "stall":
                if await self._sleep(config.stall_seconds):
                    return _error_response(
                        503,
                        "The server is shutting down.",
                        error_type="server_error",
                        code="service_unavailable",
                    )
            elif fault == "rate_limit":
                return self._rate_limited()
            else:
                return self._error()

        try:
            rerank_request = _parse_request(body, config.max_documents)
        except _RequestError as exc:
            return _error_response(exc.status, exc.message, code=exc.code, param=exc.param)
        return self._rerank(rerank_request)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep ``seconds``; return ``True`` if cut short by a shutdown."""
        event = self._shutdown_event
        if event is None:
            await asyncio.sleep(seconds)
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if event.is_set():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(remaining, _STALL_POLL_SECONDS))

    @staticmethod
    def _check_auth(request: Request, api_key: str) -> Response | None:
        """Return a 401 response unless the request carries the right bearer token."""
        header = request.headers.get("authorization")
        challenge = {"WWW-Authenticate": "Bearer"}
        if not header:
            return _error_response(
                401,
                "Missing API key: send an 'Authorization: Bearer <key>' header.",
                error_type="authentication_error",
                code="missing_api_key",
                headers=challenge,
            )
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.encode("utf-8"), api_key.encode("utf-8")
        ):
            return _error_response(
                401,
                "Incorrect API key provided.",
                error_type="authentication_error",
                code="invalid_api_key",
                headers=challenge,
            )
        return None

    def _rate_limited(self) -> Response:
        """Build the 429 answer of the rate-limit fault."""
        retry_after = _format_seconds(self._config.retry_after)
        return _error_response(
            429,
            f"Rate limit exceeded. Please retry after {retry_after} seconds.",
            error_type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"Retry-After": retry_after},
        )

    def _error(self) -> Response:
        """Build the answer of the error fault (JSON or an HTML page)."""
        status = self._config.error_status
        phrase = _status_phrase(status)
        if self._config.error_html:
            return HTMLResponse(
                _HTML_ERROR_TEMPLATE.format(status=status, phrase=phrase), status_code=status
            )
        return _error_response(
            status,
            f"{status} {phrase}: the rerank service failed (injected fault).",
            error_type="server_error" if status >= 500 else "invalid_request_error",
            code=_status_code_name(status),
        )

    def _rerank(self, request: _RerankRequest) -> Response:
        """Score a validated request and build the 200 answer."""
        order, relevance, tokens = _rank(request, self._config.scoring)
        documents = request.documents
        results: list[dict[str, Any]] = []
        for index in order:
            item: dict[str, Any] = {"index": index, "relevance_score": relevance[index]}
            if request.return_documents:
                item["document"] = {"text": documents[index]}
            results.append(item)
        return JSONResponse(
            {
                "model": request.model if request.model is not None else self._config.scoring,
                "results": results,
                "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
            }
        )


async def _health(request: Request) -> Response:
    """Answer the liveness probe."""
    return JSONResponse({"status": "ok"})


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Render routing errors (404, 405, ...) as OpenAI-style JSON errors."""
    if not isinstance(exc, HTTPException):
        raise exc
    return _error_response(
        exc.status_code,
        exc.detail,
        code=_status_code_name(exc.status_code),
        headers=exc.headers,
    )


def create_app(
    config: ServerConfig | None = None,
    *,
    stats: ServerStats | None = None,
    shutdown_event: threading.Event | None = None,
) -> Starlette:
    """Create the rerank application.

    Routes: ``POST /v1/rerank``, ``POST /rerank`` and ``POST /v2/rerank``
    (one handler) and ``GET /health``.

    Args:
        config: Server behaviour; the defaults serve BM25 without
            authentication or faults.
        stats: Counters to update; a new :class:`ServerStats` when omitted.
            Available as ``app.state.stats`` either way.
        shutdown_event: When set by another thread, stalls and added latency
            in progress end early (a stalled request then gets a 503), so the
            server can shut down promptly.

    Returns:
        A Starlette application; ``app.state.config`` and ``app.state.stats``
        hold the configuration and counters.
    """
    config = config if config is not None else ServerConfig()
    stats = stats if stats is not None else ServerStats()
    service = _RerankService(config, stats, shutdown_event)
    routes = [Route(path, service.handle, methods=["POST"]) for path in RERANK_PATHS]
    routes.append(Route("/health", _health, methods=["GET"]))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_exception})
    app.state.config = config
    app.state.stats = stats
    return app
