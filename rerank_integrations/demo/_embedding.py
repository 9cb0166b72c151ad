"""A tiny, dependency-free first-stage embedding for the demo.

The demo needs a retriever that is cheap, offline and deterministic, and that is
*good enough* to put the right passage somewhere among the first candidates while
still ordering them imperfectly. Signed feature hashing of raw word counts does
exactly that: there is no IDF weighting, so frequent words ("the", "how", "coffee")
dominate the vectors, and with few dimensions unrelated words collide in the
same bucket. A reranker then has something visible to fix.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections.abc import Sequence

__all__ = ["DEFAULT_DIMENSIONS", "cosine", "hashing_embedding", "hashing_tokens"]

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
