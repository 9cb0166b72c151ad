"""A local rerank server: a real HTTP rerank endpoint with no key, no model and no download.

It answers the generic (Jina-style) format of OpenAI-compatible gateways on
``POST /v1/rerank`` (also ``/rerank`` and ``/v2/rerank``), ranks with Okapi BM25 over each
request's own documents, refuses what is too big as real services refuse it (nginx's 413,
TEI's token limit, a batch token budget), and injects latency, drops, stalls, rate limits
and errors, so a client can be tested against what real services do::

    from rerank_integrations.server import serve_in_thread

    with serve_in_thread(latency_ms=10) as server:
        ...  # send requests to server.base_url

It needs the ``server`` extra: ``pip install "rerank-integrations[server]"``.
"""

from __future__ import annotations

from ._bm25 import (
    SPELLING_VARIANTS,
    STOP_WORDS,
    analyze,
    bm25_scores,
    count_tokens,
    to_relevance,
    tokenize,
    truncate_tokens,
)

_INSTALL_HINT = (
    "rerank_integrations.server needs Starlette and uvicorn; "
    'install them with: pip install "rerank-integrations[server]"'
)

try:
    from ._app import RERANK_PATHS, create_app
    from ._config import FAULT_KINDS, LIMIT_KINDS, SCORING_MODES, ServerConfig
    from ._stats import ServerStats
    from ._thread import LocalRerankServer, serve_in_thread
except ModuleNotFoundError as _exc:  # pragma: no cover - depends on the environment
    if _exc.name is not None and _exc.name.partition(".")[0] in {"starlette", "uvicorn"}:
        raise ImportError(_INSTALL_HINT, name=_exc.name) from _exc
    raise


__all__ = [
    "FAULT_KINDS",
    "LIMIT_KINDS",
    "RERANK_PATHS",
    "SCORING_MODES",
    "SPELLING_VARIANTS",
    "STOP_WORDS",
    "LocalRerankServer",
    "ServerConfig",
    "ServerStats",
    "analyze",
    "bm25_scores",
    "count_tokens",
    "create_app",
    "serve_in_thread",
    "to_relevance",
    "tokenize",
    "truncate_tokens",
]
