"""Targets, verdicts and the markdown report."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from .contenders import AIOHTTP_CONTENDERS, CONTENDERS, LIMITS, SPLIT_FLOORS
from .registry import Check, Context, Scenario, register, scenarios
from .scenarios import (
    Measurement,
    Scale,
    ScenarioResult,
    run_batching,
    run_concurrency,
    run_large_call,
    run_memory,
    run_per_call,
)

__all__ = [
    "Check",
    "describe_machine",
    "evaluate",
    "load_average",
    "markdown_row",
    "markdown_table",
    "package_versions",
    "ratio_of",
    "ratio_verdicts",
    "render",
    "seconds",
    "tables",
    "times",
    "verdict",
]

#: Scenarios 1 and 2: the most CPU and wall time per call, as multiples of the floor.
CPU_TARGET = 1.00
WALL_TARGET = 1.05
#: Scenario 3: the most wall time of one call, as multiples of one round trip.
BATCH_TARGETS = {"async": 1.5, "sync": 2.0}
#: Scenario 3: the most wall time of an async call, as a multiple of the same sync call's.
ASYNC_VS_SYNC_TARGET = 1.05
#: Scenario 4: the least throughput, as a multiple of the floor's.
THROUGHPUT_TARGET = 0.9
#: Scenario 4 on aiohttp: the most CPU per call and the least throughput, against the
#: httpx floor.
AIOHTTP_CPU_TARGET = 0.6
AIOHTTP_THROUGHPUT_TARGET = 1.0
#: Scenario 5: the most peak RSS growth, as a multiple of the payload size.
MEMORY_TARGET = 3.0

_PACKAGES = (
    "rerank-integrations",
    "httpx",
    "orjson",
    "pydantic",
    "langchain-core",
    "llama-index-core",
    "starlette",
    "uvicorn",
    "httpx-aiohttp",
    "aiohttp",
    "langchain-community",
    "langchain-cohere",
    "cohere",
    "requests",
    "llama-index-postprocessor-jinaai-rerank",
    "llama-index-postprocessor-cohere-rerank",
    "ray",
    "pyarrow",
)


# -- formatting -------------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    """A duration for a table: µs, ms or s, three figures."""
    if value is None:
        return "—"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        milliseconds = value * 1e3
        digits = 2 if milliseconds < 10 else 1 if milliseconds < 100 else 0
        return f"{milliseconds:.{digits}f} ms"
    return f"{value:.2f} s"


def _mebibytes(value: float | None) -> str:
    return "—" if value is None else f"{value / 2**20:.1f} MiB"


def ratio_of(value: float | None, reference: float | None) -> float | None:
    """``value / reference`` to two decimals (what targets are compared with)."""
    if value is None or not reference:
        return None
    return round(value / reference, 2)


def times(value: float | None) -> str:
    """A ratio for a table: ``1.23x``."""
    return "—" if value is None else f"{value:.2f}x"


def markdown_row(cells: Sequence[str]) -> str:
    """One markdown table row."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """A markdown table; ``align`` has an ``l`` or ``r`` per column."""
    lines = [
        markdown_row(header),
        "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|",
    ]
    lines.extend(markdown_row(row) for row in rows)
    return lines


_ORDER = [contender.key for contender in (*CONTENDERS, *SPLIT_FLOORS, *AIOHTTP_CONTENDERS, *LIMITS)]


def _ordered(result: ScenarioResult) -> list[Measurement]:
    rank = {"floor": 0, "ours": 1, "peers": 2}
    return sorted(
        result.measurements,
        key=lambda item: (
            item.contender.mode != "sync",
            rank[item.contender.group],
            _ORDER.index(item.contender.key),
        ),
    )


# -- verdicts ---------------------------------------------------------------------------------


def _per_call_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    verdicts: dict[str, str] = {}
    cpu_worst: tuple[float, str] | None = None
    wall_worst: tuple[float, str] | None = None
    behind: list[str] = []
    behind_own: list[str] = []
    peers_seen = False
    ours_seen = False
    for item in result.measurements:
        contender = item.contender
        if contender.group != "ours":
            continue
        reference = result.references.get(contender.mode)
        if item.error is not None or reference is None:
            verdicts[contender.key] = f"**missed**: {item.error or 'no floor measured'}"
            cpu_worst = (float("inf"), contender.label)
            wall_worst = (float("inf"), contender.label)
            ours_seen = True
            continue
        ours_seen = True
        problems: list[str] = []
        cpu = ratio_of(item.cpu, reference.cpu)
        wall = ratio_of(item.wall, reference.wall)
        if cpu is not None:
            cpu_worst = max(cpu_worst or (cpu, contender.label), (cpu, contender.label))
            if cpu > CPU_TARGET:
                problems.append(f"CPU {cpu:.2f}x > {CPU_TARGET:.2f}x")
        if wall is not None:
            wall_worst = max(wall_worst or (wall, contender.label), (wall, contender.label))
            if wall > WALL_TARGET:
                problems.append(f"wall {wall:.2f}x > {WALL_TARGET:.2f}x")
        for peer in result.measurements:
            if peer.contender.group != "peers" or peer.contender.mode != contender.mode:
                continue
            if peer.wall is None or peer.cpu is None:
                continue
            peers_seen = True
            lost = [
                name
                for name, ours, theirs in (
                    ("CPU", item.cpu, peer.cpu),
                    ("wall", item.wall, peer.wall),
                )
                if ours is not None and ours >= theirs
            ]
            if lost:
                problems.append(f"not ahead of {peer.contender.label} on {' and '.join(lost)}")
                behind.append(f"{contender.label} vs {peer.contender.label} ({', '.join(lost)})")
                if contender.family in ("strings", peer.contender.family):
                    behind_own.append(behind[-1])
        verdicts[contender.key] = "met" if not problems else "**missed**: " + "; ".join(problems)

    def worst(pair: tuple[float, str] | None) -> str:
        if pair is None:
            return "nothing measured"
        return f"{pair[0]:.2f}x ({pair[1]})" if pair[0] != float("inf") else f"failed ({pair[1]})"

    number = result.number
    checks = [
        Check(
            number,
            f"CPU per call ≤ {CPU_TARGET:.2f}x the floor",
            worst(cpu_worst),
            None if cpu_worst is None else cpu_worst[0] <= CPU_TARGET,
        ),
        Check(
            number,
            f"wall time per call ≤ {WALL_TARGET:.2f}x the floor",
            worst(wall_worst),
            None if wall_worst is None else wall_worst[0] <= WALL_TARGET,
        ),
    ]
    if not ours_seen or not peers_seen:
        checks.append(
            Check(number, "ahead of every peer on CPU and wall", "no peers measured", None)
        )
    else:
        checks.append(
            Check(
                number,
                "ahead of every peer on CPU and wall",
                "ahead of all" if not behind else "behind: " + "; ".join(behind),
                not behind,
            )
        )
        checks.append(
            Check(
                number,
                "like for like (context, not a target): each adapter ahead of the peers of "
                "its own framework, RerankClient ahead of all",
                "ahead of all" if not behind_own else "behind: " + "; ".join(behind_own),
                not behind_own,
                informational=True,
            )
        )
    return verdicts, checks


def ratio_verdicts(
    result: ScenarioResult,
    ratios: dict[str, float | None],
    limits: dict[str, float],
    higher_is_better: bool,
    target_text: dict[str, str],
) -> tuple[dict[str, str], list[Check]]:
    """Verdicts for scenarios with one ratio per contender (``ratios``, by key) and a limit
    per mode: ``higher_is_better`` for throughput; ``target_text`` words each limit."""
    verdicts: dict[str, str] = {}
    worst: dict[str, tuple[float, str]] = {}
    failed: dict[str, str] = {}
    for item in result.measurements:
        contender = item.contender
        if contender.group != "ours" or contender.mode not in limits:
            continue
        limit = limits[contender.mode]
        value = ratios.get(contender.key)
        if value is None:
            verdicts[contender.key] = f"**missed**: {item.error or 'no reference measured'}"
            failed.setdefault(contender.mode, contender.label)
            continue
        score = -value if higher_is_better else value
        if contender.mode not in worst or score > worst[contender.mode][0]:
            worst[contender.mode] = (score, contender.label)
        ok = value >= limit if higher_is_better else value <= limit
        sign = "<" if higher_is_better else ">"
        verdicts[contender.key] = "met" if ok else f"**missed**: {value:.2f}x {sign} {limit:.2f}x"
    checks: list[Check] = []
    for mode, limit in limits.items():
        if mode in failed:
            checks.append(
                Check(result.number, target_text[mode], f"failed ({failed[mode]})", False)
            )
        elif mode in worst:
            score, label = worst[mode]
            value = -score if higher_is_better else score
            ok = value >= limit if higher_is_better else value <= limit
            checks.append(Check(result.number, target_text[mode], f"{value:.2f}x ({label})", ok))
        else:
            checks.append(Check(result.number, target_text[mode], "nothing measured", None))
    return verdicts, checks


def _scenario_ratios(result: ScenarioResult) -> dict[str, float | None]:
    ratios: dict[str, float | None] = {}
    for item in result.measurements:
        key = item.contender.key
        if result.number in (1, 2, 3):
            reference = result.references.get(item.contender.mode)
            ratios[key] = ratio_of(item.wall, reference.wall if reference else None)
        elif result.number == 4:
            reference = result.references.get("async")
            ratios[key] = ratio_of(item.throughput, reference.throughput if reference else None)
        else:
            ratios[key] = ratio_of(item.growth, result.payload)
    return ratios


def _is_aiohttp(item: Measurement) -> bool:
    return item.contender.key.endswith("-aiohttp")


def _batching_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    verdicts, checks = ratio_verdicts(
        result,
        _scenario_ratios(result),
        BATCH_TARGETS,
        higher_is_better=False,
        target_text={
            mode: f"{mode}: one call ≤ {limit:g}x one round trip"
            for mode, limit in BATCH_TARGETS.items()
        },
    )
    # The async path against the sync path of the same contender, on the same scenario.
    walls = {item.contender.key: item.wall for item in result.measurements}
    worst: tuple[float, str] | None = None
    for item in result.measurements:
        contender = item.contender
        if contender.group != "ours" or contender.mode != "async":
            continue
        ratio = ratio_of(item.wall, walls.get(contender.key.replace("-async", "-sync")))
        if ratio is None:
            continue
        worst = max(worst or (ratio, contender.label), (ratio, contender.label))
        if ratio > ASYNC_VS_SYNC_TARGET:
            verdict = verdicts.get(contender.key, "met")
            problem = f"{ratio:.2f}x its sync call > {ASYNC_VS_SYNC_TARGET:.2f}x"
            verdicts[contender.key] = (
                f"**missed**: {problem}" if verdict == "met" else f"{verdict}; {problem}"
            )
    checks.append(
        Check(
            result.number,
            f"async: one call ≤ {ASYNC_VS_SYNC_TARGET:.2f}x the same contender's sync call",
            "nothing measured" if worst is None else f"{worst[0]:.2f}x ({worst[1]})",
            None if worst is None else worst[0] <= ASYNC_VS_SYNC_TARGET,
        )
    )
    return verdicts, checks


def _concurrency_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    ratios = _scenario_ratios(result)
    default = dataclasses.replace(
        result, measurements=[item for item in result.measurements if not _is_aiohttp(item)]
    )
    verdicts, checks = ratio_verdicts(
        default,
        ratios,
        {"async": THROUGHPUT_TARGET},
        higher_is_better=True,
        target_text={"async": f"throughput ≥ {THROUGHPUT_TARGET:g}x the floor's"},
    )
    reference = result.references.get("async")
    cpu_worst: tuple[float, str] | None = None
    throughput_worst: tuple[float, str] | None = None
    for item in result.measurements:
        if item.contender.group != "ours" or not _is_aiohttp(item):
            continue
        label = item.contender.label
        cpu = ratio_of(item.cpu, reference.cpu if reference else None)
        throughput = ratios.get(item.contender.key)
        if cpu is None or throughput is None:
            verdicts[item.contender.key] = f"**missed**: {item.error or 'no floor measured'}"
            cpu_worst = throughput_worst = (float("inf"), label)
            continue
        cpu_worst = max(cpu_worst or (cpu, label), (cpu, label))
        throughput_worst = max(throughput_worst or (-throughput, label), (-throughput, label))
        problems = []
        if cpu > AIOHTTP_CPU_TARGET:
            problems.append(f"CPU {cpu:.2f}x > {AIOHTTP_CPU_TARGET:.2f}x")
        if throughput < AIOHTTP_THROUGHPUT_TARGET:
            problems.append(f"throughput {throughput:.2f}x < {AIOHTTP_THROUGHPUT_TARGET:.2f}x")
        verdicts[item.contender.key] = (
            "met" if not problems else "**missed**: " + "; ".join(problems)
        )

    def shown(pair: tuple[float, str] | None, sign: float) -> str:
        if pair is None:
            return "nothing measured"
        if pair[0] == float("inf"):
            return f"failed ({pair[1]})"
        return f"{sign * pair[0]:.2f}x ({pair[1]})"

    checks.append(
        Check(
            result.number,
            f"aiohttp transport: CPU per call ≤ {AIOHTTP_CPU_TARGET:g}x the httpx floor's",
            shown(cpu_worst, 1),
            None if cpu_worst is None else cpu_worst[0] <= AIOHTTP_CPU_TARGET,
        )
    )
    checks.append(
        Check(
            result.number,
            f"aiohttp transport: throughput ≥ {AIOHTTP_THROUGHPUT_TARGET:g}x the httpx floor's",
            shown(throughput_worst, -1),
            None if throughput_worst is None else -throughput_worst[0] >= AIOHTTP_THROUGHPUT_TARGET,
        )
    )
    return verdicts, checks


def _memory_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    return ratio_verdicts(
        result,
        _scenario_ratios(result),
        {"sync": MEMORY_TARGET, "async": MEMORY_TARGET},
        higher_is_better=False,
        target_text={
            "sync": f"sync: peak RSS growth ≤ {MEMORY_TARGET:g}x the payload",
            "async": f"async: peak RSS growth ≤ {MEMORY_TARGET:g}x the payload",
        },
    )


def evaluate(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    """The verdict of each of the package's contenders, and the scenario's targets."""
    return scenarios()[result.number].evaluate(result)


# -- tables -----------------------------------------------------------------------------------


def verdict(item: Measurement, verdicts: dict[str, str]) -> str:
    """The last cell of a contender's row: its verdict, a floor's role, or its error."""
    if item.contender.group == "floor":
        if item.error is not None:
            return f"**{item.error}**"
        return item.contender.role
    if item.contender.key in verdicts:
        return verdicts[item.contender.key]
    return item.error or "—"


def _first_table(result: ScenarioResult, verdicts: dict[str, str]) -> list[str]:
    ratios = _scenario_ratios(result)
    rows: list[list[str]] = []
    if result.number in (1, 2):
        for item in _ordered(result):
            reference = result.references.get(item.contender.mode)
            rows.append(
                [
                    item.contender.label,
                    item.contender.mode,
                    seconds(item.wall),
                    times(ratio_of(item.wall, reference.wall if reference else None)),
                    seconds(item.cpu),
                    times(ratio_of(item.cpu, reference.cpu if reference else None)),
                    verdict(item, verdicts),
                ]
            )
        header = ["Contender", "Mode", "Wall / call", "× floor", "CPU / call", "× floor", ""]
        return markdown_table(header, rows, "llrrrrl")
    if result.number == 3:
        for item in _ordered(result):
            label = item.contender.label
            if item.contender.key in ("floor-sync", "floor-async"):
                label += " — one round trip"
            rows.append(
                [
                    label,
                    item.contender.mode,
                    seconds(item.wall),
                    times(ratios[item.contender.key]),
                    seconds(item.cpu),
                    verdict(item, verdicts),
                ]
            )
        header = ["Contender", "Mode", "Wall, one call", "× round trip", "CPU, one call", ""]
        return markdown_table(header, rows, "llrrrl")
    if result.number == 4:
        reference = result.references.get("async")
        for item in _ordered(result):
            per_call = None
            if item.cpu is not None and item.throughput and item.wall:
                per_call = item.cpu / (item.throughput * item.wall)
            rows.append(
                [
                    item.contender.label,
                    seconds(item.wall),
                    "—" if item.throughput is None else f"{item.throughput:,.0f}",
                    times(ratios[item.contender.key]),
                    seconds(per_call),
                    times(ratio_of(item.cpu, reference.cpu if reference else None)),
                    verdict(item, verdicts),
                ]
            )
        header = [
            "Contender",
            "Wall, whole load",
            "Calls / s",
            "× floor",
            "CPU / call",
            "CPU × floor",
            "",
        ]
        return markdown_table(header, rows, "lrrrrrl")
    for item in _ordered(result):
        rows.append(
            [
                item.contender.label,
                item.contender.mode,
                _mebibytes(item.growth),
                times(ratios[item.contender.key]),
                verdict(item, verdicts),
            ]
        )
    header = [
        "Contender",
        "Mode",
        "Peak RSS growth",
        f"× payload ({_mebibytes(result.payload)})",
        "",
    ]
    return markdown_table(header, rows, "llrrl")


def _outcome(check: Check) -> str:
    if check.met is None:
        return "n/a"
    if check.informational:
        return "yes" if check.met else "no"
    return "met" if check.met else "**missed**"


def tables(results: Sequence[ScenarioResult]) -> tuple[str, list[Check]]:
    """The targets table and one table per scenario, as markdown, and the checks."""
    checks: list[Check] = []
    sections: list[str] = []
    known = scenarios()
    for result in results:
        entry = known[result.number]
        verdicts, scenario_checks = entry.evaluate(result)
        checks.extend(scenario_checks)
        lines = [f"### Scenario {result.number}: {result.title}", "", f"Setup: {result.setup}.", ""]
        lines.extend(entry.table(result, verdicts))
        for note in result.notes:
            lines.extend(["", f"Note: {note}."])
        sections.append("\n".join(lines))
    summary_rows = [
        [
            str(check.scenario),
            check.target,
            check.measured,
            _outcome(check),
        ]
        for check in checks
    ]
    summary = "\n".join(
        [
            "### Targets",
            "",
            *markdown_table(
                ["#", "Target", "Worst of the package's contenders", "Result"], summary_rows, "lllr"
            ),
        ]
    )
    return "\n\n".join([summary, *sections]), checks


# -- the document -----------------------------------------------------------------------------


def _load_text(load: Sequence[float] | None) -> str:
    return "—" if load is None else ", ".join(f"{value:.2f}" for value in load)


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, where the system reports them."""
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def describe_machine(load_at_start: Sequence[float] | None = None) -> list[tuple[str, str]]:
    """CPU model, cores, memory, OS, Python and load, as (name, value) pairs."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        ("CPU", model),
        ("Cores", f"{os.cpu_count()} logical, {usable} usable by the benchmark"),
        ("Memory", memory),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("Load average (1, 5, 15 min) at the start", _load_text(load_at_start)),
        ("Load average (1, 5, 15 min) at the end", _load_text(load_average())),
    ]


def package_versions() -> list[tuple[str, str]]:
    """Versions of the package, its dependencies and the peers (``not installed`` if so)."""
    versions = []
    for name in _PACKAGES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, "not installed"))
    return versions


_HOW_TO_READ = """\
- **Floor**: a bare `httpx.Client.post(url, json=payload).json()` (or `httpx.AsyncClient`)
  sending the same body as `RerankClient` (`query`, `documents`, `top_n`,
  `return_documents: false`) to the same server. It is what any client must at least spend:
  encode, send, receive, decode.
- **× floor**: the contender's median divided by the floor's median of the same mode (sync
  contenders against `httpx.Client`, async ones against `httpx.AsyncClient`). Below 1.00x
  is cheaper than the floor. Ratios are rounded to two decimals before they are compared
  with a target.
- **Wall** is `time.perf_counter` around each call; **CPU** is `time.process_time` around
  it: user and system CPU time of every thread of the benchmark process (the kernel's work
  on the sockets included), so it is the client's own cost, since the server runs in
  another process.
- Each figure is the median of every timed call (scenario 4: every timed load) over all
  rounds. The contenders take turns: each pass of a round times one call of every
  contender, in a new shuffled order, so that a change in the machine's load falls on all
  of them alike; untimed warm-up calls come before the first round.
- Before each scenario and each pass, the garbage collector collects what came before and
  freezes what survives (`gc.freeze()`): a timed call's collections scan only what calls
  of its own pass made, not the heap that earlier scenarios left, the same for every
  contender; the frozen objects are handed back after the scenario.
- Scenario 2's physical limit is the body encoded with orjson and one round trip of its
  bytes on a raw loopback socket to a sink in another process: the cost of no HTTP and no
  client logic at all, shown for distance, without a target.
- Scenario 3's reference is one round trip of a single full request (the server limit's
  worth of documents) made by the floor; its async rows are also compared with the sync row
  of the same contender. Scenario 4's ratio is throughput (higher is better), measured on
  httpx's own async pool and on the aiohttp transport (`async_transport="aiohttp"`, and the
  floor on `httpx_aiohttp.HttpxAiohttpClient`), both against the httpx floor; scenario 5's
  is peak RSS growth divided by the size of the JSON that carries every document in one
  body.
- A peer that raises or answers wrongly is listed with the error ("fails: ...").
- The server is the package's local rerank server (`scoring="cheap"`: constant work per
  document), started in a separate process for each scenario with that scenario's latency
  and limit. It answers `/v1/rerank` (Jina's format) and `/v2/rerank` (Cohere's `results:
  [{index, relevance_score}]` with extra fields that the Cohere SDK ignores), so one server
  serves every peer and no second server was needed.
- The peers do not send `return_documents: false`, so the server echoes the `top_n` chosen
  texts back to them (a few kilobytes for `top_n=5`)."""


def _endpoint_rows() -> list[list[str]]:
    """One row per contender pair (sync and async share a constructor)."""
    rows = []
    for sync, async_ in zip(CONTENDERS[::2], CONTENDERS[1::2], strict=True):
        owner, _, method = sync.label.partition(".")
        async_owner, _, async_method = async_.label.partition(".")
        name = (
            f"{owner}.{method} / {async_method}"
            if owner == async_owner
            else f"{sync.label} / {async_.label}"
        )
        rows.append([name, sync.group, sync.endpoint])
    return rows


def render(
    results: Sequence[ScenarioResult],
    scale: Scale,
    rounds: int,
    command: str,
    elapsed: float,
    skipped: Sequence[str],
    load_at_start: Sequence[float] | None = None,
    pictures: Sequence[str] = (),
) -> str:
    """The whole ``BENCHMARKS.md``; ``pictures`` are the plots' paths, relative to it."""
    body, checks = tables(results)
    targets = [check for check in checks if not check.informational]
    met = sum(1 for check in targets if check.met)
    missed = sum(1 for check in targets if check.met is False)
    unknown = len(targets) - met - missed
    tally = f"Targets: {met} met, {missed} missed" + (
        f", {unknown} not applicable." if unknown else "."
    )
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"scale `{scale.name}`, {rounds} round(s), {elapsed:.0f} s in all. " + tally,
        "",
        "Numbers come from one run on one machine; ratios between contenders of the same run "
        "are what to compare, not absolute times across machines.",
        "",
        "## Machine",
        "",
        *markdown_table(["", ""], describe_machine(load_at_start), "ll"),
        "",
        "## Packages",
        "",
        *markdown_table(["Package", "Version"], package_versions(), "ll"),
        "",
        "## Contenders and how each is pointed at the local server",
        "",
        *markdown_table(["Contender", "Group", "Endpoint setting"], _endpoint_rows(), "lll"),
        "",
        "The package's contenders run with their default settings (JSON through orjson, "
        "from the `fast` extra), except that scenario 3 tells them the server's limit, "
        "scenario 4 also runs them on the aiohttp transport, and the scenarios of a feature "
        "turn that feature on; the "
        "peers get a dummy API key and, where they require one, a dummy model name. The "
        "benchmark runs in its own virtual environment: the package with its `all` and `ray` "
        "extras, "
        "`langchain-classic` and `benchmarks/requirements.txt`.",
        "",
    ]
    if skipped:
        lines.extend([f"Not measured in this run: {', '.join(skipped)}.", ""])
    lines.extend(
        [
            "## How to read the tables",
            "",
            _HOW_TO_READ,
            *(
                f"- {entry.reading}"
                for entry in scenarios().values()
                if entry.reading and any(result.number == entry.number for result in results)
            ),
            "",
        ]
    )
    if pictures:
        lines.extend(["## Pictures", ""])
        for picture in pictures:
            name = Path(picture).stem.replace("-", " ")
            lines.extend([f"![{name}]({picture})", ""])
    lines.extend(["## Results", "", body, ""])
    return "\n".join(lines)


# -- the first five scenarios -------------------------------------------------------------


def _scenario_1(context: Context) -> ScenarioResult:
    scale = context.scale
    return run_per_call(
        1, scale.small, scale.calls_small, scale, context.contenders, context.rounds
    )


register(Scenario(1, "small call", _scenario_1, _per_call_verdicts, _first_table))
register(
    Scenario(
        2,
        "large call",
        lambda context: run_large_call(context.scale, context.contenders, context.rounds),
        _per_call_verdicts,
        _first_table,
    )
)
register(
    Scenario(
        3,
        "batching",
        lambda context: run_batching(context.scale, context.contenders, context.rounds),
        _batching_verdicts,
        _first_table,
    )
)
register(
    Scenario(
        4,
        "concurrency",
        lambda context: run_concurrency(context.scale, context.contenders, context.rounds),
        _concurrency_verdicts,
        _first_table,
    )
)
register(
    Scenario(
        5,
        "memory",
        lambda context: run_memory(
            context.scale, context.contenders, context.rounds, context.memory_workers
        ),
        _memory_verdicts,
        _first_table,
    )
)
