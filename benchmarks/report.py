"""Targets, verdicts and the markdown report."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

from .contenders import CONTENDERS, SPLIT_FLOORS
from .offline import OFFLINE_CONTENDERS, RAY_CONTENDERS
from .scenarios import Measurement, Scale, ScenarioResult

__all__ = [
    "Check",
    "describe_machine",
    "evaluate",
    "load_average",
    "package_versions",
    "render",
    "tables",
]

#: Scenarios 1 and 2: the most CPU and wall time per call, as multiples of the floor.
CPU_TARGET = 1.00
WALL_TARGET = 1.05
#: Scenario 3: the most wall time of one call, as multiples of one round trip.
BATCH_TARGETS = {"async": 1.5, "sync": 2.0}
#: Scenario 4: the least throughput, as a multiple of the floor's.
THROUGHPUT_TARGET = 0.9
#: Scenario 5: the most peak RSS growth, as a multiple of the payload size.
MEMORY_TARGET = 3.0
#: Scenario 6: the batch job's least throughput, as a multiple of bare httpx's.
BATCH_JOB_TARGET = 0.9

_PACKAGES = (
    "rerank-integrations",
    "httpx",
    "orjson",
    "pydantic",
    "langchain-core",
    "llama-index-core",
    "starlette",
    "uvicorn",
    "langchain-community",
    "langchain-cohere",
    "cohere",
    "requests",
    "llama-index-postprocessor-jinaai-rerank",
    "llama-index-postprocessor-cohere-rerank",
    "ray",
    "pyarrow",
)


@dataclass
class Check:
    """One target of one scenario.

    Attributes:
        scenario: 1 to 5.
        target: what is asked, in words.
        measured: the worst of the package's contenders (or why there is nothing).
        met: whether every contender of the package meets it; ``None``: nothing measured.
        informational: a reading shown for context, not one of the issue's targets.
    """

    scenario: int
    target: str
    measured: str
    met: bool | None
    informational: bool = False


# -- formatting -------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
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


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return round(value / reference, 2)


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    lines = [_row(header), "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    lines.extend(_row(row) for row in rows)
    return lines


_ORDER = [
    contender.key
    for contender in (*CONTENDERS, *SPLIT_FLOORS, *OFFLINE_CONTENDERS, *RAY_CONTENDERS)
]


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
        cpu = _ratio(item.cpu, reference.cpu)
        wall = _ratio(item.wall, reference.wall)
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


def _ratio_verdicts(
    result: ScenarioResult,
    ratios: dict[str, float | None],
    limits: dict[str, float],
    higher_is_better: bool,
    target_text: dict[str, str],
) -> tuple[dict[str, str], list[Check]]:
    """Verdicts for scenarios with one ratio per contender and a limit per mode."""
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
            ratios[key] = _ratio(item.wall, reference.wall if reference else None)
        elif result.number in (4, 6, 7):
            reference = result.references.get("async")
            ratios[key] = _ratio(item.throughput, reference.throughput if reference else None)
        else:
            ratios[key] = _ratio(item.growth, result.payload)
    return ratios


def evaluate(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    """The verdict of each of the package's contenders, and the scenario's targets."""
    if result.number in (1, 2):
        return _per_call_verdicts(result)
    ratios = _scenario_ratios(result)
    if result.number == 3:
        return _ratio_verdicts(
            result,
            ratios,
            BATCH_TARGETS,
            higher_is_better=False,
            target_text={
                mode: f"{mode}: one call ≤ {limit:g}x one round trip"
                for mode, limit in BATCH_TARGETS.items()
            },
        )
    if result.number == 4:
        return _ratio_verdicts(
            result,
            ratios,
            {"async": THROUGHPUT_TARGET},
            higher_is_better=True,
            target_text={"async": f"throughput ≥ {THROUGHPUT_TARGET:g}x the floor's"},
        )
    if result.number == 6:
        return _ratio_verdicts(
            result,
            ratios,
            {"async": BATCH_JOB_TARGET},
            higher_is_better=True,
            target_text={"async": f"pairs/s ≥ {BATCH_JOB_TARGET:g}x bare httpx's"},
        )
    if result.number == 7:
        return _scaling_verdicts(result, ratios)
    return _ratio_verdicts(
        result,
        ratios,
        {"sync": MEMORY_TARGET, "async": MEMORY_TARGET},
        higher_is_better=False,
        target_text={
            "sync": f"sync: peak RSS growth ≤ {MEMORY_TARGET:g}x the payload",
            "async": f"async: peak RSS growth ≤ {MEMORY_TARGET:g}x the payload",
        },
    )


def _scaling_verdicts(
    result: ScenarioResult, ratios: dict[str, float | None]
) -> tuple[dict[str, str], list[Check]]:
    """Scenario 7 has no target: how two workers compare with one is reported as it is."""
    verdicts: dict[str, str] = {}
    for item in result.measurements:
        key = item.contender.key
        if item.error is not None:
            verdicts[key] = f"**{item.error}**"
        elif key == "ray-1":
            verdicts[key] = "reference"
        else:
            verdicts[key] = "—"
    scaling = ratios.get("ray-2")
    measured = "not measured" if scaling is None else f"{scaling:.2f}x (2 workers / 1)"
    check = Check(
        result.number,
        "Ray: 2 workers against 1 on this machine (context, not a target)",
        measured,
        None if scaling is None else scaling > 1.0,
        informational=True,
    )
    return verdicts, [check]


# -- tables -----------------------------------------------------------------------------------


def _verdict(item: Measurement, verdicts: dict[str, str]) -> str:
    if item.contender.group == "floor":
        if item.error is not None:
            return f"**{item.error}**"
        return "lower bound" if item.contender in SPLIT_FLOORS else "reference"
    if item.contender.key in verdicts:
        return verdicts[item.contender.key]
    return item.error or "—"


def _scenario_table(result: ScenarioResult, verdicts: dict[str, str]) -> list[str]:
    ratios = _scenario_ratios(result)
    rows: list[list[str]] = []
    if result.number in (1, 2):
        for item in _ordered(result):
            reference = result.references.get(item.contender.mode)
            rows.append(
                [
                    item.contender.label,
                    item.contender.mode,
                    _seconds(item.wall),
                    _times(_ratio(item.wall, reference.wall if reference else None)),
                    _seconds(item.cpu),
                    _times(_ratio(item.cpu, reference.cpu if reference else None)),
                    _verdict(item, verdicts),
                ]
            )
        header = ["Contender", "Mode", "Wall / call", "× floor", "CPU / call", "× floor", ""]
        return _table(header, rows, "llrrrrl")
    if result.number == 3:
        for item in _ordered(result):
            label = item.contender.label
            if item.contender.key in ("floor-sync", "floor-async"):
                label += " — one round trip"
            rows.append(
                [
                    label,
                    item.contender.mode,
                    _seconds(item.wall),
                    _times(ratios[item.contender.key]),
                    _seconds(item.cpu),
                    _verdict(item, verdicts),
                ]
            )
        header = ["Contender", "Mode", "Wall, one call", "× round trip", "CPU, one call", ""]
        return _table(header, rows, "llrrrl")
    if result.number in (6, 7):
        for item in _ordered(result):
            rows.append(
                [
                    item.contender.label,
                    _seconds(item.wall),
                    "—" if item.throughput is None else f"{item.throughput:,.0f}",
                    _times(ratios[item.contender.key]),
                    _seconds(item.cpu),
                    _verdict(item, verdicts),
                ]
            )
        base = "× floor" if result.number == 6 else "× 1 worker"
        cpu = "CPU, whole job" if result.number == 6 else "CPU of the driver"
        header = ["Contender", "Wall, whole job", "Pairs / s", base, cpu, ""]
        return _table(header, rows, "lrrrrl")
    if result.number == 4:
        for item in _ordered(result):
            per_call = None
            if item.cpu is not None and item.throughput and item.wall:
                per_call = item.cpu / (item.throughput * item.wall)
            rows.append(
                [
                    item.contender.label,
                    _seconds(item.wall),
                    "—" if item.throughput is None else f"{item.throughput:,.0f}",
                    _times(ratios[item.contender.key]),
                    _seconds(per_call),
                    _verdict(item, verdicts),
                ]
            )
        header = ["Contender", "Wall, whole load", "Calls / s", "× floor", "CPU / call", ""]
        return _table(header, rows, "lrrrrl")
    for item in _ordered(result):
        rows.append(
            [
                item.contender.label,
                item.contender.mode,
                _mebibytes(item.growth),
                _times(ratios[item.contender.key]),
                _verdict(item, verdicts),
            ]
        )
    header = [
        "Contender",
        "Mode",
        "Peak RSS growth",
        f"× payload ({_mebibytes(result.payload)})",
        "",
    ]
    return _table(header, rows, "llrrl")


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
    for result in results:
        verdicts, scenario_checks = evaluate(result)
        checks.extend(scenario_checks)
        lines = [f"### Scenario {result.number}: {result.title}", "", f"Setup: {result.setup}.", ""]
        lines.extend(_scenario_table(result, verdicts))
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
            *_table(
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
- Scenario 3's reference is one round trip of a single full request (the server limit's
  worth of documents) made by the floor; scenario 4's ratio is throughput (higher is better);
  scenario 5's is peak RSS growth divided by the size of the JSON that carries every
  document in one body.
- Scenario 6 times a whole batch job (2,000 rows at full scale, one rerank request each):
  `batch.arun` from a JSON Lines file to a JSON Lines file and `batch.arerank_rows` from rows
  in memory, against bare httpx sending each row's request with a semaphore of the same
  size; its ratio is (query, document) pairs per second (higher is better). Scenario 7 runs
  `map_batches(Reranker)` on a local Ray runtime with one and with two worker actors; its
  ratio is against one worker, and its notes say where the machine's CPU went (read from
  `/proc` every 0.1 s: the workers, the server, the rest of Ray, the driver, anything else).
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
) -> str:
    """The whole ``BENCHMARKS.md``."""
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
        *_table(["", ""], describe_machine(load_at_start), "ll"),
        "",
        "## Packages",
        "",
        *_table(["Package", "Version"], package_versions(), "ll"),
        "",
        "## Contenders and how each is pointed at the local server",
        "",
        *_table(["Contender", "Group", "Endpoint setting"], _endpoint_rows(), "lll"),
        "",
        "The package's contenders run with their default settings (JSON through orjson, "
        "from the `fast` extra), except that scenario 3 tells them the server's limit; the "
        "peers get a dummy API key and, where they require one, a dummy model name. The "
        "benchmark runs in its own virtual environment: the package with its `all` extras, "
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
            "",
            "## Results",
            "",
            body,
            "",
        ]
    )
    return "\n".join(lines)
