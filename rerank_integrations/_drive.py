"""The two drivers of a sans-IO flow: one with blocking calls, one with awaits.

A flow (:mod:`._actions`) yields what to do next and is sent back what happened;
:func:`drive` and :func:`adrive` carry it out. That is all that differs between the sync and
the async path: the batch flow and the credential flows are written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

from ._actions import Answer, Flow, Run, Send, Sleep, Wait
from ._exceptions import RerankError

__all__ = ["adrive", "drive"]

T = TypeVar("T")


def _run(action: Run) -> Any:
    try:
        return action.function()
    except Exception as exc:  # handed back to the flow, which decides what it means
        return exc


class _Steps(Generic[T]):
    """The actions of a flow, each sent what its predecessor came to (``outcome``); once the
    flow returns, ``value`` holds what it returned."""

    def __init__(self, flow: Flow[T]) -> None:
        self.flow = flow
        self.outcome: Any = None
        self.value: T

    def __iter__(self) -> Iterator[Send | Sleep | Run | Wait]:
        try:
            while True:
                yield self.flow.send(self.outcome)
        except StopIteration as stop:
            self.value = stop.value


def drive(
    flow: Flow[T], send: Callable[[Send], Answer | RerankError], sleep: Callable[[float], None]
) -> T:
    """Run ``flow`` to its end with blocking ``send``, ``sleep`` and calls; return its value."""
    steps = _Steps(flow)
    for action in steps:
        if isinstance(action, Sleep):
            sleep(action.seconds)
            steps.outcome = None
        elif isinstance(action, Wait):
            steps.outcome = action.latch.wait(action.seconds)
        else:
            steps.outcome = _run(action) if isinstance(action, Run) else send(action)
    return steps.value


async def adrive(
    flow: Flow[T],
    send: Callable[[Send], Awaitable[Answer | RerankError]],
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """The async twin of :func:`drive`; a blocking call runs in a worker thread."""
    steps = _Steps(flow)
    for action in steps:
        if isinstance(action, Sleep):
            await sleep(action.seconds)
            steps.outcome = None
        elif isinstance(action, Run):
            steps.outcome = await asyncio.to_thread(_run, action)
        elif isinstance(action, Wait):
            steps.outcome = await action.latch.wait_async(action.seconds)
        else:
            steps.outcome = await send(action)
    return steps.value
