"""Timing primitives: wall time with ``time.perf_counter`` and this process's CPU time
(every thread, user and system) with ``time.process_time``."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Sample", "median", "time_async_call", "time_async_load", "time_sync_call"]


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
