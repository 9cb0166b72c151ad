"""Fixtures of the batch job's tests: the BM25 server and clients answered by a handler."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from rerank_integrations import RerankClient
from rerank_integrations.server import LocalRerankServer, serve_in_thread

Handler = Callable[[httpx.Request], Any]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRerankServer]:
    """The BM25 server, answering at once (a module may define its own instead)."""
    with serve_in_thread() as running:
        yield running


@pytest.fixture
def client_for() -> Iterator[Callable[..., RerankClient]]:
    """Clients whose every request goes to a handler (sync, or async for the async path)."""
    made: list[RerankClient] = []

    def build(handler: Handler, **settings: Any) -> RerankClient:
        transport = httpx.MockTransport(handler)
        client = RerankClient(
            "https://rerank.test/v1",
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **settings,
        )
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()
