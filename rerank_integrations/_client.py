"""``RerankClient``: the sync and async I/O shells around the sans-IO core.

Both paths plan with the same pure functions, send each batch through the same retry
decision, and merge with the same function; they differ only in how they send and sleep.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from ._config import (
    ClientSettings,
    TimeoutTypes,
    check_deadline,
    resolve_settings,
    shorten_timeout,
)
from ._constants import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    LOGGER_NAME,
)
from ._core import (
    Batch,
    BatchRanking,
    RerankPlan,
    check_score_transform,
    decode_response,
    encode_request,
    make_status_error,
    merge_rankings,
    plan_rerank,
)
from ._exceptions import APIConnectionError, APITimeoutError, RerankError
from ._retry import is_retryable_status, parse_retry_after, retry_wait
from ._types import RerankResponse
from ._version import __version__

__all__ = ["RerankClient"]

logger = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")


class RerankClient:
    """A client for an HTTP rerank API, with a sync and an async method.

    Settings come from the arguments, else from the environment (read here, only for
    arguments left as ``None``):

    - ``RERANK_BASE_URL``: the API's base URL (required one way or the other);
    - ``RERANK_API_KEY``: the API key, sent in the dialect's auth header (most use
      ``Authorization: Bearer ...``);
    - ``RERANK_MODEL``: the model name; with none, the field is left out and the server decides;
    - ``RERANK_DIALECT``: the wire dialect (default ``generic``).

    ``base_url`` may be a host root (``https://h``), a versioned root (``https://h/v1``) or the
    full endpoint (``https://h/v1/rerank``).

    Args:
        base_url: where the API lives.
        api_key: the API key; kept as a ``SecretStr`` and never shown.
        model: the default model for every call.
        dialect: the wire format (``"generic"`` unless the server speaks another).
        timeout: seconds per HTTP request (connect capped at 5 s), an ``httpx.Timeout``, or
            ``None`` for no limit.
        max_retries: retries per request after the first attempt, for connection errors,
            timeouts, 408, 409, 429 and 5xx.
        max_documents_per_request: larger calls are split into batches of at most this many
            distinct documents (default: the dialect's limit, 1,000 for ``generic``).
        max_concurrency: batches of one call in flight at once.
        deadline: seconds a whole call may take, across all its batches and retries;
            ``None`` (the default) bounds only each request, by ``timeout``.
        score_transform: ``None`` or ``"none"`` returns the server's scores as they are;
            ``"sigmoid"`` maps raw logits (NIM, llama.cpp, raw-score modes) to 0..1, for
            thresholds. The order is the same either way.
        headers: extra headers for every request.
        http_client: an ``httpx.Client`` to use instead of the client's own; not closed by us.
        async_http_client: an ``httpx.AsyncClient`` to use instead of the client's own (then
            all async calls must run on that client's event loop); not closed by us.

    The client is safe to share between threads and between event loops: it keeps one
    connection pool for sync calls and one per event loop for async calls. Close it with
    :meth:`close` / :meth:`aclose` or use it as a (async) context manager.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        model: str | None = None,
        *,
        dialect: str | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_documents_per_request: int | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        deadline: float | None = None,
        score_transform: str | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._settings: ClientSettings = resolve_settings(
            base_url=base_url,
            api_key=api_key,
            model=model,
            dialect=dialect,
            timeout=timeout,
            max_retries=max_retries,
            max_documents_per_request=max_documents_per_request,
            max_concurrency=max_concurrency,
            deadline=deadline,
            score_transform=score_transform,
            headers=headers,
            user_agent=f"rerank-integrations/{__version__}",
        )
        self._start(http_client, async_http_client)

    def _start(
        self, http_client: httpx.Client | None, async_http_client: httpx.AsyncClient | None
    ) -> None:
        self._path = urlsplit(self._settings.endpoint).path
        self._transform = check_score_transform(self._settings.score_transform)
        self._user_http_client = http_client
        self._user_async_http_client = async_http_client
        self._http_client: httpx.Client | None = None
        self._async_http_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncClient
        ] = weakref.WeakKeyDictionary()
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._random = random.Random()
        # Seams for tests: how to wait between attempts.
        self._sleep: Callable[[float], None] = time.sleep
        self._async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __getstate__(self) -> dict[str, Any]:
        # Pools, threads and locks cannot travel; a copy opens its own. Clients passed in
        # by the caller are not carried over either.
        return {"settings": self._settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._settings = state["settings"]
        self._start(None, None)

    # -- public surface -------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The full URL requests are sent to."""
        return self._settings.endpoint

    @property
    def model(self) -> str | None:
        """The default model, or ``None`` to let the server decide."""
        return self._settings.model

    @property
    def dialect(self) -> str:
        """The name of the wire dialect."""
        return self._settings.dialect.name

    @property
    def max_documents_per_request(self) -> int:
        """The most distinct documents sent in one request."""
        return self._settings.max_documents_per_request

    @property
    def settings(self) -> ClientSettings:
        """The resolved settings (the key stays a ``SecretStr``)."""
        return self._settings

    def __repr__(self) -> str:
        return (
            f"RerankClient(endpoint={self.endpoint!r}, model={self.model!r}, "
            f"dialect={self.dialect!r}, api_key={'***' if self._settings.api_key else None})"
        )

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        model: str | None = None,
        deadline: float | None = None,
        **extra_body: Any,
    ) -> RerankResponse:
        """Rank ``documents`` by relevance to ``query``.

        Args:
            query: the search query.
            documents: the candidate texts.
            top_n: how many results to return, best first; ``None`` (or more than there are
                documents) returns all.
            model: overrides the client's model for this call.
            deadline: seconds this whole call may take, across every batch and retry;
                overrides the client's ``deadline``. ``None``: only per-request timeouts.
            **extra_body: further fields for the request body, sent as given.

        Returns:
            A :class:`RerankResponse` whose ``results`` index into ``documents``.

        Raises:
            TypeError, ValueError: bad arguments, before anything is sent.
            RerankError: a subclass saying what went wrong with the server.
        """
        call = self._start_call(query, documents, top_n, model, deadline, extra_body)
        if not call.plan.batches:
            return RerankResponse(results=[], model=call.model)
        client = self._get_http_client()
        count = len(call.plan.batches)

        def send(number: int) -> BatchRanking:
            return self._send_batch(client, call, number)

        rankings = [send(0)] if count == 1 else _run_in_pool(self._get_executor(), send, count)
        return merge_rankings(call.plan, rankings, call.model, self._transform)

    async def arerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        model: str | None = None,
        deadline: float | None = None,
        **extra_body: Any,
    ) -> RerankResponse:
        """The async twin of :meth:`rerank`: batches are sent as concurrent tasks, at most
        ``max_concurrency`` at a time; cancelling the call cancels them all."""
        call = self._start_call(query, documents, top_n, model, deadline, extra_body)
        if not call.plan.batches:
            return RerankResponse(results=[], model=call.model)
        client = self._get_async_http_client()
        count = len(call.plan.batches)

        if count == 1:
            sending = self._asend_batch(client, call, 0)
            rankings = [await _within(sending, call)]
        else:
            limit = asyncio.Semaphore(self._settings.max_concurrency)

            async def send(number: int) -> BatchRanking:
                async with limit:
                    return await self._asend_batch(client, call, number)

            gathering = _gather_or_cancel([send(number) for number in range(count)])
            rankings = await _within(gathering, call)
        return merge_rankings(call.plan, rankings, call.model, self._transform)

    def close(self) -> None:
        """Close the connection pools and worker threads this client created.

        Clients passed in by the caller are left open. Async pools of event loops that are
        still running should be closed with :meth:`aclose` from that loop.
        """
        with self._lock:
            http_client, self._http_client = self._http_client, None
            executor, self._executor = self._executor, None
            self._async_http_clients.clear()
        if http_client is not None:
            http_client.close()
        if executor is not None:
            executor.shutdown(wait=True)

    async def aclose(self) -> None:
        """Close this loop's async connection pool, and everything :meth:`close` closes."""
        async_client = self._async_http_clients.pop(asyncio.get_running_loop(), None)
        if async_client is not None:
            await async_client.aclose()
        self.close()

    def __enter__(self) -> RerankClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> RerankClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- connection pools -----------------------------------------------------------------

    def _get_http_client(self) -> httpx.Client:
        if self._user_http_client is not None:
            return self._user_http_client
        client = self._http_client
        if client is None:
            with self._lock:
                if self._http_client is None:
                    self._http_client = httpx.Client(
                        timeout=self._settings.timeout, follow_redirects=False
                    )
                client = self._http_client
        return client

    def _get_async_http_client(self) -> httpx.AsyncClient:
        if self._user_async_http_client is not None:
            return self._user_async_http_client
        # Connection pools belong to the event loop that opened them, so each loop gets its
        # own; pools of loops that have closed are dropped.
        loop = asyncio.get_running_loop()
        client = self._async_http_clients.get(loop)
        if client is None:
            with self._lock:
                for old_loop in [old for old in self._async_http_clients if old.is_closed()]:
                    del self._async_http_clients[old_loop]
                client = httpx.AsyncClient(timeout=self._settings.timeout, follow_redirects=False)
                self._async_http_clients[loop] = client
        return client

    def _get_executor(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self._settings.max_concurrency,
                        thread_name_prefix="rerank-batch",
                    )
                executor = self._executor
        return executor

    # -- one batch, with retries ----------------------------------------------------------

    def _start_call(
        self,
        query: object,
        documents: object,
        top_n: object,
        model: str | None,
        deadline: float | None,
        extra_body: Mapping[str, Any],
    ) -> _Call:
        """Check the arguments and plan the call, before anything is sent."""
        budget = check_deadline(self._settings.deadline if deadline is None else deadline)
        plan = plan_rerank(query, documents, top_n, self._settings.max_documents_per_request)
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a string or None, got {type(model).__name__}")
        expires = None if budget is None else time.monotonic() + budget
        return _Call(plan, model or self._settings.model, extra_body, budget, expires)

    def _prepare(self, call: _Call, number: int) -> tuple[Batch, bytes, str]:
        batch = call.plan.batches[number]
        body = encode_request(
            self._settings.dialect, call.plan, batch, call.model, call.extra_body, self._path
        )
        label = f"batch {number + 1}/{len(call.plan.batches)} ({len(batch.texts)} documents)"
        logger.debug("POST %s %s, %d bytes", self._settings.endpoint, label, len(body))
        return batch, body, label

    def _attempt_timeout(self, call: _Call, retries_done: int) -> httpx.Timeout:
        """This attempt's timeout: the client's, shortened to what is left of the deadline."""
        if call.expires is None:
            return self._settings.timeout
        left = call.expires - time.monotonic()
        if left <= 0:
            raise call.deadline_error(retries_done)
        return shorten_timeout(self._settings.timeout, left)

    def _secret(self) -> str | None:
        key = self._settings.api_key
        return key.get_secret_value() if key is not None else None

    def _decode(self, response: httpx.Response, batch: Batch) -> BatchRanking:
        return decode_response(
            self._settings.dialect,
            response.status_code,
            response.content,
            len(batch.texts),
            self._secret(),
        )

    def _status_error(self, response: httpx.Response) -> RerankError:
        return make_status_error(
            self._settings.dialect,
            response.status_code,
            response.reason_phrase,
            response.content,
            response.headers,
            self._secret(),
        )

    def _transport_error(self, exc: httpx.TransportError) -> RerankError:
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"no answer from {self._settings.endpoint} in time: {detail}")
        return APIConnectionError(
            f"connection to {self._settings.endpoint} failed: {type(exc).__name__}: {detail}"
        )

    def _next_wait(
        self,
        call: _Call,
        error: RerankError,
        retries_done: int,
        response: httpx.Response | None,
        label: str,
    ) -> float | None:
        """Seconds to wait before retrying after ``error``, or ``None`` to give up: the
        retries are used up, or the status is one that retrying cannot help."""
        if response is not None and not is_retryable_status(response.status_code):
            return None
        policy = self._settings.retry
        if retries_done >= policy.max_retries:
            return None
        retry_after = parse_retry_after(response.headers) if response is not None else None
        wait = retry_wait(retries_done, retry_after, policy, self._random.random())
        if call.expires is not None and time.monotonic() + wait >= call.expires:
            return None  # the retry could not finish within the deadline
        cause = f"HTTP {response.status_code}" if response is not None else type(error).__name__
        logger.warning(
            "rerank %s failed (%s); retry %d of %d in %.2fs",
            label,
            cause,
            retries_done + 1,
            policy.max_retries,
            wait,
        )
        return wait

    def _send_batch(self, client: httpx.Client, call: _Call, number: int) -> BatchRanking:
        batch, body, label = self._prepare(call, number)
        retries_done = 0
        while True:
            response: httpx.Response | None = None
            cause: BaseException | None = None
            try:
                response = client.post(
                    self._settings.endpoint,
                    content=body,
                    headers=self._settings.headers,
                    timeout=self._attempt_timeout(call, retries_done),
                )
            except httpx.TransportError as exc:
                error, cause = self._transport_error(exc), exc
            else:
                if response.is_success:
                    return self._decode(response, batch)
                error = self._status_error(response)
            wait = self._next_wait(call, error, retries_done, response, label)
            if wait is None:
                raise error from cause
            self._sleep(wait)
            retries_done += 1

    async def _asend_batch(
        self, client: httpx.AsyncClient, call: _Call, number: int
    ) -> BatchRanking:
        batch, body, label = self._prepare(call, number)
        retries_done = 0
        while True:
            response: httpx.Response | None = None
            cause: BaseException | None = None
            try:
                response = await client.post(
                    self._settings.endpoint,
                    content=body,
                    headers=self._settings.headers,
                    timeout=self._attempt_timeout(call, retries_done),
                )
            except httpx.TransportError as exc:
                error, cause = self._transport_error(exc), exc
            else:
                if response.is_success:
                    return self._decode(response, batch)
                error = self._status_error(response)
            wait = self._next_wait(call, error, retries_done, response, label)
            if wait is None:
                raise error from cause
            await self._async_sleep(wait)
            retries_done += 1


@dataclass(frozen=True, slots=True)
class _Call:
    """One rerank call in progress: its plan, model, extra body fields and deadline."""

    plan: RerankPlan
    model: str | None
    extra_body: Mapping[str, Any]
    deadline: float | None
    expires: float | None  # time.monotonic() by which the call must end

    def deadline_error(self, retries_done: int) -> APITimeoutError:
        attempts = f" after {retries_done + 1} attempts" if retries_done else ""
        return APITimeoutError(f"the call's deadline of {self.deadline:g}s ran out{attempts}")


async def _within(awaitable: Awaitable[T], call: _Call) -> T:
    """Await ``awaitable``, cancelling it when the call's deadline runs out."""
    if call.expires is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, max(0.0, call.expires - time.monotonic()))
    except asyncio.TimeoutError:
        raise call.deadline_error(0) from None


def _run_in_pool(executor: ThreadPoolExecutor, function: Callable[[int], T], count: int) -> list[T]:
    """``[function(i) for i in range(count)]`` on the pool; on the first failure the batches
    not yet started are cancelled and the error is raised."""
    futures: list[Future[T]] = [executor.submit(function, number) for number in range(count)]
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise


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
