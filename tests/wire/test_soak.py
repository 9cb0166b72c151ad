"""Faults survived, nothing lost: a bounded soak against the local server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

from rerank_integrations import RerankClient, testing
from rerank_integrations.demo import load_passages, load_queries
from rerank_integrations.server import serve_in_thread

CALLS = 1000
IN_FLIGHT = 32
TIME_LIMIT = 120.0  # seconds for the whole soak, stated and checked


def workload() -> list[tuple[str, list[str]]]:
    passages = [p.text for p in load_passages()]
    queries = [q.query for q in load_queries()]
    return [
        (queries[n % len(queries)], passages[(n * 7) % 150 : (n * 7) % 150 + 20])
        for n in range(CALLS)
    ]


def ranking(response: Any) -> list[tuple[int, float]]:
    return [(r.index, r.relevance_score) for r in response.results]


def test_fault_soak_returns_exactly_the_fault_free_rankings() -> None:
    calls = workload()
    with serve_in_thread() as clean, RerankClient(clean.base_url) as reference:
        expected = [ranking(reference.rerank(q, docs, top_n=5)) for q, docs in calls]

    faults: dict[str, Any] = {
        "error_rate": 0.20,
        "error_status": 502,
        "error_html": True,
        "rate_limit_rate": 0.10,
        "retry_after": 1,
        "drop_rate": 0.05,
        "stall_rate": 0.02,
        "stall_seconds": 5.0,
        "seed": 7,
    }
    started = time.monotonic()
    # Retry-After and backoff are honoured, not slept.
    with serve_in_thread(**faults) as faulty, testing.no_waits() as waits:
        client = RerankClient(faulty.base_url, timeout=0.5, max_retries=15)
        half = CALLS // 2
        sync_results = [ranking(client.rerank(q, docs, top_n=5)) for q, docs in calls[:half]]

        async def run_async() -> list[list[tuple[int, float]]]:
            limit = asyncio.Semaphore(IN_FLIGHT)

            async def one(query: str, docs: list[str]) -> list[tuple[int, float]]:
                async with limit:
                    return ranking(await client.arerank(query, docs, top_n=5))

            results = await asyncio.gather(*(one(q, docs) for q, docs in calls[half:]))
            await client.aclose()
            return list(results)

        async_results = asyncio.run(run_async())
        attempts = faulty.stats.requests
        fault_counts = dict(faulty.stats.faults)
    elapsed = time.monotonic() - started
    client.close()

    assert sync_results + async_results == expected  # nothing lost, duplicated or misordered
    assert elapsed < TIME_LIMIT
    assert attempts > CALLS  # faults really happened and were retried
    assert all(fault_counts.get(kind, 0) > 0 for kind in ("error", "rate_limit", "drop", "stall"))
    assert 1.0 in waits  # the 429s' Retry-After was honoured
    print(
        f"\nsoak: {CALLS} calls, {attempts} attempts ({attempts / CALLS:.2f} per call), "
        f"faults {fault_counts}, {elapsed:.1f}s"
    )


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_ten_thousand_calls_keep_memory_and_connections_flat() -> None:
    documents = ["apple pie", "pear tart", "plum cake", "apple crumble"]
    with serve_in_thread() as server, RerankClient(server.base_url) as client:
        for _ in range(1_000):  # warm up pools, caches and the allocator
            client.rerank("apple", documents, top_n=2)
        gc.collect()
        fds_before, memory_before = open_descriptors(), resident_bytes()
        for _ in range(10_000):
            client.rerank("apple", documents, top_n=2)
        gc.collect()
        fds_after, memory_after = open_descriptors(), resident_bytes()
    # A leak of even 300 bytes a call would show as 3 MB here.
    assert memory_after - memory_before < 3 * 1024 * 1024
    assert fds_after - fds_before <= 2
