"""Rate limits and adaptive concurrency through the client: keeping under a real server's
limit on both paths. The limiter itself, on a fake clock, is in
``tests/unit/test_rate_limiter.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import run_mode

from rerank_integrations import RateLimit, RateLimitError, RerankClient
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor
from rerank_integrations.server import serve_in_thread

# -- against a server that limits requests ----------------------------------------------------


@pytest.mark.real_waits  # the server's limiter runs on the real clock
def test_the_client_keeps_under_the_servers_limit(mode: str) -> None:
    with serve_in_thread(rate_limit_rpm=600) as server:  # 10 a second
        client = RerankClient(server.base_url, rate_limit=RateLimit(requests_per_minute=540))

        def burst_sync() -> None:
            for _ in range(25):
                client.rerank("apple", ["pear", "apple"])

        async def burst_async() -> None:
            await asyncio.gather(*(client.arerank("apple", ["pear", "apple"]) for _ in range(25)))

        run_mode(mode, burst_sync, burst_async)
        assert server.stats.rate_limited == 0
        assert client.stats().requests == 25
        client.close()


@pytest.mark.real_waits
def test_aimd_recovers_from_429s_with_no_failures() -> None:
    # 20 a second, 50 ms an answer: a gate of 16 in flight would send 320 a second.
    with serve_in_thread(rate_limit_rpm=1200, latency_ms=50) as server:
        client = RerankClient(server.base_url, adaptive_concurrency=True, max_retries=20)

        async def burst() -> list[int]:
            calls = [client.arerank("apple", ["pear", "apple"]) for _ in range(200)]
            return [response.results[0].index for response in await asyncio.gather(*calls)]

        assert asyncio.run(burst()) == [1] * 200
        stats = client.stats()
        assert stats.calls == 200
        assert stats.rate_limited < 100  # few 429s: the gate backs off instead of hammering
        assert server.stats.rate_limited == stats.rate_limited
        client.close()


def test_no_room_before_the_deadline_raises_without_sending(mode: str) -> None:
    with serve_in_thread() as server:
        limited = RerankClient(
            server.base_url, rate_limit=RateLimit(requests_per_minute=6), deadline=1.0
        )
        run_mode(
            mode,
            lambda: limited.rerank("apple", ["pear", "apple"]),
            lambda: limited.arerank("apple", ["pear", "apple"]),
        )
        with pytest.raises(RateLimitError, match="no room"):
            run_mode(
                mode,
                lambda: limited.rerank("apple", ["pear", "apple"]),
                lambda: limited.arerank("apple", ["pear", "apple"]),
            )
        assert server.stats.requests == 1
        limited.close()


@pytest.mark.parametrize("adapter_class", [RerankCompressor, RerankPostprocessor])
def test_the_adapters_take_a_rate_limit(adapter_class: Any) -> None:
    adapter = adapter_class(
        base_url="https://h",
        rate_limit=RateLimit(documents_per_minute=100),
        adaptive_concurrency=True,
    )
    assert adapter.rerank_client._connection.limiter is not None
    assert adapter.rerank_client._connection.gate is not None
    with pytest.raises(TypeError, match="rate_limit"):
        RerankClient("https://h", rate_limit=10)
