"""Fixtures: a scriptable mock rerank API, clients wired to it, the sync/async switch and
scripted servers on 127.0.0.1. The helpers they use live in ``support``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import API_KEY, MockAPI, ScriptedServer, Sleeps

from rerank_integrations import RerankClient, testing


@pytest.fixture
def mock_api() -> MockAPI:
    """A fresh mock rerank API."""
    return MockAPI()


@pytest.fixture(autouse=True)
def sleeps(request: pytest.FixtureRequest) -> Iterator[Sleeps]:
    """Every test runs under the package's testing switch: waits are recorded, not slept.

    A test marked ``real_waits`` (one that checks a server's clock) really waits.
    """
    if request.node.get_closest_marker("real_waits"):
        yield []
        return
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


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A fresh :class:`~support.ScriptedServer` on 127.0.0.1: generic dialect, any key."""
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture
def start_server() -> Iterator[Callable[..., ScriptedServer]]:
    """Start :class:`~support.ScriptedServer` instances with any options (a dialect, a key,
    a fixed answer); every one is closed after the test."""
    started: list[ScriptedServer] = []

    def start(dialect: str = "generic", **options: Any) -> ScriptedServer:
        server = ScriptedServer(dialect, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
