"""``RerankClient``: the façade. Its public methods delegate; the work is done in the stages.

A call goes: :func:`~._call.start_call` (every argument checked once, the plan made), then
:class:`~._run.Engine` (the batches sent through the batch flow, merged, planned again or
handed to fallbacks); the client adds the call's trace span and the count of calls. Its
settings are resolved by :mod:`._config`, its state kept in :mod:`._state` and its pools in
:mod:`._pools`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from ._constants import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
)
from ._secrets import HiddenHeaders, as_secret
from ._text import display_url
from ._types import NOT_GIVEN, NotGiven, RerankResponse
from ._version import __version__

# The settings, the plan, the call machinery and httpx load with the first client, not with
# the package: importing an adapter stays cheap (the budget in benchmarks/import_time.py; a
# test in tests/unit/test_imports.py keeps them out of an adapter's import).
if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import httpx

    from ._auth import Authorizer
    from ._call import Call
    from ._config import ClientSettings, TimeoutTypes
    from ._documents import Image
    from ._observe import RerankStats
    from ._ratelimit import RateLimit, RateLimiter
    from ._retry import RetryPolicy
    from ._trace import CallSpan
    from ._usage import Price
    from .dialects import PromptTemplate

__all__ = ["RerankClient"]

_USER_AGENT = f"rerank-integrations/{__version__}"


class RerankClient:
    """A client for an HTTP rerank API, with a sync and an async method.

    Settings come from the arguments, else from the environment (read here, only for
    arguments left as ``None``): ``RERANK_BASE_URL`` (required one way or the other),
    ``RERANK_API_KEY``, ``RERANK_MODEL``, ``RERANK_DIALECT`` (default ``generic``),
    ``RERANK_MAX_DOCUMENTS_PER_REQUEST``, ``RERANK_MAX_REQUEST_BYTES``,
    ``RERANK_MAX_TOKENS_PER_REQUEST``, ``RERANK_MAX_TOKENS_PER_DOCUMENT`` and
    ``RERANK_LONG_DOCUMENTS`` and ``RERANK_INSTRUCTION``. Each setting is declared once, in
    :mod:`rerank_integrations._settings`; the entries below follow it (a test checks them).

    ``base_url`` may be a host root (``https://h``), a versioned root (``https://h/v1``) or the
    full endpoint (``https://h/v1/rerank``); a dialect named after a hosted service knows its
    public base URL.

    Cloud dialects take their credentials where those clouds keep them: ``watsonx`` exchanges
    the API key for an IAM token; ``vertex`` uses Google application default credentials
    (``google-auth``, extra ``google``) unless an access token is passed as ``api_key``;
    ``bedrock`` signs with AWS SigV4 (``botocore``, extra ``aws``) and the usual AWS chain;
    ``oci`` signs with the ``oci`` SDK's signer (extra ``oci``) and the OCI configuration.

    Args:
        base_url: where the API lives: a host root (``https://h``), a versioned root
            (``https://h/v1``) or the full endpoint (default: the dialect's public host, else
            required; environment: ``RERANK_BASE_URL``).
        api_key: the API key, sent in the dialect's auth header (``Authorization: Bearer ...``
            for most); kept as a ``SecretStr``, never shown or serialized (default: none;
            environment: ``RERANK_API_KEY``).
        model: the model for every call; unset, the field is left out and the server decides
            (default: none; environment: ``RERANK_MODEL``).
        dialect: the wire format: ``generic`` unless the server speaks another (the dialects'
            table) (default: ``generic``; environment: ``RERANK_DIALECT``).
        timeout: seconds one attempt may take, connect to last byte (connect capped at 5 s), or
            an ``httpx.Timeout`` (client only); ``None`` waits forever (default: 60 s, connect 5
            s).
        max_retries: retries per request after the first attempt, for connection errors,
            timeouts, 408, 409, 429 and 5xx; overrides ``retry``'s (default: ``2``).
        retry: the whole retry policy (waits, growth, jitter, statuses), a ``RetryPolicy``
            (default: ``RetryPolicy()``).
        max_documents_per_request: larger calls are split into batches of at most this many
            distinct documents (default: the dialect's (1,000 for ``generic``); environment:
            ``RERANK_MAX_DOCUMENTS_PER_REQUEST``).
        max_concurrency: batches of one call in flight at once (default: ``16``).
        deadline: seconds a whole call may take, across its batches and retries (also per call:
            ``rerank(..., deadline=2)``); ``None`` bounds each attempt only, by ``timeout``
            (default: none).
        score_transform: ``"sigmoid"`` maps raw logits (NIM, llama.cpp, raw-score modes) to
            0..1, for thresholds; ``None`` or ``"none"`` keeps the server's scores; the order
            never changes (default: none).
        extra_body: fields added to every request body, merged one level deep: a vendor's own
            options (NIM's ``truncate``, Infinity's ``raw_scores``) (default: none).
        instruction: what the ranking should favour, in words (``"prefer maintenance guides"``),
            for every call (also per call: ``rerank(..., instruction=...)``); carried as each
            dialect can (its own field, the model's prompt template or before the query) or
            refused before sending (the docs: the client, "Instructions") (default: none;
            environment: ``RERANK_INSTRUCTION``).
        instruction_template: the prompt template that carries the instruction on servers that
            pass texts to the model as they are (``generic``, ``vllm``, ``tei``, ``sglang``,
            ``infinity``): a ``PromptTemplate``, a registered template's name, or ``"none"``;
            ``None``: chosen by the model name (Qwen3-Reranker's) (default: by the model name).
        headers: extra HTTP headers for every request; never serialized (they may carry
            credentials) (default: none).
        auth_url: ``watsonx``: the IAM token endpoint, for private clouds and tests (default:
            IBM Cloud's).
        credentials: cloud credentials instead of the provider's usual chain: ``google.auth``
            credentials for ``vertex``; botocore credentials, a session or a mapping of
            ``aws_access_key_id``/``aws_secret_access_key``/``aws_session_token`` for
            ``bedrock``; an ``oci`` signer or an OCI configuration mapping for ``oci``; never
            shown or serialized (default: the provider's chain).
        project: ``vertex``: the Google Cloud project; ``oci``: the OCID of the compartment to
            call from (required) (default: the credentials').
        location: where the cloud service runs: the ``vertex`` location, the ``bedrock`` AWS
            region or the ``oci`` OCI region (default: ``global`` / the endpoint's or the AWS or
            OCI configuration's region).
        http_client: an ``httpx.Client`` to send with instead of the client's own pool; not
            closed by the client (default: own pool).
        async_http_client: an ``httpx.AsyncClient`` to send with instead of the client's own
            pools (every async call must then run on its event loop); not closed by the client
            (default: own pools).
        max_response_bytes: the largest answer accepted, in bytes; a larger one is refused while
            it arrives (default: 32 MiB).
        max_request_bytes: the largest request body to send; batches are sized to fit, and a
            server's 413 teaches a limit (default: the dialect's, else none; environment:
            ``RERANK_MAX_REQUEST_BYTES``).
        max_tokens_per_request: tokens a request may hold, the query counted once per document
            (default: the dialect's, else none; environment: ``RERANK_MAX_TOKENS_PER_REQUEST``).
        max_tokens_per_document: tokens the model reads of one document with the query (default:
            the dialect's, else none; environment: ``RERANK_MAX_TOKENS_PER_DOCUMENT``).
        long_documents: a document longer than that: ``"server"`` sends it as is, ``"truncate"``
            cuts it short, ``"chunk"`` scores windows of it apart (see ``chunk_aggregate``),
            ``"error"`` refuses it before sending (default: ``"server"``; environment:
            ``RERANK_LONG_DOCUMENTS``).
        chunk_overlap: tokens two windows of a chunked document share (default: ``32``).
        chunk_aggregate: a chunked document's score: its best window's (``"max"``) or their
            ``"mean"`` (default: ``"max"``).
        tokenizer: counts tokens exactly: a ``str -> int`` function, a ``tokenizers.Tokenizer``
            or a ``tiktoken`` encoding; ``None``: a conservative estimate (default: an
            estimate).
        rate_limit: a budget per minute shared by every call
            (``RateLimit(requests_per_minute=..., tokens_per_minute=...,
            documents_per_minute=...)``) or a shared ``RateLimiter``; calls wait for room within
            their deadline (default: none).
        adaptive_concurrency: halve the batches in flight on a 429 and grow them back as
            requests succeed (default: ``False``).
        cache: keeps each (query, document) score, and only documents not in it are sent: a
            ``RerankCache``, a ``dict``, a ``diskcache.Cache`` or anything with ``get``/``set``;
            off for listwise models (``jina-reranker-v3``) (default: none).
        fallbacks: other ``RerankClient`` objects tried in order when a call fails after its
            retries with a connection error, a timeout, a 429 or a 5xx (never a 4xx), within
            what is left of its deadline; ``response.endpoint`` says which answered (default:
            none).
        trace_content: record the query and the documents' text in OpenTelemetry spans (by
            default spans carry ids, scores and sizes only) (default: ``False``).
        async_transport: what the client's own async pools send with: ``"httpx"`` (httpcore) or
            ``"aiohttp"`` (``httpx-aiohttp``, extra ``aiohttp``), lighter under many concurrent
            calls (default: ``"httpx"``).
        price: what the API charges, a ``Price(per_search_unit=..., per_million_tokens=...,
            per_request=..., currency="USD")``: each response's ``cost`` (a ``Decimal``) and
            ``stats().cost``; ``None``: no cost (default: none).

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
        instruction: str | None = None,
        instruction_template: PromptTemplate | str | None = None,
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
        price: Price | None = None,
    ) -> None:
        from ._config import resolve_settings

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
            instruction=instruction,
            instruction_template=instruction_template,
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
            price=price,
        )
        self._start(http_client, async_http_client)

    def _start(
        self,
        http_client: httpx.Client | None,
        async_http_client: httpx.AsyncClient | None,
        authorizer: Authorizer | None = None,
    ) -> None:
        from ._budget import counter_for
        from ._cache import credential_scope, score_cache_for
        from ._checks import check_score_transform
        from ._observe import Counters
        from ._pools import Pools
        from ._ratelimit import AdaptiveGate, limiter_for
        from ._run import Engine
        from ._secrets import Scrubber, secret_values
        from ._state import Connection
        from .dialects._registry import authorizer_for

        settings = self._settings
        pools = Pools(settings, http_client, async_http_client)
        headers = settings.wire_headers()
        counters = Counters()
        if settings.price is not None:
            counters.price_set()
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
        if authorizer is None:
            authorizer = authorizer_for(settings, _USER_AGENT)
        self._engine = Engine(
            settings,
            self._connection,
            authorizer,
            check_score_transform(settings.score_transform),
            pools,
            random.Random(),
        )

    def __copy__(self) -> RerankClient:
        return self._copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> RerankClient:
        return self._copy()

    def _copy(self) -> RerankClient:
        # Pools and threads are the copy's own; a pool the caller passed in is shared, so
        # the copy keeps its proxy and TLS set-up; so is the token cache.
        copy = object.__new__(RerankClient)
        copy._settings = self._settings
        pools = self._engine.pools
        copy._start(pools.user_http_client, pools.user_async_http_client, self._engine.authorizer)
        return copy

    def __getstate__(self) -> dict[str, Any]:
        pools = self._engine.pools
        if pools.user_http_client is not None or pools.user_async_http_client is not None:
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
        instruction: str | NotGiven | None = NOT_GIVEN,
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
            instruction: what the ranking should favour, for this call; left out, the
                client's ``instruction``; ``None``: none. Carried as the dialect can, or
                refused before sending by a dialect that cannot carry one.
            **fields: more such fields; a name that looks like a misspelt argument
                (``top_k``, ``toop_n``) is refused (pass it in ``extra_body`` to send it).

        Returns:
            A :class:`RerankResponse` whose ``results`` index into ``documents``.

        Raises:
            TypeError, ValueError: bad arguments, before anything is sent.
            RerankError: a subclass saying what went wrong with the server.
        """
        call = self._begin(
            query, documents, top_n, model, deadline, extra_body, rank_fields, instruction, fields
        )
        with self._span(call) as span:
            span.response = self._engine.answer(call)
        self._count_cost(span.response)
        return span.response

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
        instruction: str | NotGiven | None = NOT_GIVEN,
        **fields: Any,
    ) -> RerankResponse:
        """The async twin of :meth:`rerank`: batches are sent as concurrent tasks, at most
        ``max_concurrency`` at a time; cancelling the call cancels them all."""
        call = self._begin(
            query, documents, top_n, model, deadline, extra_body, rank_fields, instruction, fields
        )
        with self._span(call) as span:
            span.response = await self._engine.aanswer(call)
        self._count_cost(span.response)
        return span.response

    def _begin(
        self,
        query: str,
        documents: Sequence[str | Image | Mapping[str, Any]],
        top_n: int | None,
        model: str | NotGiven | None,
        deadline: float | NotGiven | None,
        extra_body: Mapping[str, Any] | None,
        rank_fields: Sequence[str] | None,
        instruction: str | NotGiven | None,
        fields: dict[str, Any],
    ) -> Call:
        """One call's arguments checked and planned (before anything is sent), and counted."""
        from ._call import start_call

        call = start_call(
            self._settings,
            self._connection,
            query,
            documents,
            top_n,
            model,
            deadline,
            extra_body,
            fields,
            rank_fields,
            instruction,
        )
        self._connection.counters.add(calls=1)
        return call

    def _count_cost(self, response: RerankResponse) -> None:
        """A priced call's cost, added to the client's stats."""
        price = self._settings.price
        if price is not None and response.cost is not None:
            self._connection.counters.add_cost(response.cost, price.currency)

    def _span(self, call: Call) -> AbstractContextManager[CallSpan]:
        """The call's trace span (nothing without OpenTelemetry)."""
        from ._trace import call_span

        plan = call.plan
        settings = self._settings
        carried = call.carried
        return call_span(
            plan.documents,
            plan.query if call.arguments is None else call.arguments.query,
            plan.top_n,
            call.model,
            settings.endpoint,
            settings.dialect.name,
            settings.trace_content,
            len(plan.known or ()),
            None if carried is None else carried.instruction,
            "none" if carried is None else carried.how,
        )

    def close(self) -> None:
        """Close the connection pools and worker threads this client created.

        Clients passed in by the caller are left open. Async pools of event loops that are
        still running should be closed with :meth:`aclose` from that loop.
        """
        self._engine.pools.close()

    async def aclose(self) -> None:
        """Close this loop's async connection pool, and everything :meth:`close` closes."""
        await self._engine.pools.aclose()

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

    # -- the pools, as tests and tools reach them -------------------------------------------

    def _get_http_client(self) -> httpx.Client:
        return self._engine.pools.http_client()

    async def _get_async_http_client(self) -> httpx.AsyncClient:
        return await self._engine.pools.async_http_client()

    @property
    def _async_pools(self) -> Mapping[Any, Any]:
        return self._engine.pools.loops

    @property
    def _user_http_client(self) -> httpx.Client | None:
        return self._engine.pools.user_http_client

    @_user_http_client.setter
    def _user_http_client(self, client: httpx.Client | None) -> None:
        self._engine.pools.user_http_client = client

    @property
    def _user_async_http_client(self) -> httpx.AsyncClient | None:
        return self._engine.pools.user_async_http_client

    @_user_async_http_client.setter
    def _user_async_http_client(self, client: httpx.AsyncClient | None) -> None:
        self._engine.pools.user_async_http_client = client


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
