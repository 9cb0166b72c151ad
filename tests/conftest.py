"""Shared fixtures: a scriptable mock rerank API, clients wired to it, and sync/async runners."""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from rerank_integrations import RerankClient, testing

T = TypeVar("T")

API_KEY = "sk-test-SECRET-0123456789"

# The API documentation's own example: seven documents, of which 0, 6 and 4 come back.
SEED_DOCUMENTS = [
    "Organic skincare for sensitive skin with aloe vera and chamomile: Imagine the soothing "
    "embrace of nature with our organic skincare range, crafted specifically for sensitive "
    "skin. Infused with the calming properties of aloe vera and chamomile, each product "
    "provides gentle nourishment and protection. Say goodbye to irritation and hello to a "
    "glowing, healthy complexion.",
    "New makeup trends focus on bold colors and innovative techniques.",
    "Bio-Hautpflege für empfindliche Haut mit Aloe Vera und Kamille.",
    "Neue Make-up-Trends setzen auf kräftige Farben und innovative Techniken.",
    "Cuidado de la piel orgánico para piel sensible con aloe vera y manzanilla: Descubre el "
    "poder de la naturaleza con nuestra línea de cuidado de la piel orgánico, diseñada "
    "especialmente para pieles sensibles. Enriquecidos con aloe vera y manzanilla, estos "
    "productos ofrecen una hidratación y protección suave. Despídete de las irritaciones y "
    "saluda a una piel radiante y saludable.",
    "Las nuevas tendencias de maquillaje se centran en colores vivos y técnicas innovadoras.",
    "针对敏感肌专门设计的天然有机护肤产品:体验由芦荟和洋甘菊提取物带来的自然呵护。"
    "我们的护肤产品特别为敏感肌设计,温和滋润,保护您的肌肤不受刺激。让您的肌肤告别不适,"
    "迎来健康光彩。",
]
SEED_QUERY = "Organic skincare products for sensitive skin"
SEED_RESPONSE: dict[str, Any] = {
    "results": [
        {
            "document": {"text": SEED_DOCUMENTS[0]},
            "index": 0,
            "relevance_score": 0.8783142566680908,
        },
        {
            "document": {"text": SEED_DOCUMENTS[6]},
            "index": 6,
            "relevance_score": 0.8783142566680908,
        },
        {
            "document": {"text": SEED_DOCUMENTS[4]},
            "index": 4,
            "relevance_score": 0.8624675869941711,
        },
    ],
    "usage": {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 815,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
}

_WORD = re.compile(r"\w+")


def keyword_score(query: str, document: str) -> float:
    """A deterministic stand-in for a model: the share of query words found in the document,
    plus a tiny length term so that scores rarely tie."""
    words = set(_WORD.findall(query.lower()))
    found = set(_WORD.findall(document.lower()))
    share = len(words & found) / len(words) if words else 0.0
    return round(share + min(len(document), 999) / 1e6, 9)


def rank_body(body: dict[str, Any]) -> dict[str, Any]:
    """Answer a generic-dialect request body as a well-behaved server would."""
    documents = body["documents"]
    results = [
        {"index": i, "relevance_score": keyword_score(body["query"], d), "document": {"text": d}}
        for i, d in enumerate(documents)
    ]
    results.sort(key=lambda r: (-r["relevance_score"], r["index"]))
    if body.get("top_n") is not None:
        results = results[: body["top_n"]]
    return {"results": results, "usage": {"total_tokens": 10 * len(documents)}}


Reply = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


class MockAPI:
    """An ``httpx.MockTransport`` handler: answers like a good server unless replies are
    queued with :meth:`queue`; records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.replies: deque[Reply] = deque()

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order (a response, an exception to raise,
        or a function of the request)."""
        self.replies.extend(replies)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The decoded JSON bodies of the requests received so far."""
        return [json.loads(request.content) for request in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.replies:
            reply = self.replies.popleft()
            if isinstance(reply, BaseException):
                raise reply
            if isinstance(reply, httpx.Response):
                return reply
            return reply(request)
        return httpx.Response(200, json=rank_body(json.loads(request.content)))


@pytest.fixture
def mock_api() -> MockAPI:
    """A fresh mock rerank API."""
    return MockAPI()


#: The waits a client asked for while a test ran; none was slept.
Sleeps = list[float]


@pytest.fixture(autouse=True)
def sleeps() -> Iterator[Sleeps]:
    """Every test runs under the package's testing switch: waits are recorded, not slept."""
    with testing.no_waits() as waits:
        yield waits


@pytest.fixture
def make_client(mock_api: MockAPI, sleeps: Sleeps) -> Iterator[Callable[..., RerankClient]]:
    """Build ``RerankClient``s that talk to ``mock_api``."""
    clients: list[RerankClient] = []

    def factory(**kwargs: Any) -> RerankClient:
        kwargs.setdefault("base_url", "https://rerank.test/v1")
        kwargs.setdefault("api_key", API_KEY)
        transport = httpx.MockTransport(mock_api)
        client = RerankClient(
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **kwargs,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Runs a test once on the sync path and once on the async path."""
    return str(request.param)


def run_mode(
    mode: str, sync_call: Callable[[], T], async_call: Callable[[], Coroutine[Any, Any, T]]
) -> T:
    """Call ``sync_call()`` or run ``async_call()`` in a fresh event loop, by ``mode``."""
    if mode == "sync":
        return sync_call()
    return asyncio.run(async_call())


# -- a scriptable HTTP server on 127.0.0.1, for wire tests -------------------------------

DROP = "drop"


class ScriptedServer:
    """A real HTTP/1.1 server on a loopback port answering the generic dialect.

    Queue replies with :meth:`queue`: ``(status, headers, body)`` tuples, :data:`DROP` to
    close the connection without answering, or ``("stall", seconds)`` to answer late.
    Without a queued reply it ranks like :func:`rank_body`, after ``delay`` seconds.
    """

    def __init__(self) -> None:
        import socket
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.replies: deque[Any] = deque()
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(200, {"Content-Type": "application/json"}, b'{"status":"ok"}')

            def do_POST(self) -> None:
                import time

                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with server._lock:
                    server.bodies.append(json.loads(raw))
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    reply = server.replies.popleft() if server.replies else None
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if reply == DROP:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if isinstance(reply, tuple) and reply[0] == "stall":
                        time.sleep(reply[1])
                        reply = None
                    if reply is None:
                        time.sleep(server.delay)
                        body = json.dumps(rank_body(json.loads(raw))).encode()
                        self._send(200, {"Content-Type": "application/json"}, body)
                    else:
                        status, headers, body = reply
                        self._send(status, headers, body)
                except OSError:
                    self.close_connection = True
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"

    def queue(self, *replies: Any) -> None:
        """Answer the next requests with these, in order."""
        self.replies.extend(replies)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A fresh :class:`ScriptedServer` on 127.0.0.1."""
    server = ScriptedServer()
    yield server
    server.close()
