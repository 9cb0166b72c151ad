"""Rate limits and adaptive concurrency: a pure limiter on a fake clock, and the client
keeping under a real server's limit on both paths."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from support import MockAPI, run_mode

from rerank_integrations import APITimeoutError, RateLimit, RateLimitError, RerankClient
from rerank_integrations._ratelimit import AdaptiveGate, Cost, Limiter
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor
from rerank_integrations.server import serve_in_thread


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_one_seconds_worth_then_the_rate() -> None:
    clock = Clock()
    limiter = Limiter(RateLimit(requests_per_minute=600), clock)
    waits = [limiter.reserve(Cost(), None) for _ in range(30)]
    assert waits[:10] == [0.0] * 10  # about 10 at once: one second's worth, not 600
    assert waits[10:] == pytest.approx([0.1 * k for k in range(1, 21)])
    clock.now += 60
    assert limiter.reserve(Cost(), None) == 0.0  # a minute later the budget is back


def test_every_dimension_counts_and_the_slowest_decides() -> None:
    clock = Clock()
    limiter = Limiter(RateLimit(tokens_per_minute=6_000, documents_per_minute=60_000), clock)
    # 100 tokens a second: the first request spends the whole burst, the next waits a second.
    assert limiter.reserve(Cost(tokens=100, documents=10), None) == 0.0
    assert limiter.reserve(Cost(tokens=100, documents=10), None) == pytest.approx(1.0)
    assert limiter.reserve(Cost(tokens=100, documents=10), None) == pytest.approx(2.0)
    assert limiter.counts_tokens


def test_a_wait_past_the_deadline_reserves_nothing() -> None:
    clock = Clock()
    limiter = Limiter(RateLimit(requests_per_minute=60), clock)
    assert limiter.reserve(Cost(), None) == 0.0  # the burst: one second's worth (one)
    assert limiter.reserve(Cost(), 0.5) is None
    assert limiter.reserve(Cost(), None) == pytest.approx(1.0)  # the refused one took nothing


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({}, "needs requests_per_minute"), ({"requests_per_minute": 0}, "positive")],
)
def test_a_rate_limit_that_cannot_work_is_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimit(**arguments)


def test_the_gate_halves_once_per_burst_and_grows_back() -> None:
    gate = AdaptiveGate(16)
    sent_in = gate.epoch
    for _ in range(5):
        gate.congested(sent_in)  # five 429s of requests sent before any halving
    assert gate.limit == 8
    gate.congested(gate.epoch)
    assert gate.limit == 4
    for _ in range(40):
        gate.succeeded()  # ten rounds of successes grow it by about one
    assert 4.5 < gate.limit < 5.5
    for _ in range(4000):
        gate.succeeded()
    assert gate.limit == 16


def test_the_gate_holds_threads_and_tasks_to_its_limit() -> None:
    gate = AdaptiveGate(2)
    inside = []
    peak = []
    lock = threading.Lock()

    def worker() -> None:
        gate.acquire()
        with lock:
            inside.append(1)
            peak.append(len(inside))
        threading.Event().wait(0.02)
        with lock:
            inside.pop()
        gate.release()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()

    async def tasks() -> None:
        async def one() -> None:
            await gate.aacquire()
            with lock:
                inside.append(1)
                peak.append(len(inside))
            await asyncio.sleep(0.02)
            with lock:
                inside.pop()
            gate.release()

        await asyncio.gather(*(one() for _ in range(8)))

    asyncio.run(tasks())
    for thread in threads:
        thread.join()
    assert max(peak) <= 2
    assert gate.in_flight == 0


@pytest.mark.parametrize("cancelled", ["before the wake-up runs", "after the wake-up runs"])
def test_a_cancelled_waiter_passes_its_wake_up_on(cancelled: str) -> None:
    gate = AdaptiveGate(1)

    async def scenario() -> None:
        gate.acquire()  # the one place is taken
        first = asyncio.create_task(gate.aacquire())
        second = asyncio.create_task(gate.aacquire())
        for _ in range(3):
            await asyncio.sleep(0)  # both queue, in that order
        assert len(gate._waiters) == 2
        gate.release()  # wakes the first waiter
        if cancelled == "after the wake-up runs":
            await asyncio.sleep(0)  # the wake-up is delivered; the first has not run yet
            assert not first.done()
        first.cancel()  # as wait_for does at its timeout, or a client gone
        for _ in range(5):
            await asyncio.sleep(0)
        assert first.cancelled()
        assert second.done(), "the wake-up went with the cancelled waiter"
        assert gate.in_flight == 1
        gate.release()
        assert (gate.in_flight, len(gate._waiters)) == (0, 0)

    asyncio.run(scenario())


def test_a_waiter_cancelled_while_it_queues_leaves_the_others_in_order() -> None:
    gate = AdaptiveGate(1)

    async def scenario() -> list[int]:
        gate.acquire()
        order: list[int] = []

        async def one(number: int) -> None:
            await gate.aacquire()
            order.append(number)
            gate.release()

        tasks = [asyncio.create_task(one(number)) for number in range(3)]
        await asyncio.sleep(0)
        tasks[1].cancel()  # never woken: it only leaves the queue
        await asyncio.sleep(0)
        assert len(gate._waiters) == 2
        gate.release()
        for _ in range(10):
            await asyncio.sleep(0)
        assert gate.in_flight == 0
        return order

    assert asyncio.run(scenario()) == [0, 2]


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


# -- the deadline holds while a call waits its turn --------------------------------------------


def test_a_gate_place_is_waited_for_at_most_the_time_given() -> None:
    gate = AdaptiveGate(1)
    assert gate.acquire(0)
    assert not gate.acquire(0)  # no place, no time: not taken
    assert gate.in_flight == 1
    gate.release()
    assert gate.acquire(0) and gate.in_flight == 1


def _timed(function: Callable[[], Any]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        function()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


class _Held:
    """Something another call holds (a gate place, a pool thread) and lets go of after
    ``seconds``, so that a call that ignores its deadline still ends, late."""

    def __init__(self, release: Callable[[], object], seconds: float = 3.0) -> None:
        self._release = release
        self._fired = threading.Event()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.start()

    def _fire(self) -> None:
        self._fired.set()
        self._release()

    def let_go(self) -> None:
        self._timer.cancel()
        self._timer.join()
        if not self._fired.is_set():
            self._release()


def test_the_deadline_holds_while_a_call_waits_for_a_place_at_the_gate(
    mode: str, make_client: Callable[..., RerankClient]
) -> None:
    client = make_client(adaptive_concurrency=True, max_concurrency=1)
    gate = client._connection.gate
    assert gate is not None and gate.acquire()  # another call's batch holds the one place
    held = _Held(gate.release)
    try:
        elapsed, error = _timed(
            lambda: run_mode(
                mode,
                lambda: client.rerank("apple", ["pear", "apple"], deadline=0.3),
                lambda: client.arerank("apple", ["pear", "apple"], deadline=0.3),
            )
        )
    finally:
        held.let_go()
    assert isinstance(error, APITimeoutError), error
    assert "deadline of 0.3s" in str(error)
    assert elapsed < 1.5
    assert gate.in_flight == 0


def test_the_deadline_holds_while_a_calls_batches_queue_behind_another_call(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    client = make_client(max_concurrency=1, max_documents_per_request=1)
    busy = threading.Event()
    if mode == "sync":  # the client's one batch thread runs another call's batch
        client._engine.pools.executor().submit(busy.wait, 3.0)
    held = _Held(busy.set)
    try:
        elapsed, error = _timed(
            lambda: run_mode(
                mode,
                lambda: client.rerank("apple", ["pear", "apple"], deadline=0.3),
                lambda: client.arerank("apple", ["pear", "apple"], deadline=0.3),
            )
        )
    finally:
        held.let_go()
    if mode == "async":  # tasks queue in no shared pool: the call goes through
        assert error is None
        return
    assert isinstance(error, APITimeoutError), error
    assert "deadline of 0.3s" in str(error)
    assert elapsed < 1.5
    assert mock_api.requests == []  # its batches were cancelled before they started
