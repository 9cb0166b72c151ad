"""``RerankClient``: the sync and async I/O shells around the sans-IO core.

Both paths plan with the same pure functions, run each batch through the same flow
(:mod:`._flow`: request, retry decision, decoding) and merge with the same function; they
differ only in how they send and how they sleep.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import random
import threading
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from ._auth import Authorizer
from ._budget import counter_for
from ._cache import credential_scope, score_cache_for
from ._config import ClientSettings, TimeoutTypes, resolve_settings
from ._constants import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    LOGGER_NAME,
)
from ._core import BatchRanking, check_score_transform, merge_rankings
from ._documents import Image
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    RerankError,
    ResponseFormatError,
    ServerError,
)
from ._flow import (
    Answer,
    Call,
    Connection,
    Flow,
    Send,
    adrive,
    attempt_bounds,
    batch_flow,
    document_limit,
    drive,
    start_call,
    transport_error,
)
from ._observe import Counters, RerankStats
from ._ratelimit import AdaptiveGate, RateLimit, RateLimiter, limiter_for
from ._retry import RetryPolicy, seconds_to_sleep
from ._secrets import HiddenHeaders, Scrubber, as_secret, secret_values
from ._text import display_url
from ._trace import CallSpan, attempt_span, call_span
from ._transport import BodyReader, DeadlineTransport, attempt_deadline
from ._types import NOT_GIVEN, NotGiven, RerankResponse
from ._version import __version__
from .dialects._registry import authorizer_for

__all__ = ["RerankClient"]

T = TypeVar("T")

logger = logging.getLogger(LOGGER_NAME)

_USER_AGENT = f"rerank-integrations/{__version__}"


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
    full endpoint (``https://h/v1/rerank``); a dialect named after a hosted service knows its
    public base URL.

    Cloud dialects take their credentials where those clouds keep them: ``watsonx`` exchanges
    the API key for an IAM token; ``vertex`` uses Google application default credentials
    (``google-auth``, extra ``google``) unless an access token is passed as ``api_key``;
    ``bedrock`` signs with AWS SigV4 (``botocore``, extra ``aws``) and the usual AWS chain.

    Args:
        base_url: where the API lives.
        api_key: the API key; kept as a ``SecretStr`` and never shown.
        model: the default model for every call.
        dialect: the wire format (``"generic"`` unless the server speaks another).
        timeout: seconds per HTTP request (connect capped at 5 s), an ``httpx.Timeout``, or
            ``None`` for no limit.
        max_retries: retries per request after the first attempt, for connection errors,
            timeouts, 408, 409, 429 and 5xx; overrides ``retry.max_retries`` (default 2).
        retry: the whole retry policy (waits, growth, jitter, statuses), a ``RetryPolicy``.
        max_documents_per_request: larger calls are split into batches of at most this many
            distinct documents (default: the dialect's limit, 1,000 for ``generic``).
        max_concurrency: batches of one call in flight at once.
        deadline: seconds a whole call may take, across all its batches and retries;
            ``None`` (the default) bounds only each request, by ``timeout``.
        score_transform: ``None`` or ``"none"`` returns the server's scores as they are;
            ``"sigmoid"`` maps raw logits (NIM, llama.cpp, raw-score modes) to 0..1, for
            thresholds. The order is the same either way.
        extra_body: fields added to every request body (a vendor's own options, such as NIM's
            ``truncate`` or Infinity's ``raw_scores``), merged one level deep.
        headers: extra headers for every request.
        auth_url: the IAM token endpoint of the ``watsonx`` dialect (default IBM Cloud's,
            ``https://iam.cloud.ibm.com/identity/token``), for private clouds and tests.
        credentials: cloud credentials instead of the provider's usual chain: any
            ``google.auth`` credentials for ``vertex``; botocore credentials, a botocore
            session or a mapping of ``aws_access_key_id``/``aws_secret_access_key``/
            ``aws_session_token`` for ``bedrock``. Never shown.
        project: the Google Cloud project of the ``vertex`` endpoint (default: the one the
            application default credentials name).
        location: where the cloud service runs: the ``vertex`` location (default
            ``global``) or the ``bedrock`` AWS region (default: the endpoint's, else the
            AWS configuration's).
        http_client: an ``httpx.Client`` to use instead of the client's own; not closed by us.
        async_http_client: an ``httpx.AsyncClient`` to use instead of the client's own (then
            all async calls must run on that client's event loop); not closed by us.
        async_transport: what the client's own async pools send with: ``"httpx"`` (httpcore,
            the default) or ``"aiohttp"`` (``httpx-aiohttp``, extra ``aiohttp``), which
            spends a fraction of the CPU under many concurrent calls. Either way the pool is
            an ``httpx.AsyncClient``.
        max_response_bytes: the largest answer accepted (default 32 MiB); a larger one is
            refused while it arrives.
        max_request_bytes: the largest request body to send (else ``RERANK_MAX_REQUEST_BYTES``,
            else the dialect's limit); batches are sized to fit, and a 413 teaches a limit.
        max_tokens_per_request: tokens a request may hold, the query counted once per
            document.
        max_tokens_per_document: tokens the model reads of one document with the query.
        long_documents: what to do with a document longer than that: ``"server"`` (send it
            as it is, the default), ``"truncate"``, ``"chunk"`` (windows scored apart, the
            document scored by ``chunk_aggregate``) or ``"error"`` (refuse before sending).
        chunk_overlap: tokens two windows of a chunked document share.
        chunk_aggregate: a chunked document's score, its best window's (``"max"``) or their
            ``"mean"``.
        tokenizer: counts tokens exactly (a ``str -> int`` function, a ``tokenizers``
            tokenizer, a ``tiktoken`` encoding); ``None``: a conservative estimate.
        rate_limit: a budget per minute (:class:`RateLimit`) or a shared
            :class:`RateLimiter`; calls wait for room within their deadline.
        adaptive_concurrency: halve the batches in flight on a 429 and grow them back as
            requests succeed.
        cache: keeps each (query, document) score: a :class:`RerankCache`, a ``dict``, a
            ``diskcache.Cache`` or any object with ``get`` and ``set``. Only documents not
            in it are sent, each asked for its score. Leave it off for listwise models
            (``jina-reranker-v3``), whose scores depend on the rest of the batch.
        fallbacks: clients tried in order when a call fails after its retries with a
            connection error, a timeout, a 429 or a 5xx (never a 4xx refusal of the input),
            within what is left of the call's deadline. Each uses its own model and
            settings; ``response.endpoint`` says which answered.
        trace_content: record the query and the documents' text in OpenTelemetry spans
            (they may be private; by default spans carry ids, scores and sizes only).

    The client is safe to share between threads and between event loops: it keeps one
    connection pool for sync calls and one per event loop for async calls (closed when
    ``asyncio.run`` ends that loop). Release them with :meth:`close` / :meth:`aclose`, or use
    the client as a (async) context manager. Copies share the ``http_client`` you passed;
    a client built on one cannot be pickled.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        model: str | None = None,
        *,
        dialect: str | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        max_documents_per_request: int | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        deadline: float | None = None,
        score_transform: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth_url: str | None = None,
        credentials: object = None,
        project: str | None = None,
        location: str | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_request_bytes: int | None = None,
        max_tokens_per_request: int | None = None,
        max_tokens_per_document: int | None = None,
        long_documents: str | None = None,
        chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
        chunk_aggregate: str = "max",
        tokenizer: object = None,
        rate_limit: RateLimit | RateLimiter | None = None,
        adaptive_concurrency: bool = False,
        cache: object = None,
        fallbacks: Sequence[RerankClient] | None = None,
        trace_content: bool = False,
        async_transport: str = "httpx",
    ) -> None:
        # Secrets leave this frame's locals at once: error trackers record them.
        api_key = as_secret(api_key)
        headers = HiddenHeaders(headers) if isinstance(headers, Mapping) else headers
        self._settings: ClientSettings = resolve_settings(
            base_url=base_url,
            api_key=api_key,
            model=model,
            dialect=dialect,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            max_documents_per_request=max_documents_per_request,
            max_concurrency=max_concurrency,
            deadline=deadline,
            score_transform=score_transform,
            extra_body=extra_body,
            max_response_bytes=max_response_bytes,
            headers=headers,
            user_agent=_USER_AGENT,
            auth_url=auth_url,
            credentials=credentials,
            project=project,
            location=location,
            max_request_bytes=max_request_bytes,
            max_tokens_per_request=max_tokens_per_request,
            max_tokens_per_document=max_tokens_per_document,
            long_documents=long_documents,
            chunk_overlap=chunk_overlap,
            chunk_aggregate=chunk_aggregate,
            tokenizer=tokenizer,
            rate_limit=rate_limit,
            adaptive_concurrency=adaptive_concurrency,
            cache=cache,
            fallbacks=_checked_fallbacks(fallbacks),
            trace_content=trace_content,
            async_transport=async_transport,
        )
        self._start(http_client, async_http_client)

    def _start(
        self, http_client: httpx.Client | None, async_http_client: httpx.AsyncClient | None
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError(
                f"http_client must be an httpx.Client, got {type(http_client).__name__}"
            )
        if async_http_client is not None and not isinstance(async_http_client, httpx.AsyncClient):
            raise TypeError(
                "async_http_client must be an httpx.AsyncClient, "
                f"got {type(async_http_client).__name__}"
            )
        settings = self._settings
        headers = settings.wire_headers()
        counters = Counters()
        secrets = secret_values(settings.api_key, headers, settings.endpoint)
        self._connection = Connection(
            url=settings.endpoint,
            shown_url=display_url(settings.endpoint),
            headers=headers,
            scrubber=Scrubber(secrets),
            path=urlsplit(settings.endpoint).path,
            alternate=settings.alternate_endpoint,
            logits_expected=settings.dialect.score_scale == "logit"
            or settings.score_transform == "sigmoid",
            counter=counter_for(settings.tokenizer),
            limiter=limiter_for(settings.rate_limit),
            gate=AdaptiveGate(settings.max_concurrency) if settings.adaptive_concurrency else None,
            counters=counters,
            scores=score_cache_for(
                settings.cache, counters, credential_scope(secrets, settings.credentials)
            ),
        )
        self._authorizer: Authorizer | None = authorizer_for(self._settings, _USER_AGENT)
        self._transform = check_score_transform(self._settings.score_transform)
        self._user_http_client = http_client
        self._user_async_http_client = async_http_client
        self._http_client: httpx.Client | None = None
        self._async_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = (
            weakref.WeakKeyDictionary()
        )
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._random = random.Random()

    def __copy__(self) -> RerankClient:
        return self._copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> RerankClient:
        return self._copy()

    def _copy(self) -> RerankClient:
        # Pools and threads are the copy's own; a pool the caller passed in is shared, so
        # the copy keeps its proxy and TLS set-up.
        copy = object.__new__(RerankClient)
        copy._settings = self._settings
        copy._start(self._user_http_client, self._user_async_http_client)
        copy._authorizer = self._authorizer  # one token cache for a client and its copies
        return copy

    def __getstate__(self) -> dict[str, Any]:
        if self._user_http_client is not None or self._user_async_http_client is not None:
            raise TypeError(
                "a RerankClient built on your own http_client or async_http_client cannot be "
                "pickled (the pool cannot travel, and a copy without it would skip its proxy "
                "and TLS set-up); build the client again where it is needed"
            )
        # Pools, threads and locks cannot travel either; a copy opens its own.
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

    def stats(self) -> RerankStats:
        """What this client has done so far: calls, requests, retries, 429s, cache hits and
        misses, fallbacks used, passthroughs, documents and tokens."""
        return self._connection.counters.snapshot()

    def __repr__(self) -> str:
        settings: ClientSettings | None = getattr(self, "_settings", None)
        if settings is None:  # a client whose construction failed; a repr never raises
            return "RerankClient(<not configured>)"
        return (
            f"RerankClient(endpoint={display_url(settings.endpoint)!r}, "
            f"model={settings.model!r}, dialect={settings.dialect.name!r}, "
            f"api_key={'***' if settings.api_key else None})"
        )

    def rerank(
        self,
        query: str,
        documents: Sequence[str | Image | Mapping[str, Any]],
        *,
        top_n: int | None = None,
        model: str | NotGiven | None = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
        rank_fields: Sequence[str] | None = None,
        **fields: Any,
    ) -> RerankResponse:
        r"""Rank ``documents`` by relevance to ``query``.

        Args:
            query: the search query (not empty).
            documents: the candidates: strings, :class:`Image`\ s (for the dialects that
                take images: ``jina``, ``vllm``, ``dashscope``) or mappings of fields
                (objects for Cohere v1, ``together``, ``mixedbread`` and ``pinecone``;
                ``field: value`` lines of text for the rest).
            top_n: how many results to return, best first; ``None`` (or more than there are
                documents) returns all.
            model: the model for this call; left out or ``None``, the client's.
            deadline: seconds this whole call may take, across every batch and retry; left
                out, the client's ``deadline``; ``None``: only per-request timeouts.
            extra_body: fields added to this call's request bodies, over the client's.
            rank_fields: the fields of mapping documents to rank on (all, if not given).
            **fields: more such fields; a name that looks like a misspelt argument
                (``top_k``, ``toop_n``) is refused (pass it in ``extra_body`` to send it).

        Returns:
            A :class:`RerankResponse` whose ``results`` index into ``documents``.

        Raises:
            TypeError, ValueError: bad arguments, before anything is sent.
            RerankError: a subclass saying what went wrong with the server.
        """
        arguments = (query, documents, top_n, model, deadline, extra_body, fields, rank_fields)
        call = start_call(self._settings, self._connection, *arguments)
        self._connection.counters.add(calls=1)
        with self._span(call) as span:
            span.response = self._answer(call, arguments)
        return span.response

    def _answer(self, call: Call, arguments: tuple[Any, ...]) -> RerankResponse:
        """The sync path of a planned call: planned again after a limit is learned, then
        handed to the fallbacks if it fails in a way they may help with."""
        try:
            while True:
                try:
                    return self._ranked(call)
                except APIStatusError as error:
                    if not self._learns_document_limit(error):
                        raise
                    call = self._planned_again(call, arguments)
        except RerankError as error:
            if not self._settings.fallbacks or not falls_back(error):
                raise
            failures = _Fallbacks(self, call, error)
        query, documents, top_n = arguments[:3]
        for fallback, left in failures:
            try:
                response = fallback.rerank(
                    query, documents, top_n=top_n, deadline=left, rank_fields=arguments[7]
                )
            except RerankError as failure:
                failures.failed(failure)
            else:
                return failures.answered(response)
        raise failures.error

    def _ranked(self, call: Call) -> RerankResponse:
        """One planned call on the sync path: its batches, in a pool when there are several."""
        if not call.plan.batches:  # no documents, or every score known
            return self._merged(call, [])
        client = self._get_http_client()

        def send(action: Send) -> Answer | RerankError:
            return _send(client, action)

        gate = self._connection.gate

        def run(number: int) -> BatchRanking:
            if gate is None:
                return drive(self._flow(call, number), send, _sleep)
            gate.acquire()
            try:
                return drive(self._flow(call, number), send, _sleep)
            finally:
                gate.release()

        count = len(call.plan.batches)
        if count > 1:
            drive(self._warm_up(call), send, _sleep)
        rankings = [run(0)] if count == 1 else _run_in_pool(self._get_executor(), run, count)
        return self._merged(call, rankings)

    async def arerank(
        self,
        query: str,
        documents: Sequence[str | Image | Mapping[str, Any]],
        *,
        top_n: int | None = None,
        model: str | NotGiven | None = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_body: Mapping[str, Any] | None = None,
        rank_fields: Sequence[str] | None = None,
        **fields: Any,
    ) -> RerankResponse:
        """The async twin of :meth:`rerank`: batches are sent as concurrent tasks, at most
        ``max_concurrency`` at a time; cancelling the call cancels them all."""
        arguments = (query, documents, top_n, model, deadline, extra_body, fields, rank_fields)
        call = start_call(self._settings, self._connection, *arguments)
        self._connection.counters.add(calls=1)
        with self._span(call) as span:
            span.response = await self._aanswer(call, arguments)
        return span.response

    async def _aanswer(self, call: Call, arguments: tuple[Any, ...]) -> RerankResponse:
        """The async twin of :meth:`_answer`."""
        try:
            while True:
                try:
                    return await self._aranked(call)
                except APIStatusError as error:
                    if not self._learns_document_limit(error):
                        raise
                    call = self._planned_again(call, arguments)
        except RerankError as error:
            if not self._settings.fallbacks or not falls_back(error):
                raise
            failures = _Fallbacks(self, call, error)
        query, documents, top_n = arguments[:3]
        for fallback, left in failures:
            try:
                response = await fallback.arerank(
                    query, documents, top_n=top_n, deadline=left, rank_fields=arguments[7]
                )
            except RerankError as failure:
                failures.failed(failure)
            else:
                return failures.answered(response)
        raise failures.error

    def _span(self, call: Call) -> AbstractContextManager[CallSpan]:
        """The call's trace span (nothing without OpenTelemetry)."""
        plan = call.plan
        settings = self._settings
        return call_span(
            plan.documents,
            plan.query,
            plan.top_n,
            call.model,
            settings.endpoint,
            settings.dialect.name,
            settings.trace_content,
            len(plan.known or ()),
        )

    async def _aranked(self, call: Call) -> RerankResponse:
        """One planned call on the async path: its batches as concurrent tasks."""
        if not call.plan.batches:  # no documents, or every score known
            return self._merged(call, [])
        client = await self._get_async_http_client()

        async def send(action: Send) -> Answer | RerankError:
            return await _asend(client, action)

        count = len(call.plan.batches)
        if count > 1:
            await _within(adrive(self._warm_up(call), send, _asleep), call)
        gate = self._connection.gate

        async def one(number: int) -> BatchRanking:
            if gate is None:
                return await adrive(self._flow(call, number), send, _asleep)
            await gate.aacquire()
            try:
                return await adrive(self._flow(call, number), send, _asleep)
            finally:
                gate.release()

        if count == 1:
            rankings = [await _within(one(0), call)]
        else:
            limit = asyncio.Semaphore(self._settings.max_concurrency)

            async def run(number: int) -> BatchRanking:
                async with limit:
                    return await one(number)

            gathering = _gather_or_cancel([run(number) for number in range(count)])
            rankings = await _within(gathering, call)
        return self._merged(call, rankings)

    def _planned_again(self, call: Call, arguments: tuple[Any, ...]) -> Call:
        """The call planned again with a limit just learned, within what is left of its
        deadline."""
        query, documents, top_n, model, deadline, extra_body, fields, rank_fields = arguments
        if call.expires is not None:
            deadline = call.time_left()
            if deadline is not None and deadline <= 0:
                raise call.deadline_error()
        again = (query, documents, top_n, model, deadline, extra_body, fields, rank_fields)
        fresh = start_call(self._settings, self._connection, *again)
        return dataclasses.replace(fresh, expires=call.expires, deadline=call.deadline)

    def close(self) -> None:
        """Close the connection pools and worker threads this client created.

        Clients passed in by the caller are left open. Async pools of event loops that are
        still running should be closed with :meth:`aclose` from that loop.
        """
        with self._lock:
            http_client, self._http_client = self._http_client, None
            executor, self._executor = self._executor, None
            self._async_pools.clear()
        if http_client is not None:
            http_client.close()
        if executor is not None:
            executor.shutdown(wait=True)

    async def aclose(self) -> None:
        """Close this loop's async connection pool, and everything :meth:`close` closes."""
        pool = self._async_pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()
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

    # -- calls ------------------------------------------------------------------------------

    def _merged(self, call: Call, rankings: Sequence[BatchRanking]) -> RerankResponse:
        endpoint = self._connection.shown_url
        return merge_rankings(call.plan, rankings, call.model, self._transform, endpoint)

    def _learns_document_limit(self, error: APIStatusError) -> bool:
        """Whether a server's refusal of one long document taught a limit that the call can
        be planned again with (when it cuts long documents); otherwise the error says what
        to do."""
        limit = document_limit(error)
        if limit is None:
            return False
        learned = self._connection.learned
        known = learned.document_tokens
        if self._settings.long_documents in ("chunk", "truncate") and (
            known is None or limit < known
        ):
            learned.learn(document_tokens=limit)
            return True
        if self._settings.long_documents == "server":
            hint = (
                f"; the server reads at most {limit} tokens a document: set "
                "long_documents='chunk' or 'truncate' to send long documents in parts"
            )
            head, sep, tail = error.message.partition(" | body: ")
            error.message = f"{head}{hint}{sep}{tail}"
            error.args = (error.message,)
        return False

    def _flow(self, call: Call, number: int) -> Flow[BatchRanking]:
        return batch_flow(
            self._settings, self._connection, call, number, self._random.random, self._authorizer
        )

    def _warm_up(self, call: Call) -> Flow[None]:
        """Fetch a token before a call's batches fan out, so that they share one exchange
        instead of each making its own, within what is left of the call's deadline. A
        failure here is left to each batch's retries."""
        if self._authorizer is None:
            return
        timeout, limit = attempt_bounds(self._settings, call)
        probe = Send(self.endpoint, b"", {}, timeout, limit)
        try:
            yield from self._authorizer.authorize(probe)
        except RerankError:
            return

    # -- connection pools -----------------------------------------------------------------

    def _get_http_client(self) -> httpx.Client:
        if self._user_http_client is not None:
            return self._user_http_client
        client = self._http_client
        if client is None:
            with self._lock:
                if self._http_client is None:
                    self._http_client = httpx.Client(
                        transport=DeadlineTransport(),
                        timeout=self._settings.timeout,
                        follow_redirects=False,
                    )
                    # A client dropped without close() still releases its connections.
                    weakref.finalize(self, self._http_client.close)
                client = self._http_client
        return client

    async def _get_async_http_client(self) -> httpx.AsyncClient:
        if self._user_async_http_client is not None:
            return self._user_async_http_client
        # Connection pools belong to the event loop that opened them, so each loop gets its
        # own, closed when the loop shuts down.
        loop = asyncio.get_running_loop()
        pool = self._async_pools.get(loop)
        if pool is None:
            client = _async_pool(self._settings)
            pool = _LoopPool(client, lambda: self._async_pools.pop(loop, None))
            with self._lock:
                self._async_pools[loop] = pool
            await pool.watch()
        return pool.client

    def _get_executor(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self._settings.max_concurrency,
                        thread_name_prefix="rerank-batch",
                    )
                    weakref.finalize(self, self._executor.shutdown, wait=False)
                executor = self._executor
        return executor


def falls_back(error: RerankError) -> bool:
    """Whether a fallback may answer after ``error``: the server was unreachable, slow,
    out of quota or broken (a connection error, a timeout, a 429, a 5xx), not a refusal of
    the input."""
    return isinstance(error, (APIConnectionError, RateLimitError, ServerError))


def _checked_fallbacks(fallbacks: object) -> tuple[RerankClient, ...]:
    if fallbacks is None:
        return ()
    if isinstance(fallbacks, (str, bytes, RerankClient)) or not isinstance(fallbacks, Sequence):
        raise TypeError(f"fallbacks must be a list of RerankClient, got {type(fallbacks).__name__}")
    for position, fallback in enumerate(fallbacks):
        if not isinstance(fallback, RerankClient):
            raise TypeError(
                f"fallbacks[{position}] must be a RerankClient, got {type(fallback).__name__}"
            )
    return tuple(fallbacks)


class _Fallbacks:
    """A failed call's way through its client's fallbacks, the same on both paths: which
    to try next and with how much of the deadline, and the error to raise when none
    answers (the last, caused by the one before)."""

    def __init__(self, client: RerankClient, call: Call, error: RerankError) -> None:
        self.primary = client._connection
        self.clients = client._settings.fallbacks
        self.call = call
        self.error = error

    def __iter__(self) -> Iterator[tuple[RerankClient, float | NotGiven | None]]:
        failed = self.primary.shown_url
        for number, fallback in enumerate(self.clients, 1):
            if not falls_back(self.error):
                return
            left = self.call.time_left()
            if left is not None and left <= 0:
                return
            logger.warning(
                "rerank via %s failed (%s: %s); trying fallback %d of %d, %s",
                failed,
                type(self.error).__name__,
                self.error,
                number,
                len(self.clients),
                display_url(fallback.endpoint),
            )
            failed = display_url(fallback.endpoint)
            # Without a deadline of the call's own, the fallback keeps its own.
            yield fallback, NOT_GIVEN if left is None else left

    def failed(self, error: RerankError) -> None:
        error.__cause__ = self.error
        self.error = error

    def answered(self, response: RerankResponse) -> RerankResponse:
        self.primary.counters.add(fallbacks=1)
        return response


class _LoopPool:
    """One event loop's connection pool, closed when ``asyncio.run`` shuts that loop down.

    The loop closes unfinished async generators before it closes itself
    (``shutdown_asyncgens``); a generator that holds the pool is how the pool hears of it.
    """

    def __init__(self, client: httpx.AsyncClient, forget: Callable[[], object]) -> None:
        self.client = client
        self._forget = forget
        self._keeper = self._keep()

    async def watch(self) -> None:
        await self._keeper.__anext__()  # registered with the running loop from here on

    async def aclose(self) -> None:
        await self._keeper.aclose()

    async def _keep(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            self._forget()  # the owner lets go, so the closed loop can be freed
            await self.client.aclose()


def _async_pool(settings: ClientSettings) -> httpx.AsyncClient:
    """A new async connection pool on the transport the settings name."""
    if settings.async_transport == "aiohttp":
        from httpx_aiohttp import HttpxAiohttpClient

        return HttpxAiohttpClient(timeout=settings.timeout, follow_redirects=False)
    return httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False)


def _send(client: httpx.Client, action: Send) -> Answer | RerankError:
    """One attempt on the sync path, in its own trace span."""
    with attempt_span(action) as span:
        outcome = _send_once(client, action)
        span.answered(outcome)
    return outcome


def _send_once(client: httpx.Client, action: Send) -> Answer | RerankError:
    """One attempt on the sync path: the whole answer by ``action.limit``, read in chunks."""
    url = display_url(action.url)
    expires = None if action.limit is None else time.monotonic() + action.limit
    try:
        with attempt_deadline(expires):
            request = client.build_request(
                "POST",
                action.url,
                content=action.content,
                headers=action.headers,
                timeout=action.timeout,
            )
            response = client.send(request, stream=True)
            try:
                reader = BodyReader(response, action.max_bytes, expires, url)
                for chunk in response.iter_bytes():
                    if not reader.feed(chunk):
                        break
            finally:
                response.close()
    except httpx.TransportError as exc:
        return transport_error(exc, url)
    except ResponseFormatError as exc:
        return exc
    return Answer(response.status_code, response.reason_phrase, response.headers, reader.content())


async def _asend(client: httpx.AsyncClient, action: Send) -> Answer | RerankError:
    """One attempt on the async path, in its own trace span."""
    with attempt_span(action) as span:
        outcome = await _asend_once(client, action)
        span.answered(outcome)
    return outcome


async def _asend_once(client: httpx.AsyncClient, action: Send) -> Answer | RerankError:
    """One attempt on the async path: the whole answer by ``action.limit``."""
    url = display_url(action.url)
    try:
        if _timeout is None:  # Python 3.10
            return await asyncio.wait_for(_attempt(client, action, url), action.limit)
        async with _timeout(action.limit):
            return await _attempt(client, action, url)
    except asyncio.TimeoutError:
        return APITimeoutError(f"no complete answer from {url} within {action.limit:g}s")


async def _attempt(client: httpx.AsyncClient, action: Send, url: str) -> Answer | RerankError:
    try:
        request = client.build_request(
            "POST",
            action.url,
            content=action.content,
            headers=action.headers,
            timeout=action.timeout,
        )
        response = await client.send(request, stream=True)
        try:
            reader = BodyReader(response, action.max_bytes, None, url)
            async for chunk in response.aiter_bytes():
                if not reader.feed(chunk):
                    break
        finally:
            await response.aclose()
    except httpx.TransportError as exc:
        return transport_error(exc, url)
    except ResponseFormatError as exc:
        return exc
    return Answer(response.status_code, response.reason_phrase, response.headers, reader.content())


#: ``asyncio.timeout`` (Python 3.11+), which bounds a block without a task of its own.
_timeout: Any = getattr(asyncio, "timeout", None)


def _sleep(seconds: float) -> None:
    time.sleep(seconds_to_sleep(seconds))


async def _asleep(seconds: float) -> None:
    await asyncio.sleep(seconds_to_sleep(seconds))


async def _within(awaitable: Awaitable[T], call: Call) -> T:
    """Await ``awaitable``, cancelling it when the call's deadline runs out."""
    left = call.time_left()
    if left is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, max(0.0, left))
    except asyncio.TimeoutError:
        raise call.deadline_error() from None


def _run_in_pool(executor: ThreadPoolExecutor, function: Callable[[int], T], count: int) -> list[T]:
    """``[function(i) for i in range(count)]`` on the pool; on the first failure the batches
    not yet started are cancelled and the error is raised."""
    # Each batch runs in a copy of the caller's context, so its spans nest in the call's.
    futures: list[Future[T]] = [
        executor.submit(contextvars.copy_context().run, function, number) for number in range(count)
    ]
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
