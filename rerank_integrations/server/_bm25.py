"""Okapi BM25 and a small multilingual tokenizer: pure, deterministic, the same on every
platform, so a test can predict the server's ranking exactly.

Tokens: the text is NFKC-normalised and case-folded (full-width letters, ligatures and case
all match), then split into runs of word characters (``\\w``: letters, digits, ``_``).
Chinese, Japanese and Korean runs become overlapping character bigrams, since those scripts
put no spaces between words; a one-character run is that character. ``"iPhone15手机"`` splits
at the script boundary into ``["iphone15", "手机"]``.

Terms: the tokens without :data:`STOP_WORDS`, British spellings folded into American ones
(:data:`SPELLING_VARIANTS`); :mod:`._lexicon` says why. :func:`tokenize` keeps every token,
:func:`analyze` gives the terms BM25 scores.

Scores: Okapi BM25 with the request's own documents as the collection, and the IDF
``ln(1 + (N - df + 0.5) / (df + 0.5))``, which stays positive even for one document.

Instructions: a query of several lines is read as an instruction (every line but the last)
followed by the query (its last line), the form clients send an instruction in to servers
of the generic format. The instruction's content words (its terms without
:data:`INSTRUCTION_FILLER`, the words that only say how to rank) are scored as a second BM25
query over the same documents and added at :data:`INSTRUCTION_WEIGHT`, for documents the
query itself matches: an instruction reorders what the query found, as an instruction-
following reranker does, and never makes a document relevant on its own
(:func:`instructed_scores`). A one-line query is scored as before.

Token counts (:func:`count_tokens`) are the server's measure of size, for its limits and its
usage figures: what a model's tokenizer would count, roughly, and exactly defined so that a
client's estimate can be checked against it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache

from ._lexicon import SPELLING_VARIANTS, STOP_WORDS

__all__ = [
    "DEFAULT_B",
    "DEFAULT_K1",
    "INSTRUCTION_FILLER",
    "INSTRUCTION_WEIGHT",
    "RELEVANCE_HALF_SCORE",
    "SPELLING_VARIANTS",
    "STOP_WORDS",
    "analyze",
    "bm25_scores",
    "count_tokens",
    "instructed_scores",
    "instruction_terms",
    "score_tokens",
    "split_instruction",
    "terms_of",
    "to_relevance",
    "tokenize",
    "truncate_tokens",
]

DEFAULT_K1 = 1.2
"""How fast repeating a term stops adding to the score (BM25's ``k1``)."""

DEFAULT_B = 0.75
"""How much a long document is penalised for its length (BM25's ``b``)."""

RELEVANCE_HALF_SCORE = 4.0
"""The BM25 score :func:`to_relevance` maps to ``0.5``."""

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
    """The tokens of ``text`` in reading order: case-folded words, and bigrams for Chinese,
    Japanese and Korean runs; none for empty or punctuation-only text.

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


# -- token counts --------------------------------------------------------------------------

# Characters of scripts written without spaces, counted one token each: the tokenizer's
# class, and the half-width katakana and Hangul it reaches through NFKC.
_COUNT_CJK = _CJK_CLASS + "\uff66-\uff9f\uffa0-\uffdc"
_ASCII_TOKEN_RE = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")


@cache
def _token_re() -> re.Pattern[str]:
    """The counting pattern for any text, built on first use (it lists every combining mark
    Python knows, about 60 ms of work that ASCII text never needs)."""
    ranges: list[str] = []
    start = previous = -1
    for code in range(0x30000):
        if unicodedata.category(chr(code))[0] == "M":
            if start < 0:
                start = code
            previous = code
        elif start >= 0:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(previous))}")
            start = -1
    marks = "".join(ranges) + "\U000e0100-\U000e01ef"  # variation selectors supplement
    word = f"[^\\W{_COUNT_CJK}]"
    return re.compile(
        f"{word}+(?:[{marks}]+{word}*)*"  # a word run, with the combining marks inside it
        f"|[{_COUNT_CJK}][{marks}]*"  # one CJK character
        f"|[^\\w\\s][{marks}]*"  # anything else but white space: punctuation, a symbol
    )


def _pattern(text: str) -> re.Pattern[str]:
    return _ASCII_TOKEN_RE if text.isascii() else _token_re()


def count_tokens(text: str) -> int:
    """The number of tokens the server counts in ``text``: its measure for
    ``max_tokens_per_document``, ``max_tokens_per_request`` and ``usage``.

    Each run of letters, digits and ``_`` (with its combining marks) is one token, each
    Chinese, Japanese or Korean character is one, and each other character that is not
    white space (punctuation, a symbol, an emoji) is one. White space counts nothing.
    This is close to what a WordPiece or BPE tokenizer counts for CJK text and punctuation,
    and a lower bound for words, which those split further; it is exact and cheap, so a
    client's estimate can be tested against it.

    Examples:
        >>> count_tokens("Don't over-steep: 4 minutes, max!")
        12
        >>> count_tokens("手冲咖啡 V60")
        5
    """
    return len(_pattern(text).findall(text))


def truncate_tokens(text: str, max_tokens: int) -> str:
    """``text`` cut after its first ``max_tokens`` tokens (:func:`count_tokens`'s), the part
    a model with that input length reads; the whole text when it is no longer."""
    end = None
    for count, match in enumerate(_pattern(text).finditer(text)):
        if count == max_tokens:  # a token beyond the limit: cut after the one before it
            return text[:end] if end is not None else ""
        end = match.end()
    return text


def terms_of(tokens: Iterable[str]) -> list[str]:
    """The terms of :func:`tokenize`'s ``tokens``: stop words left out, spellings folded."""
    stop, variants = STOP_WORDS, SPELLING_VARIANTS
    return [variants.get(token, token) for token in tokens if token not in stop]


def analyze(text: str) -> list[str]:
    """The terms of ``text`` that BM25 scores.

    Examples:
        >>> analyze("How do I fix a flat tyre?")
        ['fix', 'flat', 'tire']
    """
    return terms_of(tokenize(text))


def _check_parameters(k1: float, b: float) -> None:
    """A ``ValueError`` unless ``k1 >= 0`` and ``0 <= b <= 1``."""
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
    """:func:`bm25_scores` of texts already tokenized, for callers that need the tokens
    anyway and should tokenize once.

    Each distinct query term counts once; the documents are the collection for document
    frequencies and the average length. Returns one score ``>= 0`` per document, in order;
    ``ValueError`` when ``k1 < 0`` or ``b`` is outside 0..1.
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
    """The Okapi BM25 score of each document for ``query``, in order; ``0.0`` for one that
    shares no term (:func:`analyze`) with it.

    The documents are the whole collection: document frequencies and the average length
    come from them alone, as a reranker sees only the candidates it is sent. Each distinct
    query term counts once. ``ValueError`` when ``k1 < 0`` or ``b`` is outside 0..1.
    """
    return score_tokens(analyze(query), [analyze(doc) for doc in documents], k1, b)


#: How much an instruction's content words weigh against the query's.
INSTRUCTION_WEIGHT = 0.5

#: Words of an instruction that say how to rank rather than what to favour.
INSTRUCTION_FILLER = frozenset(
    {
        "prefer",
        "preferring",
        "favour",
        "favor",
        "prioritise",
        "prioritize",
        "rank",
        "ranking",
        "retrieve",
        "find",
        "relevant",
        "document",
        "documents",
        "passage",
        "passages",
        "text",
        "texts",
        "result",
        "results",
        "about",
        "query",
        "answer",
        "answers",
        "given",
        "search",
        "web",
        "higher",
        "first",
        "over",
        "ones",
        "those",
        "mention",
        "mentioning",
    }
)


def split_instruction(query: str) -> tuple[str | None, str]:
    """``(instruction, query)``: a query of several lines is its instruction lines and its
    last line; a one-line query has no instruction."""
    head, newline, last = query.rstrip("\n").rpartition("\n")
    if not newline or not head.strip() or not last.strip():
        return None, query
    return head, last


def instruction_terms(instruction: str) -> list[str]:
    """The content words of an instruction, as terms (:func:`analyze`), without the filler."""
    filler = _filler_terms()
    return [term for term in analyze(instruction) if term not in filler]


@cache
def _filler_terms() -> frozenset[str]:
    return frozenset(analyze(" ".join(sorted(INSTRUCTION_FILLER))))


def instructed_scores(
    query: str,
    document_tokens: Sequence[Sequence[str]],
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
) -> list[float]:
    """BM25 of ``query`` (already split from its instruction lines, if any: see the module's
    docstring) over ``document_tokens``, with the instruction's content words added at
    :data:`INSTRUCTION_WEIGHT` to the documents the query matches."""
    instruction, asked = split_instruction(query)
    query_terms = analyze(asked)
    scores = score_tokens(query_terms, document_tokens, k1, b)
    if instruction is None:
        return scores
    known = set(query_terms)
    extra = [term for term in instruction_terms(instruction) if term not in known]
    if not extra:
        return scores
    bonus = score_tokens(extra, document_tokens, k1, b)
    return [
        score + INSTRUCTION_WEIGHT * more if score > 0 else score
        for score, more in zip(scores, bonus, strict=True)
    ]


def to_relevance(score: float, half_score: float = RELEVANCE_HALF_SCORE) -> float:
    """A BM25 score as a relevance in ``[0, 1)``, the range rerank APIs answer in.

    ``score / (score + half_score)``: strictly increasing, ``0`` stays ``0``, ``half_score``
    (4.0) gives ``0.5``; a negative or NaN score gives ``0.0``, an infinite one ``1.0``.
    ``ValueError`` unless ``half_score`` is a positive finite number.
    """
    if not (math.isfinite(half_score) and half_score > 0):
        raise ValueError(f"half_score must be a positive finite number, got {half_score!r}")
    if not score > 0:
        return 0.0
    if math.isinf(score):
        return 1.0
    return score / (score + half_score)
