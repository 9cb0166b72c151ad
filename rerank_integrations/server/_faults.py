"""Fault injection: what a flaky network or an overloaded API does to a client.

One seeded draw per request picks at most one fault, so a test that fixes the seed and the
order of its requests gets the same faults on every run.
"""

from __future__ import annotations

import logging
import random
import threading

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ._config import FAULT_KINDS, FAULT_RATE_FIELDS, ServerConfig
from ._wire import (
    error_response,
    format_seconds,
    html_error_page,
    status_code_name,
    status_phrase,
)

__all__ = ["DroppedResponse", "FaultPlan", "error_fault", "rate_limit_fault"]


class FaultPlan:
    """The fault draws of one application: one ``random()`` per rerank request."""

    def __init__(self, config: ServerConfig) -> None:
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        thresholds: list[tuple[float, str]] = []
        upper = 0.0
        for kind in FAULT_KINDS:
            rate = float(getattr(config, FAULT_RATE_FIELDS[kind]))
            if rate > 0:
                upper += rate
                thresholds.append((upper, kind))
        self._thresholds = thresholds

    def draw(self) -> str | None:
        """The next request's fault, or ``None``."""
        with self._lock:
            value = self._rng.random()
        for upper, kind in self._thresholds:
            if value < upper:
                return kind
        return None


class _DroppedConnection(Exception):
    """Raised after a partial answer, so the ASGI server aborts the connection."""


class _DropLogFilter(logging.Filter):
    """Keeps uvicorn from logging a traceback for each connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DroppedConnection)


_FILTER_LOCK = threading.Lock()


def _install_drop_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    with _FILTER_LOCK:
        if not any(isinstance(item, _DropLogFilter) for item in logger.filters):
            logger.addFilter(_DropLogFilter())


class DroppedResponse(Response):
    """Announces a 4 KiB JSON body, sends a few bytes of it and breaks the connection: the
    client sees a 200 whose body never completes, as when a proxy or the network fails."""

    _DECLARED_LENGTH = 4096
    _PARTIAL_BODY = b'{"model":"bm25","results":[{"index":0,'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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


def rate_limit_fault(config: ServerConfig) -> JSONResponse:
    """The rate-limit fault: a 429 asking for ``config.retry_after`` seconds."""
    retry_after = format_seconds(config.retry_after)
    return error_response(
        429,
        f"Rate limit exceeded. Please retry after {retry_after} seconds.",
        error_type="rate_limit_error",
        code="rate_limit_exceeded",
        headers={"Retry-After": retry_after},
    )


def error_fault(config: ServerConfig) -> Response:
    """The error fault: ``config.error_status`` as JSON, or as nginx's page with
    ``config.error_html``, the answer a client gets when the proxy in front fails."""
    status = config.error_status
    if config.error_html:
        return html_error_page(status)
    return error_response(
        status,
        f"{status} {status_phrase(status)}: the rerank service failed (injected fault).",
        error_type="server_error" if status >= 500 else "invalid_request_error",
        code=status_code_name(status),
    )
