"""Deterministic synthetic documents and the query used by every scenario."""

from __future__ import annotations

import random
from typing import Any

__all__ = ["QUERY", "floor_payload", "make_documents", "payload_size"]

#: The query sent with every call.
QUERY = "organic skincare products for sensitive skin with aloe vera"

_ONSETS = ("b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "br", "st")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou")
_CODAS = ("", "n", "r", "s", "t", "l", "nd", "st")


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """``size`` distinct made-up words of one to three syllables."""
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.randint(1, 3)
        words.add(
            "".join(
                rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                for _ in range(syllables)
            )
        )
    return sorted(words)


def make_documents(count: int, words: int, seed: int = 7) -> list[str]:
    """``count`` distinct documents of ``words`` words each, the same for the same arguments.

    Args:
        count: how many documents.
        words: words per document (about 6.5 characters a word, space included).
        seed: the random seed.

    Returns:
        The documents, all distinct, so that no client can skip a repeated text.
    """
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng, 2000)
    documents: list[str] = []
    seen: set[str] = set()
    while len(documents) < count:
        text = " ".join(rng.choices(vocabulary, k=words))
        if text not in seen:
            seen.add(text)
            documents.append(text)
    return documents


def floor_payload(documents: list[str], top_n: int | None) -> dict[str, Any]:
    """The request body the floor sends: the one ``RerankClient`` sends (generic dialect)."""
    body: dict[str, Any] = {"query": QUERY, "documents": documents}
    if top_n is not None:
        body["top_n"] = min(top_n, len(documents))
    body["return_documents"] = False
    return body


def payload_size(documents: list[str], top_n: int | None) -> int:
    """Bytes of the compact UTF-8 JSON body that carries every document in one request."""
    import json

    text = json.dumps(floor_payload(documents, top_n), ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8"))
