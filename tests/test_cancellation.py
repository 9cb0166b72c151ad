"""A cancelled call ends cancelled: no cancel is ever lost (issue: ``asyncio.wait_for``,
before Python 3.12, swallows a cancel that arrives as the awaited call finishes, so a task
whose ``cancel()`` said True returned a result).

Calls are cancelled at every moment of their run, with and without ``deadline=``, as one
batch and as several; the moments are event-loop steps, so nothing sleeps for real. CI runs
this file on every Python it claims.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
from pathlib import Path

import httpx
import pytest
from support import API_KEY, rank_body

from rerank_integrations import RerankClient
from rerank_integrations._timeouts import bounded, within

DOCUMENTS = [f"document number {number}" for number in range(10)]
CANCELS = 150


async def _answer(request: httpx.Request) -> httpx.Response:
    # A few loop steps inside the "server", so cancels land while the answer is on its way.
    for _ in range(3):
        await asyncio.sleep(0)
    return httpx.Response(200, json=rank_body(json.loads(request.content)))


def _client(per_request: int | None) -> RerankClient:
    return RerankClient(
        base_url="https://rerank.test/v1",
        api_key=API_KEY,
        max_documents_per_request=per_request,
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(_answer)),
    )


async def _steps_to_finish(client: RerankClient, deadline: float | None) -> int:
    task = asyncio.ensure_future(client.arerank("query", DOCUMENTS, deadline=deadline))
    steps = 0
    while not task.done():
        await asyncio.sleep(0)
        steps += 1
    task.result()
    return steps


@pytest.mark.parametrize("deadline", [None, 60.0], ids=["no-deadline", "deadline"])
@pytest.mark.parametrize("per_request", [None, 3], ids=["one-batch", "four-batches"])
async def test_a_cancelled_call_always_ends_cancelled(
    deadline: float | None, per_request: int | None
) -> None:
    rng = random.Random(f"{sys.version_info[:2]}-{deadline}-{per_request}")
    client = _client(per_request)
    try:
        steps = await _steps_to_finish(client, deadline)
        assert steps >= 3  # the call does take several steps: there are moments to cancel at
        cancelled = lost = 0
        for _ in range(CANCELS):
            task = asyncio.ensure_future(client.arerank("query", DOCUMENTS, deadline=deadline))
            for _ in range(rng.randrange(steps + 2)):
                await asyncio.sleep(0)
            if not task.cancel():
                assert task.done()
                continue
            cancelled += 1
            try:
                await task
            except asyncio.CancelledError:
                continue
            lost += 1
        assert lost == 0, f"{lost} of {cancelled} cancelled calls returned a result"
        assert cancelled >= CANCELS // 2
    finally:
        await client.aclose()


async def test_bounded_times_out_and_keeps_a_cancel_a_cancel() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(asyncio.TimeoutError):
        async with bounded(0):
            await never
    assert never.cancelled()
    with pytest.raises(asyncio.TimeoutError):
        async with bounded(-1.0):
            await asyncio.get_running_loop().create_future()

    async def answer() -> str:
        await asyncio.sleep(0)
        return "done"

    async def bounded_answer(seconds: float | None) -> str:
        async with bounded(seconds):
            return await answer()

    assert await bounded_answer(None) == "done"
    assert await bounded_answer(60) == "done"
    lost = 0
    for delay in range(1, 5):
        task = asyncio.ensure_future(bounded_answer(60))
        for _ in range(delay):
            await asyncio.sleep(0)
        if task.cancel():
            try:
                await task
            except asyncio.CancelledError:
                continue
            lost += 1
    assert lost == 0


async def test_within_times_out_and_keeps_a_cancel_a_cancel() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(asyncio.TimeoutError):
        await within(never, 0)
    assert never.cancelled()
    with pytest.raises(asyncio.TimeoutError):
        await within(asyncio.get_running_loop().create_future(), -1.0)

    async def answer() -> str:
        await asyncio.sleep(0)
        return "done"

    assert await within(answer(), None) == "done"
    assert await within(answer(), 60) == "done"

    # The inner call finishes in the very step the caller is cancelled: the caller still
    # ends cancelled (``asyncio.wait_for`` before 3.12 returned "done" here).
    lost = 0
    for delay in range(1, 5):
        task = asyncio.ensure_future(within(answer(), 60))
        for _ in range(delay):
            await asyncio.sleep(0)
        if task.cancel():
            try:
                await task
            except asyncio.CancelledError:
                continue
            lost += 1
    assert lost == 0


def test_every_bounded_await_goes_through_the_one_helper() -> None:
    package = Path(within.__code__.co_filename).parent
    bounded = [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"\bwait_for\(|asyncio\.timeout\(|async_timeout\.", line)
        and path.name != "_timeouts.py"
    ]
    assert bounded == []
