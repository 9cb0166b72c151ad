"""Timing primitives: wall time with ``time.perf_counter`` and this process's CPU time
(every thread, user and system) with ``time.process_time``."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Sample",
    "median",
    "settle",
    "time_async_call",
    "time_async_call_stalls",
    "time_async_load",
    "time_sync_call",
]


@dataclass(frozen=True)
class Sample:
    """One measurement: one call, or one whole load.

    Attributes:
        wall: seconds of wall time.
        cpu: seconds of this process's CPU time, all threads included.
    """

    wall: float
    cpu: float


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(values))


def settle() -> None:
    """Before a pass of timed calls: collect what the calls before left, and freeze what
    survives (inputs, sessions, their pools) out of the garbage collector's passes, so that
    the collections a timed call causes scan what that call made, not what was made before
    it. Every contender of a pass is timed alike; :func:`benchmarks.run.run_scenarios`
    hands the frozen objects back to the collector after each scenario."""
    gc.collect()
    gc.freeze()


def time_sync_call(session: Any, inputs: Any) -> Sample:
    """Wall and CPU time of one sync call."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    session.call(inputs)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    return Sample(wall1 - wall0, cpu1 - cpu0)


def time_async_call(loop: asyncio.AbstractEventLoop, session: Any, inputs: Any) -> Sample:
    """Wall and CPU time of one awaited call on ``loop`` (timed inside the loop)."""

    async def timed() -> Sample:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await session.acall(inputs)
        wall1, cpu1 = time.perf_counter(), time.process_time()
        return Sample(wall1 - wall0, cpu1 - cpu0)

    return loop.run_until_complete(timed())


#: How long the ticker of :func:`time_async_call_stalls` sleeps between two ticks.
TICK = 0.001


def time_async_call_stalls(
    loop: asyncio.AbstractEventLoop, session: Any, inputs: Any
) -> tuple[Sample, float]:
    """:func:`time_async_call`, with a ticker task on the same loop that sleeps
    :data:`TICK` at a time while the call runs: also the longest the loop kept it waiting
    past its tick (seconds), what other tasks of the loop would feel."""

    async def timed() -> tuple[Sample, float]:
        done = asyncio.Event()
        longest = 0.0

        async def ticker() -> None:
            nonlocal longest
            while not done.is_set():
                before = time.perf_counter()
                await asyncio.sleep(TICK)
                longest = max(longest, time.perf_counter() - before - TICK)

        ticking = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)  # the ticker is waiting before the call starts
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            await session.acall(inputs)
        finally:
            wall1, cpu1 = time.perf_counter(), time.process_time()
            done.set()
            await ticking
        return Sample(wall1 - wall0, cpu1 - cpu0), longest

    return loop.run_until_complete(timed())


def time_async_load(
    loop: asyncio.AbstractEventLoop, session: Any, inputs: Any, concurrency: int
) -> Sample:
    """Wall and CPU time of ``concurrency`` calls started at once and gathered."""

    async def load() -> None:
        await asyncio.gather(*(session.acall(inputs) for _ in range(concurrency)))

    wall0, cpu0 = time.perf_counter(), time.process_time()
    loop.run_until_complete(load())
    wall1, cpu1 = time.perf_counter(), time.process_time()
    return Sample(wall1 - wall0, cpu1 - cpu0)
