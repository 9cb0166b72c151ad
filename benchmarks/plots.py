"""Scenario 16 (cost against document count) and the report's pictures.

:func:`write_plots` draws, from one run's results, each scenario's contenders against their
reference (the bare-httpx floor, or the row a feature is compared with) and the cost of a
call per document from 10 to 10,000 documents; ``python -m benchmarks.run --out`` writes them
as PNG files in ``benchmarks/plots/`` beside the report, which links them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .contenders import Contender, SessionOptions
from .corpus import make_documents
from .features import _CACHE, _CHUNK, _LEARN, Pair
from .paths import _INSTRUCTION, _MIDDLEWARE, _RETRIEVER
from .registry import Check, Context, Scenario, register
from .report import markdown_row, ratio_of, seconds, times
from .scenarios import Bench, Measurement, ScenarioResult, floor_references
from .server import ServerProcess

__all__ = ["PLOTS_FOLDER", "write_plots"]

#: Where the pictures go, relative to the report's folder.
PLOTS_FOLDER = Path("benchmarks") / "plots"

#: Scenarios whose rows each have their own reference row.
_PAIRS: dict[int, Pair] = {
    6: _CHUNK,
    7: _LEARN,
    8: _CACHE,
    13: _RETRIEVER,
    14: _MIDDLEWARE,
    17: _INSTRUCTION,
}

#: The most a document's cost may vary (most over least, CPU per document) among calls of
#: :data:`_FLAT_FROM` documents or more: flat, within what batching adds.
SCALING_SPREAD = 2.0
_FLAT_FROM = 1000


@dataclass(frozen=True)
class ScalingSizes:
    counts: tuple[int, ...]
    calls: int


SIZES = {
    "full": ScalingSizes((10, 100, 1000, 10_000), 5),
    "tiny": ScalingSizes((5, 20), 1),
}


# -- scenario 16: cost against document count -------------------------------------------------


def _chosen(context: Context) -> list[Contender]:
    keys = ("floor-sync", "client-sync", "floor-async", "client-async")
    return [item for item in context.contenders if item.key in keys]


def _run_scaling(context: Context) -> ScenarioResult:
    sizes = SIZES[context.scale.name]
    top_n = context.scale.top_n
    result = ScenarioResult(
        16,
        "cost against document count: "
        + ", ".join(f"{count:,}" for count in sizes.counts)
        + " documents a call",
        f"server: cheap scores, no added latency, limit 1,000 a request (the package's "
        f"contenders are told it; the floor sends one body); per count, one warm-up call then "
        f"{sizes.calls} timed calls per contender per round; wall and CPU per document",
    )
    for count in sizes.counts:
        texts = make_documents(count, context.scale.words, seed=15)
        with ServerProcess(max_documents=max(count, 1000)) as server:
            options = SessionOptions(server.base_url, top_n, max_documents_per_request=1000)
            expected = min(top_n or count, count)
            bench = Bench(_chosen(context), options, lambda _, texts=texts: texts, expected)
            bench.warm_up(1)
            bench.rounds(context.rounds, max(1, sizes.calls), bench.time_call, seed=count)
            for measurement in bench.finish():
                measurement.extra["documents"] = float(count)
                result.measurements.append(measurement)
    return result


def _per_document(value: float | None, item: Measurement) -> float | None:
    documents = item.extra.get("documents")
    return None if value is None or not documents else value / documents


def _scaling_rows(result: ScenarioResult) -> dict[str, list[Measurement]]:
    rows: dict[str, list[Measurement]] = {}
    for item in result.measurements:
        rows.setdefault(item.contender.key, []).append(item)
    return rows


def _spread(items: Sequence[Measurement]) -> float | None:
    """CPU per document, the most over the least, among calls of 1,000 documents or more
    (below, the cost of a call itself, shared by few documents, decides)."""
    costs = [
        cost
        for item in items
        if item.extra.get("documents", 0) >= _FLAT_FROM
        and (cost := _per_document(item.cpu, item)) is not None
    ]
    if len(costs) < 2 or not min(costs):
        return None
    return round(max(costs) / min(costs), 2)


def _scaling_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    verdicts: dict[str, str] = {}
    checks: list[Check] = []
    for key, items in _scaling_rows(result).items():
        spread = _spread(items)
        verdicts[key] = "—" if spread is None else f"spread {spread:.2f}x"
        if items[0].contender.group == "floor":
            continue
        label = items[0].contender.label
        checks.append(
            Check(
                16,
                f"{items[0].contender.mode}: CPU per document, most over least, "
                "from 1,000 documents up (context, not a target)",
                "nothing measured" if spread is None else f"{spread:.2f}x ({label})",
                None if spread is None else spread <= SCALING_SPREAD,
                informational=True,
            )
        )
    return verdicts, checks


def _scaling_table(result: ScenarioResult, verdicts: dict[str, str]) -> list[str]:
    lines = [
        markdown_row(
            ["Documents", "Contender", "Mode", "Wall / document", "CPU / document", "CPU × floor"]
        ),
        "|---:|:---|:---|---:|---:|---:|",
    ]
    floors: dict[tuple[float, str], Measurement] = {
        (item.extra.get("documents", 0.0), item.contender.mode): item
        for item in result.measurements
        if item.contender.group == "floor"
    }
    for item in result.measurements:
        documents = item.extra.get("documents", 0.0)
        floor = floors.get((documents, item.contender.mode))
        lines.append(
            markdown_row(
                [
                    f"{documents:,.0f}",
                    item.contender.label,
                    item.contender.mode,
                    seconds(_per_document(item.wall, item)),
                    seconds(_per_document(item.cpu, item)),
                    "reference"
                    if item.contender.group == "floor"
                    else times(ratio_of(item.cpu, floor.cpu if floor else None)),
                ]
            )
        )
    return lines


register(
    Scenario(
        16,
        "scaling",
        _run_scaling,
        _scaling_verdicts,
        _scaling_table,
        reading="Scenario 16 makes calls of 10 to 10,000 documents: the cost of a document "
        "should not grow with the size of the call (the spread is the most CPU per document "
        "over the least, from 1,000 documents up, where a call's own cost no longer decides).",
    )
)


# -- pictures ---------------------------------------------------------------------------------

_COLOURS = {"floor": "#7f7f7f", "ours": "#1f77b4", "peers": "#ff7f0e"}


def _against_references(result: ScenarioResult) -> list[tuple[str, float, str]]:
    """``(label, wall against its reference, group)`` of each row that has a reference."""
    rows: list[tuple[str, float, str]] = []
    pair = _PAIRS.get(result.number)
    by_key = {item.contender.key: item for item in result.measurements}
    references = floor_references(result.measurements) if pair is None else {}
    for item in result.measurements:
        if pair is not None:
            reference = by_key.get(pair.reference_of.get(item.contender.key, ""))
        elif item.contender.group == "floor":
            continue
        else:
            reference = references.get(item.contender.mode)
        ratio = ratio_of(item.wall, reference.wall if reference else None)
        if ratio is not None:
            label = f"{item.contender.label} ({item.contender.mode})"
            shown = label if len(label) < 70 else label[:67] + "..."
            rows.append((shown, ratio, item.contender.group))
    return rows


def write_plots(results: Sequence[ScenarioResult], folder: Path) -> list[Path]:
    """Draw the pictures of ``results`` into ``folder``; the files written (none without
    matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for result in results:
        rows = [] if result.number == 16 else _against_references(result)
        if not rows:
            continue
        figure, axes = plt.subplots(figsize=(9, 0.9 + 0.32 * len(rows)))
        labels = [label for label, _, _ in rows][::-1]
        values = [value for _, value, _ in rows][::-1]
        colours = [_COLOURS.get(group, "#1f77b4") for _, _, group in rows][::-1]
        axes.barh(labels, values, color=colours)
        axes.axvline(1.0, color="black", linewidth=0.8)
        groups = sorted({group for _, _, group in rows})
        handles = [Patch(color=_COLOURS.get(group, "#1f77b4")) for group in groups]
        names = {"ours": "this package", "peers": "peers", "floor": "reference"}
        axes.legend(handles, [names.get(group, group) for group in groups], fontsize=7)
        for position, value in enumerate(values):
            axes.text(value, position, f" {value:.2f}x", va="center", fontsize=7)
        reference = "its reference row" if result.number in _PAIRS else "the bare-httpx floor"
        axes.set_xlabel(f"wall time against {reference} (1.0 = the same; lower is faster)")
        axes.set_title(f"Scenario {result.number}: {result.title}"[:110], fontsize=9)
        axes.tick_params(axis="y", labelsize=7)
        axes.set_xlim(0, max(values) * 1.18)
        figure.tight_layout()
        path = folder / f"scenario-{result.number:02d}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    scaling = next((result for result in results if result.number == 16), None)
    if scaling is not None and scaling.measurements:
        figure, axes = plt.subplots(figsize=(7, 4.2))
        for items in _scaling_rows(scaling).values():
            points = [
                (item.extra["documents"], cost * 1e6)
                for item in items
                if (cost := _per_document(item.cpu, item)) is not None
            ]
            if not points:
                continue
            contender = items[0].contender
            axes.plot(
                [x for x, _ in points],
                [y for _, y in points],
                marker="o",
                linestyle="--" if contender.group == "floor" else "-",
                label=f"{contender.label} ({contender.mode})",
            )
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("documents in the call")
        axes.set_ylabel("CPU per document (µs)")
        axes.set_title("Cost per document against the size of the call", fontsize=10)
        axes.legend(fontsize=7)
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        path = folder / "scaling.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
