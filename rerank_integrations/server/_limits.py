"""Limits, refused the way the services that have them refuse.

Each answer copies a real one, so a client tested here meets what it will meet in production:

- a body over ``max_request_bytes``: nginx's own 413 page, HTML, as the proxy in front of a
  gateway answers before the application sees anything;
- a document over ``max_tokens_per_document`` (query included): text-embeddings-inference's
  413, ``{"error": "Input validation error: `inputs` must have less than 512 tokens.
  Given: 534", "error_type": "Validation"}``, or, when truncating, only the document's first
  tokens scored, as a model reads only its first 512;
- a request over ``max_tokens_per_request`` (the query counted once per document, after any
  truncation): a 400 in the OpenAI envelope worded as Voyage words it, "the max allowed
  tokens per submitted batch is N";
- a request past ``rate_limit_rpm``: OpenAI's 429, with ``Retry-After`` (whole seconds, as
  HTTP has it), ``retry-after-ms`` (exact) and its ``x-ratelimit-*`` headers.

A per-document refusal is a 413, as TEI's is, although halving the batch cannot help it: a
client must tell it from a batch that is too big by its message.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from ._bm25 import count_tokens, truncate_tokens
from ._config import ServerConfig
from ._wire import RequestError, RerankRequest, error_response, format_seconds, html_error_page

__all__ = [
    "DocumentTooLong",
    "Fitted",
    "RateLimiter",
    "fit_documents",
    "rate_limited",
    "read_body",
    "request_entity_too_large",
]


async def read_body(request: Request, max_bytes: int) -> tuple[bytes, bool]:
    """The request body, and whether it is over ``max_bytes``.

    An oversized body is still read to its end, and thrown away as it comes: a server that
    answered before the client finished sending would reset the connection under it, and
    the client would see a broken pipe instead of the 413.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= max_bytes:
            chunks.append(chunk)
        else:
            chunks.clear()
    return b"".join(chunks), size > max_bytes


def request_entity_too_large() -> HTMLResponse:
    """nginx's answer to a body over ``client_max_body_size``."""
    return html_error_page(413, "Request Entity Too Large")


class DocumentTooLong(Exception):
    """A document, with the query, is over ``max_tokens_per_document`` and may not be cut."""

    def __init__(self, limit: int, given: int) -> None:
        super().__init__(f"`inputs` must have less than {limit} tokens. Given: {given}")
        self.limit = limit
        self.given = given

    def response(self) -> JSONResponse:
        """TEI's answer: 413, its message and its body shape."""
        return JSONResponse(
            {"error": f"Input validation error: {self}", "error_type": "Validation"},
            status_code=413,
        )


@dataclass(frozen=True)
class Fitted:
    """A request's documents as the server scores them.

    Attributes:
        documents: the texts to score: the documents, too-long ones cut to fit.
        tokens: the request's tokens, the query counted once per document.
        truncated: how many documents were cut.
    """

    documents: Sequence[str]
    tokens: int
    truncated: int


def fit_documents(request: RerankRequest, config: ServerConfig) -> Fitted:
    """Hold ``request`` to the token limits of ``config``.

    Raises:
        DocumentTooLong: a document with the query is over ``max_tokens_per_document`` and
            neither the request's ``truncate`` nor ``auto_truncate`` allows cutting it.
        RequestError: the request is over ``max_tokens_per_request`` (400).
    """
    query_tokens = count_tokens(request.query)
    documents: Sequence[str] = request.documents
    sizes = [count_tokens(text) for text in documents]
    truncated = 0
    limit = config.max_tokens_per_document
    if limit is not None:
        truncate = config.auto_truncate if request.truncate is None else request.truncate
        room = max(limit - query_tokens, 0)  # the query is never cut
        fitted: list[str] = []
        for text, size in zip(documents, sizes, strict=True):
            if query_tokens + size <= limit:
                fitted.append(text)
                continue
            if not truncate:
                raise DocumentTooLong(limit, query_tokens + size)
            fitted.append(truncate_tokens(text, room))
            truncated += 1
        documents = fitted
        sizes = [min(size, room) for size in sizes]
    tokens = query_tokens * len(sizes) + sum(sizes)
    budget = config.max_tokens_per_request
    if budget is not None and tokens > budget:
        raise RequestError(
            f"Batch too large: the max allowed tokens per submitted batch is {budget}. "
            f"Your batch has {tokens} tokens (the query counted once per document). "
            "Please lower the number of tokens in the batch.",
            code="too_many_tokens_in_batch",
            param="documents",
        )
    return Fitted(documents, tokens, truncated)


_EPSILON = 1e-9


class RateLimiter:
    """Requests a minute, spread over the minute: a token bucket that holds one second's
    worth of requests (at least one) and refills continuously.

    600 a minute thus means about 10 a second from the start, never 600 at once, which is
    how quota-enforcing APIs behave and what a client's own limiter must be tested against.
    """

    def __init__(
        self, requests_per_minute: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self._rate = requests_per_minute / 60.0  # requests a second
        self._capacity = max(1.0, self._rate)
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """``0.0`` when a request may go now (it takes its place), else the seconds until one
        may: the exact wait, so a client that honours it gets in on its next try."""
        with self._lock:
            now = self._clock()
            elapsed = max(now - self._updated, 0.0)
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._updated = now
            if self._tokens >= 1.0 - _EPSILON:  # refills summed in floats fall a hair short
                self._tokens = max(self._tokens - 1.0, 0.0)
                return 0.0
            return (1.0 - self._tokens) / self._rate


def rate_limited(requests_per_minute: int, wait: float) -> JSONResponse:
    """OpenAI's 429 for a requests-per-minute limit, asking for ``wait`` seconds."""
    millis = max(1, math.ceil(wait * 1000))
    seconds = format_seconds(millis / 1000)
    return error_response(
        429,
        f"Rate limit reached on requests per min (RPM): Limit {requests_per_minute}, "
        f"Requested 1. Please try again in {seconds}s.",
        error_type="requests",
        code="rate_limit_exceeded",
        headers={
            "Retry-After": str(math.ceil(millis / 1000)),
            "retry-after-ms": str(millis),
            "x-ratelimit-limit-requests": str(requests_per_minute),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{seconds}s",
        },
    )
