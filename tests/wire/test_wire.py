"""RerankClient against a real HTTP server on 127.0.0.1, with the client's own pools."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support import (
    DROP,
    SEED_DOCUMENTS,
    SEED_QUERY,
    SEED_RESPONSE,
    Reply,
    ScriptedServer,
    Sleeps,
    Stall,
    json_reply,
    keyword_score,
)

from rerank_integrations import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    RerankClient,
    RerankResponse,
    ServerError,
)


@pytest.fixture
def client(scripted_server: ScriptedServer, sleeps: Sleeps) -> Iterator[RerankClient]:
    client = RerankClient(scripted_server.base_url, api_key="sk-wire-key", timeout=5)
    yield client
    client.close()


def call(mode: str, client: RerankClient, *args: Any, **kwargs: Any) -> RerankResponse:
    if mode == "sync":
        return client.rerank(*args, **kwargs)

    async def run() -> RerankResponse:
        return await client.arerank(*args, **kwargs)

    return asyncio.run(run())


def test_seed_example_over_the_wire(
    mode: str, client: RerankClient, scripted_server: ScriptedServer
) -> None:
    scripted_server.queue(json_reply(200, SEED_RESPONSE))
    response = call(mode, client, SEED_QUERY, SEED_DOCUMENTS, top_n=3)
    assert [r.index for r in response.results] == [0, 6, 4]
    assert scripted_server.headers[0]["authorization"] == "Bearer sk-wire-key"
    assert scripted_server.bodies[0]["documents"] == SEED_DOCUMENTS
    assert response.usage is not None and response.usage.total_tokens == 815


def test_ranking_over_the_wire(mode: str, client: RerankClient) -> None:
    documents = ["pear tart", "apple pie recipe", "apple", "bicycle"]
    response = call(mode, client, "apple pie", documents, top_n=2)
    expected = sorted(range(4), key=lambda i: -keyword_score("apple pie", documents[i]))[:2]
    assert [r.index for r in response.results] == expected


def test_one_client_survives_separate_event_loops(client: RerankClient) -> None:
    async def once() -> list[int]:
        response = await client.arerank("apple", ["pear", "apple"])
        return [r.index for r in response.results]

    assert asyncio.run(once()) == [1, 0]
    assert asyncio.run(once()) == [1, 0]
    assert client.rerank("apple", ["pear", "apple"]).results[0].index == 1
    assert asyncio.run(once()) == [1, 0]
    assert len(client._async_pools) <= 1  # pools of closed loops are dropped


def test_retry_after_429_over_the_wire(
    mode: str, client: RerankClient, scripted_server: ScriptedServer, sleeps: Sleeps
) -> None:
    scripted_server.queue(
        json_reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "3"})
    )
    response = call(mode, client, "apple", ["pear", "apple"])
    assert response.results[0].index == 1
    assert len(scripted_server.bodies) == 2
    assert sleeps == [3.0]


def test_html_502_then_success(
    mode: str, client: RerankClient, scripted_server: ScriptedServer
) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>"
    scripted_server.queue(Reply(502, page, {"Content-Type": "text/html"}))
    assert call(mode, client, "apple", ["pear", "apple"]).results[0].index == 1


def test_html_502_exhausted_names_the_page_title(
    mode: str, scripted_server: ScriptedServer, sleeps: Sleeps
) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    scripted_server.queue(*[Reply(502, page, {"Content-Type": "text/html"})] * 2)
    client = RerankClient(scripted_server.base_url, max_retries=1)
    with pytest.raises(ServerError, match="502 Bad Gateway"):
        call(mode, client, "q", ["a"])
    client.close()


def test_dropped_connection_is_retried(
    mode: str, client: RerankClient, scripted_server: ScriptedServer, sleeps: Sleeps
) -> None:
    scripted_server.queue(DROP)
    response = call(mode, client, "apple", ["pear", "apple"])
    assert response.results[0].index == 1
    assert len(scripted_server.bodies) == 2
    assert len(sleeps) == 1


def test_dropped_connections_exhaust_into_connection_error(
    mode: str, client: RerankClient, scripted_server: ScriptedServer
) -> None:
    scripted_server.queue(DROP, DROP, DROP)
    with pytest.raises(APIConnectionError):
        call(mode, client, "apple", ["pear", "apple"])
    assert len(scripted_server.bodies) == 3


def test_stall_past_the_timeout(mode: str, scripted_server: ScriptedServer) -> None:
    scripted_server.queue(Stall(1.0))
    client = RerankClient(scripted_server.base_url, timeout=0.2, max_retries=0)
    with client, pytest.raises(APITimeoutError):
        call(mode, client, "q", ["a"])


def test_stall_then_retry_succeeds(
    mode: str, scripted_server: ScriptedServer, sleeps: Sleeps
) -> None:
    scripted_server.queue(Stall(1.0))
    client = RerankClient(scripted_server.base_url, timeout=0.2, max_retries=1)
    assert call(mode, client, "apple", ["pear", "apple"]).results[0].index == 1
    client.close()


def test_auth_error_is_not_retried_over_the_wire(
    mode: str, client: RerankClient, scripted_server: ScriptedServer
) -> None:
    scripted_server.queue(Reply(401))
    with pytest.raises(AuthenticationError) as info:
        call(mode, client, "q", ["a"])
    assert "sk-wire-key" not in str(info.value)
    assert len(scripted_server.bodies) == 1


def test_batches_travel_together_over_the_wire(
    mode: str, client: RerankClient, scripted_server: ScriptedServer
) -> None:
    scripted_server.delay = 0.15
    documents = [f"doc {i} apple" if i % 7 == 0 else f"doc {i}" for i in range(2300)]
    batched = RerankClient(scripted_server.base_url, max_documents_per_request=1000)
    response = call(mode, batched, "apple", documents, top_n=5)
    batched.close()
    assert sorted(len(body["documents"]) for body in scripted_server.bodies) == [300, 1000, 1000]
    assert scripted_server.max_in_flight == 3
    expected = sorted(range(2300), key=lambda i: (-keyword_score("apple", documents[i]), i))[:5]
    assert [r.index for r in response.results] == expected


def test_one_client_shared_by_threads(client: RerankClient) -> None:
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(5):
                response = client.rerank(f"word{n}", ["other", f"word{n}"])
                assert response.results[0].index == 1
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []


def test_cancelling_an_async_call_leaves_nothing_running(scripted_server: ScriptedServer) -> None:
    scripted_server.delay = 2.0
    client = RerankClient(scripted_server.base_url, max_documents_per_request=2, timeout=10)

    async def scenario() -> set[asyncio.Task[Any]]:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.arerank("q", ["a", "b", "c", "d", "e", "f"]), 0.2)
        await asyncio.sleep(0)
        leftover = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
        await client.aclose()
        return leftover

    assert asyncio.run(scenario()) == set()


def test_deadline_bounds_a_stalled_call(mode: str, scripted_server: ScriptedServer) -> None:
    import time

    scripted_server.queue(Stall(3.0), Stall(3.0))
    client = RerankClient(scripted_server.base_url, timeout=30, max_retries=3)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        call(mode, client, "q", ["a"], deadline=0.4)
    assert time.monotonic() - started < 2.5  # far below one 3 s stall, let alone four
    client.close()


def test_deadline_covers_all_batches(scripted_server: ScriptedServer) -> None:
    scripted_server.delay = 3.0
    client = RerankClient(scripted_server.base_url, max_documents_per_request=1, timeout=30)

    async def scenario() -> None:
        with pytest.raises(APITimeoutError, match="deadline"):
            await client.arerank("q", ["a", "b", "c"], deadline=0.3)
        await client.aclose()

    asyncio.run(scenario())
