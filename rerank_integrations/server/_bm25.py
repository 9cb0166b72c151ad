"""Okapi BM25 scoring and a small multilingual tokenizer.

Everything here is pure and deterministic: the same inputs always give the
same tokens and the same scores, on every platform.

Tokenization rules:

* The text is normalised with Unicode NFKC and then case-folded, so
  full-width Latin letters, ligatures and case differences match.
* Text is split into runs of word characters (``\\w``, digits and ``_``
  included).  Anything else (spaces, punctuation, symbols) separates tokens.
* Runs of Chinese, Japanese or Korean characters (Han ideographs, Hiragana,
  Katakana, Hangul) become overlapping character bigrams, because these
  scripts are not written with spaces between words.  A run of a single CJK
  character yields that character.  Other word runs become one token each.
  Mixed text such as ``"iPhone15手机"`` is split at the script boundary
  (``["iphone15", "手机"]``).
* No stopwords are removed; BM25's IDF already gives very common terms a
  low weight.

Scoring is Okapi BM25 computed over the documents of one request as the
whole collection, with the non-negative IDF variant
``ln(1 + (N - df + 0.5) / (df + 0.5))``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

__all__ = [
    "DEFAULT_B",
    "DEFAULT_K1",
    "RELEVANCE_HALF_SCORE",
    "bm25_scores",
    "score_tokens",
    "to_relevance",
    "tokenize",
]

DEFAULT_K1 = 1.2
"""Default BM25 term-frequency saturation parameter ``k1``."""

DEFAULT_B = 0.75
"""Default BM25 document-length normalisation parameter ``b``."""

RELEVANCE_HALF_SCORE = 4.0
"""BM25 score that :func:`to_relevance` maps to exactly ``0.5``."""

# Characters of scripts written without spaces between words.  Only word
# characters are listed (punctuation such as U+30FB KATAKANA MIDDLE DOT is
# left out on purpose so that it still separates tokens).
_CJK_CLASS = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2eff"  # CJK Radicals Supplement
    "\u3005-\u3007"  # ideographic iteration mark, closing mark, number zero
    "\u303b"  # vertical ideographic iteration mark
    "\u3041-\u3096"  # Hiragana letters
    "\u309d-\u309f"  # Hiragana iteration marks and digraph
    "\u30a1-\u30fa"  # Katakana letters
    "\u30fc-\u30ff"  # Katakana prolonged sound mark, iteration marks, digraph
    "\u3131-\u318e"  # Hangul Compatibility Jamo
    "\u31f0-\u31ff"  # Katakana Phonetic Extensions
    "\u3400-\u4dbf"  # CJK Unified Ideographs Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\ua960-\ua97f"  # Hangul Jamo Extended-A
    "\uac00-\ud7af"  # Hangul Syllables
    "\ud7b0-\ud7ff"  # Hangul Jamo Extended-B
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\U00020000-\U0003ffff"  # CJK Unified Ideographs Extensions B and later
)

# Splitting with a capturing group alternates non-CJK text (even indexes)
# and CJK runs (odd indexes).
_CJK_RUN_RE = re.compile(f"([{_CJK_CLASS}]+)")
_WORD_RE = re.compile(r"\w+")

# Fast path for pure ASCII text (the common case for English documents):
# NFKC is the identity there, case folding is lowercasing and ``\w`` is
# ``[A-Za-z0-9_]``.  One byte translation lowercases letters and turns every
# other non-word byte into a space, so ``split()`` yields the same tokens as
# the regular expression, several times faster.
_ASCII_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")
_ASCII_TABLE = bytes(
    byte if byte in _ASCII_WORD else byte + 32 if 65 <= byte <= 90 else 32 for byte in range(256)
)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into normalised tokens.

    Args:
        text: Any Unicode text.

    Returns:
        The tokens in reading order: case-folded words for space-separated
        scripts and character bigrams for Chinese, Japanese and Korean runs.
        Empty or punctuation-only text gives an empty list.

    Examples:
        >>> tokenize("Organic SKINCARE, 2024!")
        ['organic', 'skincare', '2024']
        >>> tokenize("敏感肌")
        ['敏感', '感肌']
        >>> tokenize("iPhone15手机")
        ['iphone15', '手机']
    """
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_TABLE).decode("ascii").split()
    normalised = unicodedata.normalize("NFKC", text).casefold()
    parts = _CJK_RUN_RE.split(normalised)
    tokens: list[str] = _WORD_RE.findall(parts[0])
    for i in range(1, len(parts), 2):
        run = parts[i]
        if len(run) == 1:
            tokens.append(run)
        else:
            tokens.extend(map(str.__add__, run[:-1], run[1:]))
        tokens.extend(_WORD_RE.findall(parts[i + 1]))
    return tokens


def _check_parameters(k1: float, b: float) -> None:
    """Raise ``ValueError`` unless ``k1`` and ``b`` are valid BM25 parameters."""
    if not (math.isfinite(k1) and k1 >= 0):
        raise ValueError(f"k1 must be a finite number >= 0, got {k1!r}")
    if not (math.isfinite(b) and 0 <= b <= 1):
        raise ValueError(f"b must be between 0 and 1, got {b!r}")


def score_tokens(
    query_tokens: Sequence[str],
    document_tokens: Sequence[Sequence[str]],
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
) -> list[float]:
    """Score already tokenized documents against already tokenized query terms.

    This is the core of :func:`bm25_scores`; it exists so that callers that
    need the tokens anyway (for example to count them) tokenize only once.

    Args:
        query_tokens: Query tokens; each distinct term counts once.
        document_tokens: One token sequence per document; together they form
            the collection used for document frequencies and average length.
        k1: Term-frequency saturation, ``>= 0``.
        b: Length normalisation, between 0 and 1.

    Returns:
        One non-negative score per document, in input order.

    Raises:
        ValueError: If ``k1`` or ``b`` is out of range.
    """
    _check_parameters(k1, b)
    n_docs = len(document_tokens)
    if n_docs == 0:
        return []
    terms = list(dict.fromkeys(query_tokens))
    lengths = [len(tokens) for tokens in document_tokens]
    total_length = sum(lengths)
    if not terms or total_length == 0:
        return [0.0] * n_docs
    avg_length = total_length / n_docs

    # Term frequencies of query terms only, computed once per document.
    term_set = set(terms)
    frequencies: list[dict[str, int]] = []
    doc_freq = dict.fromkeys(terms, 0)
    for tokens in document_tokens:
        hits = term_set.intersection(tokens)
        if not hits:
            found: dict[str, int] = {}
        elif len(hits) <= 4:  # a few linear scans beat building a Counter
            found = {term: tokens.count(term) for term in hits}
        else:
            counts = Counter(tokens)
            found = {term: counts[term] for term in hits}
        frequencies.append(found)
        for term in found:
            doc_freq[term] += 1

    idf = {term: math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)) for term, df in doc_freq.items()}
    k1_plus_1 = k1 + 1.0
    scores: list[float] = []
    for found, length in zip(frequencies, lengths, strict=True):
        if not found:
            scores.append(0.0)
            continue
        norm = k1 * (1.0 - b + b * length / avg_length)
        score = 0.0
        for term in terms:  # fixed order keeps float sums reproducible
            tf = found.get(term)
            if tf:
                score += idf[term] * tf * k1_plus_1 / (tf + norm)
        scores.append(score)
    return scores


def bm25_scores(
    query: str,
    documents: Sequence[str],
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
) -> list[float]:
    """Score ``documents`` against ``query`` with Okapi BM25.

    The documents themselves are the collection: document frequencies and
    the average document length come from ``documents`` only.  The IDF is
    ``ln(1 + (N - df + 0.5) / (df + 0.5))``, which stays positive even for a
    single document.  Each distinct query term is counted once.

    Args:
        query: The search query.
        documents: The candidate documents.
        k1: Term-frequency saturation, ``>= 0`` (default 1.2).
        b: Length normalisation, between 0 and 1 (default 0.75).

    Returns:
        One non-negative score per document, in input order; ``0.0`` for a
        document that shares no term with the query.

    Raises:
        ValueError: If ``k1`` or ``b`` is out of range.
    """
    return score_tokens(tokenize(query), [tokenize(doc) for doc in documents], k1, b)


def to_relevance(score: float, half_score: float = RELEVANCE_HALF_SCORE) -> float:
    """Map a BM25 score to a relevance in ``[0, 1)``.

    The map is ``score / (score + half_score)``: strictly increasing for
    positive scores, ``0`` stays ``0`` and ``half_score`` (default
    :data:`RELEVANCE_HALF_SCORE`, 4.0) maps to ``0.5``.  Negative or NaN
    scores map to ``0.0`` and an infinite score to ``1.0``.

    Args:
        score: A BM25 score.
        half_score: The positive score that maps to ``0.5``.

    Returns:
        The relevance.

    Raises:
        ValueError: If ``half_score`` is not a positive finite number.
    """
    if not (math.isfinite(half_score) and half_score > 0):
        raise ValueError(f"half_score must be a positive finite number, got {half_score!r}")
    if not score > 0:
        return 0.0
    if math.isinf(score):
        return 1.0
    return score / (score + half_score)
