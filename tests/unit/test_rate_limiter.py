"""The rate limiter and the adaptive gate as pure objects: a fake clock, threads and tasks,
no HTTP. The client keeping under a real server's limit is in ``tests/wire/test_rate_limits.py``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from rerank_integrations import RateLimit
from rerank_integrations._ratelimit import AdaptiveGate, Cost, Limiter


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
