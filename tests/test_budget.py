"""Token windows for tokenizers that are not additive: a text counted whole may hold more
tokens than its words counted apart (a tokenizer that counts the spaces between words), and
the windows shrink only as far as they must, never to a token each."""

from __future__ import annotations

import itertools

import pytest

from rerank_integrations._budget import counter_for, windows


def words_and_gaps(text: str) -> int:
    """Each word a token, and each gap between two words one more: "a b" is 3, "a" is 1."""
    count = len(text.split())
    return count + max(0, count - 1)


TEXT = " ".join(f"w{number}" for number in range(60))


@pytest.mark.parametrize("max_tokens", [2, 3, 7, 10, 25])
def test_windows_shrink_only_as_far_as_the_whole_count_needs(max_tokens: int) -> None:
    counter = counter_for(words_and_gaps)
    cuts = windows(TEXT, counter, max_tokens, 0)
    pieces = [TEXT[cut.start : cut.end] for cut in cuts]
    # Every word once, in order, and every window within the limit counted whole.
    assert " ".join(pieces).split() == TEXT.split()
    assert all(words_and_gaps(piece) <= max_tokens for piece in pieces)
    # Each window but the last is as long as the limit allows: one word more would not fit.
    size = (max_tokens + 1) // 2  # n words count 2n - 1
    assert [len(piece.split()) for piece in pieces[:-1]] == [size] * (len(pieces) - 1)
    assert len(pieces) == -(-60 // size)


def test_an_additive_tokenizer_fills_each_window() -> None:
    cuts = windows(TEXT, counter_for(lambda text: len(text.split())), 10, 0)
    assert [len(TEXT[cut.start : cut.end].split()) for cut in cuts] == [10] * 6


def test_windows_overlap_by_the_tokens_asked() -> None:
    cuts = windows(TEXT, counter_for(lambda text: len(text.split())), 10, 3)
    pieces = [TEXT[cut.start : cut.end].split() for cut in cuts]
    assert all(len(piece) <= 10 for piece in pieces)
    for before, after in itertools.pairwise(pieces):
        assert before[-3:] == after[:3]


def test_a_window_never_starts_inside_a_word() -> None:
    # Two tokens a word, so token ends fall inside words; with an overlap the next window
    # would start mid-word if it were not moved on to the word's start.
    text = " ".join(f"word{number:02d}" for number in range(30))
    cuts = windows(text, counter_for(lambda piece: 2 * len(piece.split())), 9, 3)
    assert len(cuts) > 3
    for cut in cuts:
        assert cut.start == 0 or text[cut.start - 1] == " "
        assert text[cut.start] != " "


def test_a_text_that_no_window_can_hold_is_cut_to_single_characters() -> None:
    # Any text counts 3 tokens, more than the 2 allowed: the windows shrink, by tokens then
    # by halves, down to one character each, and the cutting ends.
    cuts = windows("abcd efgh", counter_for(lambda piece: 3 if piece.strip() else 0), 2, 0)
    assert all(cut.end - cut.start == 1 for cut in cuts)
    assert "".join("abcd efgh"[cut.start : cut.end] for cut in cuts) == "abcdefgh"


@pytest.mark.parametrize("max_characters", [20, 33])
def test_the_estimate_keeps_windows_within_the_characters_allowed(max_characters: int) -> None:
    text = " ".join(f"word{number}" for number in range(80))
    cuts = windows(text, counter_for(None), 50, 0, max_characters)
    assert all(cut.end - cut.start <= max_characters for cut in cuts)
    assert " ".join(text[cut.start : cut.end] for cut in cuts).split() == text.split()
