"""Running one planned call: its batches fanned out, then what a failure leads to.

The sync path runs a call's batches in a thread pool, the async path as concurrent tasks
(at most ``max_concurrency`` at a time, all cancelled with the call); both drive the same
batch flow (:mod:`._flow`) and merge with the same function (:mod:`._merge`). A call that
fails is planned again with a limit the server taught, or handed to the fallbacks, as
:func:`~._outcome.decide` says.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from decimal import Decimal
from random import Random
from typing import Any, TypeVar

from ._actions import Flow
from ._auth import Authorizer
from ._call import Call, plan_again
from ._codec import BatchRanking
from ._config import ClientSettings
from ._constants import LOGGER_NAME
from ._drive import adrive, drive
from ._exceptions import APIStatusError, RerankError
from ._fallbacks import Fallbacks
from ._flow import batch_flow, warm_up
from ._merge import merge_rankings
from ._outcome import Attempt, Step, decide
from ._plan import Batch, PlanStream
from ._pools import Pools
from ._refusals import with_hint
from ._send import asend, asleep, send, sleep
from ._state import Connection
from ._timeouts import within
from ._types import RerankResponse
from ._usage import combined, summed, warn_model_swap

__all__ = ["Engine"]

T = TypeVar("T")

logger = logging.getLogger(LOGGER_NAME)


@dataclass(slots=True)
class Engine:
    """What a client runs its calls with: its settings, state, credentials and pools."""

    settings: ClientSettings
    connection: Connection
    authorizer: Authorizer | None
    transform: Callable[[float], float] | None
    pools: Pools
    random: Random

    # -- the sync path ----------------------------------------------------------------------

    def answer(self, call: Call) -> RerankResponse:
        """The sync path of a started call: planned again after a limit is learned, then
        handed to the fallbacks if it fails in a way they may help with."""
        while True:
            try:
                return self._ranked(call)
            except RerankError as error:
                after = self._after(call, error)
            if isinstance(after, Fallbacks):
                return self._fall_back(after)
            call = after

    def _fall_back(self, fallbacks: Fallbacks) -> RerankResponse:
        """The sync path's turn through the fallbacks of a call that failed."""
        for fallback, keywords in fallbacks:
            with fallbacks.trying():
                response = fallback.rerank(**keywords)
                break
        else:
            raise fallbacks.error
        return fallbacks.answered(self._with_spent(fallbacks.call, response, fallback))

    def _ranked(self, call: Call) -> RerankResponse:
        """One planned call on the sync path: its batches, in a pool when there are several."""
        if call.stream is not None:
            return self._streamed(call)
        if not call.plan.batches:  # no documents, or every score known
            return self._merged(call, [])
        client = self.pools.http_client()
        to_send = functools.partial(send, client)
        run = functools.partial(self._batch, call, to_send)

        count = len(call.plan.batches)
        if count > 1:
            drive(warm_up(self.settings, self.authorizer, call), to_send, sleep)
        pool = self.pools.executor() if count > 1 else None
        rankings = [run(0)] if pool is None else _run_in_pool(pool, run, range(count), call)
        return self._merged(call, rankings)

    def _batch(self, call: Call, to_send: Callable[..., Any], number: int) -> BatchRanking:
        """One batch of ``call`` on the sync path, holding a place at the client's gate."""
        gate = self.connection.gate
        if gate is None:
            return drive(self._flow(call, number), to_send, sleep)
        if not gate.acquire(call.time_left()):  # the deadline ran out waiting for a place
            raise call.deadline_error()
        try:
            return drive(self._flow(call, number), to_send, sleep)
        finally:
            gate.release()

    def _streamed(self, call: Call) -> RerankResponse:
        """A call whose long documents are cut as its batches are sent: this thread cuts
        each next batch while the pool sends those already cut; the deadline covers both."""
        stream = call.stream
        assert stream is not None
        client = self.pools.http_client()
        to_send = functools.partial(send, client)
        drive(warm_up(self.settings, self.authorizer, call), to_send, sleep)
        run = functools.partial(self._batch, call, to_send)

        rankings = _run_in_pool(self.pools.executor(), run, _cut(stream, call), call)
        return self._merged(dataclasses.replace(call, plan=stream.plan), rankings)

    # -- the async path ---------------------------------------------------------------------

    async def aanswer(self, call: Call) -> RerankResponse:
        """The async twin of :meth:`answer`."""
        while True:
            try:
                return await self._aranked(call)
            except RerankError as error:
                after = self._after(call, error)
            if isinstance(after, Fallbacks):
                return await self._afall_back(after)
            call = after

    async def _afall_back(self, fallbacks: Fallbacks) -> RerankResponse:
        """The async twin of :meth:`_fall_back`."""
        for fallback, keywords in fallbacks:
            with fallbacks.trying():
                response = await fallback.arerank(**keywords)
                break
        else:
            raise fallbacks.error
        return fallbacks.answered(self._with_spent(fallbacks.call, response, fallback))

    async def _aranked(self, call: Call) -> RerankResponse:
        """One planned call on the async path: its batches as concurrent tasks."""
        if call.stream is not None:
            return await self._astreamed(call)
        if not call.plan.batches:  # no documents, or every score known
            return self._merged(call, [])
        client = await self.pools.async_http_client()
        to_send = functools.partial(asend, client)
        count = len(call.plan.batches)
        if count > 1:
            await _within(
                adrive(warm_up(self.settings, self.authorizer, call), to_send, asleep), call
            )
        one = functools.partial(self._abatch, call, to_send)
        if count == 1:
            rankings = [await _within(one(0), call)]
        else:
            limit = asyncio.Semaphore(self.settings.max_concurrency)

            async def run(number: int) -> BatchRanking:
                async with limit:
                    return await one(number)

            gathering = _gather_or_cancel([run(number) for number in range(count)])
            rankings = await _within(gathering, call)
        return self._merged(call, rankings)

    async def _abatch(self, call: Call, to_send: Callable[..., Any], number: int) -> BatchRanking:
        """The async twin of :meth:`_batch` (the deadline is kept by the caller)."""
        gate = self.connection.gate
        if gate is None:
            return await adrive(self._flow(call, number), to_send, asleep)
        await gate.aacquire()
        try:
            return await adrive(self._flow(call, number), to_send, asleep)
        finally:
            gate.release()

    async def _astreamed(self, call: Call) -> RerankResponse:
        """The async twin of :meth:`_streamed`: each next batch is cut on the loop in short
        steps (:func:`_cut_batch`), so the loop is not held while those cut are sent."""
        stream = call.stream
        assert stream is not None
        client = await self.pools.async_http_client()
        to_send = functools.partial(asend, client)
        await _within(adrive(warm_up(self.settings, self.authorizer, call), to_send, asleep), call)
        limit = asyncio.Semaphore(self.settings.max_concurrency)

        async def run(number: int) -> BatchRanking:
            async with limit:
                return await self._abatch(call, to_send, number)

        tasks: list[asyncio.Future[BatchRanking]] = []
        try:
            while (batch := await _cut_batch(stream, call)) is not None:
                del batch  # the flow reads it from the plan
                _check_left(call)
                if any(task.done() and task.exception() for task in tasks):
                    break  # a batch failed: its error is raised below, nothing more is cut
                tasks.append(asyncio.ensure_future(run(len(tasks))))
            rankings = list(await _within(asyncio.gather(*tasks), call))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        # Tens of thousands of windows merged take tens of milliseconds: not on the loop.
        streamed = dataclasses.replace(call, plan=stream.plan)
        return await asyncio.to_thread(self._merged, streamed, rankings)

    # -- shared by both paths ---------------------------------------------------------------

    def _after(self, call: Call, error: RerankError) -> Call | Fallbacks:
        """What a failed call leads to: the call planned again with the limit the server
        stated, or its fallbacks; else ``error`` is raised (with what to do about it)."""
        settings, connection = self.settings, self.connection
        verdict = decide(
            Attempt(
                error,
                retry=False,
                long_documents=settings.long_documents,
                document_tokens=connection.learned.document_tokens,
                plans_again=call.plans_again,
                fallbacks=bool(settings.fallbacks),
            )
        )
        if verdict.hint and isinstance(error, APIStatusError):
            with_hint(error, verdict.hint)
        if verdict.step is Step.PLAN_AGAIN:
            connection.learned.learn(document_tokens=verdict.document_tokens)
            return plan_again(settings, connection, call)
        if verdict.step is Step.FALL_BACK:
            return Fallbacks(connection, settings.fallbacks, call, error)
        raise error

    def _merged(self, call: Call, rankings: Sequence[BatchRanking]) -> RerankResponse:
        connection = self.connection
        endpoint = connection.shown_url
        response = merge_rankings(
            call.plan, rankings, call.model, self.transform, endpoint, call.spent
        )
        warn_model_swap(connection.models_warned, response.requested_model, response.model)
        cost = connection.cost_log.cost(self.settings.price, response.usage, endpoint)
        return dataclasses.replace(response, cost=cost)

    def _with_spent(self, call: Call, response: RerankResponse, fallback: Any) -> RerankResponse:
        """A fallback's answer with what this client's own answered requests used added:
        they were paid for too. A fallback without a price of its own is priced with ours."""
        connection, price = self.connection, self.settings.price
        if not call.spent:
            own_usage, own_cost = None, None if price is None else Decimal(0)
        else:
            own_usage = summed(call.spent)
            own_cost = connection.cost_log.cost(price, own_usage, connection.shown_url)
        usage = combined(own_usage, response.usage)
        answered_cost = response.cost
        theirs = fallback.settings.price
        if theirs is not None and price is not None and theirs.currency != price.currency:
            logger.warning(
                "rerank: no cost: the fallback %s prices in %s, this client in %s",
                response.endpoint,
                theirs.currency,
                price.currency,
            )
            answered_cost = None
        elif theirs is None and price is not None:
            answered_cost = connection.cost_log.cost(price, response.usage, response.endpoint or "")
        cost = None
        if price is not None and own_cost is not None and answered_cost is not None:
            cost = own_cost + answered_cost
        return dataclasses.replace(response, usage=usage, cost=cost)

    def _flow(self, call: Call, number: int) -> Flow[BatchRanking]:
        return batch_flow(
            self.settings, self.connection, call, number, self.random.random, self.authorizer
        )


#: Seconds an async call cuts documents on its loop before it lets other tasks run.
_CUT_SLICE = 0.002
#: Characters past which a document is cut in a worker thread rather than on the loop
#: (about two milliseconds of cutting).
_CUT_ON_LOOP = 1 << 17


async def _cut_batch(stream: PlanStream, call: Call) -> Batch | None:
    """:meth:`PlanStream.next_batch` on the loop, in slices of :data:`_CUT_SLICE`: the
    tasks sending the batches before run in between, and the loop is never held for long
    (no thread hop per batch: cuts known from a call before take microseconds). A document
    too long to cut within a slice is cut in a worker thread."""
    await asyncio.sleep(0)  # the batch just started sends its request first
    started = time.perf_counter()
    while True:
        if stream.next_length() > _CUT_ON_LOOP:
            ready = await _within(asyncio.to_thread(stream.step), call)
            started = time.perf_counter()
        else:
            ready = stream.step()
        if ready:
            return stream.next_batch()
        if time.perf_counter() - started > _CUT_SLICE:
            _check_left(call)
            await asyncio.sleep(0)
            started = time.perf_counter()


def _check_left(call: Call) -> None:
    """Raise the deadline's error when the call has no time left."""
    left = call.time_left()
    if left is not None and left <= 0:
        raise call.deadline_error()


def _within(awaitable: Awaitable[T], call: Call) -> Awaitable[T]:
    """``awaitable``, cancelled when the call's deadline runs out; with no deadline,
    ``awaitable`` itself (no coroutine around it)."""
    left = call.time_left()
    if left is None:
        return awaitable
    return _by_deadline(awaitable, left, call)


async def _by_deadline(awaitable: Awaitable[T], left: float, call: Call) -> T:
    try:
        return await within(awaitable, left)
    except asyncio.TimeoutError:
        raise call.deadline_error() from None


def _run_in_pool(
    executor: ThreadPoolExecutor, function: Callable[[int], T], numbers: Iterable[int], call: Call
) -> list[T]:
    """``[function(i) for i in numbers]`` on the pool; on the first failure, or when the
    call's deadline runs out (its batches may queue behind another call's), the batches
    not yet started are cancelled, no more are started, and the error is raised."""
    futures: list[Future[T]] = []
    try:
        for number in numbers:
            if any(future.done() and future.exception() for future in futures):
                break  # a batch failed: its error is raised below, nothing more is started
            # Each batch runs in a copy of the caller's context, so its spans nest in the call's.
            futures.append(executor.submit(contextvars.copy_context().run, function, number))
        results = []
        for future in futures:
            left = call.time_left()
            results.append(future.result(None if left is None else max(0.0, left)))
        return results
    except BaseException as error:
        for future in futures:
            future.cancel()
        if isinstance(error, FutureTimeoutError):
            raise call.deadline_error() from None
        raise


def _cut(stream: PlanStream, call: Call) -> Iterator[int]:
    """The number of each next batch as ``stream`` cuts it (the flow reads the batch from
    the plan); the deadline's error when the call has no time left for the next."""
    number = 0
    while stream.next_batch() is not None:
        _check_left(call)
        yield number
        number += 1


async def _gather_or_cancel(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run the coroutines as tasks; if one fails or the caller is cancelled, cancel the
    others and wait for them, so nothing is left running."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
