"""Defaults and names used across the package, kept in one place."""

from __future__ import annotations

#: Seconds allowed for the whole exchange of one HTTP request (read, write, pool).
DEFAULT_TIMEOUT = 60.0
#: Seconds allowed to open a connection.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: Retries after the first attempt of each request.
DEFAULT_MAX_RETRIES = 2
#: Batches of one call that may be in flight at the same time.
DEFAULT_MAX_CONCURRENCY = 16

#: Backoff: the first wait, the cap on any computed wait, the growth and the jitter fraction.
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
RETRY_MULTIPLIER = 2.0
RETRY_JITTER = 0.25
#: A server's ``Retry-After`` is honoured up to this many seconds; a longer one means giving up.
MAX_RETRY_AFTER = 60.0

#: Times one call is planned again after a server states a lower limit for a document; a
#: server that keeps lowering it gets its refusal raised instead of endless new plans.
MAX_PLANS_AGAIN = 3

#: Tokens two windows of a chunked document share.
DEFAULT_CHUNK_OVERLAP = 32

#: The largest answer accepted, in bytes; a larger one is refused while it arrives.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024

#: Characters of a response body quoted in an error message.
BODY_EXCERPT_CHARS = 300

ENV_BASE_URL = "RERANK_BASE_URL"
ENV_API_KEY = "RERANK_API_KEY"
ENV_MODEL = "RERANK_MODEL"

LOGGER_NAME = "rerank_integrations"

#: The name an adapter's agent tool gets unless another is given.
DEFAULT_TOOL_NAME = "rerank_passages"
