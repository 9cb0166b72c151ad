"""Any HTTP rerank API behind LangChain and LlamaIndex.

``RerankClient`` speaks to the API (sync and async, batching, retries, typed errors);
``rerank_integrations.langchain.RerankCompressor`` and
``rerank_integrations.llama_index.RerankPostprocessor`` adapt it to the two frameworks.

Rate limits: a :class:`RateLimit` is the budget a client is given (``rate_limit=``); a
:class:`RateLimiter` is anything that hands out a budget (implement its ``reserve``, which
takes a :class:`Cost`, to share one budget across processes); :class:`Limiter` is the
built-in one a ``RateLimit`` gets.

Dialects: :data:`DIALECTS` lists them, read-only; :func:`register_dialect` adds one (see
:mod:`rerank_integrations.dialects`).
"""

import importlib as _importlib
import warnings as _warnings
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from . import _retry
from ._client import RerankClient
from ._documents import Image
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    EvalInputError,
    EvalRunError,
    GatewayTimeoutError,
    RateLimitError,
    RequestTimeoutError,
    RerankError,
    ResponseFormatError,
    ServerError,
    ToolInputError,
)
from ._retry import RetryPolicy, parse_retry_after
from ._types import NOT_GIVEN, NotGiven, RerankResponse, RerankResult, Usage
from ._usage import Price
from ._version import __version__

if _TYPE_CHECKING:
    from ._cache import RerankCache, SharedCache
    from ._config import ClientSettings
    from ._observe import RerankStats
    from ._ratelimit import Cost, Limiter, RateLimit, RateLimiter
    from .dialects import DIALECTS, PromptTemplate, register_dialect

#: Public names whose modules load at their first use (importing an adapter stays cheap: the
#: budget in benchmarks/import_time.py), with the module each lives in.
_LAZY = {
    "ClientSettings": "._config",
    "Cost": "._ratelimit",
    "DIALECTS": ".dialects",
    "Limiter": "._ratelimit",
    "PromptTemplate": ".dialects",
    "RateLimit": "._ratelimit",
    "RateLimiter": "._ratelimit",
    "RerankCache": "._cache",
    "RerankStats": "._observe",
    "SharedCache": "._cache",
    "register_dialect": ".dialects",
}

__all__ = [
    "DIALECTS",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientSettings",
    "ConfigurationError",
    "Cost",
    "EvalInputError",
    "EvalRunError",
    "GatewayTimeoutError",
    "Image",
    "Limiter",
    "NotGiven",
    "Price",
    "PromptTemplate",
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
    "parse_retry_after",
    "register_dialect",
]

#: Names that were public here and are no longer, with where they live now; each still
#: works, with a ``DeprecationWarning``, until the next release.
_DEPRECATED = {
    "backoff_delay": (_retry, "a part of the retry decision, not a public name"),
    "next_wait": (_retry, "the retry decision is RetryPolicy's, not a public name"),
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # found once; later lookups skip this function
        return value
    if name in _DEPRECATED:
        module, why = _DEPRECATED[name]
        _warnings.warn(
            f"rerank_integrations.{name} is deprecated ({why}) and goes away in the next "
            f"release; it stays importable from {module.__name__}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
