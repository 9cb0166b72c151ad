"""The Starlette application: one rerank handler behind three paths, and a health probe.

A rerank request goes through, in this order:

1. it is counted (:class:`ServerStats`);
2. with ``max_request_bytes``, the body is read and a larger one refused, as the proxy in
   front of a gateway refuses it before the application sees it;
3. the key is checked when one is set: a 401 draws no fault;
4. with ``rate_limit_rpm``, a request past the rate gets a 429 and draws no fault;
5. one draw picks the request's fault, if any;
6. the body is read and ``latency_ms`` waited;
7. the fault is applied (a stall waits, then serves normally);
8. the body is validated (4xx in the OpenAI envelope), held to the token limits (see
   :mod:`._limits`) and scored.

Faults come before validation, so even a malformed request can meet one, and the fault
sequence depends only on the order in which authenticated requests within the rate arrive.
"""

from __future__ import annotations

import asyncio
import heapq
import hmac
import threading
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._bm25 import analyze, instructed_scores, to_relevance
from ._config import ServerConfig
from ._faults import DroppedResponse, FaultPlan, error_fault, rate_limit_fault
from ._limits import (
    DocumentTooLong,
    RateLimiter,
    fit_documents,
    rate_limited,
    read_body,
    request_entity_too_large,
)
from ._stats import ServerStats
from ._wire import (
    RequestError,
    RerankRequest,
    error_response,
    parse_request,
    status_code_name,
)

__all__ = ["RERANK_PATHS", "create_app"]

RERANK_PATHS: tuple[str, ...] = ("/v1/rerank", "/rerank", "/v2/rerank")
"""The paths that take ``POST`` rerank requests, all served alike."""

# How often a sleep looks at the shutdown event, so stop() is never kept waiting long.
_SHUTDOWN_POLL_SECONDS = 0.05


def _estimate_tokens(query: str, documents: Sequence[str]) -> int:
    """About 4 characters a token, the query once per document: ``"cheap"`` scoring with no
    token limit does not count tokens, so its cost stays constant per document."""
    characters = len(query) * len(documents) + sum(map(len, documents))
    return (characters + 3) // 4


def _cheap_score(index: int, text: str) -> float:
    """A score in constant time from the position and length alone."""
    mixed = (index * 2654435761 + len(text) * 40503 + 12345) % 1000003
    return mixed / 1000003


def _rank(
    query: str, documents: Sequence[str], top_n: int | None, scoring: str
) -> tuple[list[int], list[float]]:
    """The chosen document indexes best first, and every document's relevance."""
    if scoring == "cheap":
        raw = [_cheap_score(i, text) for i, text in enumerate(documents)]
        relevance = raw
    else:
        raw = instructed_scores(query, [analyze(text) for text in documents])
        relevance = [to_relevance(score) for score in raw]

    def key(i: int) -> tuple[float, int]:
        return (-raw[i], i)

    count = len(documents)
    if top_n is not None and top_n < count:
        order = heapq.nsmallest(top_n, range(count), key=key)
    else:
        order = sorted(range(count), key=key)
    return order, relevance


def _check_auth(request: Request, api_key: str) -> Response | None:
    """A 401 unless the request carries ``Bearer <api_key>``; compared in constant time."""
    header = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": "Bearer"}
    if not header:
        return error_response(
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
        return error_response(
            401,
            "Incorrect API key provided.",
            error_type="authentication_error",
            code="invalid_api_key",
            headers=challenge,
        )
    return None


class _RerankService:
    """The rerank handler of one application, with its fault draws and counters."""

    def __init__(
        self,
        config: ServerConfig,
        stats: ServerStats,
        shutdown_event: threading.Event | None,
    ) -> None:
        self._config = config
        self._stats = stats
        self._shutdown_event = shutdown_event
        self._faults = FaultPlan(config)
        rpm = config.rate_limit_rpm
        self._limiter = RateLimiter(rpm) if rpm is not None else None

    async def handle(self, request: Request) -> Response:
        """Serve one rerank request."""
        self._stats._enter()
        try:
            return await self._handle(request)
        finally:
            self._stats._leave()

    async def _handle(self, request: Request) -> Response:
        config = self._config
        body: bytes | None = None
        if config.max_request_bytes is not None:
            try:
                body, too_large = await read_body(request, config.max_request_bytes)
            except ClientDisconnect:
                return Response(status_code=400)
            if too_large:
                self._stats._record_refusal("request_bytes")
                return request_entity_too_large()
        if config.api_key is not None:
            denied = _check_auth(request, config.api_key)
            if denied is not None:
                return denied
        if self._limiter is not None:
            wait = self._limiter.acquire()
            if wait > 0:
                self._stats._record_rate_limited()
                return rate_limited(self._limiter.requests_per_minute, wait)

        fault = self._faults.draw()
        if body is None:
            try:
                body = await request.body()
            except ClientDisconnect:
                return Response(status_code=400)
        if config.latency_ms > 0:
            await self._sleep(config.latency_ms / 1000.0)

        if fault is not None:
            self._stats._record_fault(fault)
            if fault == "drop":
                return DroppedResponse()
            if fault == "stall":
                if await self._sleep(config.stall_seconds):
                    return error_response(
                        503,
                        "The server is shutting down.",
                        error_type="server_error",
                        code="service_unavailable",
                    )
            elif fault == "rate_limit":
                return rate_limit_fault(config)
            else:
                return error_fault(config)

        try:
            rerank_request = parse_request(body, config.max_documents)
        except RequestError as exc:
            if exc.code == "too_many_documents":
                self._stats._record_refusal("documents")
            return exc.response()
        return self._rerank(rerank_request)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep ``seconds``; ``True`` if a shutdown cut it short."""
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
            await asyncio.sleep(min(remaining, _SHUTDOWN_POLL_SECONDS))

    def _rerank(self, request: RerankRequest) -> Response:
        config = self._config
        documents: Sequence[str] = request.documents
        if (
            config.scoring == "cheap"
            and config.max_tokens_per_document is None
            and config.max_tokens_per_request is None
        ):
            tokens = _estimate_tokens(request.query, documents)
        else:
            try:
                fitted = fit_documents(request, config)
            except DocumentTooLong as exc:
                self._stats._record_refusal("document_tokens")
                return exc.response()
            except RequestError as exc:
                self._stats._record_refusal("request_tokens")
                return exc.response()
            if fitted.truncated:
                self._stats._record_truncated(fitted.truncated)
            documents, tokens = fitted.documents, fitted.tokens
        order, relevance = _rank(request.query, documents, request.top_n, config.scoring)
        documents = request.documents  # the answer shows each document whole, as it was sent
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
    return JSONResponse({"status": "ok"})


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Routing errors (404, 405) in the same JSON envelope as every other error."""
    if not isinstance(exc, HTTPException):
        raise exc
    return error_response(
        exc.status_code,
        exc.detail,
        code=status_code_name(exc.status_code),
        headers=exc.headers,
    )


def create_app(
    config: ServerConfig | None = None,
    *,
    stats: ServerStats | None = None,
    shutdown_event: threading.Event | None = None,
) -> Starlette:
    """The rerank application: ``POST`` on :data:`RERANK_PATHS` and ``GET /health``.

    Args:
        config: how it behaves; by default BM25 with no key, limits or faults.
        stats: the counters to update; new ones by default. Either way they are
            ``app.state.stats``, beside ``app.state.config``.
        shutdown_event: once set, stalls and latency in progress end at once (a stalled
            request then gets a 503), so a server in a thread can stop promptly.
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
