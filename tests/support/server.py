"""A real rerank server on 127.0.0.1 for wire tests: one dialect, scriptable, recording.

Without scripted replies it behaves like the chosen service (see :mod:`support.services`).
Queued replies (:meth:`ScriptedServer.queue`) answer the next requests instead, one each:

- :class:`Reply` (or :func:`json_reply`): a fixed status, headers and body.
- :data:`DROP`: close the connection without answering.
- :class:`Stall`: wait, then answer as the service does.
- :class:`TrickleHeaders` / :class:`TrickleBody`: the service's answer, one byte at a time
  (the whole answer, or the body after headers sent at once), hanging up after ``limit``
  seconds whether or not it is complete.
- :class:`HugeBody`: the service's answer padded with JSON whitespace to ``size`` bytes,
  streamed without ever being held in memory whole.

Every wait ends as soon as the server closes, so closing never hangs on a stalled answer.

The cloud dialects check more than a key (see :mod:`support.cloud_services`): ``watsonx``
serves IAM's token endpoint as well (:attr:`ScriptedServer.token_url`) and takes only the
tokens it issued, ``bedrock`` checks each request's SigV4 signature against ``aws_secrets``.
"""

from __future__ import annotations

import contextlib
import http
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .services import SERVICES
from .wire import Asked, Reject, limit_message, routed

# -- reply kinds --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A fixed answer, sent at once."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_reply(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
    """A :class:`Reply` whose body is ``body`` as JSON."""
    return Reply(
        status,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


DROP = Drop()


@dataclass(frozen=True)
class Stall:
    """Wait ``seconds``, then answer as the service does."""

    seconds: float


@dataclass(frozen=True)
class TrickleHeaders:
    """Send the service's whole answer, status line first, one byte every ``interval``
    seconds; hang up after ``limit`` seconds."""

    interval: float
    limit: float


@dataclass(frozen=True)
class TrickleBody:
    """Send the headers at once (with the full ``Content-Length``), then the body one byte
    every ``interval`` seconds; hang up after ``limit`` seconds."""

    interval: float
    limit: float


@dataclass(frozen=True)
class HugeBody:
    """Answer as the service does, padded with spaces to ``size`` bytes (a valid JSON
    document of that size; an answer already larger is sent as it is). With ``chunked`` the
    size is not announced: the body goes out in chunks, without ``Content-Length``."""

    size: int
    chunked: bool = False


ScriptedReply = Reply | Drop | Stall | TrickleHeaders | TrickleBody | HugeBody
_KINDS = (Reply, Drop, Stall, TrickleHeaders, TrickleBody, HugeBody)
_CHUNK = 64 * 1024


@dataclass
class Received:
    """One request as it arrived, and how it was answered.

    Attributes:
        method, path: the request line (``path`` with its query string, if any).
        headers: the request headers, names in lower case.
        raw: the request body as sent.
        body: ``raw`` decoded as JSON (``None`` when it is not JSON).
        asked: what the request asked for in the dialect's terms, once the service read it.
        reply: what answered it: ``"service"``, ``"always"`` or a reply kind's class name.
        sent: bytes of the answer written to the connection, head included.
        complete: whether the whole answer was written.
    """

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any
    asked: Asked | None = None
    reply: str = "service"
    sent: int = 0
    complete: bool = False


class _Hangup(Exception):
    """The answer stops here and the connection closes."""


class ScriptedServer:
    """A threaded HTTP/1.1 server on a free 127.0.0.1 port, answering as ``dialect``.

    Args:
        dialect: the service it imitates, a key of :data:`~support.services.SERVICES`.
        api_key: the key it wants, in the dialect's auth header (``watsonx``: the IBM Cloud
            API key its token endpoint exchanges; ``vertex``: the access token it takes);
            ``None`` takes any request (settable).
        limit: the most documents it takes in one request; ``None`` is the service's own.
        delay: seconds to wait before each answer of the service's own (settable).
        routes: the paths it answers (default: the service's own); others get a 404.
        always: a reply for every request no queued reply answers, instead of the service's
            own answer (settable).
        aws_secrets: ``bedrock``: the secret key of each AWS access key it knows; ``None``
            takes any request, signed or not.
        oci_keys: ``oci``: the public key of each ``keyId`` it knows; ``None`` takes any
            request, signed or not.
        page_size: ``bedrock``: the results one answer holds, the rest behind a page token;
            ``None``: all of them (settable).
        token_lifetime: ``expires_in`` of the tokens its token endpoint issues (settable).

    Attributes:
        base_url: ``http://127.0.0.1:<port>``.
        received: every request but those to the token endpoint, in arrival order.
        in_flight, max_in_flight: requests being answered now, and the most at once.
        token_requests: every request to the token endpoint, in arrival order. It is served
            apart: only replies queued with :meth:`queue_token` answer it (not ``always``,
            nor those of :meth:`queue`), and it is not counted in flight.
        tokens: the access tokens the rerank routes take (``watsonx``); the token endpoint
            adds each one it issues.
    """

    def __init__(
        self,
        dialect: str = "generic",
        *,
        api_key: str | None = None,
        limit: int | None = None,
        delay: float = 0.0,
        always: Reply | None = None,
        routes: tuple[str, ...] | None = None,
        aws_secrets: Mapping[str, str] | None = None,
        oci_keys: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        token_lifetime: int = 3600,
    ) -> None:
        if dialect not in SERVICES:
            raise ValueError(f"unknown dialect {dialect!r}: one of {', '.join(sorted(SERVICES))}")
        self.dialect = dialect
        self.service = SERVICES[dialect]
        self.routes = routes or self.service.paths
        self.api_key = api_key
        self.limit = limit or self.service.limit
        self.delay = delay
        self.always = always
        self.aws_secrets = dict(aws_secrets) if aws_secrets is not None else None
        self.oci_keys = dict(oci_keys) if oci_keys is not None else None
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.tokens: set[str] = set()
        self.token_requests: list[Received] = []
        self.received: list[Received] = []
        self.replies: deque[ScriptedReply] = deque()
        self.token_replies: deque[ScriptedReply] = deque()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._httpd = _HTTPServer(self, _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="scripted-server", daemon=True
        )
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- scripting and reading the record ------------------------------------------------

    def queue(self, *replies: ScriptedReply) -> None:
        """Answer the next requests with these, in order, one request each."""
        for reply in replies:
            if not isinstance(reply, _KINDS):
                raise TypeError(f"not a reply kind: {reply!r}")
        with self._lock:
            self.replies.extend(replies)

    def queue_token(self, *replies: ScriptedReply) -> None:
        """Answer the next token requests with these (a ``Stall`` or a trickle sends the
        token endpoint's own answer), in order, one request each."""
        for reply in replies:
            if not isinstance(reply, _KINDS):
                raise TypeError(f"not a reply kind: {reply!r}")
        with self._lock:
            self.token_replies.extend(replies)

    @property
    def endpoint(self) -> str:
        """The URL of the service's usual rerank path."""
        return self.base_url + self.routes[0]

    @property
    def token_url(self) -> str:
        """The URL of the token endpoint the service serves beside its rerank routes."""
        if self.service.token_endpoint is None:
            raise AttributeError(f"{self.dialect} serves no token endpoint")
        return self.base_url + self.service.token_endpoint.path

    def revoke_tokens(self) -> None:
        """Refuse every token issued so far (as after an expiry or a revocation)."""
        with self._lock:
            self.tokens.clear()

    @property
    def bodies(self) -> list[Any]:
        """The decoded bodies of the POST requests received so far."""
        return [r.body for r in self.received if r.method == "POST"]

    @property
    def headers(self) -> list[dict[str, str]]:
        """The headers of the POST requests received so far."""
        return [r.headers for r in self.received if r.method == "POST"]

    @property
    def paths(self) -> list[str]:
        """The paths of the POST requests received so far."""
        return [r.path for r in self.received if r.method == "POST"]

    def reset(self) -> None:
        """Forget the requests received (token requests too) and the replies still queued."""
        with self._lock:
            self.received.clear()
            self.token_requests.clear()
            self.replies.clear()
            self.token_replies.clear()
            self.max_in_flight = self.in_flight

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving: end every wait, hang up every connection, release the port."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._httpd.shutdown()  # no connection is accepted after this returns
        with self._lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join(timeout=5)
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ScriptedServer({self.dialect!r}, base_url={self.base_url!r})"

    # -- answering -----------------------------------------------------------------------

    def _arrived(self, record: Received) -> ScriptedReply | None:
        with self._lock:
            self.received.append(record)
            reply = self.replies.popleft() if self.replies else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return reply

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or hang up at once if the server closes meanwhile."""
        if seconds > 0 and self._closing.wait(seconds):
            raise _Hangup

    def _service_answer(self, record: Received) -> Reply:
        """The service's own answer to ``record``: a ranking or its error envelope."""
        self._wait(self.delay)
        try:
            if record.body is None:
                raise Reject(400, "the body is not JSON")
            route = record.path.partition("?")[0]  # a query string does not change the route
            if not routed(route, self.routes):
                raise Reject(404, f"no route {route}", "not_found")
            self.service.check_auth(record, self)
            if not record.headers.get("content-type", "").startswith("application/json"):
                raise Reject(415, "Content-Type must be application/json")
            asked = self.service.read(record.body, route)
            asked.page_size = self.page_size
            record.asked = asked
            self._check_size(asked, record.raw)
            status, body = 200, json.dumps(self.service.answer(asked)).encode()
        except Reject as reject:
            status, body = reject.status, self.service.error(reject)
        return Reply(status, body, {"Content-Type": "application/json"})

    def _check_size(self, asked: Asked, raw: bytes) -> None:
        """Refuse more documents, longer documents or a larger body than the service takes."""
        if len(asked.documents) > self.limit:
            raise Reject(self.service.limit_status, limit_message(len(asked.documents), self.limit))
        most = self.service.max_characters
        if most is not None and any(len(text) > most for text in asked.documents):
            raise Reject(400, f"each document must have at most {most} characters")
        largest = self.service.max_bytes
        if largest is not None and len(raw) > largest:
            raise Reject(413, f"request body over {largest} bytes")

    def _token_answer(self, record: Received) -> Reply:
        """The token endpoint's answer to ``record``."""
        endpoint = self.service.token_endpoint
        assert endpoint is not None
        status, body = endpoint.answer(record, self)
        return Reply(status, body, {"Content-Type": "application/json"})


def _head(status: int, headers: Mapping[str, str], length: int | None) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _padded(body: bytes, padding: int, chunked: bool) -> Iterator[bytes]:
    """``body`` and then ``padding`` spaces in pieces of at most 64 KiB, framed as chunks
    (and ended by the last, empty chunk) when ``chunked``."""

    def frame(piece: bytes) -> bytes:
        return f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece

    yield frame(body) if body else b""
    blank = b" " * _CHUNK
    while padding:
        piece = blank[: min(padding, _CHUNK)]
        padding -= len(piece)
        yield frame(piece)
    if chunked:
        yield b"0\r\n\r\n"


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # Trickled bytes go out one by one, not held back for an acknowledgement.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            self._serve("GET", b"")

        def do_POST(self) -> None:
            self._serve("POST", self.rfile.read(int(self.headers.get("Content-Length", "0"))))

        def _serve(self, method: str, raw: bytes) -> None:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            headers = {name.lower(): value for name, value in self.headers.items()}
            record = Received(method, self.path, headers, raw, body)
            if method == "GET":
                with server._lock:
                    server.received.append(record)
                self._send(record, json_reply(200, {"status": "ok"}))
                return
            endpoint = server.service.token_endpoint
            if endpoint is not None and self.path.partition("?")[0] == endpoint.path:
                with server._lock:
                    server.token_requests.append(record)
                    queued = server.token_replies
                    reply = queued.popleft() if queued else None
                try:
                    self._answer(record, reply, server._token_answer, None)
                except (_Hangup, OSError):
                    self._hang_up()
                return
            reply = server._arrived(record)
            try:
                self._answer(record, reply, server._service_answer, server.always)
            except (_Hangup, OSError):
                self._hang_up()
            finally:
                server._done()

        def _answer(
            self,
            record: Received,
            reply: ScriptedReply | None,
            own: Callable[[Received], Reply],
            always: Reply | None,
        ) -> None:
            if reply is not None:
                record.reply = type(reply).__name__
            elif always is not None:
                record.reply, reply = "always", always
            if isinstance(reply, Drop):
                raise _Hangup
            if isinstance(reply, Reply):
                self._send(record, reply)
                return
            if isinstance(reply, Stall):
                server._wait(reply.seconds)
            answer = own(record)
            if isinstance(reply, TrickleHeaders):
                whole = _head(answer.status, answer.headers, len(answer.body)) + answer.body
                self._trickle(record, whole, reply.interval, reply.limit)
            elif isinstance(reply, TrickleBody):
                self._write(record, _head(answer.status, answer.headers, len(answer.body)))
                self._trickle(record, answer.body, reply.interval, reply.limit)
            elif isinstance(reply, HugeBody):
                self._stream_padded(record, answer, reply)
            else:
                self._send(record, answer)

        def _write(self, record: Received, data: bytes, last: bool = False) -> None:
            # The record is updated first, so that it is never behind what the client saw.
            record.sent += len(data)
            record.complete = last
            try:
                self.wfile.write(data)
            except OSError:
                record.sent -= len(data)
                record.complete = False
                raise

        def _send(self, record: Received, reply: Reply) -> None:
            head = _head(reply.status, reply.headers, len(reply.body))
            self._write(record, head + reply.body, last=True)

        def _trickle(self, record: Received, data: bytes, interval: float, limit: float) -> None:
            stop = time.monotonic() + limit
            for offset in range(len(data)):
                left = stop - time.monotonic()
                if left <= 0:
                    raise _Hangup
                self._write(record, data[offset : offset + 1], last=offset == len(data) - 1)
                server._wait(min(interval, left))

        def _stream_padded(self, record: Received, answer: Reply, reply: HugeBody) -> None:
            padding = max(reply.size - len(answer.body), 0)
            length = None if reply.chunked else len(answer.body) + padding
            pieces = _padded(answer.body, padding, reply.chunked)
            pending = _head(answer.status, answer.headers, length) + next(pieces)
            for piece in pieces:
                if server._closing.is_set():
                    raise _Hangup
                self._write(record, pending)
                pending = piece
            self._write(record, pending, last=True)

        def _hang_up(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client is gone already
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


class _HTTPServer(ThreadingHTTPServer):
    """Serves each connection in its own thread, and keeps track of them for a clean close."""

    daemon_threads = True
    request_queue_size = 128  # many concurrent calls connect at once

    def __init__(self, owner: ScriptedServer, handler: type[BaseHTTPRequestHandler]) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self.owner._lock:
            self.owner._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self.owner._lock:
            self.owner._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that hung up: part of the tests, not a fault
        super().handle_error(request, client_address)
