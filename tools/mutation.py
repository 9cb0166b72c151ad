"""Mutation testing of the pure modules: change one thing, run the module's tests, see them fail.

Each mutant changes one spot of one module, inside a function body:

- ``cmp``: a comparison flipped (``<`` and ``<=``, ``>`` and ``>=``, ``==`` and ``!=``,
  ``in`` and ``not in``, ``is`` and ``is not``);
- ``const``: a number moved by one (``n + 1`` and ``n - 1``; booleans left alone);
- ``bool``: ``and`` and ``or`` swapped;
- ``drop``: a statement (an assignment, a call, a ``return``, a ``raise``) replaced by ``pass``.

Docstrings, ``if TYPE_CHECKING`` blocks and lines marked ``# pragma: no mutate`` are left
alone. Mutants run in a copy of the repository (so the working tree is never touched), with
the tests that :data:`MODULE_TESTS` names for their module, stopping at the first failure. A
mutant is *killed* when a test fails or the run exceeds its time limit, and *survives* when
all pass. Survivors judged equivalent (no input can tell them apart from the original) are
listed in :data:`EQUIVALENT`, keyed by module, function, kind, the source line and the change,
each with its reason; the score is ``killed / (mutants - equivalent)``.

How a full run stays within minutes, none of which changes what a kill means:

- the modules' tests run once, unmutated, under coverage with one context per test; a mutant
  then runs only the tests that execute its statement (every test if code outside any test
  does), the fast ones first; a mutant that no test executes survives without a run;
- the driver imports pytest, Hypothesis, httpx, pydantic and the like once, and forks a child
  per mutant, which imports the package (mutant included) afresh from the copy and runs
  ``pytest.main``; the tests' rewritten bytecode is kept, the mutated module's never is;
- Hypothesis does not shrink a failure it found, has no deadline and draws the same examples
  every run (see :func:`_hypothesis_for_mutants`);
- a second copy runs mutants on the second core while the machine is otherwise idle.

Before any mutant, each module's mutants' way of running is checked on the module unchanged:
every selected test must pass.

    python tools/mutation.py --out MUTATION.md --log .mutation.log [--sample N] _retry _budget
    python tools/mutation.py --out MUTATION.md --report-from .mutation.log  # a stopped run
    python tools/mutation.py --out MUTATION.md --log .mutation.log --again .mutation.log _plan

``--again LOG`` runs only the mutants that LOG's latest run of their module did not kill,
and takes the kills over from it: for after tests were added, never after a test was
changed or removed (that can let a mutant killed then survive now). A kill is taken over
only for the same mutant (module, number, line and change), so the module must be the same.

``make mutation`` runs this for ``MUTATION_MODULES``. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import functools
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "rerank_integrations"

#: The tests run against each module's mutants: the ones written for it and the client's tests
#: that reach it. Each mutant runs only those of them that run its line. Not
#: tests/unit/test_properties.py: its 4,000 examples run a minute and more for every mutant
#: that survives the others, and they look at the whole client, not at one module.
MODULE_TESTS: dict[str, list[str]] = {
    "_retry": ["tests/unit/test_retry.py", "tests/client/test_client.py"],
    "_budget": [
        "tests/unit/test_budget.py",
        "tests/unit/test_budget_windows.py",
        "tests/unit/test_plan_and_merge.py",
        "tests/client/test_documents.py",
        "tests/client/test_streamed_cutting.py",
    ],
    "_cache": ["tests/client/test_cache.py"],
    "_plan": [
        "tests/unit/test_plan_and_merge.py",
        "tests/unit/test_budget.py",
        "tests/client/test_documents.py",
        "tests/client/test_streamed_cutting.py",
    ],
    "_cuts": [
        "tests/unit/test_plan_and_merge.py",
        "tests/unit/test_budget.py",
        "tests/client/test_documents.py",
        "tests/client/test_streamed_cutting.py",
    ],
    "_parts": [
        "tests/unit/test_plan_and_merge.py",
        "tests/client/test_documents.py",
        "tests/client/test_streamed_cutting.py",
    ],
    "_merge": [
        "tests/unit/test_plan_and_merge.py",
        "tests/client/test_client.py",
        "tests/client/test_cache.py",
    ],
    "_codec": [
        "tests/dialects/test_dialects.py",
        "tests/dialects/test_cloud_dialects.py",
        "tests/unit/test_plan_and_merge.py",
        "tests/client/test_client.py",
    ],
    "_refusals": [
        "tests/unit/test_refusals.py",
        "tests/unit/test_outcome.py",
        "tests/dialects/test_dialects.py",
    ],
    "_outcome": [
        "tests/unit/test_outcome.py",
        "tests/unit/test_refusals.py",
        "tests/client/test_client.py",
    ],
}

#: Reasons shared by several of _budget's equivalent mutants (see :data:`EQUIVALENT`).
_PREFIX = (
    "the first prefix's length and its growth only decide how many rounds it takes: a "
    "window of a prefix that ends before its last character is the whole text's first "
    "window at any length, and the prefix otherwise grows up to the whole text"
)
_AIM = (
    "the rate only aims a stride; each stride's tokens are counted exactly from the "
    "characters' classes, and one that holds too many is not taken: the same end, only "
    "more or fewer strides"
)
_STOP = (
    "the aim is at least one past position, so stop is never 0; and a stride given up "
    "leaves the rest to the regex, which walks to the same end"
)
_NUMBERING = (
    "each window numbers its tokens from first and counts them from before: a first moved "
    "less only numbers the next window's tokens otherwise; and where first would reach "
    "following, word_end is bound, so that before is the same"
)
_APART = (
    "a sentence end follows white space and a token end does not (and no sentence end is "
    "at 0): the two are never equal"
)
_FOUND = (
    "found is a sentence end, after white space: no token straddles it, so that reading "
    "a character more or less past it finds the same tokens up to it"
)
_LOWER = (
    "a lower bound only lets the walk back find the start of a word longer than the "
    "window's back half, whose index is then below first + size // 2: the same (end, last "
    "+ 1) as the check on the word going on"
)
_EVEN = (
    "a token end inside a word is an even number of characters from the word's start, and "
    "so is lowest from end: the word's start is never an odd distance back"
)
_FIRST_WORD = (
    "reached only for the text's first word (nothing but white space before it), which no "
    "token ends before: its index is below first + size // 2 and the same (end, last + 1) "
    "is returned first"
)
_AHEAD = (
    "only which token ends are found ahead of need: any other one is walked to from the "
    "nearest one known before it (_ascii_end_of), to the same offset"
)

#: Survivors no test can kill, with the reason:
#: (module, function, kind, source line, the change[, line number]) -> why. The line number
#: tells apart the same text twice in one function (and stops matching once the code moves).
EQUIVALENT: dict[tuple[str | int, ...], str] = {
    ("_retry", "_as_tuple", "drop", "return None", "pass"): (
        "dropping `return None` at the end of the except clause returns None all the same"
    ),
    ("_retry", "parse_retry_after", "drop", "raw = raw.strip()", "pass"): (
        "float() and email.utils.parsedate_to_datetime skip white space around the value themselves"
    ),
    (
        "_retry",
        "backoff_delay",
        "const",
        "return max(0.0, base * (1.0 - policy.jitter * random_value))",
        "-1.0",
    ): (
        "its one caller passes random.random() (in [0, 1)) and RetryPolicy keeps jitter in "
        "[0, 1]: the product is never below 0, so no floor under 0 is ever reached"
    ),
    ("_budget", "_no_cjk", "drop", "return text.isascii() or not _HAS_CJK.search(text)", "pass"): (
        "None reads as 'may have CJK': every caller then takes the any-script path, which "
        "gives the same counts, ends and windows (only slower)"
    ),
    (
        "_budget",
        "_no_cjk",
        "bool",
        "return text.isascii() or not _HAS_CJK.search(text)",
        "text.isascii() and (not _HAS_CJK.search(text))",
    ): "a non-ASCII text without CJK then takes the any-script path: the same results",
    (
        "_budget",
        "estimate_tokens",
        "drop",
        "return sum(map(_RUN_TOKENS.__getitem__, lengths))",
        "pass",
    ): "the count then comes from _counted_by_piece, which gives the same number",
    (
        "_budget",
        "_piece_tokens",
        "const",
        "return max(1, math.ceil(len(piece) / _CHARACTERS_A_TOKEN))",
        "0",
    ): "a piece here has two characters or more, so the ceiling is at least 1 anyway",
    ("_budget", "_Estimate.windows_fit", "drop", "return _no_cjk(text)", "pass"): (
        "the windows are then counted again whole; the estimate's windows always fit (n of "
        "its token ends never count more than n), so none is shrunk: the same cuts"
    ),
    (
        "_budget",
        "_Estimate.ends",
        "drop",
        "return list(itertools.accumulate(map(len, _LATIN_TOKEN.findall(text))))",
        "pass",
    ): "the ends then come from _ends_by_piece, which gives the same list",
    ("_budget", "_after", "drop", "return position", "pass"): (
        "unreachable: every caller asks for at least one token (offsets are distinct and "
        "positive, and below the window's size)"
    ),
    ("_budget", "_ascii_end", "drop", "return end, last + 1", "pass", 526): (
        "unreachable: word_start >= lowest = end - 2 * (size - 1 - size // 2), so index is "
        "never below first + size // 2"
    ),
    ("_budget", "_ascii_end", "const", "return end, last + 1", "2", 526): (
        "unreachable: word_start >= lowest = end - 2 * (size - 1 - size // 2), so index is "
        "never below first + size // 2"
    ),
    ("_budget", "_ascii_end", "const", "return end, last + 1", "0", 526): (
        "unreachable: word_start >= lowest = end - 2 * (size - 1 - size // 2), so index is "
        "never below first + size // 2"
    ),
    # truncation: how long the first prefix is and how fast it grows only decide how many
    # rounds it takes; every round returns the whole text's first window or grows.
    ("_budget", "truncation", "const", "length = max(256, max_tokens * 8)", "257"): _PREFIX,
    ("_budget", "truncation", "const", "length = max(256, max_tokens * 8)", "255"): _PREFIX,
    ("_budget", "truncation", "const", "length = max(256, max_tokens * 8)", "9"): _PREFIX,
    ("_budget", "truncation", "const", "length = max(256, max_tokens * 8)", "7"): _PREFIX,
    ("_budget", "truncation", "const", "length *= 4", "5"): _PREFIX,
    ("_budget", "truncation", "const", "length *= 4", "3"): _PREFIX,
    (
        "_budget",
        "truncation",
        "const",
        "if length >= len(text) or cut.end < len(prefix) - 1:",
        "2",
    ): (
        "it returns in fewer cases (a cut before the prefix's last two characters is one "
        "before its last one too) and grows the prefix otherwise: the same cut, found later"
    ),
    (
        "_budget",
        "truncation",
        "cmp",
        "if length >= len(text) or cut.end < len(prefix) - 1:",
        "length > len(text)",
    ): (
        "a prefix as long as the text is the text: the next round cuts the same prefix and "
        "returns the same cut"
    ),
    (
        "_budget",
        "truncation",
        "const",
        "cut = windows(prefix, counter, max_tokens, 0, max_characters)[0]",
        "1",
        310,
    ): (
        "the surviving change is the overlap's 0 (the index's is killed): the overlap only "
        "places the windows after the first, and only the first is kept"
    ),
    (
        "_budget",
        "truncation",
        "const",
        "cut = windows(prefix, counter, max_tokens, 0, max_characters)[0]",
        "-1",
        310,
    ): (
        "the surviving change is the overlap's 0 (the index's is killed): the overlap only "
        "places the windows after the first, and only the first is kept"
    ),
    (
        "_budget",
        "windows",
        "drop",
        "return _ascii_windows(text, _sentence_ends(text), max_tokens, overlap)",
        "pass",
    ): (
        "the general loop over every token end then cuts the ASCII text, with the same cuts "
        "(test_budget_windows.py checks the two agree); only slower"
    ),
    (
        "_budget",
        "surely_longer",
        "cmp",
        "return len(text) > max_tokens and len(text.split(None, max_tokens)) > max_tokens",
        "len(text) >= max_tokens",
    ): (
        "a text of n characters has at most (n + 1) // 2 words, never more than n: when "
        "len(text) == max_tokens the second test is false either way"
    ),
    ("_budget", "_sentence_ends", "drop", "return []", "pass"): (
        "a text without any mark then goes to the search, which finds no sentence end in it: "
        "[] all the same"
    ),
    ("_budget", "_after", "const", "if count < 1:", "0"): (
        "a count of 0 is never asked (offsets are distinct and positive, and below the "
        "window's size; a stride leaves at least one token): count < 0 and < 1 agree"
    ),
    # _Strides: where a stride aims only decides how far it goes; each stride's tokens are
    # counted exactly from the characters' classes, and one that holds too many is not taken.
    ("_budget", "_Strides.__init__", "drop", "self._length = len(text)", "pass"): (
        "_length is never read"
    ),
    (
        "_budget",
        "_Strides.__init__",
        "const",
        "self._rate = 2.0  # characters a token, learned as the text is counted",
        "3.0",
    ): _AIM,
    (
        "_budget",
        "_Strides.__init__",
        "const",
        "self._rate = 2.0  # characters a token, learned as the text is counted",
        "1.0",
    ): _AIM,
    ("_budget", "_Strides.after", "drop", "self._rate = span / tokens", "pass"): _AIM,
    (
        "_budget",
        "_Strides.after",
        "const",
        'stop = classes.find(b" ", position + int(count * self._rate * 0.95))',
        "1.95",
    ): _AIM,
    (
        "_budget",
        "_Strides.after",
        "cmp",
        "while count > _STRIDE_TOKENS:",
        "count >= _STRIDE_TOKENS",
    ): ("a stride of exactly 48 tokens left is counted as exactly as the regex walks it"),
    ("_budget", "_Strides.after", "cmp", "if stop < 0:", "stop <= 0"): _STOP,
    ("_budget", "_Strides.after", "const", "if stop < 0:", "1"): _STOP,
    # _ascii_windows: which token ends are found ahead of need; any other one is walked to
    # from the nearest one known before it (_ascii_end_of), to the same offset.
    (
        "_budget",
        "_ascii_windows",
        "const",
        "targets = (size - overlap - 16, size - overlap)",
        "17",
    ): _AHEAD,
    (
        "_budget",
        "_ascii_windows",
        "const",
        "targets = (size - overlap - 16, size - overlap)",
        "15",
    ): _AHEAD,
    (
        "_budget",
        "_ascii_windows",
        "cmp",
        "offsets = sorted({offset for offset in targets if 0 < offset < size})",
        "0 <= offset < size",
    ): "an offset of 0 marks token first - 1 where it is already marked, at before",
    (
        "_budget",
        "_ascii_windows",
        "cmp",
        "offsets = sorted({offset for offset in targets if 0 < offset < size})",
        "0 < offset <= size",
    ): "an offset of size marks the window's last token, which is then walked 0 tokens further",
    (
        "_budget",
        "_ascii_windows",
        "const",
        "offsets = sorted({offset for offset in targets if 0 < offset < size})",
        "1",
    ): _AHEAD,
    (
        "_budget",
        "_ascii_windows",
        "const",
        "offsets = sorted({offset for offset in targets if 0 < offset < size})",
        "-1",
    ): "an offset of 0 marks token first - 1 where it is already marked, at before",
    (
        "_budget",
        "_ascii_windows",
        "const",
        "first, start, before = 0, _skip_space(text, 0), 0  # before: where token ``first`` begins",
        "1",
        449,
    ): (
        "the surviving change is first's 0: token indexes are only compared and offset among "
        "themselves, so numbering them from 1 or -1 gives the same offsets"
    ),
    (
        "_budget",
        "_ascii_windows",
        "const",
        "first, start, before = 0, _skip_space(text, 0), 0  # before: where token ``first`` begins",
        "-1",
        449,
    ): (
        "the surviving change is first's 0: token indexes are only compared and offset among "
        "themselves, so numbering them from 1 or -1 gives the same offsets"
    ),
    ("_budget", "_ascii_windows", "drop", "marks[first + offset - 1] = position", "pass"): _AHEAD,
    ("_budget", "_ascii_end_of", "drop", "return marks[index]", "pass"): (
        "a known end is then walked to again from the nearest known one before it: the same offset"
    ),
    (
        "_budget",
        "_ascii_end_of",
        "cmp",
        "known = max(known for known in marks if known < index)",
        "known <= index",
    ): "reached only when index is not in marks, so that < and <= pick the same key",
    (
        "_budget",
        "windows",
        "const",
        "end = ends[last] if last > first else start + max(1, (end - start) // 2)",
        "0",
    ): "the loop runs only while end - start > 1, so (end - start) // 2 is at least 1 anyway",
    ("_budget", "_ascii_windows", "const", "cuts.append(Cut(start, max(end, start + 1)))", "0"): (
        "an ASCII window's end is never before the end of its first token, which is past start "
        "(its first non-space character): the max never applies"
    ),
    (
        "_budget",
        "_ascii_windows",
        "drop",
        "first = min(following, first + (word_end - before + 1) // 2)",
        "pass",
    ): _NUMBERING,
    (
        "_budget",
        "_ascii_windows",
        "const",
        "first = min(following, first + (word_end - before + 1) // 2)",
        "3",
    ): _NUMBERING,
    (
        "_budget",
        "_ascii_windows",
        "const",
        "first = min(following, first + (word_end - before + 1) // 2)",
        "0",
    ): _NUMBERING,
    (
        "_budget",
        "_ascii_windows",
        "cmp",
        "before = word_end if first < following else bound",
        "first <= following",
    ): (
        "first is at most following; it reaches it only when the word's tokens from before "
        "take up to bound, so that word_end is bound then"
    ),
    (
        "_budget",
        "_ascii_end",
        "cmp",
        "if position >= 0 and breaks[position] > marks[first - 1]:",
        "breaks[position] >= marks[first - 1]",
    ): _APART,
    (
        "_budget",
        "_ascii_end",
        "cmp",
        "if breaks[position] >= quarter_end:",
        "breaks[position] > quarter_end",
    ): (_APART),
    ("_budget", "_ascii_end", "cmp", "if token_end > found:", "token_end >= found"): (
        "found is a sentence end (the last one at or before end), which no token end equals"
    ),
    (
        "_budget",
        "_ascii_end",
        "const",
        "lengths = map(len, _LATIN_TOKEN.findall(text, quarter_end, found + 1))",
        "2",
    ): _FOUND,
    (
        "_budget",
        "_ascii_end",
        "const",
        "lengths = map(len, _LATIN_TOKEN.findall(text, quarter_end, found + 1))",
        "0",
    ): _FOUND,
    ("_budget", "_ascii_end", "const", "lowest = end - 2 * (size - 1 - size // 2)", "3"): _LOWER,
    ("_budget", "_ascii_end", "const", "lowest = end - 2 * (size - 1 - size // 2)", "0"): _LOWER,
    (
        "_budget",
        "_ascii_end",
        "cmp",
        "while word_start > lowest and text[word_start - 1].isalnum():",
        "word_start >= lowest",
    ): _EVEN,
    ("_budget", "_ascii_end", "const", "word_start -= 1", "2"): _EVEN,
    (
        "_budget",
        "_ascii_end",
        "cmp",
        "if word_start > 0 and text[word_start - 1].isalnum():",
        "word_start >= 0",
    ): _FIRST_WORD,
    (
        "_budget",
        "_ascii_end",
        "const",
        "if word_start > 0 and text[word_start - 1].isalnum():",
        "1",
    ): _EVEN,
    (
        "_budget",
        "_ascii_end",
        "const",
        "if word_start > 0 and text[word_start - 1].isalnum():",
        "-1",
    ): _FIRST_WORD,
    ("_budget", "_ascii_end", "const", "if index < first + size // 2:", "3"): (
        "index is never below first + size // 2 (see the return at line 526), so never below "
        "first + size // 3 either"
    ),
    (
        "_budget",
        "_ascii_end",
        "cmp",
        "while before > 0 and text[before - 1].isspace():",
        "before >= 0",
    ): _FIRST_WORD,
    (
        "_budget",
        "_ascii_end",
        "const",
        "while before > 0 and text[before - 1].isspace():",
        "1",
    ): _FIRST_WORD,
    (
        "_budget",
        "_ascii_end",
        "const",
        "while before > 0 and text[before - 1].isspace():",
        "-1",
    ): _FIRST_WORD,
    ("_cache", "_score_of", "drop", "return None", "pass", 424): (
        "None falls through to the checks below, which answer None for it too"
    ),
    ("_cache", "_score_of", "drop", "return None", "pass", 428): (
        "a value neither text nor a mapping falls to the check below, which answers None too"
    ),
    ("_cache", "ScoreLookup.__init__", "drop", "self.keys: list[str] = []", "pass"): (
        "keep() is only ever called after the lookup, which sets the keys"
    ),
    ("_refusals", "missing_field", "drop", "return None", "pass"): (
        "the last statement: falling off the end returns None all the same"
    ),
    (
        "_parts",
        "Parts.__getitem__",
        "drop",
        "def __getitem__(self, position: int) -> list[Place]: ...",
        "pass",
    ): "an @overload stub, for type checkers only: the definition after it replaces it",
    (
        "_parts",
        "Parts.__getitem__",
        "drop",
        "def __getitem__(self, position: slice) -> list[list[Place]]: ...",
        "pass",
    ): "an @overload stub, for type checkers only: the definition after it replaces it",
    ("_merge", "merge_pages", "const", "seen[index] = 1", "2"): (
        "the bytearray only marks an index seen: 2 is as true as 1"
    ),
    (
        "_plan",
        "PlanStream._cut_next",
        "drop",
        "self._add(text, owners, 0, 0)",
        "pass",
        439,
    ): (
        "unreachable: a call of images or records keeps its originals, and stream_plan "
        "never streams such a plan; every text a PlanStream cuts is a string"
    ),
    ("_plan", "PlanStream._cut_next", "const", "self._add(text, owners, 0, 0)", "1"): (
        "unreachable (as the line's drop): every text a PlanStream cuts is a string"
    ),
    ("_plan", "PlanStream._cut_next", "const", "self._add(text, owners, 0, 0)", "-1"): (
        "unreachable (as the line's drop): every text a PlanStream cuts is a string"
    ),
    ("_plan", "PlanStream._cut_next", "drop", "return", "pass", 440): (
        "unreachable: a call of images or records keeps its originals, and stream_plan "
        "never streams such a plan; every text a PlanStream cuts is a string"
    ),
    (
        "_plan",
        "PlanStream._cut_next",
        "const",
        "self._add(text, [(owner, 0, 0) for owner in owners])",
        "1",
        439,
    ): (
        "unreachable: a call of images or records keeps its originals, and stream_plan "
        "never streams such a plan; every text a PlanStream cuts is a string"
    ),
    (
        "_plan",
        "PlanStream._cut_next",
        "const",
        "self._add(text, [(owner, 0, 0) for owner in owners])",
        "-1",
        439,
    ): (
        "unreachable: a call of images or records keeps its originals, and stream_plan "
        "never streams such a plan; every text a PlanStream cuts is a string"
    ),
    (
        "_merge",
        "merge_rankings",
        "cmp",
        "if plan.top_n is not None and plan.top_n * 4 < len(scored):",
        "plan.top_n * 4 <= len(scored)",
    ): (
        "the heap and the sort give the same order (score, then the caller's index); "
        "where the one gives way to the other only changes the speed"
    ),
    (
        "_merge",
        "merge_rankings",
        "const",
        "if plan.top_n is not None and plan.top_n * 4 < len(scored):",
        "5",
    ): (
        "the heap and the sort give the same order (score, then the caller's index); "
        "where the one gives way to the other only changes the speed"
    ),
    (
        "_merge",
        "merge_rankings",
        "const",
        "if plan.top_n is not None and plan.top_n * 4 < len(scored):",
        "3",
    ): (
        "the heap and the sort give the same order (score, then the caller's index); "
        "where the one gives way to the other only changes the speed"
    ),
    (
        "_codec",
        "encode_request",
        "bool",
        "plan.mixed and not all(type(document) is str for document in documents),",
        "plan.mixed or not all((type(document) is str for document in documents))",
    ): (
        "a plan that is not mixed holds only strings, so both are false there; a mixed plan "
        "whose batch is all strings writes each string as it is either way (no record, so no "
        "rank_fields): the flag only spares that batch the dialect's per-document pass"
    ),
    (
        "_cache",
        "ScoreLookup.__call__",
        "drop",
        r'digest.update(b"\0image\0" if isinstance(text, Image) else b"\0record\0")',
        "pass",
    ): (
        "an image's key begins 'image:', a record's 'record:', and a text's digest begins "
        "with the text tag: without this tag no two kinds can still meet"
    ),
    ("_cache", "ScoreCache.endpoint_key", "const", "if known is None or known[0] != url:", "1"): (
        "known[1] is a key, never the URL: the key is then made again at every call, the same"
    ),
    ("_cache", "ScoreCache.endpoint_key", "const", "if known is None or known[0] != url:", "-1"): (
        "known is a pair: known[-1] is known[1], a key and never the URL: made again, the same"
    ),
    ("_codec", "_read_ranking", "const", "seen[index] = 1", "2"): (
        "the bytearray only marks an index seen: 2 is as true as 1"
    ),
    (
        "_codec",
        "_read_ranking",
        "bool",
        "if type(index) is not int and (isinstance(index, bool) or not isinstance(index, int)):",
        "type(index) is not int or (isinstance(index, bool) or not isinstance(index, int))",
    ): (
        "for what JSON decodes to (int, float, bool, str, None, list, dict) both conditions "
        "agree; they differ only for subclasses of int other than bool"
    ),
    ("_cuts", "cuts_for", "drop", "return known or None", "pass"): (
        "the kept cuts are a cache: the text is then measured and cut again, to the same cuts"
    ),
    ("_cuts", "cuts_for", "drop", "key = None", "pass"): (
        "the key is read only where there are kept cuts, and then it is set just below"
    ),
    (
        "_cuts",
        "cuts_for",
        "bool",
        "if kept is not None and key is not None:",
        "kept is not None or key is not None",
    ): "the key is set exactly when there are kept cuts: the two are None together or neither",
    ("_cuts", "digest", "cmp", "if len(data) <= _DIGEST_STEP:", "len(data) < _DIGEST_STEP"): (
        "a text of exactly one step, hashed in steps, gives the same SHA-256"
    ),
    ("_cuts", "digest", "drop", "return hashlib.sha256(data).digest()[:16]", "pass"): (
        "it falls through to hashing in steps, which gives the same digest"
    ),
    ("_cuts", "digest", "const", "return hashlib.sha256(data).digest()[:16]", "17"): (
        "the digest only keys the kept cuts: 15, 16 or 17 bytes of SHA-256 tell texts apart alike"
    ),
    ("_cuts", "digest", "const", "return hashlib.sha256(data).digest()[:16]", "15"): (
        "the digest only keys the kept cuts: 15, 16 or 17 bytes of SHA-256 tell texts apart alike"
    ),
    ("_cuts", "digest", "const", "return digest.digest()[:16]", "17"): (
        "the digest only keys the kept cuts: 15, 16 or 17 bytes of SHA-256 tell texts apart alike"
    ),
    ("_cuts", "digest", "const", "return digest.digest()[:16]", "15"): (
        "the digest only keys the kept cuts: 15, 16 or 17 bytes of SHA-256 tell texts apart alike"
    ),
    (
        "_plan",
        "_counted_past",
        "const",
        "return max_tokens // 2 if counter is counter_for(None) else 0",
        "3",
    ): (
        "the estimate counts at most 2 tokens a character: the shorter texts now counted "
        "too are found to fit, as they would have been taken to"
    ),
    (
        "_plan",
        "_cut_long_documents",
        "const",
        "parts.append([(owner, 0, 0) for owner in (index, *others)])",
        "1",
    ): (
        "the offsets of an image's or a record's place are never read: the merge keeps a "
        "best span only for a text"
    ),
    (
        "_plan",
        "_cut_long_documents",
        "const",
        "parts.append([(owner, 0, 0) for owner in (index, *others)])",
        "-1",
    ): (
        "the offsets of an image's or a record's place are never read: the merge keeps a "
        "best span only for a text"
    ),
    (
        "_plan",
        "PlanStream._add",
        "const",
        "_document_bytes(text) + budget.document_bytes if budget.max_bytes is not None else 0",
        "1",
    ): "the bytes are compared only when the budget has max_bytes; without, this 0 never is",
    (
        "_plan",
        "PlanStream._add",
        "const",
        "_document_bytes(text) + budget.document_bytes if budget.max_bytes is not None else 0",
        "-1",
    ): "the bytes are compared only when the budget has max_bytes; without, this 0 never is",
    ("_plan", "PlanStream._add", "const", "else 0", "1"): (
        "the tokens are compared only when the budget has max_tokens; without, this 0 never is"
    ),
    ("_plan", "PlanStream._add", "const", "else 0", "-1"): (
        "the tokens are compared only when the budget has max_tokens; without, this 0 never is"
    ),
    (
        "_plan",
        "PlanStream._cut_next",
        "const",
        "if len(owners) == 1:  # the usual case: a document found once",
        "0",
    ): "the general loop below adds the same pieces for one owner; the branch is only faster",
    ("_plan", "stream_plan", "drop", "return None", "pass", 523): (
        "the last statement: falling off the end returns None all the same"
    ),
    ("_plan", "PlanStream.__init__", "const", "else 0", "1"): (
        "the query's tokens are read only when the budget has max_tokens; without, this 0 never is"
    ),
    ("_plan", "PlanStream.__init__", "const", "else 0", "-1"): (
        "the query's tokens are read only when the budget has max_tokens; without, this 0 never is"
    ),
    (
        "_plan",
        "PlanStream.next_length",
        "const",
        "return len(text) if isinstance(text, str) else 0",
        "1",
    ): (
        "unreachable: stream_plan never streams a call of images or records, so every "
        "document a PlanStream holds is a string"
    ),
    (
        "_plan",
        "PlanStream.next_length",
        "const",
        "return len(text) if isinstance(text, str) else 0",
        "-1",
    ): (
        "unreachable: stream_plan never streams a call of images or records, so every "
        "document a PlanStream holds is a string"
    ),
    (
        "_plan",
        "_sized_batches",
        "const",
        "counter.count(query) + budget.wrapper_tokens if budget.max_tokens is not None else 0",
        "1",
    ): "the query's tokens are read only when the budget has max_tokens; without, this 0 never is",
    (
        "_plan",
        "_sized_batches",
        "const",
        "counter.count(query) + budget.wrapper_tokens if budget.max_tokens is not None else 0",
        "-1",
    ): "the query's tokens are read only when the budget has max_tokens; without, this 0 never is",
    (
        "_plan",
        "_sized_batches",
        "const",
        "document_tokens(counter, text) + query_tokens if budget.max_tokens is not None else 0",
        "1",
    ): "the tokens are compared only when the budget has max_tokens; without, this 0 never is",
    (
        "_plan",
        "_sized_batches",
        "const",
        "document_tokens(counter, text) + query_tokens if budget.max_tokens is not None else 0",
        "-1",
    ): "the tokens are compared only when the budget has max_tokens; without, this 0 never is",
    (
        "_codec",
        "_scrubbed_body",
        "drop",
        'body = content.decode("utf-8", errors="replace")',
        "pass",
    ): ("unreachable: _json.JSONDecodeError, caught just before, includes RecursionError"),
    ("_codec", "request_id_from", "drop", "return None", "pass"): (
        "the last statement: falling off the end returns None all the same"
    ),
    ("_codec", "scale_mismatch", "drop", "return None", "pass", 212): (
        "the last statement: falling off the end returns None all the same"
    ),
    ("_codec", "_scrubbed_body", "drop", 'return "", ""', "pass"): (
        "an empty body then fails to decode as JSON and is read as the empty text: the same "
        "empty body and excerpt"
    ),
    (
        "_codec",
        "make_status_error",
        "drop",
        'content = b""  # only the scrubbed body is kept in this frame',
        "pass",
    ): (
        "the error is returned, not raised, so no traceback keeps this frame and its "
        "unscrubbed content once the function returns"
    ),
    ("_codec", "_scrubbed_body", "drop", "return body, body_excerpt(content)", "pass", 137): (
        "unreachable: _json.JSONDecodeError, caught just before, includes RecursionError"
    ),
    ("_codec", "_scrubbed_body", "drop", "return body, body_excerpt(content)", "pass", 143): (
        "unreachable: the scrubbed value is at most 32 deep and decoded JSON has no cycle, so "
        "json.dumps raises neither RecursionError nor ValueError"
    ),
}

_FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_DROPPABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return, ast.Raise)


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change: where it is, what kind, and the mutated source line."""

    module: str
    number: int  # the position among the module's mutants, stable for one source
    function: str
    line: int
    kind: str
    before: str
    after: str

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.module, self.function, self.kind, self.before, self.after.strip())


def _protected_lines(source: str, tree: ast.Module) -> set[int]:
    lines = {
        number
        for number, text in enumerate(source.splitlines(), start=1)
        if "pragma: no mutate" in text
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            end = node.end_lineno or node.lineno
            lines.update(range(node.lineno, end + 1))
    return lines


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{member.name}", member


def _sites(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[tuple[ast.AST, str, int]]:
    """(node, kind, variant) for every change this function's body allows."""
    for statement in function.body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Compare):
                for position, op in enumerate(node.ops):
                    if type(op) in _FLIPS:
                        yield node, "cmp", position
            elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
                yield node, "const", +1
                yield node, "const", -1
            elif isinstance(node, ast.BoolOp):
                yield node, "bool", 0
            if isinstance(node, _DROPPABLE) and not _is_docstring(node):
                yield node, "drop", 0


def _apply(node: ast.AST, kind: str, variant: int) -> ast.AST:
    """The replacement for ``node`` (a copy; the tree itself is not changed)."""
    changed = copy.copy(node)
    if kind == "cmp":
        assert isinstance(changed, ast.Compare)
        ops = list(changed.ops)
        ops[variant] = _FLIPS[type(ops[variant])]()
        changed.ops = ops
    elif kind == "const":
        assert isinstance(changed, ast.Constant)
        assert isinstance(changed.value, (int, float))
        changed.value = changed.value + variant
    elif kind == "bool":
        assert isinstance(changed, ast.BoolOp)
        changed.op = ast.Or() if isinstance(changed.op, ast.And) else ast.And()
    else:  # drop
        changed = ast.Pass()
    return ast.copy_location(changed, node)


def mutants_of(module: str) -> list[tuple[Mutant, Callable[[], str | None]]]:
    """Every mutant of ``module``, each with a function that writes out the whole mutated
    module's source (``None`` if it does not compile)."""
    path = ROOT / PACKAGE / f"{module}.py"
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    protected = _protected_lines(source, tree)
    lines = source.splitlines()
    found: list[tuple[Mutant, Callable[[], str | None]]] = []
    for name, function in _functions(tree):
        for node, kind, variant in _sites(function):
            line = getattr(node, "lineno", 0)
            if line in protected:
                continue
            replacement = _apply(node, kind, variant)
            shown = ast.unparse(replacement) if kind != "drop" else "pass"
            before = lines[line - 1].strip() if line else ""
            mutant = Mutant(module, len(found), name, line, kind, before, shown)
            found.append((mutant, functools.partial(_mutated_source, tree, node, replacement)))
    return found


def _mutated_source(tree: ast.Module, node: ast.AST, replacement: ast.AST) -> str | None:
    """The module's source with ``node`` replaced, or ``None`` if it no longer compiles."""
    try:
        text = ast.unparse(_swap(tree, node, replacement))
        compile(text, "<mutant>", "exec")
    except (SyntaxError, ValueError):
        return None
    return text


def _swap(tree: ast.Module, node: ast.AST, replacement: ast.AST) -> ast.Module:
    """A copy of ``tree`` with ``node`` (found by identity) replaced."""
    path = _path_to(tree, node)
    assert path is not None
    result = copy.deepcopy(tree)
    parent: ast.AST = result
    for field, index in path[:-1]:
        value = getattr(parent, field)
        parent = value[index] if index is not None else value
    field, index = path[-1]
    if index is None:
        setattr(parent, field, replacement)
    else:
        getattr(parent, field)[index] = replacement
    return ast.fix_missing_locations(result)


def _path_to(root: ast.AST, target: ast.AST) -> list[tuple[str, int | None]] | None:
    for field, value in ast.iter_fields(root):
        if isinstance(value, list):
            for index, item in enumerate(value):
                if item is target:
                    return [(field, index)]
                if isinstance(item, ast.AST):
                    below = _path_to(item, target)
                    if below is not None:
                        return [(field, index), *below]
        elif isinstance(value, ast.AST):
            if value is target:
                return [(field, None)]
            below = _path_to(value, target)
            if below is not None:
                return [(field, None), *below]
    return None


@dataclasses.dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed, timeout, survived, uncovered (survived without a run: no test runs it)
    seconds: float
    tests: int = 0  # how many tests the run selected
    carried: bool = False  # taken over from an earlier run's log (--again)


def _copy_repository(source: Path, into: Path, *, with_bytecode: bool = False) -> Path:
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv*",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        *(() if with_bytecode else ("__pycache__", "*.pyc")),
    )
    shutil.copytree(source, into, ignore=ignore, symlinks=True)
    return into


#: Imported once by the driver, before any mutant, so that each forked run starts with them
#: (never the package itself: each run imports it from the copy, mutant included). The pytest
#: plugins found by entry point are here too: loading langsmith's takes a second a run.
_PRELOAD = (
    "pytest",
    "_pytest.python",
    "pytest_asyncio",
    "pytest_asyncio.plugin",
    "_hypothesis_pytestplugin",
    "anyio.pytest_plugin",
    "platformdirs.pytest_plugin",
    "langsmith.pytest_plugin",
    "hypothesis",
    "httpx",
    "httpcore",
    "pydantic",
    "anyio",
    "starlette.applications",
    "uvicorn",
    "langchain_core.documents",
    "langchain_core.documents.compressor",
    "llama_index.core.schema",
    "llama_index.core.postprocessor.types",
    "orjson",
    "coverage",
)


def _preload() -> None:
    for name in _PRELOAD:
        try:
            __import__(name)
        except ImportError:
            continue


def _hypothesis_for_mutants() -> None:
    """In a run's child: Hypothesis finds a failure as before, but does not shrink it (how
    small the example is changes nothing about a kill), keeps no database between runs (each
    mutant starts alike), draws the same examples every run (a report that can be repeated)
    and has no deadline (a busy machine is not a failing test; the run's time limit stays)."""
    from hypothesis import Phase, settings

    settings.register_profile(
        "mutation",
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        database=None,
        derandomize=True,
        deadline=None,
    )
    settings.load_profile("mutation")


class _Select:
    """A pytest plugin in a run's child: only ``wanted`` (node ids) run, in that order. If a
    mutant changes which tests exist (a table built by the module), every test runs."""

    def __init__(self, wanted: list[str]) -> None:
        self.wanted = wanted

    def pytest_collection_modifyitems(self, config: Any, items: list[Any]) -> None:
        rank = {nodeid: position for position, nodeid in enumerate(self.wanted)}
        kept = [item for item in items if item.nodeid in rank]
        if len(kept) != len(rank):
            return
        config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in rank])
        items[:] = sorted(kept, key=lambda item: rank[item.nodeid])


class _Contexts:
    """A pytest plugin in the baseline's child: coverage's context is the running test's node
    id, and each test's time is kept. Lines run outside any test (imports, collection, setup
    of fixtures shared between tests) stay in the empty context: every test may need them."""

    def __init__(self, coverage: Any) -> None:
        self.coverage = coverage
        self.current = ""
        self.seconds: dict[str, float] = {}

    def _switch(self, context: str) -> None:
        self.coverage.switch_context(context)

    def pytest_runtest_protocol(self, item: Any) -> Generator[None, object, object]:
        self.current = item.nodeid
        self._switch(item.nodeid)
        started = time.perf_counter()
        try:
            return (yield)
        finally:
            self.seconds[item.nodeid] = time.perf_counter() - started
            self.current = ""
            self._switch("")

    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, object, object]:
        shared = fixturedef.scope != "function"
        if shared:
            self._switch("")
        try:
            return (yield)
        finally:
            if shared:
                self._switch(self.current)


def _mark_hookwrappers() -> None:
    import pytest

    for method in (_Contexts.pytest_runtest_protocol, _Contexts.pytest_fixture_setup):
        pytest.hookimpl(wrapper=True)(method)


#: The runs under way: stopped with the driver, whatever it was doing.
_LIVE: set[int] = set()


def _fork() -> int:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    else:
        _LIVE.add(pid)
    return pid


def _reap(pid: int, *, block: bool = True) -> int | None:
    """The exit code of run ``pid``, or ``None`` while it runs (``block=False``)."""
    done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    if not done:
        return None
    _LIVE.discard(pid)
    return os.waitstatus_to_exitcode(status)


def _stop_all() -> None:
    for pid in list(_LIVE):
        os.kill(pid, signal.SIGKILL)
        _reap(pid)


def _child(
    copy_root: Path, args: list[str], plugins: list[object], then: Callable[[], None]
) -> None:
    """The body of a forked run: pytest over ``args`` in the copy; never returns."""
    code = 1
    try:
        # MUTATION_OUTPUT=FILE keeps what the tests print (to see why a baseline fails).
        output = os.environ.get("MUTATION_OUTPUT", os.devnull)
        sink = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(sink, 1)
        os.dup2(sink, 2)
        os.chdir(copy_root)
        sys.path.insert(0, str(copy_root))
        _hypothesis_for_mutants()
        import pytest

        # The preloaded plugins cannot have their asserts rewritten: pytest warns, harmlessly.
        quiet = "ignore::pytest.PytestAssertRewriteWarning"
        options = ["-q", "-p", "no:cacheprovider", "--no-header", "-W", quiet]
        code = int(pytest.main([*options, *args], plugins=plugins))
        then()
    finally:
        os._exit(code)


@dataclasses.dataclass
class Baseline:
    """What the unmutated module's tests show: who runs which line, and how long each takes."""

    tests: list[str]  # node ids, in the order they ran
    seconds: dict[str, float]
    lines: dict[int, list[str]]  # line -> node ids that run it ("" for outside any test)
    startup: float  # a mutant run's time outside the tests (measured on the unmutated module)


def _baselines(modules: list[str], copy_root: Path, scratch: Path) -> dict[str, Baseline]:
    """Run every module's tests once, together, on the unmutated copy under coverage, a
    context per test; each module then keeps its own tests. This run also leaves the tests'
    rewritten bytecode in the copy, which every later run reads."""
    files: list[str] = []
    for module in modules:
        named = MODULE_TESTS.get(module)
        if not named:
            raise SystemExit(f"no tests named for {module}: add it to MODULE_TESTS")
        files.extend(name for name in named if name not in files)
    targets = {module: str(copy_root / PACKAGE / f"{module}.py") for module in modules}
    result = scratch / "baseline.json"
    pid = _fork()
    if pid == 0:
        # The tests' rewritten bytecode is written (whatever PYTHONDONTWRITEBYTECODE says),
        # for the runs to read; the mutated module's never is (see _Slot.write).
        sys.dont_write_bytecode = False
        import coverage

        _mark_hookwrappers()
        measure = coverage.Coverage(data_file=None, include=list(targets.values()), branch=False)
        contexts = _Contexts(measure)
        measure.start()

        def save() -> None:
            measure.stop()
            data = measure.get_data()
            lines = {
                module: {
                    line: sorted(names) for line, names in data.contexts_by_lineno(path).items()
                }
                for module, path in targets.items()
            }
            record = {"seconds": contexts.seconds, "lines": lines}
            result.write_text(json.dumps(record), encoding="utf-8")

        _child(copy_root, files, [contexts], save)
    code = _reap(pid)
    if code == 5:
        raise SystemExit(f"no tests collected from {files}: fix MODULE_TESTS")
    if code != 0 or not result.exists():
        raise SystemExit(f"the tests fail without any mutant: {files}")
    record = json.loads(result.read_text(encoding="utf-8"))
    seconds: dict[str, float] = record["seconds"]
    baselines: dict[str, Baseline] = {}
    for module in modules:
        own = set(MODULE_TESTS[module])
        tests = [name for name in seconds if name.split("::", 1)[0] in own]
        if not tests:
            raise SystemExit(f"no tests collected from {MODULE_TESTS[module]}: fix MODULE_TESTS")
        kept = set(tests) | {""}  # "": run outside any test, which every test may need
        lines = {
            int(line): [name for name in names if name in kept]
            for line, names in record["lines"][module].items()
        }
        baselines[module] = Baseline(tests, {name: seconds[name] for name in tests}, lines, 0.0)
    return baselines


def _statement_lines(module: str) -> dict[int, range]:
    """For each line of the module, the lines of the innermost statement it belongs to (a
    compound statement's header only): a mutant there runs when any of them does."""
    source = (ROOT / PACKAGE / f"{module}.py").read_text(encoding="utf-8")
    spans: dict[int, range] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.stmt):
            continue
        last = node.end_lineno or node.lineno
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            last = max(node.lineno, body[0].lineno - 1)  # the header of a compound statement
        span = range(node.lineno, last + 1)
        for line in span:
            if line not in spans or len(span) < len(spans[line]):
                spans[line] = span
    return spans


#: Seconds: a test slower than this (Hypothesis's) runs after the others, in their order.
_SLOW = 1.0


def _selected(mutant: Mutant, baseline: Baseline, spans: dict[int, range]) -> list[str]:
    """The tests that run the mutated statement, the fast ones first (with ``-x`` a killed
    mutant stops at its first failure); every test if code outside any test runs it."""
    names: set[str] = set()
    for line in spans.get(mutant.line, range(mutant.line, mutant.line + 1)):
        names.update(baseline.lines.get(line, ()))
    if "" in names:
        names = set(baseline.tests)
    order = {name: position for position, name in enumerate(baseline.tests)}
    return sorted(names, key=lambda name: (baseline.seconds[name] > _SLOW, order[name]))


@dataclasses.dataclass
class _Slot:
    """One worker's copy of the repository; the module it last mutated, to restore."""

    root: Path
    mutated: Path | None = None
    original: str = ""

    def write(self, module: str, source: str) -> None:
        target = self.root / PACKAGE / f"{module}.py"
        if self.mutated is not None and self.mutated != target:
            self.restore()
        if self.mutated is None:
            self.mutated, self.original = target, target.read_text(encoding="utf-8")
        target.write_text(source, encoding="utf-8")
        # The unmutated module's bytecode would be taken for a mutant of the same size and
        # second; without it, the mutant is compiled from its source (and not written back).
        for stale in (target.parent / "__pycache__").glob(f"{module}.*.pyc"):
            stale.unlink()

    def restore(self) -> None:
        if self.mutated is not None:
            self.mutated.write_text(self.original, encoding="utf-8")
            self.mutated = None


def _workers(running: int, most: int) -> int:
    """How many runs at once: a second core only while the machine is otherwise idle."""
    if most <= 1:
        return 1
    others = os.getloadavg()[0] - running
    return most if others < 0.5 else 1


@dataclasses.dataclass
class _Job:
    mutant: Mutant
    source: str
    tests: list[str]
    files: list[str]
    limit: float


def _launch(slot: _Slot, job: _Job) -> int:
    slot.write(job.mutant.module, job.source)
    pid = _fork()
    if pid == 0:
        sys.dont_write_bytecode = True
        _child(slot.root, ["-x", *job.files], [_Select(job.tests)], lambda: None)
    return pid


def run_all(
    modules: list[str],
    scratch: Path,
    sample: int | None,
    seed: int,
    log: Path | None,
    most_workers: int,
    progress: Callable[[dict[str, tuple[list[Outcome], int]]], None],
    killed_before: dict[Mutant, Outcome] | None = None,
) -> dict[str, tuple[list[Outcome], int]]:
    """Run every module's mutants (a seeded sample of ``sample`` each when given) and return
    the outcomes by module, with how many mutants each module has in all. A mutant in
    ``killed_before`` is not run again: its earlier kill is taken over."""
    first = _copy_repository(ROOT, scratch / "repo0")
    baselines = _baselines(modules, first, scratch)
    slots = [_Slot(first)]
    for module in modules:  # the way mutants run, on the module unchanged: every test passes
        source = ast.unparse(ast.parse((ROOT / PACKAGE / f"{module}.py").read_text("utf-8")))
        seconds = baselines[module].seconds  # the slow ones (Hypothesis's) ran in the baseline
        tests = [name for name in seconds if seconds[name] <= _SLOW] or list(seconds)
        files = sorted({name.split("::", 1)[0] for name in tests})
        started = time.monotonic()
        pid = _launch(slots[0], _Job(mutants_of(module)[0][0], source, tests, files, 0.0))
        code = _reap(pid)
        # A run's own time (fork, pytest, collection, the package's import): for its limit.
        spent = time.monotonic() - started - sum(seconds[name] for name in tests)
        baselines[module].startup = max(0.0, spent)
        if code != 0:
            raise SystemExit(f"the tests of {module} fail when run as a mutant's: {files}")
    slots[0].restore()
    for number in range(1, most_workers):  # the others start from the first, bytecode too
        slots.append(_Slot(_copy_repository(first, scratch / f"repo{number}", with_bytecode=True)))

    results: dict[str, tuple[list[Outcome], int]] = {}
    jobs: list[_Job] = []
    for module in modules:
        baseline, spans = baselines[module], _statement_lines(module)
        every = mutants_of(module)
        chosen = every
        if sample is not None and sample < len(every):
            chosen = sorted(random.Random(seed).sample(every, sample), key=lambda m: m[0].number)
        results[module] = ([], len(every))
        for mutant, write in chosen:
            earlier = (killed_before or {}).get(mutant)
            if earlier is not None:
                taken = Outcome(mutant, earlier.status, earlier.seconds, earlier.tests, True)
                _record(results, taken, len(every), log)
                continue
            source = write()
            if source is None:  # not valid Python: no mutant at all
                continue
            tests = _selected(mutant, baseline, spans)
            if not tests:
                _record(results, Outcome(mutant, "uncovered", 0.0), len(every), log)
                continue
            expected = baseline.startup + sum(baseline.seconds[name] for name in tests)
            files = sorted({name.split("::", 1)[0] for name in tests})
            jobs.append(_Job(mutant, source, tests, files, max(10.0, 3 * expected)))

    expected = {
        module: len(results[module][0]) + sum(job.mutant.module == module for job in jobs)
        for module in modules
    }
    pending = list(reversed(jobs))
    running: dict[int, tuple[_Slot, _Job, float]] = {}
    free = list(slots)
    try:
        while pending or running:
            while pending and free and len(running) < _workers(len(running), len(slots)):
                job = pending.pop()
                slot = free.pop()
                running[_launch(slot, job)] = (slot, job, time.monotonic())
            time.sleep(0.01)
            for pid, (slot, job, started) in list(running.items()):
                code = _reap(pid, block=False)
                elapsed = time.monotonic() - started
                if code is None and elapsed <= job.limit:
                    continue
                if code is None:  # past its time limit: killed
                    os.kill(pid, signal.SIGKILL)
                    _reap(pid)
                    verdict = "timeout"
                else:
                    if code == 5:
                        raise SystemExit(f"no tests collected from {job.files}: fix MODULE_TESTS")
                    verdict = "survived" if code == 0 else "killed"
                del running[pid]
                free.append(slot)
                module = job.mutant.module
                outcome = Outcome(job.mutant, verdict, elapsed, len(job.tests))
                _record(results, outcome, results[module][1], log)
                if len(results[module][0]) == expected[module]:
                    progress(results)
    finally:
        for slot in slots:
            slot.restore()
    for outcomes, _ in results.values():
        outcomes.sort(key=lambda outcome: outcome.mutant.number)
    return results


def _record(
    results: dict[str, tuple[list[Outcome], int]], outcome: Outcome, total: int, log: Path | None
) -> None:
    results[outcome.mutant.module][0].append(outcome)
    if log is not None:  # one JSON line a mutant: --report-from rebuilds the report
        record = {
            **dataclasses.asdict(outcome.mutant),
            "status": outcome.status,
            "seconds": outcome.seconds,
            "tests": outcome.tests,
            "of": total,
            "run": _RUN,
            "carried": outcome.carried,
        }
        with log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def why_equivalent(mutant: Mutant) -> str | None:
    """Why ``mutant`` is equivalent, from :data:`EQUIVALENT`; ``None`` if it is not."""
    return EQUIVALENT.get((*mutant.key, mutant.line)) or EQUIVALENT.get(mutant.key)


#: This run, in the log: a module run again is reported from its latest run.
_RUN = time.strftime("%Y-%m-%dT%H:%M:%S") + f"/{os.getpid()}"

#: A mutant's outcomes that count as surviving: all tests passed, or no test runs its line.
_ALIVE = ("survived", "uncovered")


def report(results: dict[str, tuple[list[Outcome], int]], minutes: float | None) -> str:
    """MUTATION.md: the score per module, the equivalent survivors and the others."""
    rows = []
    runs: list[float] = []
    equivalents: list[str] = []
    survivors: list[str] = []
    carried = 0
    for module, (outcomes, total) in results.items():
        alive = [outcome for outcome in outcomes if outcome.status in _ALIVE]
        killed = len(outcomes) - len(alive)
        equivalent = [outcome for outcome in alive if why_equivalent(outcome.mutant)]
        live = [outcome for outcome in alive if not why_equivalent(outcome.mutant)]
        counted = len(outcomes) - len(equivalent)
        score = f"{100.0 * killed / counted:.1f} %" if counted else "100.0 %"
        if not outcomes:
            score = "not run"
        ran = f"{len(outcomes)}" if len(outcomes) == total else f"{len(outcomes)} of {total}"
        unrun = sum(outcome.status == "uncovered" for outcome in live)
        runs.extend(
            outcome.seconds
            for outcome in outcomes
            if outcome.status != "uncovered" and not outcome.carried
        )
        carried += sum(outcome.carried for outcome in outcomes)
        rows.append(
            f"| `{module}` | {ran} | {killed} | {len(equivalent)} | {len(live)} ({unrun}) "
            f"| {score} |"
        )
        for outcome in equivalent:
            m = outcome.mutant
            equivalents.append(
                f"- `{module}` {m.function} line {m.line} ({m.kind}): `{m.before}` → "
                f"`{m.after}`: {why_equivalent(m)}"
            )
        for outcome in live:
            m = outcome.mutant
            unrun = " (no test runs it)" if outcome.status == "uncovered" else ""
            survivors.append(
                f"- `{module}` {m.function} line {m.line} ({m.kind}): `{m.before}` → "
                f"`{m.after}`{unrun}"
            )
    lines = [
        "# Mutation testing of the pure modules",
        "",
        "Written by `make mutation` (`tools/mutation.py`, which says how mutants are made and",
        "which tests each module runs). Score: killed mutants over mutants not judged",
        "equivalent." + ("" if minutes is None else f" This run took {minutes:.0f} min."),
        "",
        f"{len(runs)} mutants ran their tests, {sum(runs) / max(1, len(runs)):.1f} s each on "
        "average (each only the tests that execute its statement); the others no test runs."
        + (
            f" {carried} kills were taken over from an earlier run of the same mutants "
            "(`--again`: only tests were added since)."
            if carried
            else ""
        ),
        "",
        "| module | mutants | killed | equivalent | surviving (no test runs them) | score |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "## Survivors judged equivalent",
        "",
        *(equivalents or ["None."]),
        "",
        "## Surviving mutants (no test notices them)",
        "",
        *(survivors or ["None."]),
        "",
    ]
    return "\n".join(lines)


def results_from_log(log: Path) -> dict[str, tuple[list[Outcome], int]]:
    """The outcomes a ``--log`` file holds, by module (a run stopped early included)."""
    results: dict[str, tuple[list[Outcome], int]] = {}
    latest: dict[str, object] = {}  # a module run again: its latest run only
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        status, seconds, total = record.pop("status"), record.pop("seconds"), record.pop("of")
        tests, run = record.pop("tests", 0), record.pop("run", None)
        carried = record.pop("carried", False)
        module = record["module"]
        if latest.get(module, run) != run:
            results.pop(module, None)
        latest[module] = run
        outcomes, _ = results.setdefault(module, ([], total))
        outcomes.append(Outcome(Mutant(**record), status, seconds, tests, carried))
    for outcomes, _ in results.values():
        outcomes.sort(key=lambda outcome: outcome.mutant.number)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="+", help="module names in the package, e.g. _retry")
    parser.add_argument("--out", type=Path, default=ROOT / "MUTATION.md")
    parser.add_argument("--sample", type=int, help="run a seeded sample of this many per module")
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--log", type=Path, help="append one line per mutant here")
    parser.add_argument("--list", action="store_true", help="only count the mutants")
    parser.add_argument(
        "--tests", nargs="+", help="run these tests instead of MODULE_TESTS' (every module)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="at most this many runs at once (more than one only while the machine is idle)",
    )
    parser.add_argument("--report-from", type=Path, help="write the report of a --log file")
    parser.add_argument(
        "--again",
        type=Path,
        help="run only the mutants this --log file's latest run did not kill (tests added since)",
    )
    args = parser.parse_args(argv)
    if args.report_from is not None:
        logged = results_from_log(args.report_from)
        # In the order the modules are named (the Makefile's), then any other in the log.
        for module in args.modules:  # named, never run: shown as such
            logged.setdefault(module, ([], len(mutants_of(module))))
        order = [*args.modules, *(module for module in logged if module not in args.modules)]
        text = report({module: logged[module] for module in order}, None)
        args.out.write_text(text, encoding="utf-8")
        print(text)
        return 0
    if args.list:
        for module in args.modules:
            print(module, len(mutants_of(module)))
        return 0
    started = time.monotonic()
    # Stopped (kill PID): the copy of the repository is removed, the running child killed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _preload()
    if args.tests:
        for module in args.modules:
            MODULE_TESTS[module] = args.tests

    def progress(results: dict[str, tuple[list[Outcome], int]]) -> None:
        # Written as each module finishes, so that a long run shows what it has so far.
        args.out.write_text(report(results, None), encoding="utf-8")

    killed_before = None
    if args.again is not None:
        killed_before = {
            outcome.mutant: outcome
            for outcomes, _ in results_from_log(args.again).values()
            for outcome in outcomes
            if outcome.status not in _ALIVE
        }
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        try:
            results = run_all(
                args.modules,
                Path(scratch),
                args.sample,
                args.seed,
                args.log,
                args.jobs,
                progress,
                killed_before,
            )
        finally:  # stopped or failed: no run is left behind
            _stop_all()
    text = report(results, (time.monotonic() - started) / 60)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
