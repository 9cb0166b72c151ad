"""The demo's first-stage embedding as a LangChain and a LlamaIndex embedding model.

Both wrap :func:`~rerank_integrations.demo.hashing_embedding`: offline, deterministic and
free, so that the demo's vector stores need no model download and no API key. Each framework
is imported only when its class is first asked for, so this module imports without either::

    from rerank_integrations.demo import langchain_embeddings, llama_index_embedding

    embeddings = langchain_embeddings()          # a langchain_core Embeddings
    embed_model = llama_index_embedding()        # a llama_index BaseEmbedding

The classes themselves are ``LangChainHashingEmbeddings`` and ``LlamaIndexHashingEmbedding``
in this module (built on first access).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from rerank_integrations.demo._embedding import DEFAULT_DIMENSIONS, hashing_embedding

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from llama_index.core.base.embeddings.base import BaseEmbedding

# ``LangChainHashingEmbeddings`` and ``LlamaIndexHashingEmbedding`` are module attributes too,
# built on first access (see ``__getattr__``); they stay out of ``__all__`` so that a star
# import does not import both frameworks.
__all__ = [
    "langchain_embeddings",
    "langchain_embeddings_class",
    "llama_index_embedding",
    "llama_index_embedding_class",
]

_LANGCHAIN_HINT = (
    "the LangChain demo embedding needs langchain-core; install it with: "
    'pip install "rerank-integrations[langchain]"'
)
_LLAMA_INDEX_HINT = (
    "the LlamaIndex demo embedding needs llama-index-core; install it with: "
    'pip install "rerank-integrations[llama-index]"'
)


def _check_dimensions(dimensions: object) -> int:
    """``dimensions`` if it is an integer of at least 1, else a ``TypeError``/``ValueError``."""
    if isinstance(dimensions, bool) or not isinstance(dimensions, int):
        raise TypeError(f"dimensions must be an integer, got {dimensions!r}")
    if dimensions < 1:
        raise ValueError(f"dimensions must be at least 1, got {dimensions}")
    return dimensions


@functools.cache
def langchain_embeddings_class() -> type[Embeddings]:
    """The LangChain ``Embeddings`` subclass over :func:`hashing_embedding` (built once).

    Raises:
        ImportError: langchain-core is not installed.
    """
    try:
        from langchain_core.embeddings import Embeddings
    except ImportError as exc:
        raise ImportError(_LANGCHAIN_HINT) from exc

    class LangChainHashingEmbeddings(Embeddings):
        """LangChain embeddings by signed feature hashing: offline and deterministic.

        Args:
            dimensions: the vector size (default 64, the demo's).
        """

        def __init__(self, dimensions: int = DEFAULT_DIMENSIONS) -> None:
            self.dimensions = _check_dimensions(dimensions)

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            """Embed each text."""
            return [hashing_embedding(text, self.dimensions) for text in texts]

        def embed_query(self, text: str) -> list[float]:
            """Embed a query the same way as a document."""
            return hashing_embedding(text, self.dimensions)

        async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
            """Embed each text on the event loop: hashing is too cheap for a thread."""
            return self.embed_documents(texts)

        async def aembed_query(self, text: str) -> list[float]:
            """Embed a query on the event loop."""
            return self.embed_query(text)

        def __repr__(self) -> str:
            return f"LangChainHashingEmbeddings(dimensions={self.dimensions})"

    _place(LangChainHashingEmbeddings)
    return LangChainHashingEmbeddings


@functools.cache
def llama_index_embedding_class() -> type[BaseEmbedding]:
    """The LlamaIndex ``BaseEmbedding`` subclass over :func:`hashing_embedding` (built once).

    Raises:
        ImportError: llama-index-core is not installed.
    """
    try:
        from llama_index.core.base.embeddings.base import BaseEmbedding
        from pydantic import Field
    except ImportError as exc:
        raise ImportError(_LLAMA_INDEX_HINT) from exc

    class LlamaIndexHashingEmbedding(BaseEmbedding):
        """A LlamaIndex embedding model by signed feature hashing: offline, deterministic."""

        dimensions: int = Field(default=DEFAULT_DIMENSIONS, ge=1)
        """The vector size (default 64, the demo's)."""
        model_name: str = "hashing"

        @classmethod
        def class_name(cls) -> str:
            """The name LlamaIndex records for this component."""
            return "LlamaIndexHashingEmbedding"

        def _get_query_embedding(self, query: str) -> list[float]:
            return hashing_embedding(query, self.dimensions)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return hashing_embedding(query, self.dimensions)

        def _get_text_embedding(self, text: str) -> list[float]:
            return hashing_embedding(text, self.dimensions)

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return [hashing_embedding(text, self.dimensions) for text in texts]

        async def _aget_text_embedding(self, text: str) -> list[float]:
            return hashing_embedding(text, self.dimensions)

    _place(LlamaIndexHashingEmbedding)
    return LlamaIndexHashingEmbedding


def _place(cls: type[Any]) -> None:
    """Give a class built in a function its module-level name, so that it pickles and prints
    like one defined at the top of this module."""
    cls.__module__ = __name__
    cls.__qualname__ = cls.__name__


def langchain_embeddings(dimensions: int = DEFAULT_DIMENSIONS) -> Embeddings:
    """A LangChain ``Embeddings`` over :func:`hashing_embedding` with ``dimensions`` buckets.

    Raises:
        ImportError: langchain-core is not installed.
    """
    return langchain_embeddings_class()(dimensions)  # type: ignore[call-arg]


def llama_index_embedding(dimensions: int = DEFAULT_DIMENSIONS) -> BaseEmbedding:
    """A LlamaIndex ``BaseEmbedding`` over :func:`hashing_embedding` with ``dimensions`` buckets.

    Raises:
        ImportError: llama-index-core is not installed.
    """
    return llama_index_embedding_class()(dimensions=_check_dimensions(dimensions))  # type: ignore[call-arg]


_LAZY_CLASSES = {
    "LangChainHashingEmbeddings": langchain_embeddings_class,
    "LlamaIndexHashingEmbedding": llama_index_embedding_class,
}


def __getattr__(name: str) -> Any:
    """Build ``LangChainHashingEmbeddings`` / ``LlamaIndexHashingEmbedding`` on first access."""
    factory = _LAZY_CLASSES.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = factory()
    globals()[name] = cls
    return cls
