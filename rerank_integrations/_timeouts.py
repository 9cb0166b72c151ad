"""Bounding an await by a time: the one helper every place that does so calls.

``asyncio.wait_for`` runs the awaitable in a task of its own, and before Python 3.12 it
swallows a cancel that arrives as that task finishes (CPython gh-86296): the caller's task
returns a result although its ``cancel()`` said True, and a cancelled batch job goes on
writing rows. ``asyncio.timeout`` (Python 3.11+) and its backport ``async-timeout`` (3.10)
bound the block inside the caller's own task instead, so a cancel from outside always ends
it cancelled, and only the timer's own cancel becomes a timeout.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TypeVar

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # pragma: no cover - Python 3.10
    from async_timeout import timeout as _timeout

__all__ = ["bounded", "within"]

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """Await ``awaitable`` for at most ``seconds`` (``None``: no bound; a negative number is
    no time at all); past it, cancel it and raise ``asyncio.TimeoutError`` (the built-in
    ``TimeoutError`` from Python 3.11). A cancel of the
    caller is never turned into a result or a timeout."""
    if seconds is None:
        return await awaitable
    async with _timeout(max(0.0, seconds)):
        return await awaitable


def bounded(seconds: float | None) -> AbstractAsyncContextManager[object]:
    """The same bound as :func:`within` for the block it wraps, awaited in the caller's own
    frame: a module that awaits its own coroutine under it is never called back from here.
    The timeout itself (or, with no bound, a null context), with no generator around it:
    every attempt of the async path enters one."""
    if seconds is None:
        return _UNBOUNDED
    return _timeout(max(0.0, seconds))


_UNBOUNDED: AbstractAsyncContextManager[object] = nullcontext()
