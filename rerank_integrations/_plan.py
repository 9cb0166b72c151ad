"""Planning a call: its distinct texts, the long ones cut, split into batches that fit.

Each text is sent once however often it occurs; each batch holds no more than the budget
allows and asks for no more results than the call needs (``top_n`` is clamped here, once,
by :func:`batch_of`). The inputs are checked before they come here (:mod:`._checks`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import _json
from ._budget import TokenCounter, counter_for
from ._cuts import cuts_for, spans
from ._documents import IMAGE_TOKENS, Document, Image
from ._parts import Parts, Place

__all__ = [
    "CHUNK_AGGREGATES",
    "Batch",
    "Budget",
    "Parts",
    "PlanStream",
    "RerankPlan",
    "batch_of",
    "document_tokens",
    "plan_rerank",
]


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's share of a call: ``texts`` starts at ``start`` in the plan's texts."""

    start: int
    texts: Sequence[Document]
    top_n: int | None


@dataclass(frozen=True, slots=True)
class RerankPlan:
    """How one call is split into requests.

    Attributes:
        query: the query.
        documents: the caller's documents, as passed.
        texts: the distinct texts, in order of first appearance.
        first_index: for each distinct text, the caller's index of its first copy; ``None``
            when every text is distinct (the identity).
        copies: for distinct texts that appear more than once, the caller's other indexes.
        batches: the requests to send.
        top_n: results to return; ``None`` means all.
        parts: when documents were cut (truncated or chunked), for each distinct text the
            ``(document index, start, end)`` of every place it stands for; ``None`` when
            each text is a whole document (a :class:`Parts` when planned here).
        aggregate: how the scores of a document's windows make its score (``"max"``).
        windows: how many texts were sent in place of the documents' whole texts.
        sent: when some texts' scores were known already (a cache), the positions in
            ``texts`` of those sent, which the batches hold in order; ``None``: all of them.
        known: the scores already known, by position in ``texts``.
        originals: the caller's documents when they were not all strings (images and
            mappings), for the results; ``None``: ``documents`` are the caller's.
        rank_fields: the fields structured documents are ranked on.
        mixed: whether some texts are images or records rather than strings.
        instruction: the instruction for the dialect's own body field; ``None``: none.
        wrapper: the text a prompt template puts before and after each text document.
    """

    query: str
    documents: Sequence[Document]
    texts: Sequence[Document]
    first_index: list[int] | None
    copies: dict[int, list[int]]
    batches: list[Batch]
    top_n: int | None
    parts: Sequence[Sequence[Place]] | None = None
    aggregate: str = "max"
    windows: int = 0
    sent: list[int] | None = None
    known: dict[int, float] | None = None
    originals: Sequence[Any] | None = None
    rank_fields: tuple[str, ...] | None = None
    mixed: bool = False
    instruction: str | None = None
    wrapper: tuple[str, str] | None = None


def batch_of(texts: Sequence[Document], start: int, end: int, top_n: int | None) -> Batch:
    """The batch of ``texts[start:end]``, asking for at most ``top_n`` results (never more
    than it holds)."""
    return Batch(start, texts[start:end], None if top_n is None else min(top_n, end - start))


@dataclass(frozen=True, slots=True)
class Budget:
    """What one request may hold, and what to do with a document longer than the model reads.

    Attributes:
        max_documents: distinct texts a request.
        max_bytes: bytes of a request body; ``None``: no limit.
        max_tokens: tokens of a request, the query counted once per text; ``None``: none.
        max_document_tokens: tokens of one text with the query; ``None``: not known.
        max_document_characters: characters of one text; ``None``: not known.
        long_documents: ``"server"`` (send as is), ``"truncate"``, ``"chunk"`` or ``"error"``.
        overlap: tokens two windows of a chunked document share.
        aggregate: how a chunked document's score comes from its windows' (``"max"``,
            ``"mean"``).
        counter: counts tokens (the estimate, or the ``tokenizer`` setting's).
        body_bytes: bytes of a body with one empty document and the query, extra fields
            included; ``document_bytes``: what each further document adds beyond its text.
        cuts: where texts were cut before, by a digest of the text and the limits (a
            client's own cache), so that a document sent again is not measured again: each
            text's windows as one flat tuple of offsets (start, end, start, end, ...), ints
            that the garbage collector need not walk, unlike one object a window.
        wrapper_tokens: tokens a prompt template adds around each document.
    """

    max_documents: int
    max_bytes: int | None = None
    max_tokens: int | None = None
    max_document_tokens: int | None = None
    max_document_characters: int | None = None
    long_documents: str = "server"
    overlap: int = 0
    aggregate: str = "max"
    counter: TokenCounter | None = None
    body_bytes: int = 0
    document_bytes: int = 0
    cuts: MutableMapping[tuple[Any, ...], tuple[int, ...]] | None = None
    wrapper_tokens: int = 0

    def sized(self) -> bool:
        """Whether requests are sized by more than their count of documents."""
        return self.max_bytes is not None or self.max_tokens is not None

    def cuts_documents(self) -> bool:
        """Whether a document is cut, or refused, when it is too long."""
        known = (
            self.max_document_tokens,
            self.max_document_characters,
            self.max_tokens,
            self.max_bytes,
        )
        return self.long_documents != "server" and any(limit is not None for limit in known)


#: How a chunked document's score is made of its windows' (``chunk_aggregate=``).
CHUNK_AGGREGATES = ("max", "mean")

#: Tokens a model adds around a query and a document of its own ([CLS] ... [SEP] ... [SEP]).
_SPECIAL_TOKENS = 3


def plan_rerank(
    query: str,
    documents: Sequence[Document],
    top_n: int | None,
    budget: Budget | int,
    lookup: Callable[[Sequence[Document]], dict[int, float]] | None = None,
    originals: Sequence[Any] | None = None,
    rank_fields: tuple[str, ...] | None = None,
    *,
    instruction: str | None = None,
    wrapper: tuple[str, str] | None = None,
) -> RerankPlan:
    """Split checked input (:mod:`._checks`) into batches of distinct texts.

    Each text is sent once however often it occurs; each batch asks only for as many
    results as the whole call needs, and holds no more than the budget allows. A document
    too long for the budget is cut into windows (``"chunk"``), cut short (``"truncate"``)
    or refused (``"error"``), as the budget says. With ``lookup`` (a cache: the known score
    of each text, by position), only texts it does not know are sent, and every one sent is
    asked for its score (not only the best ``top_n``), so that it can be kept. Images and
    records (``originals`` then holds the caller's documents) are planned like texts but
    never cut. ``query`` is the query as sent; ``instruction`` and ``wrapper`` are kept for
    the requests (a dialect's instruction field, a prompt template's document side).
    """
    if not isinstance(budget, Budget):
        budget = Budget(max_documents=budget)

    copies: dict[int, list[int]] = {}
    distinct: Sequence[Document] = documents
    first_index_or_none: list[int] | None = None
    # Usually every text is distinct: one set() (in C) proves it, with no Python loop.
    if len(set(documents)) != len(documents):
        position_of: dict[Document, int] = {}
        unique: list[Document] = []
        first_index: list[int] = []
        for index, text in enumerate(documents):
            position = position_of.setdefault(text, len(unique))
            if position == len(unique):
                unique.append(text)
                first_index.append(index)
            else:
                copies.setdefault(position, []).append(index)
        distinct, first_index_or_none = unique, first_index

    if top_n is not None and top_n >= len(documents):
        top_n = None  # every result is wanted
    plan = RerankPlan(
        query=query,
        documents=documents,
        texts=distinct,
        first_index=first_index_or_none,
        copies=copies,
        batches=[],
        top_n=top_n,
        aggregate=budget.aggregate,
        originals=originals,
        rank_fields=rank_fields,
        mixed=originals is not None,
        instruction=instruction,
        wrapper=wrapper,
    )
    if budget.max_bytes is not None and plan.mixed:
        _check_whole_documents(plan, budget.max_bytes, budget)
    if budget.cuts_documents():
        plan = _cut_long_documents(plan, budget)
    batch_top_n = None if plan.parts is not None or lookup is not None else top_n
    texts: Sequence[Document] = plan.texts
    if lookup is not None:
        known = lookup(texts)
        if known:
            sent = [position for position in range(len(texts)) if position not in known]
            plan = dataclasses.replace(plan, sent=sent, known=known)
            texts = [texts[position] for position in sent]
    if budget.sized():
        batches = _sized_batches(plan.query, texts, batch_top_n, budget)
    else:
        size, count = budget.max_documents, len(texts)
        batches = [
            batch_of(texts, start, min(start + size, count), batch_top_n)
            for start in range(0, count, size)
        ]
    return dataclasses.replace(plan, batches=batches)


def _check_whole_documents(plan: RerankPlan, max_bytes: int, budget: Budget) -> None:
    """Refuse an image or a record (sent whole, never cut) that no request could hold.

    Raises:
        ValueError: naming the document, its size and the limit.
    """
    room = max_bytes - budget.body_bytes - budget.document_bytes
    for position, document in enumerate(plan.texts):
        if isinstance(document, str):
            continue
        size = document.wire_size()
        if size > room:
            index = position if plan.first_index is None else plan.first_index[position]
            kind = "image" if isinstance(document, Image) else "record"
            raise ValueError(
                f"documents[{index}] is {'an' if kind == 'image' else 'a'} {kind} of about "
                f"{size:,} bytes as sent, and a request may be at most {max_bytes:,} bytes "
                f"(max_request_bytes, or a limit the server taught), {room:,} of them for one "
                f"document next to the query; {kind}s are sent whole: make it smaller or "
                "raise max_request_bytes"
            )


def _document_limits(query: str, budget: Budget) -> tuple[int | None, int | None]:
    """``(tokens, characters)`` one text may have, the query taken into account."""
    counter = budget.counter or counter_for(None)
    query_tokens = counter.count(query) + _SPECIAL_TOKENS + budget.wrapper_tokens
    token_caps = [cap for cap in (budget.max_document_tokens, budget.max_tokens) if cap]
    tokens = max(1, min(token_caps) - query_tokens) if token_caps else None
    characters = budget.max_document_characters
    if budget.max_bytes is not None:
        # A character takes at most 6 bytes in JSON (a \uXXXX escape).
        room = budget.max_bytes - budget.body_bytes - budget.document_bytes
        by_bytes = max(1, room // 6)
        characters = by_bytes if characters is None else min(characters, by_bytes)
    return tokens, characters


def _counted_past(max_tokens: int | None, counter: TokenCounter) -> int | None:
    """Characters past which a text is counted against ``max_tokens`` (``None``: no cap).

    The estimate counts at most 2 tokens a character, so a shorter text surely fits; a
    tokenizer of the caller's may count more (a byte-level BPE, several for one emoji), so
    with one every text is counted."""
    if max_tokens is None:
        return None
    return max_tokens // 2 if counter is counter_for(None) else 0


def _cut_long_documents(plan: RerankPlan, budget: Budget) -> RerankPlan:
    """The plan with each text too long for the budget cut, chunked or refused."""
    counter = budget.counter or counter_for(None)
    max_tokens, max_characters = _document_limits(plan.query, budget)
    counted_past = _counted_past(max_tokens, counter)
    # Each piece's text, and the (document index, start, end) of every place it stands for.
    texts: list[Document] = []
    parts = Parts()
    cut_pieces = 0
    for position, text in enumerate(plan.texts):
        index = position if plan.first_index is None else plan.first_index[position]
        others = plan.copies.get(position, ())
        if not isinstance(text, str):  # an image or a record is sent whole
            texts.append(text)
            parts.append([(owner, 0, 0) for owner in (index, *others)])
            continue
        too_long = max_characters is not None and len(text) > max_characters
        cuts = None
        if too_long or (counted_past is not None and len(text) > counted_past):
            cuts = cuts_for(text, index, too_long, max_tokens, max_characters, counter, budget)
        if cuts is None:
            texts.append(text)
            parts.append([(owner, 0, len(text)) for owner in (index, *others)])
            continue
        for start, end in spans(cuts):
            texts.append(text[start:end])
            parts.add(index, start, end)
            if others:
                parts.extend_at(len(parts) - 1, [(owner, start, end) for owner in others])
        cut_pieces += len(cuts) // 2
    if not cut_pieces:
        return plan
    if len(set(texts)) != len(texts):  # a piece found twice is sent once
        position_of: dict[Document, int] = {}
        distinct: list[Document] = []
        merged = Parts()
        for text, places in zip(texts, parts, strict=True):
            position = position_of.setdefault(text, len(distinct))
            if position == len(distinct):
                distinct.append(text)
                merged.append(places)
            else:
                merged.extend_at(position, places)
        texts, parts = distinct, merged
    return dataclasses.replace(
        plan, texts=texts, first_index=None, copies={}, parts=parts, windows=cut_pieces
    )


def document_tokens(counter: TokenCounter, document: Document) -> int:
    """The tokens of one document: a text's count, a record's text's, an image's share."""
    if isinstance(document, str):
        return counter.count(document)
    if isinstance(document, Image):
        return IMAGE_TOKENS
    return counter.count(document.rendered(None))


def _document_bytes(document: Document) -> int:
    if isinstance(document, str):
        return len(_json.dumps(document)) - 2
    return document.wire_size()


class PlanStream:
    """A plan whose long documents are cut as its batches are asked for.

    :meth:`next_batch` cuts documents, in order, until one more batch is full, so that the
    first request can leave after one batch's worth of cutting and the rest is cut while
    answers are awaited. :attr:`plan` is live: its texts, parts and batches grow as the
    documents are cut; once :attr:`done`, it is the plan :func:`plan_rerank` makes (cuts,
    pieces sent once, batches), except that each whole document also has its part and no
    batch is asked for fewer results than it holds. Made by :func:`stream_plan`.

    Attributes:
        plan: the plan so far.
        done: whether every document is cut and every batch made.
        cut: documents cut (or found to fit) so far.
    """

    def __init__(self, plan: RerankPlan, budget: Budget) -> None:
        self._source = plan.texts
        self._first_index = plan.first_index
        self._copies = plan.copies
        self._budget = budget
        self._counter = budget.counter or counter_for(None)
        self._limits = _document_limits(plan.query, budget)
        self._counted_past = _counted_past(self._limits[0], self._counter)
        self._texts: list[Document] = []
        self._parts = Parts()
        self._batches: list[Batch] = []
        self._position_of: dict[Document, int] = {}
        self._pieces = 0
        self._ready: list[Batch] = []
        # The batch being filled: where it starts, its texts, bytes and tokens so far.
        self._start = self._count = self._size = self._tokens = 0
        self._query_tokens = (
            self._counter.count(plan.query) + budget.wrapper_tokens
            if budget.max_tokens is not None
            else 0
        )
        self.plan = dataclasses.replace(
            plan,
            texts=self._texts,
            first_index=None,
            copies={},
            parts=self._parts,
            batches=self._batches,
            aggregate=budget.aggregate,
        )
        self.done = False
        self.cut = 0

    def next_batch(self) -> Batch | None:
        """The next batch, cutting as many documents as it takes; ``None`` after the last.
        Refusals of the budget (:func:`plan_rerank`'s ``"error"``) are not streamed."""
        while not self.step():
            pass
        return self._ready.pop(0) if self._ready else None

    def step(self) -> bool:
        """Cut one more document (or close the plan after the last): whether a batch is
        ready, or the plan done, so that :meth:`next_batch` then cuts nothing. A caller that
        must not be held long (an event loop) cuts in steps, letting others run between."""
        if self._ready or self.done:
            return True
        if self.cut == len(self._source):
            if self._count:
                self._emit(len(self._texts))
            self.plan = dataclasses.replace(self.plan, windows=self._pieces)
            self.done = True
            return True
        self._cut_next()
        return bool(self._ready)

    def next_length(self) -> int:
        """Characters of the next document to cut (0: none left, or not a text)."""
        if self.cut == len(self._source):
            return 0
        text = self._source[self.cut]
        return len(text) if isinstance(text, str) else 0

    def _cut_next(self) -> None:
        position = self.cut
        text = self._source[position]
        index = position if self._first_index is None else self._first_index[position]
        owners = (index, *self._copies.get(position, ()))
        self.cut += 1
        if not isinstance(text, str):  # an image or a record is sent whole
            self._add(text, owners, 0, 0)
            return
        max_tokens, max_characters = self._limits
        too_long = max_characters is not None and len(text) > max_characters
        counted_past = self._counted_past
        cuts = None
        if too_long or (counted_past is not None and len(text) > counted_past):
            cuts = cuts_for(
                text, index, too_long, max_tokens, max_characters, self._counter, self._budget
            )
        if cuts is None:
            self._add(text, owners, 0, len(text))
            return
        self._pieces += len(cuts) // 2
        add = self._add
        for start, end in spans(cuts):
            add(text[start:end], owners, start, end)

    def _add(self, text: Document, owners: tuple[int, ...], start: int, end: int) -> None:
        """One piece, ``text[start:end]`` of each of the ``owners``: sent once however often
        it is found, and placed in a batch."""
        position = self._position_of.setdefault(text, len(self._texts))
        if position < len(self._texts):
            self._parts.extend_at(position, [(owner, start, end) for owner in owners])
            return
        budget = self._budget
        text_bytes = (
            _document_bytes(text) + budget.document_bytes if budget.max_bytes is not None else 0
        )
        text_tokens = (
            document_tokens(self._counter, text) + self._query_tokens
            if budget.max_tokens is not None
            else 0
        )
        max_bytes, max_tokens = budget.max_bytes, budget.max_tokens
        full = self._count >= budget.max_documents or (
            self._count
            and (
                (max_bytes is not None and budget.body_bytes + self._size + text_bytes > max_bytes)
                or (max_tokens is not None and self._tokens + text_tokens > max_tokens)
            )
        )
        if full:
            self._emit(position)
        self._texts.append(text)
        self._parts.add(owners[0], start, end)
        if len(owners) > 1:
            self._parts.extend_at(position, [(owner, start, end) for owner in owners[1:]])
        self._count += 1
        self._size += text_bytes
        self._tokens += text_tokens

    def _emit(self, end: int) -> None:
        batch = batch_of(self._texts, self._start, end, None)
        self._batches.append(batch)
        self._ready.append(batch)
        self._start, self._count, self._size, self._tokens = end, 0, 0, 0


#: Characters of text to measure past which a call's long documents are cut as its batches
#: are sent (:class:`PlanStream`) rather than all before the first request.
STREAM_CHARACTERS = 1 << 18


def stream_plan(plan: RerankPlan, budget: Budget | int) -> PlanStream | None:
    """A :class:`PlanStream` for ``plan`` (planned with nothing cut) when its documents are
    long enough for cutting them to delay the first request; ``None``: plan them whole.

    Not streamed: a budget that refuses long documents (every refusal comes before any
    request), calls with known scores (a cache) and calls of images or records."""
    if (
        not isinstance(budget, Budget)
        or not budget.cuts_documents()
        or budget.long_documents == "error"
        or plan.sent is not None
        or plan.originals is not None
    ):
        return None
    total = 0
    for text in plan.texts:
        if isinstance(text, str):
            total += len(text)
            if total > STREAM_CHARACTERS:
                return PlanStream(plan, budget)
    return None


def _sized_batches(
    query: str, texts: Sequence[Document], top_n: int | None, budget: Budget
) -> list[Batch]:
    """Batches of consecutive texts, each within every limit of the budget."""
    counter = budget.counter or counter_for(None)
    query_tokens = (
        counter.count(query) + budget.wrapper_tokens if budget.max_tokens is not None else 0
    )
    batches: list[Batch] = []
    start = 0
    count = size = tokens = 0
    for position, text in enumerate(texts):
        text_bytes = _document_bytes(text) + budget.document_bytes
        text_tokens = (
            document_tokens(counter, text) + query_tokens if budget.max_tokens is not None else 0
        )
        full = count >= budget.max_documents or (
            count
            and (
                (
                    budget.max_bytes is not None
                    and budget.body_bytes + size + text_bytes > budget.max_bytes
                )
                or (budget.max_tokens is not None and tokens + text_tokens > budget.max_tokens)
            )
        )
        if full:
            batches.append(batch_of(texts, start, position, top_n))
            start, count, size, tokens = position, 0, 0, 0
        count += 1
        size += text_bytes
        tokens += text_tokens
    if count:
        batches.append(batch_of(texts, start, len(texts), top_n))
    return batches
