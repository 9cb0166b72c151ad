"""The report's plots, drawn with matplotlib's Agg backend (no display needed): the primary
measure against candidate depth, the latency distribution, and the scores of relevant and
non-relevant documents (what a ``score_threshold`` is chosen from)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._measures import needs

if TYPE_CHECKING:
    from ._report import EvalReport

__all__ = ["draw"]

_FIRST_STAGE = "first-stage"


def _pyplot() -> Any:
    matplotlib = needs("matplotlib")
    matplotlib.use("Agg", force=True)
    return needs("matplotlib.pyplot")


def draw(report: EvalReport, out: Path) -> list[str]:
    """Draw the plots into ``out`` and return their names."""
    plt = _pyplot()
    written = [_depth(plt, report, out / "depth.png")]
    if any(used["latencies_ms"] for used in report.usage.values()):
        written.append(_latency(plt, report, out / "latency.png"))
    if report.thresholds:
        written.append(_scores(plt, report, out / "scores.png"))
    return [path.name for path in written]


def _depth(plt: Any, report: EvalReport, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name, swept in report.depth_sweep.items():
        depths = list(swept)
        style = "--" if name == _FIRST_STAGE else "-"
        axes.plot(depths, [swept[d][report.primary] for d in depths], style, marker="o", label=name)
    axes.set_xscale("log")
    depths = list(next(iter(report.depth_sweep.values())))
    axes.set_xticks(depths)
    axes.set_xticklabels([str(d) for d in depths])
    axes.minorticks_off()
    axes.set_xlabel("candidates reranked (first stage's top k)")
    axes.set_ylabel(report.primary)
    axes.set_title(f"{report.primary} against candidate depth")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _latency(plt: Any, report: EvalReport, path: Path) -> Path:
    names = [name for name, used in report.usage.items() if used["latencies_ms"]]
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    axes.boxplot([report.usage[name]["latencies_ms"] for name in names], showfliers=True)
    axes.set_xticks(range(1, len(names) + 1))
    axes.set_xticklabels(names)
    axes.set_ylabel("ms per query, as the client measured it")
    axes.set_title("Latency per query")
    axes.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _scores(plt: Any, report: EvalReport, path: Path) -> Path:
    names = list(report.thresholds)
    figure, grid = plt.subplots(
        len(names), 1, figsize=(6.4, 2.4 * len(names)), dpi=100, squeeze=False
    )
    for axes, name in zip(grid[:, 0], names, strict=True):
        found = report.thresholds[name]
        relevant = [score for score, judged in found["scores"] if judged]
        other = [score for score, judged in found["scores"] if not judged]
        low = min((s for s, _ in found["scores"]), default=0.0)
        high = max((s for s, _ in found["scores"]), default=1.0)
        bins = [low + (high - low) * i / 30 for i in range(31)] if high > low else 10
        axes.hist(other, bins=bins, alpha=0.6, label="not relevant", color="tab:gray")
        axes.hist(relevant, bins=bins, alpha=0.7, label="relevant", color="tab:green")
        point = found["for_precision"]
        if point is not None:
            axes.axvline(
                point.threshold,
                color="tab:red",
                linestyle="--",
                label=f"precision ≥ {found['target_precision']:g}",
            )
        axes.set_yscale("log")  # the relevant few would vanish beside the rest
        axes.set_title(f"{name}: scores of the candidates")
        axes.set_ylabel("documents (log)")
        axes.legend(fontsize="small")
    grid[-1, 0].set_xlabel("relevance score")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
