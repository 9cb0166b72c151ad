"""In-process fakes: an ``httpx.MockTransport`` handler, recorded waits, and a sync/async runner."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

from .data import rank_body

T = TypeVar("T")

MockReply = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


class MockAPI:
    """An ``httpx.MockTransport`` handler: answers like a good server unless replies are
    queued with :meth:`queue`; records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.replies: deque[MockReply] = deque()

    def queue(self, *replies: MockReply) -> None:
        """Answer the next requests with these, in order (a response, an exception to raise,
        or a function of the request)."""
        self.replies.extend(replies)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The decoded JSON bodies of the requests received so far."""
        return [json.loads(request.content) for request in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.replies:
            reply = self.replies.popleft()
            if isinstance(reply, BaseException):
                raise reply
            if isinstance(reply, httpx.Response):
                return reply
            return reply(request)
        return httpx.Response(200, json=rank_body(json.loads(request.content)))


#: The waits a client asked for while a test ran (the ``sleeps`` fixture); none was slept.
Sleeps = list[float]


def run_mode(
    mode: str, sync_call: Callable[[], T], async_call: Callable[[], Coroutine[Any, Any, T]]
) -> T:
    """Call ``sync_call()`` or run ``async_call()`` in a fresh event loop, by ``mode``."""
    if mode == "sync":
        return sync_call()
    return asyncio.run(async_call())
