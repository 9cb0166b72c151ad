"""Sending one attempt within its time and size: the whole answer by the attempt's deadline,
and no more bytes than the client accepts.

httpx's timeouts bound each socket operation, so a server that sends one byte every 0.3 s
holds a call for as long as it likes. The async client bounds a whole attempt with
``_timeouts.within``. The sync client's own pool (:class:`DeadlineTransport`) cuts every
connect, read and write to the time left before the attempt's deadline, which the sending
thread sets with :func:`attempt_deadline`; for any pool, :class:`BodyReader` also checks the
clock and the size between the chunks of a body.
"""

from __future__ import annotations

import threading
import time
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpcore
import httpx

from ._exceptions import ResponseFormatError

__all__ = ["ERROR_BODY_BYTES", "BodyReader", "DeadlineTransport", "attempt_deadline"]

#: Bytes of an error answer that are read: enough for any message, however large the page.
ERROR_BODY_BYTES = 64 * 1024

_attempt = threading.local()


@contextmanager
def attempt_deadline(expires: float | None) -> Iterator[None]:
    """Within the block, this thread's reads, writes and connects end by ``expires``
    (``time.monotonic()``), on the pools of :class:`DeadlineTransport`."""
    previous = getattr(_attempt, "expires", None)
    _attempt.expires = expires
    try:
        yield
    finally:
        _attempt.expires = previous


def _cut(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's attempt; past it, ``error``."""
    expires: float | None = getattr(_attempt, "expires", None)
    if expires is None:
        return timeout
    left = expires - time.monotonic()
    if left <= 0:
        raise error("the attempt's time ran out")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _cut(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _cut(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        cut = _cut(timeout, httpcore.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, cut))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        cut = _cut(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_tcp(host, port, cut, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        cut = _cut(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, cut, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


#: httpcore's errors and the httpx errors they stand for, most specific first.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, mapped in _ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc), request=request) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, request: httpx.Request, stream: Iterable[bytes]) -> None:
        self._request = request
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors(self._request):
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """An HTTP/1.1 connection pool whose sockets honour :func:`attempt_deadline`.

    TLS is verified as httpx verifies it by default.
    """

    def __init__(self) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_Backend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors(request):
            answer = self._pool.handle_request(core_request)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(request, answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class BodyReader:
    """Collects an answer's body, refusing one larger than ``max_bytes`` while it arrives.

    An error answer is cut at :data:`ERROR_BODY_BYTES` instead: its start is all a message
    needs. ``expires`` (``time.monotonic()``) bounds the reading, checked between chunks.
    """

    def __init__(
        self, response: httpx.Response, max_bytes: int, expires: float | None, url: str
    ) -> None:
        self._error = not response.is_success
        self._limit = ERROR_BODY_BYTES if self._error else max_bytes
        self._expires = expires
        self._url = url
        self._chunks: list[bytes] = []
        self._size = 0
        self._request = response.request
        declared = response.headers.get("content-length", "")
        if not self._error and declared.isdigit() and int(declared) > max_bytes:
            raise self._too_large(f"declares {int(declared):,} bytes")

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; ``False`` once an error answer has given enough."""
        if self._expires is not None and time.monotonic() > self._expires:
            raise httpx.ReadTimeout("the attempt's time ran out", request=self._request)
        room = self._limit - self._size
        if len(chunk) > room:
            if self._error:
                self._chunks.append(chunk[:room])
                self._size = self._limit
                return False
            raise self._too_large(f"sent more than {self._limit:,} bytes")
        self._chunks.append(chunk)
        self._size += len(chunk)
        return True

    def content(self) -> bytes:
        """The body as received (an error answer's start)."""
        return b"".join(self._chunks)

    def _too_large(self, what: str) -> ResponseFormatError:
        return ResponseFormatError(
            f"invalid rerank answer from {self._url}: the answer {what}, more than "
            f"max_response_bytes={self._limit:,}; raise it if such answers are expected"
        )
