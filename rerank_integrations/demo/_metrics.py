"""Ranking metrics for the demo: reciprocal rank, MRR@k, hit@k and hit rate@k.

All functions are pure. A *ranking* is a sequence of document ids, best first;
*relevant* is the set of ids judged relevant for the query. A *run* is a
``(ranking, relevant)`` pair for one query.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TypeAlias

__all__ = ["Run", "hit_at_k", "hit_rate_at_k", "mrr_at_k", "reciprocal_rank"]

Run: TypeAlias = tuple[Sequence[str], Collection[str]]
"""One query's ``(ranked_ids, relevant_ids)`` pair."""


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def reciprocal_rank(ranked_ids: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Return the reciprocal rank of the first relevant id within the top ``k``.

    If the first relevant id sits at 1-based position ``r`` and ``r <= k``, the
    value is ``1 / r``; if no relevant id appears in ``ranked_ids[:k]`` (or
    ``relevant`` is empty) it is ``0.0``. Only the first hit counts, so further
    relevant ids do not change the value.

    Raises:
        ValueError: if ``k`` is smaller than 1.
    """
    _check_k(k)
    for position, doc_id in enumerate(ranked_ids[:k], start=1):
        if doc_id in relevant:
            return 1.0 / position
    return 0.0


def mrr_at_k(runs: Iterable[Run], k: int = 10) -> float:
    """Return the mean reciprocal rank at ``k`` (MRR@k) over several queries.

    ``MRR@k = (1 / |Q|) * sum over queries q of reciprocal_rank(ranking_q, relevant_q, k)``,
    where ``|Q|`` is the number of runs. Queries whose relevant ids all fall
    below position ``k`` contribute 0.

    Raises:
        ValueError: if ``runs`` is empty (the mean is undefined) or ``k`` < 1.
    """
    _check_k(k)
    scores = [reciprocal_rank(ranked, relevant, k) for ranked, relevant in runs]
    return _mean_of_runs(scores, "mrr_at_k")


def hit_at_k(ranked_ids: Sequence[str], relevant: Collection[str], k: int = 3) -> float:
    """Return 1.0 if any relevant id is among the top ``k`` ranked ids, else 0.0.

    Also known as success@k. An empty ``relevant`` collection never hits.

    Raises:
        ValueError: if ``k`` is smaller than 1.
    """
    _check_k(k)
    return 1.0 if any(doc_id in relevant for doc_id in ranked_ids[:k]) else 0.0


def hit_rate_at_k(runs: Iterable[Run], k: int = 3) -> float:
    """Return the hit rate at ``k``: the fraction of queries with a relevant id in the top ``k``.

    ``HitRate@k = (1 / |Q|) * sum over queries q of hit_at_k(ranking_q, relevant_q, k)``.
    With ``k`` equal to the number of candidates this is the recall of the
    candidate stage in the "at least one relevant" sense.

    Raises:
        ValueError: if ``runs`` is empty (the mean is undefined) or ``k`` < 1.
    """
    _check_k(k)
    hits = [hit_at_k(ranked, relevant, k) for ranked, relevant in runs]
    return _mean_of_runs(hits, "hit_rate_at_k")


def _mean_of_runs(values: list[float], metric: str) -> float:
    """The mean of one value per run; ``ValueError`` naming ``metric`` when there is none."""
    if not values:
        raise ValueError(f"{metric} needs at least one run")
    return sum(values) / len(values)
