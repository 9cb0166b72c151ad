"""What the LangChain and LlamaIndex adapters share: their settings and the client they build.

The adapters themselves only translate documents or nodes to texts and results back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from ._client import RerankClient
from ._constants import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._types import RerankResponse, RerankResult

#: The metadata key that carries the relevance score on returned documents and nodes.
SCORE_KEY = "relevance_score"


class RerankSettings(BaseModel):
    """Settings common to both framework adapters; see ``RerankClient`` for their meaning."""

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        validate_assignment=False,
    )

    model: str | None = None
    """Rerank model name; ``None`` uses ``RERANK_MODEL`` or leaves it to the server."""
    top_n: int | None = Field(default=3, ge=1)
    """How many documents to return, best first; ``None`` returns all."""
    score_threshold: float | None = None
    """Drop results that score below this; ``None`` keeps every result."""
    base_url: str | None = None
    """API base URL (host root, versioned root or full endpoint); else ``RERANK_BASE_URL``."""
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """API key; else ``RERANK_API_KEY``. Never serialized or shown."""
    dialect: str | None = None
    """Wire dialect; else ``RERANK_DIALECT``, else ``"generic"``."""
    timeout: float | None = Field(default=DEFAULT_TIMEOUT, gt=0)
    """Seconds per HTTP request; ``None`` waits forever."""
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0)
    """Retries per request for connection errors, timeouts, 408, 409, 429 and 5xx."""
    max_documents_per_request: int | None = Field(default=None, ge=1)
    """Split larger calls into batches of this many documents; ``None`` uses the dialect's."""
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1)
    """Batches of one call in flight at once."""
    headers: dict[str, str] | None = Field(default=None, exclude=True, repr=False)
    """Extra HTTP headers for every request (not serialized: they may carry credentials)."""
    client: RerankClient | None = Field(default=None, exclude=True, repr=False)
    """A ready ``RerankClient`` to use instead of building one from the settings above."""

    _rerank_client: RerankClient = PrivateAttr()

    @model_validator(mode="after")
    def _connect(self) -> Any:
        if self.client is not None:
            self._rerank_client = self.client
        else:
            self._rerank_client = RerankClient(
                base_url=self.base_url,
                api_key=self.api_key,
                model=self.model,
                dialect=self.dialect,
                timeout=self.timeout,
                max_retries=self.max_retries,
                max_documents_per_request=self.max_documents_per_request,
                max_concurrency=self.max_concurrency,
                headers=self.headers,
            )
        return self

    @property
    def rerank_client(self) -> RerankClient:
        """The ``RerankClient`` that sends this adapter's requests."""
        return self._rerank_client

    def _kept(self, response: RerankResponse) -> list[RerankResult]:
        """The results that pass ``score_threshold``, best first."""
        threshold = self.score_threshold
        if threshold is None:
            return response.results
        return [result for result in response.results if result.relevance_score >= threshold]
