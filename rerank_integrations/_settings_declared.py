"""Every setting declared once: its name, types, default, environment variable, one-line
description and the objects that take it.

This is the data; :mod:`._settings` reads it (the environment, near misses) and writes it
out (the settings table, the client's ``Args`` entries, the adapters' field descriptions).
Adding a setting is adding one entry here and using it where it acts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._constants import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
)

__all__ = [
    "ADAPTERS",
    "CLIENT",
    "COMPRESSOR",
    "EVERYWHERE",
    "POSTPROCESSOR",
    "SETTINGS",
    "Setting",
]

#: The objects that take settings: ``RerankClient`` (and so the batch job and the Ray step,
#: which pass client settings through), the LangChain and the LlamaIndex adapter.
CLIENT, COMPRESSOR, POSTPROCESSOR = "client", "compressor", "postprocessor"
ADAPTERS = frozenset({COMPRESSOR, POSTPROCESSOR})
EVERYWHERE = frozenset({CLIENT, COMPRESSOR, POSTPROCESSOR})

_SAME: Any = object()  # "as the default" for ``resolved``


@dataclass(frozen=True)
class Setting:
    """One setting: what it is called, takes and means, and where it comes from."""

    name: str
    #: One line (reStructuredText literals): the client's ``Args`` entry, the adapters'
    #: field description and the settings table's meaning column.
    description: str
    #: The annotation in ``RerankClient.__init__``'s signature, as written there.
    type: str
    #: The default value of the argument and of the adapters' field.
    default: Any = None
    #: The environment variable read when the argument is left as ``None``.
    env: str | None = None
    #: The objects that take it: :data:`CLIENT`, :data:`COMPRESSOR`, :data:`POSTPROCESSOR`.
    takes: frozenset[str] = EVERYWHERE
    #: The adapters' field annotation, when it is narrower than the client's.
    field_type: str | None = None
    #: The settings table's default column, when the value alone says too little.
    default_text: str | None = None
    #: Never shown or serialized by the adapters (keys, credentials, live objects).
    hidden: bool = False
    #: Whether ``ClientSettings`` keeps it under this name (``base_url`` becomes its
    #: ``endpoint``, ``max_retries`` part of its ``retry``).
    kept: bool = True
    #: What ``ClientSettings`` holds when it is left out, if not ``default``.
    resolved: Any = _SAME
    #: How the environment variable is read: ``"text"``, or ``"count"`` (a whole number).
    env_kind: str = "text"

    @property
    def adapter_type(self) -> str:
        """The annotation of the adapters' field."""
        return self.field_type or self.type

    @property
    def resolved_default(self) -> Any:
        """What ``ClientSettings`` holds when the setting is left out."""
        return self.default if self.resolved is _SAME else self.resolved


def _s(name: str, type: str, description: str, **more: Any) -> Setting:
    return Setting(name=name, type=type, description=description, **more)


_LIMIT = {"env_kind": "count", "default_text": "the dialect's, else none"}

#: Every setting, in the order of ``RerankClient``'s signature, then the adapters' own.
SETTINGS: Mapping[str, Setting] = {
    setting.name: setting
    for setting in (
        _s(
            "base_url",
            "str | None",
            "where the API lives: a host root (``https://h``), a versioned root "
            "(``https://h/v1``) or the full endpoint",
            env=ENV_BASE_URL,
            default_text="the dialect's public host, else required",
            kept=False,
        ),
        _s(
            "api_key",
            "str | SecretStr | None",
            "the API key, sent in the dialect's auth header (``Authorization: Bearer ...`` "
            "for most); kept as a ``SecretStr``, never shown or serialized",
            env=ENV_API_KEY,
            field_type="SecretStr | None",
            hidden=True,
        ),
        _s(
            "model",
            "str | None",
            "the model for every call; unset, the field is left out and the server decides",
            env=ENV_MODEL,
        ),
        _s(
            "dialect",
            "str | None",
            "the wire format: ``generic`` unless the server speaks another (the dialects' table)",
            env="RERANK_DIALECT",
            default_text="``generic``",
        ),
        _s(
            "timeout",
            "TimeoutTypes",
            "seconds one attempt may take, connect to last byte (connect capped at 5 s), or "
            "an ``httpx.Timeout`` (client only); ``None`` waits forever",
            default=DEFAULT_TIMEOUT,
            field_type="float | None",
            default_text="60 s, connect 5 s",
        ),
        _s(
            "max_retries",
            "int | None",
            "retries per request after the first attempt, for connection errors, timeouts, "
            "408, 409, 429 and 5xx; overrides ``retry``'s",
            default_text="``2``",
            kept=False,
        ),
        _s(
            "retry",
            "RetryPolicy | None",
            "the whole retry policy (waits, growth, jitter, statuses), a ``RetryPolicy``",
            field_type="SkipJsonSchema[RetryPolicy | None]",
            default_text="``RetryPolicy()``",
        ),
        _s(
            "max_documents_per_request",
            "int | None",
            "larger calls are split into batches of at most this many distinct documents",
            env="RERANK_MAX_DOCUMENTS_PER_REQUEST",
            env_kind="count",
            default_text="the dialect's (1,000 for ``generic``)",
        ),
        _s(
            "max_concurrency",
            "int",
            "batches of one call in flight at once",
            default=DEFAULT_MAX_CONCURRENCY,
        ),
        _s(
            "deadline",
            "float | None",
            "seconds a whole call may take, across its batches and retries (also per call: "
            "``rerank(..., deadline=2)``); ``None`` bounds each attempt only, by ``timeout``",
        ),
        _s(
            "score_transform",
            "str | None",
            '``"sigmoid"`` maps raw logits (NIM, llama.cpp, raw-score modes) to 0..1, for '
            'thresholds; ``None`` or ``"none"`` keeps the server\'s scores; the order never '
            "changes",
            field_type="Literal['none', 'sigmoid'] | None",
        ),
        _s(
            "extra_body",
            "Mapping[str, Any] | None",
            "fields added to every request body, merged one level deep: a vendor's own "
            "options (NIM's ``truncate``, Infinity's ``raw_scores``)",
            field_type="dict[str, Any] | None",
            resolved={},
        ),
        _s(
            "instruction",
            "str | None",
            'what the ranking should favour, in words (``"prefer maintenance guides"``), for '
            "every call (also per call: ``rerank(..., instruction=...)``); carried as each "
            "dialect can (its own field, the model's prompt template or before the query) or "
            'refused before sending (the docs: the client, "Instructions")',
            env="RERANK_INSTRUCTION",
        ),
        _s(
            "instruction_template",
            "PromptTemplate | str | None",
            "the prompt template that carries the instruction on servers that pass texts to "
            "the model as they are (``generic``, ``vllm``, ``tei``, ``sglang``, "
            "``infinity``): a ``PromptTemplate``, a registered template's name, or "
            '``"none"``; ``None``: chosen by the model name (Qwen3-Reranker\'s)',
            field_type="SkipJsonSchema[Any]",
            default_text="by the model name",
        ),
        _s(
            "headers",
            "Mapping[str, str] | None",
            "extra HTTP headers for every request; never serialized (they may carry credentials)",
            field_type="dict[str, str] | None",
            hidden=True,
        ),
        _s(
            "auth_url",
            "str | None",
            "``watsonx``: the IAM token endpoint, for private clouds and tests",
            default_text="IBM Cloud's",
        ),
        _s(
            "credentials",
            "object",
            "cloud credentials instead of the provider's usual chain: ``google.auth`` "
            "credentials for ``vertex``; botocore credentials, a session or a mapping of "
            "``aws_access_key_id``/``aws_secret_access_key``/``aws_session_token`` for "
            "``bedrock``; an ``oci`` signer or an OCI configuration mapping for ``oci``; "
            "never shown or serialized",
            field_type="SkipJsonSchema[Any]",
            default_text="the provider's chain",
            hidden=True,
        ),
        _s(
            "project",
            "str | None",
            "``vertex``: the Google Cloud project; ``oci``: the OCID of the compartment "
            "to call from (required)",
            default_text="the credentials'",
        ),
        _s(
            "location",
            "str | None",
            "where the cloud service runs: the ``vertex`` location, the ``bedrock`` AWS "
            "region or the ``oci`` OCI region",
            default_text="``global`` / the endpoint's or the AWS or OCI configuration's region",
        ),
        _s(
            "http_client",
            "httpx.Client | None",
            "an ``httpx.Client`` to send with instead of the client's own pool; not closed "
            "by the client",
            takes=frozenset({CLIENT}),
            default_text="own pool",
            kept=False,
        ),
        _s(
            "async_http_client",
            "httpx.AsyncClient | None",
            "an ``httpx.AsyncClient`` to send with instead of the client's own pools (every "
            "async call must then run on its event loop); not closed by the client",
            takes=frozenset({CLIENT}),
            default_text="own pools",
            kept=False,
        ),
        _s(
            "max_response_bytes",
            "int",
            "the largest answer accepted, in bytes; a larger one is refused while it arrives",
            default=DEFAULT_MAX_RESPONSE_BYTES,
            default_text="32 MiB",
        ),
        _s(
            "max_request_bytes",
            "int | None",
            "the largest request body to send; batches are sized to fit, and a server's "
            "413 teaches a limit",
            env="RERANK_MAX_REQUEST_BYTES",
            **_LIMIT,
        ),
        _s(
            "max_tokens_per_request",
            "int | None",
            "tokens a request may hold, the query counted once per document",
            env="RERANK_MAX_TOKENS_PER_REQUEST",
            **_LIMIT,
        ),
        _s(
            "max_tokens_per_document",
            "int | None",
            "tokens the model reads of one document with the query",
            env="RERANK_MAX_TOKENS_PER_DOCUMENT",
            **_LIMIT,
        ),
        _s(
            "long_documents",
            "str | None",
            'a document longer than that: ``"server"`` sends it as is, ``"truncate"`` cuts '
            'it short, ``"chunk"`` scores windows of it apart (see ``chunk_aggregate``), '
            '``"error"`` refuses it before sending',
            env="RERANK_LONG_DOCUMENTS",
            field_type="Literal['server', 'truncate', 'chunk', 'error'] | None",
            default_text='``"server"``',
            resolved="server",
        ),
        _s(
            "chunk_overlap",
            "int",
            "tokens two windows of a chunked document share",
            default=DEFAULT_CHUNK_OVERLAP,
        ),
        _s(
            "chunk_aggregate",
            "str",
            'a chunked document\'s score: its best window\'s (``"max"``) or their ``"mean"``',
            default="max",
            field_type="Literal['max', 'mean']",
        ),
        _s(
            "tokenizer",
            "object",
            "counts tokens exactly: a ``str -> int`` function, a ``tokenizers.Tokenizer`` "
            "or a ``tiktoken`` encoding; ``None``: a conservative estimate",
            field_type="SkipJsonSchema[Any]",
            default_text="an estimate",
            hidden=True,
        ),
        _s(
            "rate_limit",
            "RateLimit | RateLimiter | None",
            "a budget per minute shared by every call (``RateLimit(requests_per_minute=..., "
            "tokens_per_minute=..., documents_per_minute=...)``) or a shared "
            "``RateLimiter``; calls wait for room within their deadline",
            field_type="SkipJsonSchema[Any]",
        ),
        _s(
            "adaptive_concurrency",
            "bool",
            "halve the batches in flight on a 429 and grow them back as requests succeed",
            default=False,
        ),
        _s(
            "cache",
            "object",
            "keeps each (query, document) score, and only documents not in it are sent: a "
            "``RerankCache``, a ``dict``, a ``diskcache.Cache`` or anything with "
            "``get``/``set``; off for listwise models (``jina-reranker-v3``)",
            field_type="SkipJsonSchema[Any]",
            hidden=True,
        ),
        _s(
            "fallbacks",
            "Sequence[RerankClient] | None",
            "other ``RerankClient`` objects tried in order when a call fails after its "
            "retries with a connection error, a timeout, a 429 or a 5xx (never a 4xx), "
            "within what is left of its deadline; ``response.endpoint`` says which answered",
            field_type="SkipJsonSchema[list[Any] | None]",
            hidden=True,
            resolved=(),
        ),
        _s(
            "trace_content",
            "bool",
            "record the query and the documents' text in OpenTelemetry spans (by default "
            "spans carry ids, scores and sizes only)",
            default=False,
        ),
        _s(
            "async_transport",
            "str",
            'what the client\'s own async pools send with: ``"httpx"`` (httpcore) or '
            '``"aiohttp"`` (``httpx-aiohttp``, extra ``aiohttp``), lighter under many '
            "concurrent calls",
            default="httpx",
            field_type="Literal['httpx', 'aiohttp']",
        ),
        _s(
            "price",
            "Price | None",
            "what the API charges, a ``Price(per_search_unit=..., per_million_tokens=..., "
            'per_request=..., currency="USD")``: each response\'s ``cost`` (a ``Decimal``) and '
            "``stats().cost``; ``None``: no cost",
            field_type="SkipJsonSchema[Price | None]",
        ),
        # -- the adapters' own --------------------------------------------------------------
        _s(
            "client",
            "RerankClient | None",
            "a ready ``RerankClient`` to use instead of building one from the settings above",
            takes=ADAPTERS,
            field_type="SkipJsonSchema[RerankClient | None]",
            default_text="built from the settings",
            hidden=True,
        ),
        _s(
            "top_n",
            "int | None",
            "how many results to return, best first; ``None`` returns all",
            default=3,
            takes=ADAPTERS,
        ),
        _s(
            "score_threshold",
            "float | None",
            "drop results that score below this; ``None`` keeps every result",
            takes=ADAPTERS,
        ),
        _s(
            "on_error",
            "str",
            'when reranking fails after retries and fallbacks: ``"raise"`` the error, or '
            '``"passthrough"`` the inputs in their original order (``top_n`` applied), '
            "marked ``reranked=False`` with the error's class as ``rerank_error``, logged "
            "and counted",
            default="raise",
            takes=ADAPTERS,
            field_type="Literal['raise', 'passthrough']",
        ),
        _s(
            "rank_fields",
            "list[str] | None",
            "send each document as these metadata fields plus its content as ``text`` (list "
            "``text`` to place it): objects where the dialect ranks objects, ``field: value`` "
            "lines elsewhere; ``None``: the content alone",
            takes=ADAPTERS,
        ),
        _s(
            "metadata_mode",
            "MetadataMode",
            "which metadata goes with each node's text to the API (the ``get_content`` mode)",
            default="embed",
            takes=frozenset({POSTPROCESSOR}),
            default_text="``MetadataMode.EMBED``",
        ),
        _s(
            "keep_retrieval_score",
            "bool",
            'also keep each node\'s earlier score as ``metadata["retrieval_score"]``',
            default=False,
            takes=frozenset({POSTPROCESSOR}),
        ),
    )
}
