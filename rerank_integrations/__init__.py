"""Any HTTP rerank API behind LangChain and LlamaIndex.

``RerankClient`` speaks to the API (sync and async, batching, retries, typed errors);
``rerank_integrations.langchain.RerankCompressor`` and
``rerank_integrations.llama_index.RerankPostprocessor`` adapt it to the two frameworks.
"""

from ._cache import RerankCache, SharedCache
from ._client import RerankClient
from ._dialects import DIALECTS
from ._documents import Image
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    GatewayTimeoutError,
    RateLimitError,
    RequestTimeoutError,
    RerankError,
    ResponseFormatError,
    ServerError,
    ToolInputError,
)
from ._observe import RerankStats
from ._ratelimit import Limiter, RateLimit, RateLimiter
from ._retry import RetryPolicy, backoff_delay, next_wait, parse_retry_after
from ._types import NOT_GIVEN, NotGiven, RerankResponse, RerankResult, Usage
from ._version import __version__

__all__ = [
    "DIALECTS",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "GatewayTimeoutError",
    "Image",
    "Limiter",
    "NotGiven",
    "RateLimit",
    "RateLimitError",
    "RateLimiter",
    "RequestTimeoutError",
    "RerankCache",
    "RerankClient",
    "RerankError",
    "RerankResponse",
    "RerankResult",
    "RerankStats",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "SharedCache",
    "ToolInputError",
    "Usage",
    "__version__",
    "backoff_delay",
    "next_wait",
    "parse_retry_after",
]
