"""Sizes and cuts: how many tokens a text has, where to cut it, and its windows.

Without a tokenizer the count is an estimate that errs on the large side: every run of
letters or digits counts one token per 2.5 characters (at least one), every Chinese,
Japanese or Korean character two, and every other mark one. On the demo corpus it is never
below the count of a WordPiece tokenizer (all-MiniLM-L6-v2) or of OpenAI's cl100k_base, and
on average 1.8 times theirs for Latin scripts and 1.4 times for CJK: a document is cut
more often than it needs to be, never refused. Pass ``tokenizer=`` for an exact count.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "LONG_DOCUMENT_MODES",
    "TokenCounter",
    "counter_for",
    "estimate_tokens",
    "windows",
]

#: What to do with a document longer than a model reads (``long_documents=``).
LONG_DOCUMENT_MODES = ("server", "truncate", "chunk", "error")
LongDocuments = Literal["server", "truncate", "chunk", "error"]

_CJK = (
    "\u1100-\u11ff\u2e80-\u2eff\u3005-\u3007\u303b\u3041-\u3096\u309d-\u309f\u30a1-\u30fa"
    "\u30fc-\u30ff\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
    "\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\U00020000-\U0003ffff"
)


class _Compiled:
    """A regular expression compiled at its first use, not at import: the CJK ranges'
    character sets take milliseconds to compile, and most programs that import the package
    never count a token."""

    __slots__ = ("_pattern", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        self._pattern: re.Pattern[str] | None = None

    def _compiled(self) -> re.Pattern[str]:
        pattern = self._pattern
        if pattern is None:
            pattern = self._pattern = re.compile(self._source)
        return pattern

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self._compiled().finditer(text)

    def search(self, text: str) -> re.Match[str] | None:
        return self._compiled().search(text)


#: One match a token of the estimate, or a run of letters and digits worth several.
_PIECE = _Compiled(f"[{_CJK}]|[^\\W_{_CJK}]+|[^\\s{_CJK}]")
_CHARACTERS_A_TOKEN = 2.5
_CJK_TOKENS = 2


class TokenCounter(Protocol):
    """Counts the tokens of a text and finds where to cut it."""

    def count(self, text: str) -> int:
        """The number of tokens of ``text``."""

    def ends(self, text: str) -> list[int]:
        """Character offsets after each token of ``text``, in order (the last is the end)."""


#: Without Chinese, Japanese or Korean, the same pieces, found with no group of CJK ranges.
_HAS_CJK = _Compiled(f"[{_CJK}]")
_LATIN_PIECE = re.compile(r"[^\W_]+|\S")
#: Each token of the estimate's ends with the white space before it: matches that tile a
#: text, so that their lengths, added up, are the token ends (no CJK).
_LATIN_TOKEN = re.compile(r"\s*(?:[^\W_]{1,2}|\S)")
_NON_SPACE = re.compile(r"\S")
#: Tokens of a run of letters and digits by its length: ceil(length / 2.5).
_RUN_TOKENS = [max(1, math.ceil(length / _CHARACTERS_A_TOKEN)) for length in range(1024)]


def _no_cjk(text: str) -> bool:
    """Whether ``text`` has no Chinese, Japanese or Korean character (ASCII, at once)."""
    return text.isascii() or not _HAS_CJK.search(text)


def estimate_tokens(text: str) -> int:
    """The estimated number of tokens of ``text`` (see the module's docstring)."""
    if _no_cjk(text):
        # Every piece is a run or one mark (one token either way for a length of 1): the
        # sum is made by lookups in C, not a Python step per piece.
        lengths = list(map(len, _LATIN_PIECE.findall(text)))
        if not lengths or max(lengths) < len(_RUN_TOKENS):
            return sum(map(_RUN_TOKENS.__getitem__, lengths))
    return _counted_by_piece(text)


def _counted_by_piece(text: str) -> int:
    """:func:`estimate_tokens`, one piece at a time (any script)."""
    return sum(_piece_tokens(match.group()) for match in _PIECE.finditer(text))


def _piece_tokens(piece: str) -> int:
    if len(piece) == 1:
        return _CJK_TOKENS if _is_cjk(piece) else 1
    return max(1, math.ceil(len(piece) / _CHARACTERS_A_TOKEN))


def _is_cjk(char: str) -> bool:
    return re.match(f"[{_CJK}]", char) is not None


def _spread(start: int, end: int, tokens: int) -> list[int]:
    """Token ends for ``tokens`` tokens spread over ``text[start:end]``."""
    length = end - start
    return [start + math.ceil(length * k / tokens) for k in range(1, tokens + 1)]


class _Estimate:
    """The estimate as a counter. A long word's tokens end every two characters, so that any
    run of them, estimated again on its own, counts no more tokens than it holds."""

    def windows_fit(self, text: str) -> bool:
        """Whether any n token ends of ``text`` hold at most n tokens counted again, so that
        its windows need no second count (a CJK character ends two tokens at once)."""
        return _no_cjk(text)

    def count(self, text: str) -> int:
        return estimate_tokens(text)

    def ends(self, text: str) -> list[int]:
        if _no_cjk(text):
            return list(itertools.accumulate(map(len, _LATIN_TOKEN.findall(text))))
        return _ends_by_piece(text)


def _ends_by_piece(text: str) -> list[int]:
    """The estimate's token ends, one piece at a time (any script)."""
    ends: list[int] = []
    for match in _PIECE.finditer(text):
        start, end = match.span()
        if end - start == 1:
            ends.extend([end] * _piece_tokens(match.group()))
        else:
            ends.extend(range(min(start + 2, end), end, 2))
            ends.append(end)
    return ends


class _Callable:
    """A ``str -> int`` counter; token ends come from counting each word on its own (the
    windows are counted again whole, so that a tokenizer that is not additive still fits)."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self._count = count

    def count(self, text: str) -> int:
        value = self._count(text)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"tokenizer must return a token count (int >= 0), got {value!r}")
        return value

    def ends(self, text: str) -> list[int]:
        ends: list[int] = []
        for match in _PIECE.finditer(text):
            tokens = self.count(match.group())
            if tokens:
                ends.extend(_spread(*match.span(), tokens))
        return ends


class _Encoder:
    """A Hugging Face ``tokenizers.Tokenizer`` (offsets) or a ``tiktoken`` encoding."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._offsets = hasattr(tokenizer, "encode_batch") and not hasattr(tokenizer, "n_vocab")

    def count(self, text: str) -> int:
        if self._offsets:
            return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
        return len(self._tokenizer.encode(text, disallowed_special=()))

    def ends(self, text: str) -> list[int]:
        if self._offsets:
            encoding = self._tokenizer.encode(text, add_special_tokens=False)
            return [end for _, end in encoding.offsets]
        tokens = self._tokenizer.encode(text, disallowed_special=())
        ends: list[int] = []
        length = 0
        for token in tokens:  # tiktoken has no offsets: decode each token's bytes
            length += len(self._tokenizer.decode_single_token_bytes(token))
            ends.append(length)
        # byte offsets to character offsets
        data = text.encode("utf-8")
        return [len(data[:end].decode("utf-8", errors="ignore")) for end in ends]


def counter_for(tokenizer: object) -> TokenCounter:
    """The counter for a ``tokenizer`` setting: ``None`` (the estimate), a ``str -> int``
    callable, a ``tokenizers.Tokenizer`` or a ``tiktoken`` encoding.

    Raises:
        TypeError: ``tokenizer`` is none of these.
    """
    if tokenizer is None:
        return _ESTIMATE
    if hasattr(tokenizer, "encode") and (
        hasattr(tokenizer, "decode_single_token_bytes") or hasattr(tokenizer, "encode_batch")
    ):
        return _Encoder(tokenizer)
    if callable(tokenizer):
        return _Callable(tokenizer)
    raise TypeError(
        "tokenizer must be a function of a text returning its token count, a "
        f"tokenizers.Tokenizer or a tiktoken encoding, got {type(tokenizer).__name__}"
    )


_ESTIMATE = _Estimate()

#: Where a sentence ends: after its mark and the white space that follows, or after a line
#: break (and the white space that follows it).
_SENTENCE_END = re.compile(r"[.!?。！？]\s+|\n\s*")
_SENTENCE_MARKS = ".!?。！？\n"


@dataclass(frozen=True, slots=True)
class Cut:
    """Where a document is cut for one request: ``text[start:end]``."""

    start: int
    end: int


def windows(
    text: str,
    counter: TokenCounter,
    max_tokens: int,
    overlap: int,
    max_characters: int | None = None,
) -> list[Cut]:
    """Overlapping windows of ``text`` of at most ``max_tokens`` tokens (and at most
    ``max_characters`` characters), cut at a sentence end near the window's end where there
    is one, else at a word end; each starts ``overlap`` tokens before the one before it
    ended. One window, the whole text, when it fits."""
    if max_tokens < 1:
        raise ValueError(f"a window needs room for at least one token, got {max_tokens}")
    fits = max_characters is None or len(text) <= max_characters
    if fits and not surely_longer(text, max_tokens) and counter.count(text) <= max_tokens:
        return [Cut(0, len(text))]
    if counter is _ESTIMATE and max_characters is None and text.isascii() and text.strip():
        return _ascii_windows(text, _sentence_ends(text), max_tokens, overlap)
    ends = counter.ends(text)
    if not ends:
        return [Cut(0, min(len(text), max_characters or len(text)))]
    breaks = _sentence_ends(text)
    check = getattr(counter, "windows_fit", None)
    fit = check is not None and check(text)
    cuts: list[Cut] = []
    first, start = 0, _skip_space(text, 0)
    while first < len(ends) and start < len(text):
        last = min(first + max_tokens, len(ends)) - 1
        if max_characters is not None:
            last = max(first, min(last, bisect.bisect_right(ends, start + max_characters) - 1))
        end = ends[last] if last == len(ends) - 1 else _good_end(text, breaks, ends, first, last)
        if max_characters is not None:
            end = min(end, start + max_characters)
        while not fit and end - start > 1 and counter.count(text[start:end]) > max_tokens:
            # Counted whole, the window came out longer (a tokenizer that is not additive).
            last = max(first, last - 1)
            end = ends[last] if last > first else start + max(1, (end - start) // 2)
        end = max(end, start + 1)
        cuts.append(Cut(start, end))
        if not text[end:].strip():
            break
        following = bisect.bisect_right(ends, end)  # the first token not wholly in it
        if following <= first:  # the window cut its first token short: go on from there
            start = end
            continue
        first = max(first + 1, following - overlap)
        while first < following and _inside_word(text, ends[first - 1]):
            first += 1  # the next window starts at a word's start
        start = _skip_space(text, ends[first - 1])
    return cuts


def truncation(
    text: str, counter: TokenCounter, max_tokens: int, max_characters: int | None = None
) -> Cut:
    """The start of ``text`` that fits ``max_tokens`` tokens and ``max_characters``.

    Only as much of the text as the cut needs is read: a long document is not counted
    whole to keep its first few hundred tokens.
    """
    length = max(256, max_tokens * 8)
    while True:
        prefix = text[:length]
        cut = windows(prefix, counter, max_tokens, 0, max_characters)[0]
        if length >= len(text) or cut.end < len(prefix) - 1:
            return cut
        length *= 4


def surely_longer(text: str, max_tokens: int) -> bool:
    """Whether ``text`` has more than ``max_tokens`` tokens by any count worth the name:
    more words than that (a cheap test, before a count)."""
    # Split no further than needed: a long text's words are not all made into strings.
    return len(text) > max_tokens and len(text.split(None, max_tokens)) > max_tokens


def _sentence_ends(text: str) -> list[int]:
    """Offsets where a sentence of ``text`` ends, in order (a text without any sentence
    mark or line break is not searched)."""
    if not any(mark in text for mark in _SENTENCE_MARKS):
        return []
    return sorted({match.end() for match in _SENTENCE_END.finditer(text)})


def _inside_word(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1].isalnum() and text[offset].isalnum()


def _skip_space(text: str, offset: int) -> int:
    while offset < len(text) and text[offset].isspace():
        offset += 1
    return offset


def _good_end(text: str, breaks: Sequence[int], ends: Sequence[int], first: int, last: int) -> int:
    """Where to end a window whose last token is ``last``: a sentence end in its last
    quarter, else the last word end in its last half, else that token's end."""
    size = last - first + 1
    end = ends[last]
    position = bisect.bisect_right(breaks, end) - 1
    if (
        position >= 0
        and breaks[position] >= ends[first + (3 * size) // 4 - 1 if size >= 4 else last]
    ):
        return min(breaks[position], end)
    for index in range(last, first + size // 2 - 1, -1):
        if not _inside_word(text, ends[index]):
            return ends[index]
    return end


#: Possessive quantifiers (Python 3.11 on) spare the regex engine its backtracking records:
#: a token never gives characters back, so that the matches are the same.
_KEEP = "+" if sys.version_info >= (3, 11) else ""


@functools.lru_cache(maxsize=256)
def _tokens_pattern(count: int) -> re.Pattern[str]:
    """Up to ``count`` tokens of :data:`_LATIN_TOKEN` in an ASCII text (where ``[^\\W_]``
    is ``[a-zA-Z0-9]``, a faster class to test)."""
    token = f"\\s*{_KEEP}(?:[a-zA-Z0-9]{{1,2}}{_KEEP}|\\S)"
    return re.compile(f"(?:{token}){{1,{count}}}{_KEEP}")


def _after(text: str, position: int, count: int) -> int:
    """The end of the ``count``-th token of the estimate from ``position`` (a token end), or
    of the last one when fewer are left (ASCII): one regex call, no list of ends."""
    if count < 1:
        return position
    match = _tokens_pattern(count).match(text, position)
    return position if match is None else match.end()


#: Each ASCII character's class for counting tokens without walking them: ``a`` a letter or
#: digit, `` `` white space (``\s``), ``x`` any other mark (one token each).
_CLASSES = (
    bytes(
        ord("a") if chr(code).isalnum() else ord(" ") if re.match(r"\s", chr(code)) else ord("x")
        for code in range(128)
    )
    + b"x" * 128
)
#: A run of letters and digits (ASCII), maybe empty: where a word ends.
_ALNUM_RUN = re.compile("[a-zA-Z0-9]*")
#: Below this many tokens a stride is walked by the regex: counting would not pay.
_STRIDE_TOKENS = 48


class _Strides:
    """:func:`_after` for one ASCII text, in long strides: the tokens of a stretch that ends
    before white space are counted at once from its characters' classes (a run of letters
    and digits of length n is ceil(n / 2) tokens: its characters less its pairs), and only
    the last few tokens are walked by the regex."""

    __slots__ = ("_classes", "_length", "_rate", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._classes = text.encode("ascii").translate(_CLASSES)
        self._length = len(text)
        self._rate = 2.0  # characters a token, learned as the text is counted

    def after(self, position: int, count: int) -> int:
        """The end of the ``count``-th token from ``position`` (a token end), as
        :func:`_after`."""
        classes = self._classes
        missed = False
        while count > _STRIDE_TOKENS:
            # Aim a little short, so that the stride rarely holds too many tokens.
            stop = classes.find(b" ", position + int(count * self._rate * 0.95))
            if stop < 0:
                break
            span = stop - position
            tokens = (
                span - classes.count(b" ", position, stop) - classes.count(b"aa", position, stop)
            )
            if tokens:
                self._rate = span / tokens
            if tokens >= count:
                if missed:
                    break  # too far twice: the regex walks the rest
                missed = True
                continue
            position, count = stop, count - tokens
        return _after(self._text, position, count)


def _ascii_windows(text: str, breaks: Sequence[int], max_tokens: int, overlap: int) -> list[Cut]:
    """:func:`windows`' loop for an ASCII text and the estimate, the same cuts found from a
    few token ends a window instead of the list of every one.

    A run of letters and digits ends a token every two characters from its start and at its
    end, so that where the loop walks token by token through a word, its start or its end
    tells at once where the walk stops. ``marks`` holds the ends known in a window, by
    token index.
    """
    size = max_tokens
    # Where the next window starts when this one ends at its last token, or a little before.
    targets = (size - overlap - 16, size - overlap)
    offsets = sorted({offset for offset in targets if 0 < offset < size})
    after = _Strides(text).after
    cuts: list[Cut] = []
    first, start, before = 0, _skip_space(text, 0), 0  # before: where token ``first`` begins
    while True:
        marks = {first - 1: before}
        position = before
        done = 0
        for offset in offsets:
            position = after(position, offset - done)
            marks[first + offset - 1] = position
            done = offset
        last = first + size - 1
        end = after(position, size - done)
        marks[last] = end
        if _NON_SPACE.search(text, end) is None:  # the last token: the last window
            cuts.append(Cut(start, max(end, start + 1)))
            return cuts
        end, following = _ascii_end(text, breaks, marks, first, last, after)
        cuts.append(Cut(start, max(end, start + 1)))
        first = max(first + 1, following - overlap)
        before = _ascii_end_of(after, marks, first - 1)
        if _inside_word(text, before):  # walk to the word's end, not past ``following``
            bound = marks[following - 1]
            word_end = max(before, min(bound, _ALNUM_RUN.match(text, before).end()))  # type: ignore[union-attr]
            first = min(following, first + (word_end - before + 1) // 2)
            before = word_end if first < following else bound
        found = _NON_SPACE.search(text, before)  # :func:`_skip_space`, in C
        start = len(text) if found is None else found.start()


def _ascii_end_of(after: Callable[[int, int], int], marks: dict[int, int], index: int) -> int:
    """The end of token ``index``, from the nearest known end before it."""
    if index in marks:
        return marks[index]
    known = max(known for known in marks if known < index)
    return after(marks[known], index - known)


def _ascii_end(
    text: str,
    breaks: Sequence[int],
    marks: dict[int, int],
    first: int,
    last: int,
    after: Callable[[int, int], int],
) -> tuple[int, int]:
    """:func:`_good_end` for :func:`_ascii_windows`, and the number of tokens that end
    within it (the index of the first one that does not)."""
    size = last - first + 1
    end = marks[last]
    position = bisect.bisect_right(breaks, end) - 1
    if position >= 0 and breaks[position] > marks[first - 1]:
        quarter = first + (3 * size) // 4 - 1 if size >= 4 else last
        quarter_end = _ascii_end_of(after, marks, quarter)
        marks[quarter] = quarter_end
        if breaks[position] >= quarter_end:
            found = min(breaks[position], end)
            # The tokens ending at or before it: its last one ends before white space.
            lengths = map(len, _LATIN_TOKEN.findall(text, quarter_end, found + 1))
            following = quarter + 1
            for token_end in itertools.accumulate(lengths, initial=quarter_end):
                if token_end > found:
                    break
                if token_end > quarter_end:
                    following += 1
                    marks[following - 1] = token_end
            return found, following
    if not _inside_word(text, end):
        return end, last + 1
    # Inside a word, every token end back to the word's start is inside it too: the first
    # end not inside one is the end of the token before the word.
    lowest = end - 2 * (size - 1 - size // 2)
    word_start = end
    while word_start > lowest and text[word_start - 1].isalnum():
        word_start -= 1
    if word_start > 0 and text[word_start - 1].isalnum():
        return end, last + 1
    index = last - (end - word_start) // 2
    if index < first + size // 2:
        return end, last + 1
    before = word_start
    while before > 0 and text[before - 1].isspace():
        before -= 1
    marks[index] = before
    return before, index + 1
