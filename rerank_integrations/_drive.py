"""The two drivers of a sans-IO flow: one with blocking calls, one with awaits.

A flow (:mod:`._actions`) yields what to do next and is sent back what happened;
:func:`drive` and :func:`adrive` carry it out. That is all that differs between the sync and
the async path: the batch flow and the credential flows are written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._actions import Answer, Flow, Run, Send, Sleep, Wait
from ._exceptions import RerankError

__all__ = ["adrive", "drive"]

T = TypeVar("T")


def _run(action: Run) -> Any:
    try:
        return action.function()
    except Exception as exc:  # handed back to the flow, which decides what it means
        return exc


def drive(
    flow: Flow[T], send: Callable[[Send], Answer | RerankError], sleep: Callable[[float], None]
) -> T:
    """Run ``flow`` to its end with blocking ``send``, ``sleep`` and calls; return its value."""
    outcome: Any = None
    try:
        while True:
            action = flow.send(outcome)
            if isinstance(action, Sleep):
                sleep(action.seconds)
                outcome = None
            elif isinstance(action, Run):
                outcome = _run(action)
            elif isinstance(action, Wait):
                outcome = action.latch.wait(action.seconds)
            else:
                outcome = send(action)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def adrive(
    flow: Flow[T],
    send: Callable[[Send], Awaitable[Answer | RerankError]],
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """The async twin of :func:`drive`; a blocking call runs in a worker thread."""
    outcome: Any = None
    try:
        while True:
            action = flow.send(outcome)
            if isinstance(action, Sleep):
                await sleep(action.seconds)
                outcome = None
            elif isinstance(action, Run):
                outcome = await asyncio.to_thread(_run, action)
            elif isinstance(action, Wait):
                outcome = await action.latch.wait_async(action.seconds)
            else:
                outcome = await send(action)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
