"""The numbers: measures by ir-measures (trec_eval's own code, through pytrec_eval), paired
significance tests with Holm–Bonferroni's correction, and the sweeps (depth, ``top_n``,
``score_threshold``) computed from scores already known. No I/O, no requests."""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_MEASURES",
    "Comparison",
    "ThresholdPoint",
    "compare",
    "holm",
    "means",
    "parse_measures",
    "per_query",
    "percentile",
    "suggest_threshold",
    "threshold_curve",
]

#: The measures reported unless others are asked for, named as ir-measures names them.
DEFAULT_MEASURES: tuple[str, ...] = (
    "nDCG@5",
    "nDCG@10",
    "nDCG@20",
    "RR@10",
    "R@10",
    "R@20",
    "R@50",
    "R@100",
    "P@1",
    "P@5",
    "P@10",
    "AP",
)

_INSTALL_HINT = 'rerank_integrations.eval needs its extra: pip install "rerank-integrations[eval]"'


def needs(module: str) -> Any:
    """``module``, imported, or an ``ImportError`` saying which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({module} is missing)", name=module) from exc


def parse_measures(names: Iterable[str]) -> list[Any]:
    """ir-measures measures from their names (``nDCG@10``, ``RR@10``, ``R@100``, ``P@5``,
    ``AP``), in order, without repeats.

    Raises:
        ValueError: a name ir-measures does not know.
    """
    ir_measures = needs("ir_measures")
    parsed: dict[str, Any] = {}
    for name in names:
        try:
            measure = ir_measures.parse_measure(name.strip())
        except (ValueError, NameError, SyntaxError, TypeError) as exc:
            raise ValueError(
                f"unknown measure {name!r} (ir-measures names: nDCG@10, RR@10, R@100, P@5, AP)"
            ) from exc
        parsed.setdefault(str(measure), measure)
    if not parsed:
        raise ValueError("no measure to compute")
    return list(parsed.values())


def per_query(
    measures: Sequence[Any],
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
) -> dict[str, dict[str, float]]:
    """Each judged query's value of each measure (``{query: {measure name: value}}``); a
    judged query the run lacks scores 0, as with ``trec_eval -c``."""
    ir_measures = needs("ir_measures")
    names = [str(measure) for measure in measures]
    values = {query: dict.fromkeys(names, 0.0) for query in qrels}
    judged_run = {
        query: _untied(ranked) for query, ranked in run.items() if query in qrels and ranked
    }
    if judged_run:
        qrels_dict = {query: dict(judged) for query, judged in qrels.items()}
        named: dict[int, str] = {}  # a measure's hash is its repr: slow by the million
        for metric in ir_measures.iter_calc(list(measures), qrels_dict, judged_run):
            name = named.get(id(metric.measure))
            if name is None:
                name = named[id(metric.measure)] = str(metric.measure)
            values[metric.query_id][name] = float(metric.value)
    return values


def _untied(scores: Mapping[str, float]) -> dict[str, float]:
    """The ranking as trec_eval orders it (score descending, ties by document id
    descending), with one score per place: ir-measures hands some measures (``RR@k``) to
    providers that break ties the other way, and a ranking must not depend on who measures."""
    ordered = sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
    return {document: float(len(ordered) - place) for place, (document, _) in enumerate(ordered)}


def means(values: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The mean of each measure over the queries."""
    if not values:
        return {}
    names = next(iter(values.values())).keys()
    return {name: math.fsum(row[name] for row in values.values()) / len(values) for name in names}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given: the i-th smallest of ``m`` is
    multiplied by ``m - i`` (from 0), kept at least as large as the one before, capped at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class Comparison:
    """One paired test of two contenders on one measure, over the same queries.

    Attributes:
        measure: the measure compared.
        a, b: the contenders (``b - a`` is the difference).
        mean_a, mean_b: their means.
        p_value: two-sided paired t-test.
        p_holm: ``p_value`` after Holm–Bonferroni over every comparison of this measure.
        significant: ``p_holm < alpha``.
    """

    measure: str
    a: str
    b: str
    mean_a: float
    mean_b: float
    p_value: float
    p_holm: float
    significant: bool

    @property
    def difference(self) -> float:
        """``mean_b - mean_a``."""
        return self.mean_b - self.mean_a


def _paired_p(first: Sequence[float], second: Sequence[float]) -> float:
    differences = [b - a for a, b in zip(first, second, strict=True)]
    if len(differences) < 2 or all(d == differences[0] for d in differences):
        # No spread: the t statistic is undefined (0/0), or infinite for a constant shift
        # that two points cannot tell from chance.
        return 1.0 if not any(differences) or len(differences) < 2 else 0.0
    stats = needs("scipy.stats")
    p = float(stats.ttest_rel(second, first).pvalue)
    return p if math.isfinite(p) else 1.0


def compare(
    values: Mapping[str, Mapping[str, Mapping[str, float]]],
    measures: Sequence[str],
    *,
    baseline: str,
    alpha: float = 0.05,
) -> list[Comparison]:
    """Every contender against ``baseline`` and against each other, on each measure: a
    two-sided paired t-test per pair over the judged queries, p-values adjusted by
    Holm–Bonferroni within each measure's family of comparisons.

    ``values`` is ``{contender: {query: {measure: value}}}`` (:func:`per_query`).
    """
    contenders = list(values)
    pairs = [(baseline, other) for other in contenders if other != baseline]
    rerankers = [name for name in contenders if name != baseline]
    pairs += [
        (first, second)
        for number, first in enumerate(rerankers)
        for second in rerankers[number + 1 :]
    ]
    queries = sorted(values[baseline]) if baseline in values else []
    found: list[Comparison] = []
    for measure in measures:
        raw = []
        for a, b in pairs:
            first = [values[a][query][measure] for query in queries]
            second = [values[b][query][measure] for query in queries]
            raw.append((a, b, first, second, _paired_p(first, second)))
        adjusted = holm([item[4] for item in raw])
        for (a, b, first, second, p), p_holm in zip(raw, adjusted, strict=True):
            found.append(
                Comparison(
                    measure,
                    a,
                    b,
                    math.fsum(first) / max(len(first), 1),
                    math.fsum(second) / max(len(second), 1),
                    p,
                    p_holm,
                    p_holm < alpha,
                )
            )
    return found


def percentile(values: Sequence[float], share: float) -> float | None:
    """The ``share`` (0..1) percentile by linear interpolation; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    place = share * (len(ordered) - 1)
    low = math.floor(place)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (place - low)


@dataclass(frozen=True)
class ThresholdPoint:
    """What a ``score_threshold`` keeps, over every query's candidates.

    Attributes:
        threshold: documents scoring at least this are kept.
        kept: documents kept, per query on average.
        precision: the share of kept documents that are relevant (1.0 when none is kept).
        recall: the share of the relevant candidates that are kept.
    """

    threshold: float
    kept: float
    precision: float
    recall: float


def threshold_curve(
    scored: Iterable[tuple[float, bool]], queries: int, points: int = 21
) -> list[ThresholdPoint]:
    """What each threshold keeps, at ``points`` thresholds spread over the scores'
    quantiles (every distinct score when there are fewer), highest threshold first.

    ``scored`` is every candidate's ``(score, relevant)``.
    """
    pairs = sorted(scored, key=lambda item: item[0], reverse=True)
    relevant_total = sum(1 for _, relevant in pairs if relevant)
    if not pairs:
        return []
    distinct = sorted({score for score, _ in pairs}, reverse=True)
    if len(distinct) > points:
        distinct = sorted(
            {distinct[round(i * (len(distinct) - 1) / (points - 1))] for i in range(points)},
            reverse=True,
        )
    curve: list[ThresholdPoint] = []
    kept = hits = 0
    position = 0
    for threshold in distinct:
        while position < len(pairs) and pairs[position][0] >= threshold:
            kept += 1
            hits += pairs[position][1]
            position += 1
        curve.append(
            ThresholdPoint(
                threshold,
                kept / max(queries, 1),
                hits / kept if kept else 1.0,
                hits / relevant_total if relevant_total else 0.0,
            )
        )
    return curve


def suggest_threshold(
    curve: Sequence[ThresholdPoint], *, precision: float | None = None, recall: float | None = None
) -> ThresholdPoint | None:
    """The threshold for a target: the lowest one whose precision is at least
    ``precision`` (it keeps the most), or the highest whose recall is at least ``recall``
    (it keeps the least); ``None`` when no threshold reaches it."""
    if precision is not None:
        reaching = [point for point in curve if point.precision >= precision]
        return min(reaching, key=lambda point: point.threshold) if reaching else None
    if recall is not None:
        reaching = [point for point in curve if point.recall >= recall]
        return max(reaching, key=lambda point: point.threshold) if reaching else None
    raise ValueError("give a target precision or recall")
