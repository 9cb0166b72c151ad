"""Token windows for tokenizers that are not additive: a text counted whole may hold more
tokens than its words counted apart (a tokenizer that counts the spaces between words), and
the windows shrink only as far as they must, never to a token each."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from rerank_integrations._budget import (
    Cut,
    counter_for,
    estimate_tokens,
    surely_longer,
    truncation,
    windows,
)


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


# -- the estimate's fast path for ASCII texts cuts where the general loop does ------------


class TheEstimateByTheGeneralLoop:
    """The estimate, but not the package's own counter: ``windows`` takes its general loop,
    token end by token end, where the package's counter takes the fast path for ASCII."""

    def count(self, text: str) -> int:
        return estimate_tokens(text)

    def ends(self, text: str) -> list[int]:
        return counter_for(None).ends(text)

    def windows_fit(self, text: str) -> bool:
        return True  # as the estimate says of a text without CJK: no second count needed


SENTENCES = " ".join(
    f"Sentence {number} says {'very ' * (number % 5)}little{'.' if number % 3 else '!'}"
    for number in range(40)
)
ASCII_TEXTS = {
    "words": " ".join(f"w{number}" for number in range(300)),
    "sentences": SENTENCES,
    "lines": "\n".join(f"line {number} of {'x' * (number % 9)} text" for number in range(60)),
    "long words": " ".join(("abcdefghij" * (1 + number % 4))[: 7 + number] for number in range(50)),
    "one long word": "a" * 301 + " and a tail",
    "marks": " ".join(f"{number}, ({number}) -- {number}%; ok?" for number in range(60)),
    "spaced": "   ".join(f"token{number:03d}" for number in range(120)) + "   ",
    # a word longer than a window's back half: no word end to go back to
    "a word longer than a window": "ab " + "x" * 100 + " end of it. " + "y" * 61 + " z",
}


@pytest.mark.parametrize("name", list(ASCII_TEXTS))
@pytest.mark.parametrize(
    ("max_tokens", "overlap"),
    [(1, 0), (2, 0), (3, 1), (4, 0), (5, 2), (8, 0), (8, 3), (17, 4), (20, 0), (40, 8)],
)
def test_the_fast_path_for_ascii_cuts_where_the_general_loop_does(
    name: str, max_tokens: int, overlap: int
) -> None:
    text = ASCII_TEXTS[name]
    fast = windows(text, counter_for(None), max_tokens, overlap)
    general = windows(text, TheEstimateByTheGeneralLoop(), max_tokens, overlap)
    assert len(fast) > 1
    assert fast == general


# -- truncation: the first window, from as little of the text as it needs --------------------


@pytest.mark.parametrize(
    "tokenizer",
    [None, lambda text: len(text.split()), words_and_gaps],
    ids=["estimate", "words", "words-and-gaps"],
)
@pytest.mark.parametrize("max_tokens", [1, 5, 31, 32, 33, 200])
@pytest.mark.parametrize("max_characters", [None, 90])
def test_a_truncated_text_is_its_first_window(
    tokenizer: object, max_tokens: int, max_characters: int | None
) -> None:
    # Words of 19 characters: 256 characters hold about 13 of them, so that a prefix must
    # grow (by four, more than once) before it holds the first window of the whole text.
    text = " ".join(f"word{number:015d}" for number in range(600))
    counter = counter_for(tokenizer)
    cut = truncation(text, counter, max_tokens, max_characters)
    assert cut == windows(text, counter, max_tokens, 0, max_characters)[0]
    assert cut.start == 0 and 0 < cut.end < len(text)


def test_a_text_shorter_than_the_first_prefix_is_cut_like_its_first_window() -> None:
    text = "short words " * 10
    counter = counter_for(lambda piece: len(piece.split()))
    assert truncation(text, counter, 4) == windows(text, counter, 4, 0)[0] == Cut(0, 23)
    assert truncation(text, counter, 100) == Cut(0, len(text))


# -- the estimate: runs of letters by 2.5 characters, CJK characters two tokens each ---------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("a", 1),
        ("ab", 1),
        ("abc", 2),
        ("abcde", 2),
        ("abcdef", 3),
        ("a_b", 3),  # an underscore is a mark of its own
        ("café au lait", 5),
        ("中", 2),
        ("中文", 4),
        ("中a", 3),
        ("中, a!", 5),
        ("中ab", 3),  # with CJK, a run of two letters is still one token
        ("日本語のテキスト", 16),
        ("한국어", 6),
        ("x" * 1023, 410),  # the longest run the table of runs holds
        ("x" * 1024, 410),  # the shortest it does not: counted piece by piece
        ("x" * 1100, 440),
        ("x" * 1100 + "中", 442),
    ],
)
def test_the_estimate_counts_runs_and_cjk_characters(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens
    assert counter_for(None).count(text) == tokens


@pytest.mark.parametrize(
    ("text", "ends"),
    [
        ("abcde", [2, 4, 5]),  # a run ends a token every two characters and at its end
        ("ab cd", [2, 5]),
        ("中a文", [1, 1, 2, 3, 3]),  # a CJK character ends two tokens at once
        ("abcde中", [2, 4, 5, 6, 6]),
        ("中 x, y", [1, 1, 3, 4, 6]),
    ],
)
def test_the_estimate_ends_a_token_where_it_counts_one(text: str, ends: list[int]) -> None:
    assert counter_for(None).ends(text) == ends
    # never fewer ends than the count: a window of n ends, counted again, holds n at most
    assert len(ends) >= estimate_tokens(text)


@pytest.mark.parametrize("max_tokens", [2, 3, 5, 9])
def test_windows_of_a_cjk_text_are_counted_again_whole(max_tokens: int) -> None:
    text = "中文的句子很长。" * 6 + "and some latin words at the end"
    counter = counter_for(None)
    cuts = windows(text, counter, max_tokens, 1)
    assert all(counter.count(text[cut.start : cut.end]) <= max_tokens for cut in cuts)
    covered = set().union(*(range(cut.start, cut.end) for cut in cuts))
    assert all(position in covered or char.isspace() for position, char in enumerate(text))


# -- tokenizer=: a Hugging Face tokenizer (offsets) or a tiktoken encoding (bytes) ----------


def tiny_tiktoken() -> Any:
    """A tiktoken encoding built here: every byte a token, a few merges, one special."""
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {bytes([byte]): byte for byte in range(256)}
    for merged in (b"ab", b"abc", "é".encode()):
        ranks[merged] = len(ranks)
    return tiktoken.Encoding(
        "tiny",
        pat_str=r"\w+| ?[^\s\w]+|\s+",
        mergeable_ranks=ranks,
        special_tokens={"<|end|>": len(ranks)},
    )


def tiny_tokenizer() -> Any:
    """A Hugging Face tokenizer built here: a word a token, wrapped in two special tokens."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing

    vocab = {"[UNK]": 0, "a": 1, "b": 2, "[CLS]": 3, "[SEP]": 4}
    tokenizer = tokenizers.Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 3), ("[SEP]", 4)]
    )
    return tokenizer


@pytest.mark.parametrize(
    ("text", "count", "ends"),
    [
        ("café ab", 6, [1, 2, 3, 4, 5, 7]),  # "é" one token of two bytes, "ab" merged
        ("中a", 4, [0, 0, 1, 2]),  # a character of three byte tokens ends at its last
        ("x<|end|>", 8, [1, 2, 3, 4, 5, 6, 7, 8]),  # a special token's text is only text
    ],
)
def test_a_tiktoken_encoding_counts_and_ends_tokens_by_their_bytes(
    text: str, count: int, ends: list[int]
) -> None:
    counter = counter_for(tiny_tiktoken())
    assert counter.count(text) == count
    assert counter.ends(text) == ends


@pytest.mark.parametrize(
    ("text", "count", "ends"),
    [("a bb, c", 4, [1, 4, 5, 7]), ("", 0, []), ("  b  ", 1, [3])],
)
def test_a_hugging_face_tokenizer_counts_without_its_special_tokens(
    text: str, count: int, ends: list[int]
) -> None:
    tokenizer = tiny_tokenizer()
    assert len(tokenizer.encode(text).ids) == count + 2  # what is left out: [CLS] and [SEP]
    counter = counter_for(tokenizer)
    assert counter.count(text) == count
    assert counter.ends(text) == ends


@pytest.mark.parametrize("make", [tiny_tiktoken, tiny_tokenizer], ids=["tiktoken", "tokenizers"])
@pytest.mark.parametrize("max_tokens", [3, 10])
def test_windows_by_a_tokenizer_hold_its_count(make: Callable[[], Any], max_tokens: int) -> None:
    text = " ".join(["a b", "café, abc.", "bb a"] * 12)
    tokenizer = make()
    counter = counter_for(tokenizer)
    cuts = windows(text, counter, max_tokens, 1)
    assert len(cuts) > 1
    assert all(counter.count(text[cut.start : cut.end]) <= max_tokens for cut in cuts)
    covered = set().union(*(range(cut.start, cut.end) for cut in cuts))
    assert all(position in covered or char.isspace() for position, char in enumerate(text))


class CountsWordsAndHasEncode:
    """A ``str -> int`` function that happens to have an ``encode`` method too."""

    def __call__(self, text: str) -> int:
        return len(text.split())

    def encode(self, text: str) -> bytes:
        raise AssertionError("a function of a text is called, not its encode")


def test_a_function_with_an_encode_method_is_still_called_as_a_function() -> None:
    assert counter_for(CountsWordsAndHasEncode()).count("a b c") == 3


def test_a_tokenizer_may_count_no_tokens() -> None:
    assert counter_for(lambda text: 0).count("a") == 0


def test_a_text_whose_words_count_no_tokens_is_one_window() -> None:
    # Counted whole it is too long, but no word ends a token: nothing to cut at.
    counter = counter_for(lambda text: 5 if " " in text else 0)
    assert windows("a b", counter, 2, 0) == [Cut(0, 3)]
    assert windows("a b", counter, 2, 0, max_characters=2) == [Cut(0, 2)]


@pytest.mark.parametrize("max_tokens", [0, -1])
def test_a_window_needs_room_for_a_token(max_tokens: int) -> None:
    with pytest.raises(ValueError, match=f"at least one token, got {max_tokens}"):
        windows("a b", counter_for(None), max_tokens, 0)


def test_a_tokenizer_that_is_none_of_these_is_refused() -> None:
    with pytest.raises(TypeError, match=r"tokenizer must be a function of a text.*got int"):
        counter_for(3)
    with pytest.raises(TypeError, match=r"must return a token count \(int >= 0\), got -1"):
        counter_for(lambda text: -1).count("a")
    with pytest.raises(TypeError, match="got True"):
        counter_for(lambda text: True).count("a")


# -- edges: exact limits, marks before words, tokens that end together -----------------------


def test_a_text_exactly_as_long_as_the_characters_allowed_is_one_window() -> None:
    # 67 letters: 27 tokens by the estimate (a run counts one per 2.5 characters), within
    # the 33 allowed, and exactly the 67 characters allowed: the whole text, not cut.
    text = "a" * 67
    assert windows(text, counter_for(None), 33, 0, max_characters=67) == [Cut(0, 67)]
    assert windows("one two ", counter_for(None), 10, 0, max_characters=8) == [Cut(0, 8)]


def test_the_overlap_after_a_mark_starts_at_the_word_after_it() -> None:
    # Tokens "!", "aa", "aa", "a": the first window holds five characters, the next one
    # starts two tokens back, at the word's start right after the mark.
    assert windows("!aaaaa", counter_for(None), 7, 2, max_characters=5) == [Cut(0, 5), Cut(1, 6)]


def test_with_room_for_one_character_each_character_is_one_window_once() -> None:
    # A CJK character ends two tokens at once: the overlap must not repeat its window.
    cuts = windows("中aa", counter_for(None), 2, 1, max_characters=1)
    assert cuts == [Cut(0, 1), Cut(1, 2), Cut(2, 3)]


def test_no_window_is_empty_when_tokens_end_together() -> None:
    # Each piece counts three tokens, so that a mark's three tokens all end after it.
    counter = counter_for(lambda piece: 3 if piece.strip() else 0)
    cuts = windows(".aaaa", counter, 17, 4, max_characters=2)
    assert all(cut.end > cut.start for cut in cuts)
    assert {index for cut in cuts for index in range(cut.start, cut.end)} == set(range(5))


@pytest.mark.parametrize(
    ("text", "max_tokens", "longer"),
    [("a b c", 2, True), ("a b", 2, False), ("abc", 2, False), ("a b c", 3, False), ("", 0, False)],
)
def test_a_text_is_surely_longer_with_more_words_than_tokens(
    text: str, max_tokens: int, longer: bool
) -> None:
    assert surely_longer(text, max_tokens) is longer


def test_every_sentence_mark_ends_a_window() -> None:
    # Every mark at once (ASCII and CJK ones, and a line break): each window ends after a
    # sentence near its end, not at the last word that fits.
    text = "One. Two! Three? 四。 五！ 六？ seven\neight nine ten eleven twelve"
    cuts = windows(text, counter_for(None), 13, 0)
    assert [text[cut.start : cut.end] for cut in cuts] == [
        "One. Two! Three? ",
        "四。 五！ 六？ seven\n",
        "eight nine ten eleven twelve",
    ]


def test_an_overlap_almost_as_large_as_a_window_still_moves_on() -> None:
    # The first window ends at the sentence, three tokens of the four allowed: going back
    # three tokens would start the next one where it started, so it starts one token on
    # (and, that being inside "abc", at the word's end).
    cuts = windows("abc. de fg", counter_for(None), 4, 3)
    assert cuts == [Cut(0, 5), Cut(3, 10)]


def test_white_space_alone_has_no_window_to_cut() -> None:
    # A tokenizer may count white space too long (tiktoken has tokens of spaces), but no
    # word starts a window in it: no cut, and the document is left as it is.
    counter = counter_for(tiny_tiktoken())
    assert counter.count("     ") > 1
    assert windows("     ", counter, 1, 0) == []
    assert windows("   ", counter, 1, 0, max_characters=2) == []
