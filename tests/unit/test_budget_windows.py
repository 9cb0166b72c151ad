"""The ASCII windows of the estimate, found by counting rather than walking token by token,
are the windows they were: the same cuts as the implementation before (kept here as the
oracle) and as :func:`windows`' general loop over every token end, on random texts, ASCII
and not, with and without overlap and a character limit."""

# The oracle below is the ASCII path of ``_budget.py`` as it was, copied verbatim.

from __future__ import annotations

import bisect
import functools
import itertools
import re
import sys
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_integrations._budget import (
    _LATIN_TOKEN,
    _NON_SPACE,
    Cut,
    _Estimate,
    _inside_word,
    _sentence_ends,
    _skip_space,
    counter_for,
    surely_longer,
    windows,
)

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


def _oracle_windows(text: str, breaks: Sequence[int], max_tokens: int, overlap: int) -> list[Cut]:
    """:func:`windows`' loop for an ASCII text and the estimate, the same cuts found from a
    few token ends a window instead of the list of every one.

    A run of letters and digits ends a token every two characters from its start and at its
    end, so that where the loop walks token by token through a word, its start or its end
    tells at once where the walk stops. ``marks`` holds the ends known in a window, by
    token index.
    """
    size = max_tokens
    # Where the next window starts when this one ends at its last token, or a little before.
    targets = (size // 2 - overlap + 1, size - overlap - 16, size - overlap)
    offsets = sorted({offset for offset in targets if 0 < offset < size})
    cuts: list[Cut] = []
    first, start, before = 0, _skip_space(text, 0), 0  # before: where token ``first`` begins
    while True:
        marks = {first - 1: before}
        position = before
        done = 0
        for offset in offsets:
            position = _after(text, position, offset - done)
            marks[first + offset - 1] = position
            done = offset
        last = first + size - 1
        end = _after(text, position, size - done)
        marks[last] = end
        if _NON_SPACE.search(text, end) is None:  # the last token: the last window
            cuts.append(Cut(start, max(end, start + 1)))
            return cuts
        end, following = _ascii_end(text, breaks, marks, first, last)
        cuts.append(Cut(start, max(end, start + 1)))
        first = max(first + 1, following - overlap)
        before = _ascii_end_of(text, marks, first - 1)
        if _inside_word(text, before):  # walk to the word's end, not past ``following``
            bound = marks[following - 1]
            word_end = before
            while word_end < bound and text[word_end].isalnum():
                word_end += 1
            first = min(following, first + (word_end - before + 1) // 2)
            before = word_end if first < following else bound
        start = _skip_space(text, before)


def _ascii_end_of(text: str, marks: dict[int, int], index: int) -> int:
    """The end of token ``index``, from the nearest known end before it."""
    if index in marks:
        return marks[index]
    known = max(known for known in marks if known < index)
    return _after(text, marks[known], index - known)


def _ascii_end(
    text: str, breaks: Sequence[int], marks: dict[int, int], first: int, last: int
) -> tuple[int, int]:
    """:func:`_good_end` for :func:`_oracle_windows`, and the number of tokens that end
    within it (the index of the first one that does not)."""
    size = last - first + 1
    end = marks[last]
    position = bisect.bisect_right(breaks, end) - 1
    if position >= 0 and breaks[position] > marks[first - 1]:
        quarter = first + (3 * size) // 4 - 1 if size >= 4 else last
        quarter_end = _ascii_end_of(text, marks, quarter)
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


def _old_windows(text: str, max_tokens: int, overlap: int, max_characters: int | None) -> list[Cut]:
    """:func:`windows` as it was for the estimate (the general loop otherwise)."""
    counter = counter_for(None)
    fits = max_characters is None or len(text) <= max_characters
    if fits and not surely_longer(text, max_tokens) and counter.count(text) <= max_tokens:
        return [Cut(0, len(text))]
    if max_characters is None and text.isascii() and text.strip():
        return _oracle_windows(text, _sentence_ends(text), max_tokens, overlap)
    return windows(text, _Estimate(), max_tokens, overlap, max_characters)


_ASCII = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789") * 4
    + [
        " ",
        " ",
        " ",
        "  ",
        "\n",
        "\t",
        "\x1c",
        "\x0b",
        ".",
        ". ",
        "!",
        "?",
        "_",
        "-",
        ",",
        "'",
        "\n\n",
    ]
)
_WORD = st.text(alphabet="abcdefghij0123", min_size=1, max_size=30)
_OTHER = st.sampled_from(["é", "ß", "中", "文", "。", "！", "\u3000", "\u2003", "ü"])


@st.composite
def texts(draw: st.DrawFn, ascii_only: bool) -> str:
    pieces = (
        st.one_of(_ASCII, _WORD.map(lambda word: word + " "), _WORD)
        if ascii_only
        else st.one_of(_ASCII, _WORD, _OTHER)
    )
    return "".join(draw(st.lists(pieces, min_size=0, max_size=400)))


@settings(max_examples=400, deadline=None)
@given(
    text=texts(ascii_only=True),
    max_tokens=st.integers(min_value=1, max_value=120),
    overlap_share=st.floats(min_value=0, max_value=0.5),
)
def test_ascii_windows_are_the_old_ones(text: str, max_tokens: int, overlap_share: float) -> None:
    overlap = int(max_tokens * overlap_share)
    expected = _old_windows(text, max_tokens, overlap, None)
    assert windows(text, counter_for(None), max_tokens, overlap) == expected
    # and those of the general loop over every token end
    assert windows(text, _Estimate(), max_tokens, overlap) == expected


@settings(max_examples=200, deadline=None)
@given(
    text=texts(ascii_only=False),
    max_tokens=st.integers(min_value=1, max_value=80),
    overlap=st.integers(min_value=0, max_value=40),
    max_characters=st.none() | st.integers(min_value=1, max_value=300),
)
def test_any_windows_are_the_old_ones(
    text: str, max_tokens: int, overlap: int, max_characters: int | None
) -> None:
    overlap = min(overlap, max_tokens // 2)
    expected = _old_windows(text, max_tokens, overlap, max_characters)
    assert windows(text, counter_for(None), max_tokens, overlap, max_characters) == expected


def test_long_ascii_documents_are_cut_as_before() -> None:
    # Documents the size of the benchmark's (thousands of words), where the counting takes
    # long strides, with sentences and without.
    import random

    rng = random.Random(25)
    vocabulary = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(1, 14))) for _ in range(300)
    ]
    for marks in ("", ".", ".!?\n,;"):
        words = []
        for _ in range(6000):
            word = rng.choice(vocabulary)
            if marks and rng.random() < 0.08:
                word += rng.choice(marks)
            words.append(word)
        text = " ".join(words)
        for max_tokens, overlap in ((484, 32), (100, 0), (2000, 50), (37, 18)):
            expected = _old_windows(text, max_tokens, overlap, None)
            assert windows(text, counter_for(None), max_tokens, overlap) == expected
