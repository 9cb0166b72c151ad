"""``async_transport="aiohttp"``: the client's own async pools on httpx-aiohttp, against a
real server on 127.0.0.1; the sync path is unchanged by the setting."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from support import (
    DROP,
    SEED_DOCUMENTS,
    SEED_QUERY,
    SEED_RESPONSE,
    HugeBody,
    ScriptedServer,
    Sleeps,
    Stall,
    json_reply,
)

from rerank_integrations import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    RerankClient,
    RerankResponse,
    ResponseFormatError,
)

pytest.importorskip("httpx_aiohttp")


@pytest.fixture
def client(scripted_server: ScriptedServer, sleeps: Sleeps) -> Iterator[RerankClient]:
    client = RerankClient(
        scripted_server.base_url, api_key="sk-wire-key", timeout=5, async_transport="aiohttp"
    )
    yield client
    client.close()


def call(mode: str, client: RerankClient, *args: Any, **kwargs: Any) -> RerankResponse:
    if mode == "sync":
        return client.rerank(*args, **kwargs)

    async def run() -> RerankResponse:
        return await client.arerank(*args, **kwargs)

    return asyncio.run(run())


def test_the_pool_is_an_aiohttp_backed_httpx_client(client: RerankClient) -> None:
    from httpx_aiohttp import HttpxAiohttpClient

    async def pool_type() -> type:
        return type(await client._get_async_http_client())

    assert issubclass(asyncio.run(pool_type()), HttpxAiohttpClient)
    assert client.settings.async_transport == "aiohttp"


def test_seed_example(mode: str, client: RerankClient, scripted_server: ScriptedServer) -> None:
    scripted_server.queue(json_reply(200, SEED_RESPONSE))
    response = call(mode, client, SEED_QUERY, SEED_DOCUMENTS, top_n=3)
    assert [r.index for r in response.results] == [0, 6, 4]
    assert scripted_server.headers[0]["authorization"] == "Bearer sk-wire-key"
    assert scripted_server.bodies[0]["documents"] == SEED_DOCUMENTS


def test_separate_event_loops_each_get_a_pool_closed_with_the_loop(client: RerankClient) -> None:
    async def once() -> list[int]:
        response = await client.arerank("apple", ["pear", "apple"])
        return [r.index for r in response.results]

    assert asyncio.run(once()) == [1, 0]
    assert asyncio.run(once()) == [1, 0]
    assert len(client._async_pools) <= 1  # pools of closed loops are dropped


def test_batches_go_out_together(scripted_server: ScriptedServer) -> None:
    scripted_server.delay = 0.1
    documents = [f"apple {n}" for n in range(8)]
    client = RerankClient(
        scripted_server.base_url, max_documents_per_request=2, async_transport="aiohttp"
    )

    async def run() -> RerankResponse:
        async with client:
            return await client.arerank("apple", documents)

    assert len(asyncio.run(run()).results) == 8
    assert scripted_server.max_in_flight > 1


def test_retry_after_429(client: RerankClient, scripted_server: ScriptedServer) -> None:
    scripted_server.queue(
        json_reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "2"})
    )
    response = call("async", client, "apple", ["pear", "apple"])
    assert response.results[0].index == 1
    assert len(scripted_server.bodies) == 2


def test_dropped_connections_become_connection_errors(
    client: RerankClient, scripted_server: ScriptedServer
) -> None:
    scripted_server.queue(DROP, DROP, DROP)
    with pytest.raises(APIConnectionError) as info:
        call("async", client, "apple", ["pear", "apple"])
    assert not isinstance(info.value, APITimeoutError)
    assert len(scripted_server.bodies) == 3


def test_a_refused_connection_is_a_connection_error_not_a_timeout(sleeps: Sleeps) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RerankClient(f"http://127.0.0.1:{port}", max_retries=0, async_transport="aiohttp")
    with pytest.raises(APIConnectionError) as info:
        call("async", client, "q", ["a"])
    assert not isinstance(info.value, APITimeoutError)


def test_a_stall_past_the_timeout_is_a_timeout(scripted_server: ScriptedServer) -> None:
    scripted_server.queue(Stall(1.0))
    client = RerankClient(
        scripted_server.base_url, timeout=0.2, max_retries=0, async_transport="aiohttp"
    )
    with pytest.raises(APITimeoutError):
        call("async", client, "q", ["a"])


def test_an_answer_past_max_response_bytes_is_refused(scripted_server: ScriptedServer) -> None:
    scripted_server.queue(HugeBody(200_000, chunked=True))
    client = RerankClient(
        scripted_server.base_url, max_response_bytes=50_000, async_transport="aiohttp"
    )
    with pytest.raises(ResponseFormatError, match="max_response_bytes"):
        call("async", client, "q", ["a"])


def test_adapters_pass_the_setting_on() -> None:
    pytest.importorskip("langchain_core")
    from rerank_integrations.langchain import RerankCompressor

    compressor = RerankCompressor(base_url="http://127.0.0.1:9", async_transport="aiohttp")
    assert compressor.rerank_client.settings.async_transport == "aiohttp"


def test_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="async_transport must be one of"):
        RerankClient("http://127.0.0.1:9", async_transport="trio")


def test_missing_package_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "httpx_aiohttp" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigurationError, match=r"rerank-integrations\[aiohttp\]"):
        RerankClient("http://127.0.0.1:9", async_transport="aiohttp")
