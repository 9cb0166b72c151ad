"""The report: every number computed from the scores already known, and the folder it is
written to (JSON for scripts, TREC runs for other tools, Markdown and plots for people)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._data import Dataset, FirstStage
from ._measures import (
    Comparison,
    ThresholdPoint,
    compare,
    means,
    parse_measures,
    per_query,
    percentile,
    suggest_threshold,
    threshold_curve,
)

__all__ = ["EvalReport", "build_report"]

_FIRST_STAGE = "first-stage"

#: Threshold rows shown in the report (the suggestion is found among every score).
_CURVE_POINTS = 11


@dataclass
class EvalReport:
    """What an evaluation found, as written to its folder.

    Attributes:
        out: the report folder.
        metrics: ``{contender: {measure: mean}}`` (``metrics.json``).
        per_query: ``{contender: {query id: {measure: value}}}``.
        comparisons: the paired tests (``significance.json``).
        depth_sweep: ``{contender: {depth: {measure: mean}}}``.
        top_n_sweep: ``{contender: {n: {"P@n", "R@n", "nDCG@n", "relevant_lost"}}}``.
        thresholds: ``{reranker: {"curve": [...], "for_precision", "for_recall"}}``.
        usage: ``{reranker: {"queries", "documents", "requests", "tokens", "latency_p50_ms",
            "latency_p95_ms", "cost"}}``.
        primary: the measure plots and summaries show (``nDCG@10`` when computed).
        requests_sent: HTTP requests this run sent (0 when every score was known).
        seconds: how long this run took: ``"scoring"`` (the rerankers, through the batch
            job) and ``"report"`` (every measure, sweep and test, and the files).
        notes: what the reader should know (queries left out, no judgements...).
        files: the files written, relative to ``out``.
    """

    out: Path
    metrics: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, dict[str, float]]]
    comparisons: list[Comparison]
    depth_sweep: dict[str, dict[int, dict[str, float]]]
    top_n_sweep: dict[str, dict[int, dict[str, float]]]
    thresholds: dict[str, dict[str, Any]]
    usage: dict[str, dict[str, Any]]
    primary: str
    requests_sent: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def table(self, measures: Sequence[str] | None = None) -> str:
        """The means side by side, with latency and requests, as aligned text."""
        shown = list(measures or _headline(self.primary, next(iter(self.metrics.values()))))
        header = ["contender", *shown, "p50 ms", "p95 ms", "requests"]
        rows = [header]
        for contender, values in self.metrics.items():
            used = self.usage.get(contender, {})
            rows.append(
                [
                    contender,
                    *(f"{values[name]:.4f}" for name in shown),
                    _number(used.get("latency_p50_ms")),
                    _number(used.get("latency_p95_ms")),
                    _number(used.get("requests")),
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        return "\n".join(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        )


def _number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _headline(primary: str, measures: Mapping[str, float]) -> list[str]:
    """The primary measure and a few others, for tables that cannot show them all."""
    wanted = [primary, "RR@10", "R@20", "R@100", "P@5", "AP"]
    return [name for name in dict.fromkeys(wanted) if name in measures][:6] or list(measures)[:6]


def _runs(
    first_stage: FirstStage, scores: Mapping[str, Mapping[str, Mapping[str, float]]], depth: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Each contender's run over the top ``depth`` candidates."""
    runs = {
        _FIRST_STAGE: {
            query: dict(ranked[:depth]) for query, ranked in first_stage.candidates.items()
        }
    }
    for name, scored in scores.items():
        runs[name] = {
            query: {
                doc: scored[query][doc] for doc, _ in ranked[:depth] if doc in scored.get(query, {})
            }
            for query, ranked in first_stage.candidates.items()
        }
    return runs


def _usage(calls: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    latencies = []
    requests = documents = 0
    tokens: int | None = None
    cost: Decimal | None = None
    for records in calls.values():
        sent = [record for record in records if record.get("requests")]
        if sent:  # the latency of a query is that of its last call that reached the server
            latencies.append(1000.0 * float(sent[-1]["seconds"]))
        documents += int(records[-1].get("documents") or 0)
        for record in records:
            requests += int(record.get("requests") or 0)
            if record.get("tokens") is not None:
                tokens = (tokens or 0) + int(record["tokens"])
            if record.get("cost") is not None:
                cost = (cost or Decimal(0)) + Decimal(record["cost"])
    return {
        "queries": len(calls),
        "documents": documents,
        "requests": requests,
        "tokens": tokens,
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p95_ms": percentile(latencies, 0.95),
        "latency_mean_ms": math.fsum(latencies) / len(latencies) if latencies else None,
        "latencies_ms": latencies,
        # At the client's price, over the calls whose cost is known; None without a price.
        "cost": None if cost is None else float(cost),
    }


def _top_n_names(top_ns: Sequence[int]) -> list[str]:
    return [f"{kind}@{n}" for n in top_ns for kind in ("P", "R", "nDCG")]


def _top_n_sweep(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    values: Mapping[str, Mapping[str, float]],
    top_ns: Sequence[int],
) -> dict[int, dict[str, float]]:
    averaged = means(values)
    lost: dict[int, float] = {}
    for n in top_ns:
        dropped = 0
        for query, judged in qrels.items():
            ranked = sorted(run.get(query, {}).items(), key=lambda i: (i[1], i[0]), reverse=True)
            dropped += sum(1 for doc, _ in ranked[n:] if judged.get(doc, 0) > 0)
        lost[n] = dropped / max(len(qrels), 1)
    return {
        n: {
            f"P@{n}": averaged[f"P@{n}"],
            f"R@{n}": averaged[f"R@{n}"],
            f"nDCG@{n}": averaged[f"nDCG@{n}"],
            "relevant_lost": lost[n],
        }
        for n in top_ns
    }


def build_report(
    dataset: Dataset,
    first_stage: FirstStage,
    scores: Mapping[str, Mapping[str, Mapping[str, float]]],
    calls: Mapping[str, Mapping[str, list[dict[str, Any]]]],
    out: Path,
    *,
    measures: Sequence[Any],
    names: Sequence[str],
    depth: int,
    depths: Sequence[int],
    top_ns: Sequence[int],
    target_precision: float,
    target_recall: float,
    alpha: float,
    plots: bool,
    requests_sent: int,
    scoring_seconds: float = 0.0,
) -> EvalReport:
    """Compute every table from the scores, and write the report folder."""
    started = time.perf_counter()
    qrels = dataset.qrels
    runs = _runs(first_stage, scores, depth)
    top = [n for n in top_ns if n <= depth] or [depth]
    # One pass per contender at full depth gives the measures and the top_n sweep.
    extra = [name for name in _top_n_names(top) if name not in names]
    every = [*measures, *parse_measures(extra)] if extra else list(measures)
    found = {name: per_query(every, qrels, run) for name, run in runs.items()}
    values = {
        name: {query: {m: row[m] for m in names} for query, row in by_query.items()}
        for name, by_query in found.items()
    }
    top_values = {
        name: {query: {m: row[m] for m in _top_n_names(top)} for query, row in by_query.items()}
        for name, by_query in found.items()
    }
    primary = "nDCG@10" if "nDCG@10" in names else names[0]
    depth_sweep: dict[str, dict[int, dict[str, float]]] = {name: {} for name in runs}
    for cut in depths:
        cut_runs = _runs(first_stage, scores, cut) if cut != depth else None
        for name in runs:
            by_query = (
                values[name] if cut_runs is None else per_query(measures, qrels, cut_runs[name])
            )
            depth_sweep[name][cut] = means(by_query)
    thresholds: dict[str, dict[str, Any]] = {}
    for name in scores:
        scored = [
            (score, qrels.get(query, {}).get(doc, 0) > 0)
            for query, ranked in runs[name].items()
            for doc, score in ranked.items()
        ]
        queries = len(runs[name])
        every = threshold_curve(scored, queries, points=len(scored) + 1)
        thresholds[name] = {
            "curve": threshold_curve(scored, queries, points=_CURVE_POINTS),
            "target_precision": target_precision,
            "for_precision": suggest_threshold(every, precision=target_precision),
            "target_recall": target_recall,
            "for_recall": suggest_threshold(every, recall=target_recall),
            "scores": scored,
        }
    report = EvalReport(
        out=out,
        metrics={name: means(by_query) for name, by_query in values.items()},
        per_query=values,
        comparisons=compare(values, names, baseline=_FIRST_STAGE, alpha=alpha),
        depth_sweep=depth_sweep,
        top_n_sweep={
            name: _top_n_sweep(qrels, run, top_values[name], top) for name, run in runs.items()
        },
        thresholds=thresholds,
        usage={name: _usage(calls.get(name, {})) for name in scores},
        primary=primary,
        requests_sent=requests_sent,
        notes=list(first_stage.notes),
    )
    report.seconds = {"scoring": scoring_seconds, "report": time.perf_counter() - started}
    _write(report, dataset, runs, depth, alpha, plots)
    report.seconds["report"] = time.perf_counter() - started
    return report


def _point(point: ThresholdPoint | None) -> dict[str, float] | None:
    return asdict(point) if point is not None else None


def _dump(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write(
    report: EvalReport,
    dataset: Dataset,
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    depth: int,
    alpha: float,
    plots: bool,
) -> None:
    out = report.out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    files = ["metrics.json"]
    _dump(out / "metrics.json", report.metrics)
    for name, run in runs.items():
        lines = []
        for query in sorted(run):
            ranked = sorted(run[query].items(), key=lambda i: (i[1], i[0]), reverse=True)
            for rank, (doc, score) in enumerate(ranked, start=1):
                lines.append(f"{query} Q0 {doc} {rank} {score!r} {name}\n")
        (out / "runs" / f"{name}.trec").write_text("".join(lines), encoding="utf-8")
        files.append(f"runs/{name}.trec")
    with (out / "per_query.jsonl").open("w", encoding="utf-8") as handle:
        for name, by_query in report.per_query.items():
            for query, row in sorted(by_query.items()):
                handle.write(json.dumps({"contender": name, "query_id": query, **row}) + "\n")
    files.append("per_query.jsonl")
    _dump(
        out / "significance.json",
        {
            "test": "two-sided paired t-test over the judged queries (scipy.stats.ttest_rel)",
            "correction": "Holm-Bonferroni, within each measure",
            "alpha": alpha,
            "comparisons": [
                {**asdict(item), "difference": item.difference} for item in report.comparisons
            ],
        },
    )
    _dump(
        out / "sweeps.json",
        {
            "depth": {n: {str(d): m for d, m in s.items()} for n, s in report.depth_sweep.items()},
            "top_n": {n: {str(k): m for k, m in s.items()} for n, s in report.top_n_sweep.items()},
            "threshold": {
                name: {
                    "curve": [asdict(point) for point in found["curve"]],
                    "target_precision": found["target_precision"],
                    "for_precision": _point(found["for_precision"]),
                    "target_recall": found["target_recall"],
                    "for_recall": _point(found["for_recall"]),
                }
                for name, found in report.thresholds.items()
            },
        },
    )
    _dump(
        out / "usage.json",
        {
            name: {key: value for key, value in used.items() if key != "latencies_ms"}
            for name, used in report.usage.items()
        },
    )
    files += ["significance.json", "sweeps.json", "usage.json"]
    if plots:
        from ._plots import draw

        files += draw(report, out)
    files.append("report.md")
    report.files = files
    (out / "report.md").write_text(_markdown(report, dataset, depth), encoding="utf-8")


def _markdown(report: EvalReport, dataset: Dataset, depth: int) -> str:
    primary = report.primary
    measures = list(next(iter(report.metrics.values())))
    lines = [
        f"# Reranking evaluation: {dataset.name}",
        "",
        f"{len(dataset.qrels)} judged queries; every contender ranks the first stage's top "
        f"{depth} candidates. Measures by ir-measures (trec_eval through pytrec_eval); "
        "a judged query without candidates counts as 0.",
        "",
        "## Means",
        "",
        "| contender | " + " | ".join(measures) + " |",
        "|---|" + "---:|" * len(measures),
    ]
    for name, values in report.metrics.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[m]:.4f}" for m in measures) + " |")
    lines += [
        "",
        f"## Significance ({primary})",
        "",
        "Two-sided paired t-test over the judged queries; p-values adjusted by Holm–Bonferroni "
        "within each measure (all measures: `significance.json`).",
        "",
        "| a | b | mean a | mean b | b - a | p | p (Holm) | significant |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for item in report.comparisons:
        if item.measure == primary:
            lines.append(
                f"| {item.a} | {item.b} | {item.mean_a:.4f} | {item.mean_b:.4f} | "
                f"{item.difference:+.4f} | {item.p_value:.4g} | {item.p_holm:.4g} | "
                f"{'yes' if item.significant else 'no'} |"
            )
    depths = list(next(iter(report.depth_sweep.values())))
    lines += [
        "",
        f"## Candidate depth ({primary})",
        "",
        "The same measure when each contender sees only the first stage's top k: where the "
        "curve flattens is the depth to retrieve.",
        "",
        "| contender | " + " | ".join(f"k={d}" for d in depths) + " |",
        "|---|" + "---:|" * len(depths),
    ]
    for name, swept in report.depth_sweep.items():
        lines.append(f"| {name} | " + " | ".join(f"{swept[d][primary]:.4f}" for d in depths) + " |")
    lines += ["", "## top_n: what each keeps", ""]
    lines += [
        "| contender | top_n | P | R | nDCG | relevant lost per query |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, swept in report.top_n_sweep.items():
        for n, kept in swept.items():
            lines.append(
                f"| {name} | {n} | {kept[f'P@{n}']:.4f} | {kept[f'R@{n}']:.4f} | "
                f"{kept[f'nDCG@{n}']:.4f} | {kept['relevant_lost']:.2f} |"
            )
    lines += ["", "## score_threshold", ""]
    for name, found in report.thresholds.items():
        lines += [f"### {name}", ""]
        for target, key in (("precision", "for_precision"), ("recall", "for_recall")):
            point = found[key]
            wanted = found[f"target_{target}"]
            if point is None:
                lines.append(f"- no threshold reaches {target} {wanted:g}")
            else:
                lines.append(
                    f"- {target} ≥ {wanted:g}: `score_threshold={point.threshold:.4g}` keeps "
                    f"{point.kept:.1f} documents per query (precision {point.precision:.3f}, "
                    f"recall {point.recall:.3f})"
                )
        lines += [
            "",
            "| threshold | kept per query | precision | recall |",
            "|---:|---:|---:|---:|",
        ]
        for point in found["curve"]:
            lines.append(
                f"| {point.threshold:.4g} | {point.kept:.2f} | {point.precision:.3f} | "
                f"{point.recall:.3f} |"
            )
        lines.append("")
    lines += [
        "## Latency and usage",
        "",
        "Latency per query as the client measured it against the endpoint (queries answered "
        "from the cache are left out); cost at the reranker's price, where it has one.",
        "",
        "| reranker | queries | documents | requests | tokens | p50 ms | p95 ms | cost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, used in report.usage.items():
        lines.append(
            f"| {name} | {used['queries']} | {used['documents']} | {used['requests']} | "
            f"{_number(used['tokens'])} | {_number(used['latency_p50_ms'])} | "
            f"{_number(used['latency_p95_ms'])} | {_cost(used['cost'])} |"
        )
    lines += [
        "",
        f"This run: {report.requests_sent:,} requests, scoring {report.seconds['scoring']:.1f} s "
        f"(what the cache already knew sends nothing), measures and tests "
        f"{report.seconds['report']:.1f} s.",
    ]
    pictures = [name for name in report.files if name.endswith((".png", ".svg"))]
    if pictures:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(name).stem}]({name})" for name in pictures]
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in report.notes)]
    lines += [
        "",
        "Files: `metrics.json` (means), `per_query.jsonl`, `runs/<contender>.trec`, "
        "`significance.json`, `sweeps.json`, `usage.json`.",
        "",
    ]
    return "\n".join(lines)
