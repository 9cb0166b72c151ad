"""Where a text too long for its budget is cut, kept by a digest of the text so that a text
sent again is neither counted nor cut again."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._budget import Cut, TokenCounter, surely_longer, truncation, windows

if TYPE_CHECKING:
    from ._plan import Budget

__all__ = ["cuts_for", "digest", "spans"]


def cuts_for(
    text: str,
    index: int,
    too_long: bool,
    max_tokens: int | None,
    max_characters: int | None,
    counter: TokenCounter,
    budget: Budget,
) -> tuple[int, ...] | None:
    """Where to cut a text that may be too long for the budget, as flat offsets (start,
    end, start, end, ...; :func:`spans` pairs them); ``None`` when it fits. What is found
    is kept in the budget's cache, a fit included, so that a text sent again is neither
    counted nor cut again."""
    mode = budget.long_documents
    room = max_tokens if max_tokens is not None else len(text)
    kept = budget.cuts if mode != "error" else None
    key = None
    if kept is not None:
        key = (digest(text), mode, room, budget.overlap, max_characters)
        known = kept.get(key)
        if known is not None:
            return known or None
    if not too_long and max_tokens is not None:
        # Long texts with more words than tokens allowed are not counted.
        too_long = surely_longer(text, max_tokens) or counter.count(text) > max_tokens
    cuts: list[Cut] = []
    if too_long and mode == "error":
        size = f"{len(text):,} characters, about {counter.count(text):,} tokens"
        allowed = " and ".join(
            f"{value:,} {name}"
            for name, value in (("tokens", max_tokens), ("characters", max_characters))
            if value is not None
        )
        raise ValueError(
            f"documents[{index}] is too long to send ({size}; next to the query a "
            f"document may have {allowed}): set long_documents='chunk' or 'truncate'"
        )
    if too_long and mode == "truncate":
        cuts = [truncation(text, counter, room, max_characters)]
    elif too_long:
        cuts = windows(text, counter, room, min(budget.overlap, room // 2), max_characters)
    flat = tuple(offset for cut in cuts for offset in (cut.start, cut.end))
    if kept is not None and key is not None:
        kept[key] = flat
    return flat or None


def spans(flat: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` pairs of :func:`cuts_for`' flat offsets."""
    offsets = iter(flat)
    return zip(offsets, offsets, strict=True)


#: Bytes hashed a step: below 2,048, :mod:`hashlib` keeps the GIL (see :func:`digest`).
_DIGEST_STEP = 2047


def digest(text: str) -> bytes:
    """A short digest of ``text``: a cache of cuts keyed by it keeps no document alive.

    Hashed in steps too small for :mod:`hashlib` to let go of the GIL: a long text hashed
    at once lets it go, and a thread cutting while others send (:class:`PlanStream`) then
    waits for it back up to the switch interval, for each document (the sums are equal).
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= _DIGEST_STEP:
        return hashlib.sha256(data).digest()[:16]
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(data), _DIGEST_STEP):
        digest.update(view[start : start + _DIGEST_STEP])
    return digest.digest()[:16]
