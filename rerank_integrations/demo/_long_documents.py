"""Long documents with the answer buried in them, made from the bundled corpus, no download.

A reranking model reads only its first 512 to 8,192 tokens, so a document whose answer lies
deeper ranks as if the answer were not there. This set measures that: 55 documents of
2,000 to 6,000 words, each hiding one corpus passage that answers a labelled query, at a
depth that cycles through :data:`DEPTHS`; and the corpus's 55 labelled queries, each with
ten candidate documents to rank, its relevant ones among them.

How a document is made, deterministically (no random generator whose sequence could change
between Python versions): the passage that is its answer (its "needle"), and filler, the
corpus passages that answer no labelled query, in an order fixed by CRC-32 of the document
number and passage id, reused in a new order when the filler runs out. Paragraphs are
separated by a blank line. Since no filler answers any query, a document is relevant to a
query exactly when its needle is one of the query's relevant passages.

Depths, as the share of the document's words before the needle:

- ``"start"``: one of the first three paragraphs, inside any model's first 512 tokens;
- ``"middle"``: 40 to 60 %;
- ``"deep"``: 70 to 85 %;
- ``"end"``: the last paragraph.

:func:`evaluate_long_documents` ranks every query's candidates with a rerank callable of
your choosing (sync or async) and returns MRR@10 and hit@3.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rerank_integrations.demo._corpus import LabelledQuery, Passage, load_passages, load_queries
from rerank_integrations.demo._metrics import hit_at_k, reciprocal_rank

__all__ = [
    "CANDIDATES_PER_QUERY",
    "DEPTHS",
    "LongDocument",
    "LongDocumentFigures",
    "LongDocumentSet",
    "LongQuery",
    "aevaluate_long_documents",
    "evaluate_long_documents",
    "load_long_documents",
]

DEPTHS: tuple[str, ...] = ("start", "middle", "deep", "end")
"""Where a document's answer lies, in the order the documents cycle through them."""

CANDIDATES_PER_QUERY = 10
"""Documents ranked for each query: its relevant ones and others, a fixed choice."""

MIN_WORDS = 2000
MAX_WORDS = 6000

# The share of words before the needle, per depth: (lowest, highest). "start" and "end"
# are placed by paragraph instead.
_DEPTH_BANDS = {"middle": (0.40, 0.60), "deep": (0.70, 0.85)}
_PARAGRAPH_BREAK = "\n\n"


@dataclass(frozen=True)
class LongDocument:
    """One long document and where its answer lies.

    Attributes:
        id: ``"L01"`` to ``"L55"``.
        text: the document: paragraphs separated by a blank line.
        passage_id: the corpus passage hidden in it, the answer it holds.
        passage_start: where that passage starts in :attr:`text` (a character offset).
        passage_end: where it ends: ``text[passage_start:passage_end]`` is the passage.
        depth: one of :data:`DEPTHS`.
        words: its length in words (runs of non-space characters).
    """

    id: str
    text: str
    passage_id: str
    passage_start: int
    passage_end: int
    depth: str
    words: int

    @property
    def passage(self) -> str:
        """The hidden passage itself."""
        return self.text[self.passage_start : self.passage_end]


@dataclass(frozen=True)
class LongQuery:
    """A labelled query of the corpus, with long documents to rank.

    Attributes:
        id: the corpus query's id (``"q01"``...).
        query: its text.
        relevant: the ids of the long documents that hold one of its relevant passages.
        candidates: the ids of the documents to rank for it, relevant ones included, in a
            fixed order that does not put them first.
    """

    id: str
    query: str
    relevant: tuple[str, ...]
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class LongDocumentSet:
    """The long documents and their labelled queries."""

    documents: tuple[LongDocument, ...]
    queries: tuple[LongQuery, ...]

    def document(self, document_id: str) -> LongDocument:
        """The document called ``document_id``; ``KeyError`` if there is none."""
        for document in self.documents:
            if document.id == document_id:
                return document
        raise KeyError(document_id)


def _order(key: str, items: Sequence[Passage]) -> list[Passage]:
    """``items`` in an order fixed by ``key`` and their ids alone."""
    return sorted(items, key=lambda item: (zlib.crc32(f"{key}:{item.id}".encode()), item.id))


def _words(text: str) -> int:
    return len(text.split())


def _filler(number: int, pool: Sequence[Passage], count: int) -> list[Passage]:
    """``count`` filler passages for document ``number``: the pool in an order of its own,
    again in another order when it runs out, never the same passage twice in a row."""
    chosen: list[Passage] = []
    round_ = 0
    while len(chosen) < count:
        for passage in _order(f"{number}:{round_}", pool):
            if chosen and chosen[-1].id == passage.id:
                continue
            chosen.append(passage)
            if len(chosen) == count:
                break
        round_ += 1
    return chosen


def _needle_index(depth: str, number: int, filler_words: Sequence[int]) -> int:
    """How many filler paragraphs go before the needle."""
    if depth == "start":
        return number // len(DEPTHS) % 3
    if depth == "end":
        return len(filler_words)
    low, high = _DEPTH_BANDS[depth]
    # A fraction inside the band, varied by document, then the nearest paragraph break.
    step = (number * 7919) % 1000 / 1000
    target = (low + (high - low) * step) * sum(filler_words)
    before = 0
    for index, words in enumerate(filler_words):
        if before + words / 2 > target:
            return index
        before += words
    return len(filler_words)


def _document(number: int, needle: Passage, pool: Sequence[Passage]) -> LongDocument:
    depth = DEPTHS[(number - 1) % len(DEPTHS)]
    # A length spread over the range, leaving a paragraph's room below its top.
    target = MIN_WORDS + ((number - 1) * 2729) % (MAX_WORDS - MIN_WORDS - 200)
    filler: list[Passage] = []
    sizes: list[int] = []
    total = _words(needle.text)
    for passage in _filler(number, pool, MAX_WORDS // min(_words(p.text) for p in pool)):
        if total >= target:
            break
        filler.append(passage)
        sizes.append(_words(passage.text))
        total += sizes[-1]
    index = _needle_index(depth, number, sizes)
    head = [passage.text for passage in filler[:index]]
    tail = [passage.text for passage in filler[index:]]
    start = sum(map(len, head)) + len(_PARAGRAPH_BREAK) * len(head)
    text = _PARAGRAPH_BREAK.join([*head, needle.text, *tail])
    return LongDocument(
        id=f"L{number:02d}",
        text=text,
        passage_id=needle.id,
        passage_start=start,
        passage_end=start + len(needle.text),
        depth=depth,
        words=_words(text),
    )


def _candidates(
    labelled: LabelledQuery, relevant: Sequence[str], ids: Sequence[str]
) -> tuple[str, ...]:
    others = sorted(
        (document_id for document_id in ids if document_id not in relevant),
        key=lambda document_id: zlib.crc32(f"{labelled.id}:{document_id}".encode()),
    )
    chosen = [*relevant, *others[: max(CANDIDATES_PER_QUERY - len(relevant), 0)]]
    return tuple(
        sorted(chosen, key=lambda document_id: zlib.crc32(f"{document_id}:{labelled.id}".encode()))
    )


@functools.cache
def load_long_documents() -> LongDocumentSet:
    """The long-document set, the same on every call and every machine (see the module)."""
    passages = load_passages()
    queries = load_queries()
    by_id = {passage.id: passage for passage in passages}
    answers = {passage_id for labelled in queries for passage_id in labelled.relevant}
    pool = [passage for passage in passages if passage.id not in answers]

    needles: list[Passage] = []
    for labelled in queries:
        unused = [by_id[i] for i in labelled.relevant if by_id[i] not in needles]
        if unused:
            needles.append(unused[0])
    documents = tuple(
        _document(number, needle, pool) for number, needle in enumerate(needles, start=1)
    )
    ids = [document.id for document in documents]
    long_queries = []
    for labelled in queries:
        relevant = tuple(
            document.id for document in documents if document.passage_id in labelled.relevant
        )
        long_queries.append(
            LongQuery(
                id=labelled.id,
                query=labelled.query,
                relevant=relevant,
                candidates=_candidates(labelled, relevant, ids),
            )
        )
    return LongDocumentSet(documents, tuple(long_queries))


# -- evaluation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LongDocumentFigures:
    """How well a rerank callable ranked the long documents.

    Attributes:
        mrr_at_10: the mean reciprocal rank of the first relevant document within the top 10.
        hit_at_3: the share of queries with a relevant document in the top 3.
        mrr_by_depth: MRR@10 of the queries grouped by the shallowest depth of their answers,
            which shows what a model that reads only a document's start misses.
        queries: the queries evaluated.
        seconds: the wall time of all the calls.
    """

    mrr_at_10: float
    hit_at_3: float
    mrr_by_depth: dict[str, float]
    queries: int
    seconds: float


Rerank = Callable[[str, list[str]], Any]
"""``rerank(query, documents)``, returning (or, if async, resolving to) a ranking: a
``RerankResponse`` (anything with ``.results`` whose items have ``.index``), a sequence of
such items, or a sequence of document indexes, best first."""


def _ranking(answer: Any, count: int) -> list[int]:
    """The document indexes of a rerank answer, best first."""
    items = getattr(answer, "results", answer)
    try:
        indexes = [item if isinstance(item, int) else item.index for item in items]
    except (AttributeError, TypeError):
        raise TypeError(
            "a rerank callable must return a RerankResponse, results with an .index, "
            f"or document indexes; got {type(answer).__name__}"
        ) from None
    if len(set(indexes)) != len(indexes) or not all(0 <= index < count for index in indexes):
        raise ValueError(f"the ranking {indexes} is not of distinct indexes below {count}")
    return indexes


def _figures(data: LongDocumentSet, answers: Sequence[Any], seconds: float) -> LongDocumentFigures:
    ranks: list[float] = []
    hits: list[float] = []
    by_depth: dict[str, list[float]] = {depth: [] for depth in DEPTHS}
    for labelled, answer in zip(data.queries, answers, strict=True):
        ranked = [labelled.candidates[i] for i in _ranking(answer, len(labelled.candidates))]
        relevant = set(labelled.relevant)
        rank = reciprocal_rank(ranked, relevant, 10)
        ranks.append(rank)
        hits.append(hit_at_k(ranked, relevant, 3))
        shallowest = min(DEPTHS.index(data.document(i).depth) for i in labelled.relevant)
        by_depth[DEPTHS[shallowest]].append(rank)
    return LongDocumentFigures(
        mrr_at_10=sum(ranks) / len(ranks),
        hit_at_3=sum(hits) / len(hits),
        mrr_by_depth={depth: sum(v) / len(v) for depth, v in by_depth.items() if v},
        queries=len(ranks),
        seconds=seconds,
    )


def _texts(data: LongDocumentSet, labelled: LongQuery) -> list[str]:
    return [data.document(document_id).text for document_id in labelled.candidates]


def evaluate_long_documents(
    rerank: Rerank, data: LongDocumentSet | None = None, *, concurrency: int = 8
) -> LongDocumentFigures:
    """Rank every query's candidates with ``rerank`` and score the rankings.

    ``rerank(query, texts)`` may be sync (``client.rerank``) or async (``client.arerank``);
    async calls run concurrently, at most ``concurrency`` at once, and then this must not be
    called from a running event loop (await :func:`aevaluate_long_documents` there). To
    compare long-document strategies, bind them first:
    ``functools.partial(client.rerank, top_n=10, ...)``.
    """
    data = data if data is not None else load_long_documents()
    started = time.perf_counter()
    answers = [rerank(labelled.query, _texts(data, labelled)) for labelled in data.queries]
    if any(inspect.isawaitable(answer) for answer in answers):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            answers = asyncio.run(_resolve(answers, concurrency))
        else:
            for answer in answers:
                if inspect.iscoroutine(answer):
                    answer.close()
            raise RuntimeError(
                "an async rerank callable inside a running event loop: "
                "await aevaluate_long_documents(...) instead"
            )
    return _figures(data, answers, time.perf_counter() - started)


async def aevaluate_long_documents(
    rerank: Rerank, data: LongDocumentSet | None = None, *, concurrency: int = 8
) -> LongDocumentFigures:
    """:func:`evaluate_long_documents` from async code."""
    data = data if data is not None else load_long_documents()
    started = time.perf_counter()
    answers = [rerank(labelled.query, _texts(data, labelled)) for labelled in data.queries]
    resolved = await _resolve(answers, concurrency)
    return _figures(data, resolved, time.perf_counter() - started)


async def _resolve(answers: Sequence[Any], concurrency: int) -> list[Any]:
    """``answers`` with each awaitable awaited, at most ``concurrency`` at a time (a coroutine
    starts only when awaited, so the limit holds however many were made)."""
    limit = asyncio.Semaphore(concurrency)

    async def one(answer: Any) -> Any:
        if not inspect.isawaitable(answer):
            return answer
        async with limit:
            return await answer

    return list(await asyncio.gather(*(one(answer) for answer in answers)))
