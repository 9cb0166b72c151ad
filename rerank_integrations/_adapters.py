"""What the LangChain and LlamaIndex adapters share: their settings and the client they build.

The adapters themselves only translate documents or nodes to texts and results back.
"""

from __future__ import annotations

import copy
import logging
import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_serializer,
)
from pydantic.json_schema import SkipJsonSchema

from ._client import RerankClient
from ._constants import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    LOGGER_NAME,
)
from ._exceptions import ConfigurationError, RerankError
from ._retry import RetryPolicy
from ._secrets import HiddenHeaders, redact_url
from ._trace import Describe, described_documents
from ._types import NOT_GIVEN, NotGiven, RerankResponse, RerankResult

#: The metadata key that carries the relevance score on returned documents and nodes.
SCORE_KEY = "relevance_score"
#: The metadata key of ``[start, end]``: the part of a cut document that scored best.
SPAN_KEY = "relevance_span"
#: The metadata key set to ``False`` on documents and nodes passed through unranked.
RERANKED_KEY = "reranked"
#: The metadata key naming the error (its class) that made a call pass documents through.
ERROR_KEY = "rerank_error"

logger = logging.getLogger(LOGGER_NAME)

#: The settings passed on to ``RerankClient``, by name: listed once, here. All but ``model``
#: configure the connection, so they cannot be combined with ``client=``.
CLIENT_SETTINGS = (
    "base_url",
    "api_key",
    "model",
    "dialect",
    "timeout",
    "max_retries",
    "retry",
    "max_documents_per_request",
    "max_concurrency",
    "deadline",
    "score_transform",
    "extra_body",
    "max_response_bytes",
    "max_request_bytes",
    "max_tokens_per_request",
    "max_tokens_per_document",
    "long_documents",
    "chunk_overlap",
    "chunk_aggregate",
    "tokenizer",
    "rate_limit",
    "adaptive_concurrency",
    "cache",
    "fallbacks",
    "trace_content",
    "async_transport",
    "headers",
    "auth_url",
    "credentials",
    "project",
    "location",
)


class RerankSettings(BaseModel):
    """Settings common to both framework adapters; see ``RerankClient`` for their meaning."""

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        hide_input_in_errors=True,  # inputs may hold the key
        validate_assignment=True,  # a bad value fails when set, not at the next call
    )

    model: str | None = None
    """Rerank model name; ``None`` uses ``RERANK_MODEL`` or leaves it to the server."""
    top_n: int | None = Field(default=3, ge=1)
    """How many documents to return, best first; ``None`` returns all."""
    score_threshold: float | None = None
    """Drop results that score below this; ``None`` keeps every result."""
    on_error: Literal["raise", "passthrough"] = "raise"
    """When reranking fails after retries (and fallbacks): ``"raise"`` the error, or
    ``"passthrough"`` the inputs in their original order (``top_n`` applied), marked
    ``reranked=False`` with the error's class as ``rerank_error``; each is logged and
    counted (``client.stats().passthroughs``). The batch job's ``on_error`` takes other
    values (``record``, ``skip``, ``stop``) because it decides another thing: what becomes
    of one row among many, whereas a pipeline step must hand its documents on or fail."""
    base_url: str | None = None
    """API base URL (host root, versioned root or full endpoint); else ``RERANK_BASE_URL``."""
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """API key; else ``RERANK_API_KEY``. Never serialized or shown."""
    dialect: str | None = None
    """Wire dialect; else ``RERANK_DIALECT``, else ``"generic"``."""
    timeout: float | None = Field(default=DEFAULT_TIMEOUT, gt=0)
    """Seconds per HTTP request; ``None`` waits forever."""
    max_retries: int | None = Field(default=None, ge=0)
    """Retries per request for connection errors, timeouts, 408, 409, 429 and 5xx; ``None``:
    those of ``retry`` (2 by default)."""
    retry: SkipJsonSchema[RetryPolicy | None] = None
    """The whole retry policy (waits, growth, jitter, statuses); ``None``: the default."""
    max_documents_per_request: int | None = Field(default=None, ge=1)
    """Split larger calls into batches of this many documents; ``None`` uses the dialect's."""
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1)
    """Batches of one call in flight at once."""
    deadline: float | None = Field(default=None, gt=0)
    """Seconds a whole call may take across batches and retries; ``None``: no overall limit."""
    score_transform: Literal["none", "sigmoid"] | None = None
    """``"sigmoid"`` maps raw logits to 0..1 (for ``score_threshold``); ``None`` keeps them."""
    extra_body: dict[str, Any] | None = None
    """Fields added to every request body, for a vendor's own options (NIM's ``truncate``,
    Voyage's ``truncation``, Infinity's ``raw_scores``, Cohere's ``max_tokens_per_doc``)."""
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, ge=1)
    """The largest answer accepted, in bytes; a larger one is refused while it arrives."""
    max_request_bytes: int | None = Field(default=None, ge=1)
    """The largest request body to send; ``None``: ``RERANK_MAX_REQUEST_BYTES``, else the
    dialect's, else no limit (a server's 413 still teaches one)."""
    max_tokens_per_request: int | None = Field(default=None, ge=1)
    """Tokens a request may hold, the query counted once per document; ``None``: none."""
    max_tokens_per_document: int | None = Field(default=None, ge=1)
    """Tokens the model reads of a document (with the query); ``None``: not known."""
    long_documents: Literal["server", "truncate", "chunk", "error"] | None = None
    """A document longer than that: sent as is (``"server"``, the default), cut short,
    chunked into windows scored separately, or refused before sending."""
    chunk_overlap: int = Field(default=DEFAULT_CHUNK_OVERLAP, ge=0)
    """Tokens two windows of a chunked document share."""
    chunk_aggregate: Literal["max", "mean"] = "max"
    """A chunked document's score: its best window's, or the windows' mean."""
    rate_limit: SkipJsonSchema[Any] = None
    """A budget per minute (``RateLimit(requests_per_minute=...)``) shared by every call."""
    adaptive_concurrency: bool = False
    """Halve the batches in flight on a 429 and grow them back as calls succeed."""
    cache: SkipJsonSchema[Any] = Field(default=None, exclude=True, repr=False)
    """Keeps each (query, document) score: a ``RerankCache``, a ``dict``, a
    ``diskcache.Cache`` or any object with ``get``/``set``; off for listwise models."""
    fallbacks: SkipJsonSchema[list[Any] | None] = Field(default=None, exclude=True, repr=False)
    """``RerankClient``s tried in order when a call fails with a connection error, a
    timeout, a 429 or a 5xx, before ``on_error`` applies."""
    trace_content: bool = False
    """Record the query and the texts in OpenTelemetry spans (ids and scores always are)."""
    rank_fields: list[str] | None = None
    """Send each document as a structured document: these metadata fields plus the content
    as ``text`` (ranked on all of them; list ``text`` to place it). Objects for the dialects
    that rank objects, ``field: value`` lines for the rest; ``None``: the content alone."""
    async_transport: Literal["httpx", "aiohttp"] = "httpx"
    """What the async path sends with: httpx's own pool, or aiohttp's (extra ``aiohttp``)."""
    tokenizer: SkipJsonSchema[Any] = Field(default=None, exclude=True, repr=False)
    """Counts tokens exactly: a ``str -> int`` function, a ``tokenizers.Tokenizer`` or a
    ``tiktoken`` encoding; ``None``: a conservative estimate."""
    headers: dict[str, str] | None = Field(default=None, exclude=True, repr=False)
    """Extra HTTP headers for every request (not serialized: they may carry credentials)."""
    auth_url: str | None = None
    """IAM token endpoint of the ``watsonx`` dialect; ``None``: IBM Cloud's."""
    credentials: SkipJsonSchema[Any] = Field(default=None, exclude=True, repr=False)
    """Cloud credentials (``google.auth`` for ``vertex``, botocore for ``bedrock``) instead of
    the provider's usual chain. Never serialized or shown."""
    project: str | None = None
    """Google Cloud project of the ``vertex`` endpoint; ``None``: the credentials' own."""
    location: str | None = None
    """``vertex`` location (default ``global``) or ``bedrock`` AWS region."""
    client: SkipJsonSchema[RerankClient | None] = Field(default=None, exclude=True, repr=False)
    """A ready ``RerankClient`` to use instead of building one from the settings above."""

    _rerank_client: RerankClient | None = PrivateAttr(default=None)
    _owns_client: bool = PrivateAttr(default=False)  # built here, not passed as client=
    _built_from: tuple[Any, ...] | None = PrivateAttr(default=None)

    if not TYPE_CHECKING:  # type checkers keep the signature built from the fields

        def __init__(self, /, **data: Any) -> None:
            """Validate the settings and build the client.

            Raises:
                ConfigurationError: the settings cannot work (e.g. no base URL anywhere).
                pydantic.ValidationError: a field has a wrong type or value, or is unknown.
            """
            # Secrets leave this frame's locals at once: error trackers record them.
            if isinstance(data.get("api_key"), str):
                data["api_key"] = SecretStr(data["api_key"])
            if isinstance(data.get("headers"), Mapping):
                data["headers"] = HiddenHeaders(data["headers"])
            try:
                super().__init__(**data)
            except ValidationError as exc:
                # pydantic wraps every ValueError raised while validating, our
                # ConfigurationError included; hand callers the package's own error.
                for detail in exc.errors():
                    error = detail.get("ctx", {}).get("error")
                    if isinstance(error, ConfigurationError):
                        raise error from None
                raise

    @field_serializer("base_url")
    def _serialize_base_url(self, base_url: str | None) -> str | None:
        return redact_url(base_url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "base_url" else value

    def model_post_init(self, context: Any, /) -> None:
        """Build the client now, so that settings that cannot work fail at construction."""
        super().model_post_init(context)
        self._connect()

    def _client_settings(self) -> tuple[Any, ...]:
        """What the client is built from, as it is now: a dict setting compares by value
        with the copy kept at build time (a change in place is seen), a cache by identity
        (a dict of scores grows)."""
        values = _SETTINGS_OF(self)
        return (*values[:_CACHE_AT], id(values[_CACHE_AT]), *values[_CACHE_AT + 1 :])

    def _connect(self) -> RerankClient:
        settings = self._client_settings()
        if self.client is not None:
            clashing = sorted(self.model_fields_set & set(CLIENT_SETTINGS) - {"model"})
            if clashing:
                raise ConfigurationError(
                    f"pass either client=... or connection settings, not both: "
                    f"{', '.join(clashing)} would be ignored; set them on the RerankClient"
                )
        replaced = self._rerank_client if self._owns_client else None
        client = self.client or RerankClient(
            **{name: getattr(self, name) for name in CLIENT_SETTINGS}
        )
        self._rerank_client, self._built_from = client, _snapshot(settings)
        self._owns_client = self.client is None
        if replaced is not None and replaced is not client:
            replaced.close()
        return client

    @property
    def rerank_client(self) -> RerankClient:
        """The ``RerankClient`` that sends this adapter's requests.

        Rebuilt when a setting has been changed since it was built (the one it replaces is
        closed), or after unpickling.
        """
        client = self._rerank_client
        if client is None or self._built_from != self._client_settings():
            client = self._connect()
        return client

    def close(self) -> None:
        """Release the connections of the client this adapter built (not a ``client=``)."""
        if self._owns_client and self._rerank_client is not None:
            self._rerank_client.close()

    async def aclose(self) -> None:
        """The async twin of :meth:`close`, which also closes this event loop's pool."""
        if self._owns_client and self._rerank_client is not None:
            await self._rerank_client.aclose()

    # -- ranking --------------------------------------------------------------------------

    def rank(
        self,
        query: str,
        texts: Sequence[Any],
        *,
        top_n: int | NotGiven | None = NOT_GIVEN,
        rank_fields: Sequence[str] | None = None,
    ) -> list[RerankResult]:
        """The results for ``texts`` (strings, images or mappings of fields) that pass
        ``score_threshold``, best first.

        ``top_n``: how many to keep; left out, the ``top_n`` field; ``None``: all.
        ``rank_fields``: the fields of mappings to rank on.
        """
        response = self.rerank_client.rerank(
            query, texts, top_n=self._top_n(top_n), model=self.model, rank_fields=rank_fields
        )
        return self.kept(response)

    async def arank(
        self,
        query: str,
        texts: Sequence[Any],
        *,
        top_n: int | NotGiven | None = NOT_GIVEN,
        rank_fields: Sequence[str] | None = None,
    ) -> list[RerankResult]:
        """The async twin of :meth:`rank`."""
        response = await self.rerank_client.arerank(
            query, texts, top_n=self._top_n(top_n), model=self.model, rank_fields=rank_fields
        )
        return self.kept(response)

    def rank_or_pass(
        self, query: str, texts: Sequence[Any], describe: Describe | None = None
    ) -> RerankResponse | RerankError:
        """The client's answer for ``texts`` (strings, images or records), or the error of
        a failed call when ``on_error="passthrough"``; ``describe`` gives the documents' ids
        and retrieval scores to traces."""
        try:
            with described_documents(describe):
                return self.rerank_client.rerank(
                    query,
                    texts,
                    top_n=self.top_n,
                    model=self.model,
                    rank_fields=self.fields_ranked(),
                )
        except RerankError as error:
            return self._pass_through_or_raise(error, len(texts))

    async def arank_or_pass(
        self, query: str, texts: Sequence[Any], describe: Describe | None = None
    ) -> RerankResponse | RerankError:
        """The async twin of :meth:`rank_or_pass`."""
        try:
            with described_documents(describe):
                return await self.rerank_client.arerank(
                    query,
                    texts,
                    top_n=self.top_n,
                    model=self.model,
                    rank_fields=self.fields_ranked(),
                )
        except RerankError as error:
            return self._pass_through_or_raise(error, len(texts))

    def fields_ranked(self) -> list[str] | None:
        """The fields a structured document is ranked on: ``rank_fields``, with the
        content's ``text`` last unless it is listed."""
        fields = self.rank_fields
        if not fields:
            return None
        return list(fields) if "text" in fields else [*fields, "text"]

    def record(self, content: str, metadata: Mapping[str, Any]) -> dict[str, Any] | str:
        """One document as sent: with ``rank_fields``, its chosen metadata fields and the
        content as ``text``; without, the content alone."""
        fields = self.rank_fields
        if not fields:
            return content
        record = {name: metadata[name] for name in fields if name != "text" and name in metadata}
        record["text"] = content
        return record

    def results_of(self, outcome: RerankResponse | RerankError) -> list[RerankResult] | RerankError:
        """The kept results of an answer (:meth:`kept`), or the error passed through."""
        return outcome if isinstance(outcome, RerankError) else self.kept(outcome)

    def kept(self, response: RerankResponse) -> list[RerankResult]:
        """The results of ``response`` that pass ``score_threshold``, best first."""
        threshold = self.score_threshold
        if threshold is None:
            return response.results
        return [result for result in response.results if result.relevance_score >= threshold]

    def passthrough_count(self, count: int) -> int:
        """How many inputs a pass-through returns: the first ``top_n``."""
        return count if self.top_n is None else min(self.top_n, count)

    def _top_n(self, top_n: int | NotGiven | None) -> int | None:
        return self.top_n if isinstance(top_n, NotGiven) else top_n

    def _pass_through_or_raise(self, error: RerankError, count: int) -> RerankError:
        # A setting that cannot work is the caller's to fix, whatever on_error says.
        if self.on_error == "raise" or isinstance(error, ConfigurationError):
            raise error
        self.rerank_client._connection.counters.add(passthroughs=1)
        logger.warning(
            "reranking failed, passing %d documents through in their original order: %s: %s",
            count,
            type(error).__name__,
            error,
        )
        return error

    def passthrough_metadata(self, error: RerankError) -> dict[str, Any]:
        """What a document or node passed through unranked carries in its metadata."""
        return {RERANKED_KEY: False, ERROR_KEY: type(error).__name__}


def usage_of(outcome: RerankResponse | RerankError) -> dict[str, Any] | None:
    """What a call cost, for framework events: tokens and billed units when the server
    reported them, the requests sent, the model and the endpoint that answered."""
    if isinstance(outcome, RerankError):
        return None
    usage = outcome.usage
    return {
        "total_tokens": None if usage is None else usage.total_tokens,
        "billed_units": None if usage is None else usage.billed_units,
        "requests": outcome.requests,
        "model": outcome.model,
        "endpoint": outcome.endpoint,
    }


#: Reads ``client`` and every setting of :data:`CLIENT_SETTINGS` at once.
_SETTINGS_OF = operator.attrgetter("client", *CLIENT_SETTINGS)
_CACHE_AT = 1 + CLIENT_SETTINGS.index("cache")


def _snapshot(settings: tuple[Any, ...]) -> tuple[Any, ...]:
    """``settings`` with each dict copied as it is now, so that a later change in place
    is seen."""
    return tuple(copy.deepcopy(value) if isinstance(value, dict) else value for value in settings)
