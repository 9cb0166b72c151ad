"""Command line of the benchmark.

``python -m benchmarks.run [--rounds N] [--scale tiny|full] [--out BENCHMARKS.md]
[--only 1,3] [--contenders floor,ours]`` runs the scenarios (every one registered in
:mod:`benchmarks.registry`), prints the markdown tables and, with ``--out``, writes the full
report (machine, packages, how to read, tables).
"""

from __future__ import annotations

import argparse
import gc
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .contenders import Contender, select_contenders
from .registry import Context, scenarios
from .report import load_average, render, tables
from .scenarios import SCALES, Scale, ScenarioResult

__all__ = ["main", "parse_args", "run_scenarios"]


def _scenario_list(values: Sequence[str] | None) -> list[int]:
    known = scenarios()
    if not values:
        return list(known)
    chosen: set[int] = set()
    for value in values:
        for part in value.split(","):
            part = part.strip().lower().removeprefix("s")
            if not part:
                continue
            if not part.isdigit() or int(part) not in known:
                names = ", ".join(f"{number} ({entry.name})" for number, entry in known.items())
                raise argparse.ArgumentTypeError(f"unknown scenario {part!r}; one of {names}")
            chosen.add(int(part))
    return sorted(chosen)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark rerank_integrations against a bare httpx floor and peers.",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="timed rounds per scenario (default: %(default)s)"
    )
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="full",
        help="full: the sizes of the targets; tiny: a quick check (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="write the full report to this file")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SCENARIO",
        help="run only these scenarios (numbers, space- or comma-separated)",
    )
    parser.add_argument(
        "--contenders",
        help="comma-separated groups (floor, ours, peers), keys or key prefixes "
        "(default: all; peers that are not installed are skipped)",
    )
    parser.add_argument(
        "--memory-workers",
        type=int,
        default=2,
        help="memory probe processes at once (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        args.only = _scenario_list(args.only)
        args.contenders = select_contenders(args.contenders)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        parser.error(str(exc))
    return args


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_scenarios(
    chosen: Sequence[int],
    scale: Scale,
    contenders: Sequence[Contender],
    rounds: int,
    memory_workers: int = 2,
) -> list[ScenarioResult]:
    """Run the chosen scenarios in order and return their results."""
    results: list[ScenarioResult] = []
    known = scenarios()
    context = Context(scale, contenders, rounds, memory_workers)
    for number in chosen:
        started = time.perf_counter()
        _log(f"scenario {number} ({known[number].name}) ...")
        with _isolated_heap():
            results.append(known[number].run(context))
        _log(f"scenario {number} done in {time.perf_counter() - started:.1f} s")
    return results


@contextmanager
def _isolated_heap() -> Iterator[None]:
    """Run a scenario on a heap the ones before it do not weigh on: what they left is
    collected, and what survives (imported modules, their caches) is frozen out of the
    garbage collector's passes, so that a scenario's collections scan only the objects it
    made itself, whatever ran before it. Every contender of the scenario runs alike under
    it; the objects are handed back to the collector afterwards."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the report if asked."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    scale = SCALES[args.scale]
    load_at_start = load_average()
    started = time.perf_counter()
    skipped = [
        f"{contender.label} ({contender.mode}; {missing} not installed)"
        for contender in args.contenders
        if (missing := contender.missing()) is not None
    ]
    results = run_scenarios(args.only, scale, args.contenders, args.rounds, args.memory_workers)
    elapsed = time.perf_counter() - started
    text, _ = tables(results)
    print(text)
    if args.out is not None:
        command = shlex.join(["python", "-m", "benchmarks.run", *arguments])
        from .plots import PLOTS_FOLDER, write_plots

        home = args.out.parent
        drawn = write_plots(results, home / PLOTS_FOLDER)
        pictures = [path.relative_to(home).as_posix() for path in drawn]
        report = render(
            results, scale, args.rounds, command, elapsed, skipped, load_at_start, pictures
        )
        args.out.write_text(report, encoding="utf-8")
        _log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
