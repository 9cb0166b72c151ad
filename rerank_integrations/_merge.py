"""Merging answers: pages into a batch's ranking, halves into one, batches into the call's.

Scores go back to the caller's indexes (every copy of a repeated text gets its score; a
chunked document its best window's, or their mean), sorted best first with ties in the
caller's order, cut to ``top_n``. No I/O here.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from ._codec import BatchRanking
from ._exceptions import ResponseFormatError
from ._parts import Parts
from ._plan import RerankPlan
from ._types import RerankResponse, RerankResult
from ._usage import RequestUsage, summed

__all__ = ["joined", "merge_pages", "merge_rankings", "unit_scores"]


def merge_pages(pages: Sequence[BatchRanking], batch_size: int) -> BatchRanking:
    """One batch's ranking from the pages of a paged answer; an index may appear once in all.

    Raises:
        ResponseFormatError: a page repeats an index an earlier page gave.
    """
    seen = bytearray(batch_size)
    pairs: list[tuple[int, float]] = []
    for page in pages:
        for index, score in page.pairs:
            if seen[index]:
                raise ResponseFormatError(
                    f"invalid rerank answer: index {index} appears on more than one page"
                )
            seen[index] = 1
            pairs.append((index, score))
    models = [page.model for page in pages if page.model]
    return BatchRanking(
        pairs,
        models[0] if models else None,
        _sum_optional([page.total_tokens for page in pages]),
        _sum_optional([page.billed_units for page in pages]),
        requests=sum(page.requests for page in pages),
        input_tokens=_sum_optional([page.input_tokens for page in pages]),
    )


def _sum_optional(values: Sequence[float | int | None]) -> Any:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def joined(first: BatchRanking, second: BatchRanking, offset: int) -> BatchRanking:
    """The ranking of two halves of a batch, the second's indexes moved past the first's."""
    pairs = [*first.pairs, *((index + offset, score) for index, score in second.pairs)]
    return BatchRanking(
        pairs,
        first.model or second.model,
        _sum_optional([first.total_tokens, second.total_tokens]),
        _sum_optional([first.billed_units, second.billed_units]),
        None,
        max(first.sent_bytes, second.sent_bytes),
        first.requests + second.requests,
        _sum_optional([first.input_tokens, second.input_tokens]),
    )


def merge_rankings(
    plan: RerankPlan,
    rankings: Sequence[BatchRanking],
    requested_model: str | None,
    transform: Callable[[float], float] | None = None,
    endpoint: str | None = None,
    spent: Sequence[RequestUsage] | None = None,
) -> RerankResponse:
    """One ranking from every batch's answer: scores mapped back to the caller's indexes
    (every copy of a repeated text gets its score; a chunked document its best window's,
    or their mean), sorted best first with ties in the caller's order, cut to ``top_n``;
    ``transform`` (monotone) is applied to the scores that are returned. The usage is the
    sum of ``spent``, what every answered request of the call used (by default, what the
    ``rankings`` report)."""
    spans: dict[int, tuple[int, int]] = {}
    if plan.parts is not None:
        scored = _aggregate(plan, rankings, spans)
    else:
        scored = []
        first_index = plan.first_index
        copies = plan.copies
        if plan.sent is None:
            for batch, ranking in zip(plan.batches, rankings, strict=True):
                start = batch.start
                for local, score in ranking.pairs:
                    position = start + local
                    index = position if first_index is None else first_index[position]
                    scored.append((score, index))
                    if copies and position in copies:
                        scored.extend((score, other) for other in copies[position])
        else:
            for position, score in unit_scores(plan, rankings):
                scored.append((score, position if first_index is None else first_index[position]))
                if copies and position in copies:
                    scored.extend((score, other) for other in copies[position])

    def best_first(pair: tuple[float, int]) -> tuple[float, int]:
        return (-pair[0], pair[1])

    if plan.top_n is not None and plan.top_n * 4 < len(scored):
        ordered = heapq.nsmallest(plan.top_n, scored, key=best_first)
    else:
        scored.sort(key=itemgetter(1))
        scored.sort(key=itemgetter(0), reverse=True)  # stable: ties keep the caller's order
        ordered = scored if plan.top_n is None else scored[: plan.top_n]

    documents: Sequence[Any] = plan.documents if plan.originals is None else plan.originals
    if spans:
        results = [
            RerankResult(
                index,
                score if transform is None else transform(score),
                documents[index],
                spans.get(index),
            )
            for score, index in ordered
        ]
    elif transform is None:
        results = [RerankResult(index, score, documents[index]) for score, index in ordered]
    else:
        results = [
            RerankResult(index, transform(score), documents[index]) for score, index in ordered
        ]
    models = [ranking.model for ranking in rankings if ranking.model]
    requests = sum(ranking.requests for ranking in rankings)
    if spent is None:
        spent = [
            RequestUsage(
                documents=len(batch.texts),
                search_units=ranking.billed_units,
                input_tokens=ranking.input_tokens,
                total_tokens=ranking.total_tokens,
                raw=ranking.usage,
                order=batch.start,
            )
            for batch, ranking in zip(plan.batches, rankings, strict=True)
        ]
    return RerankResponse(
        results=results,
        model=models[0] if models else requested_model,
        usage=summed(spent),
        requests=requests,
        windows=plan.windows,
        endpoint=endpoint,
        requested_model=requested_model,
    )


def unit_scores(plan: RerankPlan, rankings: Sequence[BatchRanking]) -> Iterator[tuple[int, float]]:
    """``(position in plan.texts, score)`` of every text: those sent, then those known."""
    sent = plan.sent
    for batch, ranking in zip(plan.batches, rankings, strict=True):
        start = batch.start
        for local, score in ranking.pairs:
            yield (start + local if sent is None else sent[start + local]), score
    if plan.known:
        yield from plan.known.items()


def _aggregate(
    plan: RerankPlan, rankings: Sequence[BatchRanking], spans: dict[int, tuple[int, int]]
) -> list[tuple[float, int]]:
    """Each document's score from its parts' (the best, or their mean), and in ``spans``
    the part that scored best, for documents that were cut."""
    assert plan.parts is not None
    best: dict[int, float] = {}
    totals: dict[int, list[float]] = {}
    mean = plan.aggregate == "mean"
    parts = plan.parts if isinstance(plan.parts, Parts) else Parts(plan.parts)
    owners, starts, ends, more = parts.columns()

    def take(index: int, score: float, start: int, end: int) -> None:
        if mean:
            totals.setdefault(index, []).append(score)
        if index not in best or score > best[index]:
            best[index] = score
            spans[index] = (start, end)

    for position, score in unit_scores(plan, rankings):
        index = owners[position]
        # Inline for the text's first place (one a window: tens of thousands a call).
        if mean:
            totals.setdefault(index, []).append(score)
        if index not in best or score > best[index]:
            best[index] = score
            spans[index] = (starts[position], ends[position])
        if more and position in more:
            for index, start, end in more[position]:
                take(index, score, start, end)
    documents = plan.documents
    for index, (start, end) in list(spans.items()):
        document = documents[index]
        if not isinstance(document, str) or (start == 0 and end == len(document)):
            del spans[index]  # scored whole: no span to point at
    if mean:
        return [(sum(values) / len(values), index) for index, values in totals.items()]
    return [(score, index) for index, score in best.items()]
