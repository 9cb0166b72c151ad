"""The demo's first stage: a tiny, dependency-free hashing embedding, and the same as a
LangChain and a LlamaIndex embedding model.

The demo needs a retriever that is cheap, offline and deterministic, and *good enough* to put
the right passage somewhere among the first candidates while still ordering them imperfectly.
Signed feature hashing of raw word counts does exactly that: there is no IDF weighting, so
frequent words ("the", "how", "coffee") dominate the vectors, and with few dimensions
unrelated words collide in the same bucket. A reranker then has something visible to fix.

The framework models wrap :func:`hashing_embedding`, so the demo's vector stores need no model
download and no key. Each framework is imported only when its class is first asked for, so
this module imports without either::

    embeddings = langchain_embeddings()          # a langchain_core Embeddings
    embed_model = llama_index_embedding()        # a llama_index BaseEmbedding

The classes themselves, ``LangChainHashingEmbeddings`` and ``LlamaIndexHashingEmbedding``,
are built on first access.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from llama_index.core.base.embeddings.base import BaseEmbedding

# ``LangChainHashingEmbeddings`` and ``LlamaIndexHashingEmbedding`` are module attributes too,
# built on first access (see ``__getattr__``); they stay out of ``__all__`` so that a star
# import does not import both frameworks.
__all__ = [
    "DEFAULT_DIMENSIONS",
    "cosine",
    "hashing_embedding",
    "hashing_tokens",
    "langchain_embeddings",
    "langchain_embeddings_class",
    "llama_index_embedding",
    "llama_index_embedding_class",
]

DEFAULT_DIMENSIONS = 64
"""Vector size used by the demo's first stage."""

# Ideographs (CJK Unified Ideographs, Extension A, Compatibility) have no spaces
# between words, so each character becomes its own token; everything else
# is split into runs of word characters.
_CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(rf"[{_CJK_CHARS}]|[^\W{_CJK_CHARS}]+")


def hashing_tokens(text: str) -> list[str]:
    """Split ``text`` into the lowercased tokens that :func:`hashing_embedding` hashes.

    Latin-script (and other space-separated) text yields runs of word
    characters (``\\w+``); each CJK ideograph is a token of its own. The text is
    NFKC-normalized and lowercased first, so full-width characters and case
    variants map to the same token.
    """
    normalized = unicodedata.normalize("NFKC", text).lower()
    return _TOKEN_RE.findall(normalized)


def hashing_embedding(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """Embed ``text`` into a ``dimensions``-long, L2-normalized vector by feature hashing.

    Every token from :func:`hashing_tokens` is hashed with CRC-32 (stable across
    processes and platforms, unlike the randomized built-in ``hash``). The hash
    modulo ``dimensions`` picks the bucket, and one further hash bit picks the
    sign (+1 or -1) added to it, which keeps colliding words from always
    reinforcing each other. The raw counts are not weighted by IDF. The result
    is divided by its Euclidean norm; text without any token maps to the zero
    vector.

    Raises:
        ValueError: if ``dimensions`` is smaller than 1.
    """
    if dimensions < 1:
        raise ValueError(f"dimensions must be at least 1, got {dimensions}")
    vector = [0.0] * dimensions
    for token in hashing_tokens(text):
        digest = zlib.crc32(token.encode("utf-8"))
        bucket = digest % dimensions
        sign = -1.0 if digest & 0x80000000 else 1.0
        vector[bucket] += sign
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        return vector
    return [value / norm for value in vector]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Return the cosine similarity of two vectors of equal length.

    Defined as ``dot(a, b) / (|a| * |b|)``; it is 0.0 when either vector is all
    zeros, so empty texts never rank above real matches by accident.

    Raises:
        ValueError: if the vectors differ in length.
    """
    if len(a) != len(b):
        raise ValueError(f"vectors differ in length: {len(a)} != {len(b)}")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm_a = math.sqrt(sum(x * x for x in a))
    norm_b = math.sqrt(sum(y * y for y in b))
    if norm_a == 0.0 or norm_b == 0.0:
        return 0.0
    return dot / (norm_a * norm_b)


# -- the same, as framework embedding models ---------------------------------------------


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
