"""The first five scenarios: each starts its server process, measures its contenders and
returns a :class:`ScenarioResult` for the report. The shared machinery (:class:`Scale`,
:class:`Measurement`, :class:`ScenarioResult`, :class:`Bench`) serves every scenario
module."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contenders import (
    AIOHTTP_CONTENDERS,
    LIMITS,
    SPLIT_FLOORS,
    Contender,
    SessionOptions,
    prepare_inputs,
    result_count,
)
from .corpus import make_documents, payload_size
from .measure import (
    Sample,
    median,
    settle,
    time_async_call,
    time_async_load,
    time_sync_call,
)
from .server import ServerProcess, SinkProcess, child_env

__all__ = [
    "FULL",
    "SCALES",
    "TINY",
    "Bench",
    "Entry",
    "Measurement",
    "MemoryCall",
    "Scale",
    "ScenarioResult",
    "floor_references",
    "measure_memory",
    "run_batching",
    "run_concurrency",
    "run_large_call",
    "run_memory",
    "run_per_call",
]

_REPO_ROOT = Path(__file__).resolve().parent.parent
_MEMORY_TIMEOUT = 300.0


@dataclass(frozen=True)
class Scale:
    """The sizes of every scenario.

    Attributes:
        name: ``"full"`` (the issue's sizes) or ``"tiny"`` (a quick check).
        words: words per document in scenarios 1 to 4 (about 6.5 characters each).
        small: documents per call in scenario 1.
        large: documents per call in scenario 2.
        calls_small: timed calls per contender per round in scenario 1 (one per pass).
        calls_large: the same in scenario 2.
        batched: documents per call in scenario 3.
        server_limit: the server's per-request limit in scenario 3.
        batched_latency_ms: the server's latency in scenario 3.
        calls_batched: timed calls per contender per round in scenario 3.
        concurrent_calls: calls in flight at once in scenario 4.
        concurrent_documents: documents per call in scenario 4.
        concurrent_latency_ms: the server's latency in scenario 4.
        concurrent_loads: timed loads per contender per round in scenario 4.
        memory_documents: documents in scenario 5's one call.
        memory_words: words per document in scenario 5.
        warm_up: untimed calls (or loads) per contender before the rounds.
        top_n: results asked for in every call.
        batch_rows: rows of the batch job in scenario 10.
        batch_documents: documents per row in scenarios 10 and 11.
        batch_words: words per document in scenarios 10 and 11.
        batch_concurrency: rows in flight in scenarios 10 and 11 (per worker in 11).
        batch_latency_ms: the server's latency in scenarios 10 and 11.
        ray_rows: rows of the Ray job in scenario 11.
        ray_batch_size: rows per Ray batch in scenario 11.
    """

    name: str
    words: int
    small: int
    large: int
    calls_small: int
    calls_large: int
    batched: int
    server_limit: int
    batched_latency_ms: float
    calls_batched: int
    concurrent_calls: int
    concurrent_documents: int
    concurrent_latency_ms: float
    concurrent_loads: int
    memory_documents: int
    memory_words: int
    warm_up: int
    top_n: int = 5
    batch_rows: int = 2000
    batch_documents: int = 50
    batch_words: int = 30
    batch_concurrency: int = 16
    batch_latency_ms: float = 20
    ray_rows: int = 4000
    ray_batch_size: int = 200


FULL = Scale(
    name="full",
    words=120,
    small=100,
    large=1000,
    calls_small=20,
    calls_large=6,
    batched=10_000,
    server_limit=1000,
    batched_latency_ms=50,
    calls_batched=3,
    concurrent_calls=200,
    concurrent_documents=50,
    concurrent_latency_ms=20,
    concurrent_loads=2,
    memory_documents=100_000,
    memory_words=12,
    warm_up=3,
)

TINY = Scale(
    name="tiny",
    words=30,
    small=10,
    large=50,
    calls_small=3,
    calls_large=2,
    batched=200,
    server_limit=50,
    batched_latency_ms=50,
    calls_batched=1,
    concurrent_calls=20,
    concurrent_documents=5,
    concurrent_latency_ms=20,
    concurrent_loads=1,
    memory_documents=2000,
    memory_words=12,
    warm_up=1,
    batch_rows=100,
    batch_documents=10,
    ray_rows=200,
    ray_batch_size=50,
)

SCALES = {scale.name: scale for scale in (FULL, TINY)}


@dataclass
class Measurement:
    """What one contender achieved in one scenario (medians over the rounds).

    Attributes:
        contender: who.
        wall: seconds of wall time: per call (scenarios 1 to 3) or for the whole load (4).
        cpu: seconds of this process's CPU time, on the same basis as ``wall``.
        throughput: calls per second (scenario 4).
        growth: peak RSS growth in bytes (scenario 5).
        error: why it could not be measured (a failing call, a missing package).
        samples: how many measurements the medians are over.
        extra: other medians a scenario records (requests sent, pairs a second).
    """

    contender: Contender
    wall: float | None = None
    cpu: float | None = None
    throughput: float | None = None
    growth: float | None = None
    error: str | None = None
    samples: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def take(self, samples: Sequence[Sample]) -> None:
        """Keep the medians of ``samples``' wall and CPU times (none measured: nothing)."""
        if self.error is None and samples:
            self.wall = median([sample.wall for sample in samples])
            self.cpu = median([sample.cpu for sample in samples])
            self.samples = len(samples)


@dataclass
class ScenarioResult:
    """One scenario's measurements.

    Attributes:
        number: the scenario's number in the registry.
        title: one line saying what was measured.
        setup: the server and call parameters, for the report.
        measurements: one per contender, floor included.
        references: the floor per mode (``"sync"``/``"async"``) that ratios divide by.
        payload: scenario 5's JSON size in bytes (all documents in one body).
        notes: remarks for the report.
    """

    number: int
    title: str
    setup: str
    measurements: list[Measurement] = field(default_factory=list)
    references: dict[str, Measurement] = field(default_factory=dict)
    payload: int | None = None
    notes: list[str] = field(default_factory=list)


# -- shared machinery for scenarios 1 to 4 ----------------------------------------------------


@dataclass
class Entry:
    """One contender in a :class:`Bench`: its session, inputs and samples."""

    contender: Contender
    measurement: Measurement
    session: Any = None
    inputs: Any = None
    samples: list[Sample] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.measurement.error is None and self.session is not None


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):  # SDK errors whose text is a dump of headers and body
        text = f"HTTP {status}"
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


class Bench:
    """Opens contenders against one server, warms them up, times them in rounds."""

    def __init__(
        self,
        contenders: Sequence[Contender],
        options: SessionOptions,
        texts_for: Callable[[Contender], list[str]],
        expected: int,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.entries: list[Entry] = []
        self._expected = expected
        cache: dict[tuple[str, int], Any] = {}
        for contender in contenders:
            entry = Entry(contender, Measurement(contender))
            self.entries.append(entry)
            missing = contender.missing()
            if missing is not None:
                entry.measurement.error = f"not installed ({missing})"
                continue
            texts = texts_for(contender)
            try:
                key = (contender.family, len(texts))
                if key not in cache:
                    cache[key] = prepare_inputs(contender.family, texts)
                entry.inputs = cache[key]
                entry.session = contender.open(options)
            except Exception as exc:
                entry.measurement.error = f"cannot be set up: {_describe(exc)}"

    def time_call(self, entry: Entry) -> Sample:
        """Wall and CPU time of one call of ``entry``."""
        if entry.contender.mode == "sync":
            return time_sync_call(entry.session, entry.inputs)
        return time_async_call(self.loop, entry.session, entry.inputs)

    def _call_once(self, entry: Entry) -> Any:
        if entry.contender.mode == "sync":
            return entry.session.call(entry.inputs)
        return self.loop.run_until_complete(entry.session.acall(entry.inputs))

    def warm_up(self, calls: int) -> None:
        """Make untimed calls; a contender whose call fails or answers wrongly is out."""
        for entry in self.entries:
            if not entry.live:
                continue
            try:
                for _ in range(max(1, calls)):
                    count = result_count(self._call_once(entry))
                if count != self._expected:
                    raise RuntimeError(f"{count} results instead of {self._expected}")
            except Exception as exc:
                entry.measurement.error = f"fails: {_describe(exc)}"

    def rounds(self, rounds: int, passes: int, timer: Callable[[Entry], Sample], seed: int) -> None:
        """Time every live contender ``passes`` times per round, one measurement each in
        turn, in a new shuffled order every pass, so that a change in the machine's load
        falls on every contender alike."""
        rng = random.Random(seed)
        for _ in range(rounds):
            for _ in range(passes):
                order = [entry for entry in self.entries if entry.live]
                rng.shuffle(order)
                settle()
                for entry in order:
                    try:
                        entry.samples.append(timer(entry))
                    except Exception as exc:
                        entry.measurement.error = f"fails: {_describe(exc)}"

    def finish(self) -> list[Measurement]:
        """Close every session and return the medians."""
        for entry in self.entries:
            if entry.session is not None:
                try:
                    if entry.contender.mode == "sync":
                        entry.session.close()
                    else:
                        self.loop.run_until_complete(entry.session.aclose())
                except Exception:  # closing never changes a result
                    pass
            measurement = entry.measurement
            measurement.take(entry.samples)
            if measurement.samples:
                measurement.extra = {name: median(values) for name, values in entry.extra.items()}
        self.loop.close()
        return [entry.measurement for entry in self.entries]


def floor_references(measurements: list[Measurement]) -> dict[str, Measurement]:
    return {
        item.contender.mode: item
        for item in measurements
        if item.contender.key in ("floor-sync", "floor-async") and item.wall is not None
    }


# -- scenarios 1 and 2 ------------------------------------------------------------------------


def run_per_call(
    number: int,
    documents: int,
    calls: int,
    scale: Scale,
    contenders: Sequence[Contender],
    rounds: int,
    sink: str | None = None,
) -> ScenarioResult:
    """Scenarios 1 and 2: wall and CPU time per call of ``documents`` documents."""
    texts = make_documents(documents, scale.words)
    result = ScenarioResult(
        number,
        f"{documents:,} documents of {scale.words} words, top_n={scale.top_n}",
        f"server: cheap scores, no added latency, limit {max(documents, 1000):,} a request; "
        f"{calls} timed calls per contender per round, taken in turns, after "
        f"{scale.warm_up} warm-up calls",
    )
    with ServerProcess(latency_ms=0, max_documents=max(documents, 1000)) as server:
        bench = Bench(
            contenders,
            SessionOptions(server.base_url, scale.top_n, sink=sink),
            lambda _: texts,
            scale.top_n,
        )
        bench.warm_up(scale.warm_up)

        bench.rounds(rounds, calls, bench.time_call, seed=number)
        result.measurements = bench.finish()
    result.references = floor_references(result.measurements)
    return result


def run_large_call(scale: Scale, contenders: Sequence[Contender], rounds: int) -> ScenarioResult:
    """Scenario 2: scenario 1's measure at 1,000 documents, with the physical limit beside
    the floor (orjson and one raw-socket round trip of the body, in another process)."""
    keys = {contender.key for contender in contenders}
    limits = [limit for limit in LIMITS if limit.key.replace("limit", "floor") in keys]
    if not limits:
        return run_per_call(2, scale.large, scale.calls_large, scale, contenders, rounds)
    with SinkProcess() as sink:
        result = run_per_call(
            2, scale.large, scale.calls_large, scale, [*contenders, *limits], rounds, sink.base_url
        )
    by_mode = {
        item.contender.mode: item for item in result.measurements if item.contender in limits
    }
    distances = [
        f"{item.contender.label} {item.wall / by_mode[item.contender.mode].wall:.2f}x"
        for item in result.measurements
        if item.contender.group == "ours"
        and item.wall
        and by_mode.get(item.contender.mode)
        and by_mode[item.contender.mode].wall
    ]
    if distances:
        result.notes.append(
            "the physical-limit rows encode the same body with orjson and send its bytes "
            "once to a raw socket sink in another process, which answers with the same small "
            "ranking: no HTTP and no client logic; our wall time against it (same mode): "
            + ", ".join(distances)
        )
    return result


# -- scenario 3 -------------------------------------------------------------------------------


def run_batching(scale: Scale, contenders: Sequence[Contender], rounds: int) -> ScenarioResult:
    """Scenario 3: one call of many documents against a per-request limit and latency; the
    floor is one round trip of a single full request."""
    texts = make_documents(scale.batched, scale.words)
    limit = scale.server_limit
    result = ScenarioResult(
        3,
        f"{scale.batched:,} documents in one call, server limit {limit:,} a request, "
        f"{scale.batched_latency_ms:g} ms server latency",
        f"the floor is one {limit:,}-document round trip (bare httpx, same server); "
        f"the package's contenders are given max_documents_per_request={limit:,}; "
        f"{scale.calls_batched} timed calls per contender per round, taken in turns, after "
        f"{scale.warm_up} warm-up calls",
    )
    keys = {contender.key for contender in contenders}
    split = [floor for floor in SPLIT_FLOORS if floor.key.removesuffix("-split") in keys]
    chosen = [*contenders, *split]
    with ServerProcess(latency_ms=scale.batched_latency_ms, max_documents=limit) as server:
        bench = Bench(
            chosen,
            SessionOptions(server.base_url, scale.top_n, max_documents_per_request=limit),
            lambda contender: (
                texts[:limit] if contender.key in keys and contender.group == "floor" else texts
            ),
            scale.top_n,
        )
        bench.warm_up(scale.warm_up)

        bench.rounds(rounds, scale.calls_batched, bench.time_call, seed=3)
        result.measurements = bench.finish()
    result.references = floor_references(result.measurements)
    if split:
        result.notes.append(
            'the rows "every slice at once, pre-encoded" are bare httpx sending all '
            f"{-(-scale.batched // limit)} slices concurrently, their JSON encoded before the "
            "timing starts: the least time this server and transport allow, with no client "
            "work; shown for comparison, without a target"
        )
    failing = [
        item.contender.label
        for item in result.measurements
        if item.contender.group == "peers" and item.error and item.error.startswith("fails")
    ]
    if failing:
        result.notes.append(
            "the peers send every document in one request, which the server refuses with "
            f"413 (its limit is {limit:,}); the Jina peers then fail while reading the error "
            "body, the Cohere SDK raises ApiError"
        )
    return result


# -- scenario 4 -------------------------------------------------------------------------------


def run_concurrency(scale: Scale, contenders: Sequence[Contender], rounds: int) -> ScenarioResult:
    """Scenario 4: many async calls at once; throughput against the same load sent with a
    bare ``httpx.AsyncClient``."""
    calls = scale.concurrent_calls
    texts = make_documents(scale.concurrent_documents, scale.words, seed=4)
    result = ScenarioResult(
        4,
        f"{calls} concurrent async calls of {scale.concurrent_documents} documents, "
        f"{scale.concurrent_latency_ms:g} ms server latency",
        f"all {calls} calls started at once with asyncio.gather on one event loop; "
        "every contender keeps its default connection pool (httpx: 100 connections; "
        "aiohttp: 100); "
        f"one warm-up load, then {scale.concurrent_loads} timed load(s) per contender per "
        "round",
    )
    chosen = [contender for contender in contenders if contender.mode == "async"]
    keys = {contender.key for contender in chosen}
    chosen += [item for item in AIOHTTP_CONTENDERS if item.key.removesuffix("-aiohttp") in keys]
    with ServerProcess(latency_ms=scale.concurrent_latency_ms, max_documents=1000) as server:
        bench = Bench(
            chosen, SessionOptions(server.base_url, scale.top_n), lambda _: texts, scale.top_n
        )
        bench.warm_up(1)

        def timer(entry: Entry) -> Sample:
            return time_async_load(bench.loop, entry.session, entry.inputs, calls)

        for entry in bench.entries:  # a full load to fill connection pools and thread pools
            if entry.live:
                try:
                    timer(entry)
                except Exception as exc:  # as in the timed rounds: recorded, not fatal
                    entry.measurement.error = f"fails: {_describe(exc)}"
        bench.rounds(rounds, scale.concurrent_loads, timer, seed=4)
        result.measurements = bench.finish()
    for item in result.measurements:
        if item.wall:
            item.throughput = calls / item.wall
    result.references = floor_references(result.measurements)
    return result


# -- scenario 5 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryCall:
    """One call whose peak memory is measured in fresh processes.

    Attributes:
        documents: how many documents.
        words: words per document.
        top_n: results asked for.
        client_settings: ``RerankClient`` settings of the package's contenders.
        server: :class:`ServerProcess` settings.
    """

    documents: int
    words: int
    top_n: int | None
    client_settings: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)


def _probe(contender: Contender, base_url: str, call: MemoryCall) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.memory_probe",
        "--contender",
        contender.key,
        "--base-url",
        base_url,
        "--documents",
        str(call.documents),
        "--words",
        str(call.words),
        "--top-n",
        str(call.top_n),
        "--client-settings",
        json.dumps(call.client_settings),
    ]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=_REPO_ROOT,
            env=child_env(),
            timeout=_MEMORY_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {_MEMORY_TIMEOUT:g} s"}
    lines = completed.stdout.strip().splitlines()
    if not lines:
        tail = " ".join(completed.stderr.strip().splitlines()[-1:])
        return {"error": f"probe exited {completed.returncode}: {tail[:200]}"}
    outcome: dict[str, Any] = json.loads(lines[-1])
    return outcome


def measure_memory(
    call: MemoryCall, contenders: Sequence[Contender], repeats: int, workers: int
) -> list[Measurement]:
    """The median peak RSS growth of ``call`` for each contender, ``repeats`` fresh processes
    each, ``workers`` at once."""
    measurements = {contender.key: Measurement(contender) for contender in contenders}
    runnable = []
    for contender in contenders:
        missing = contender.missing()
        if missing is None:
            runnable.append(contender)
        else:
            measurements[contender.key].error = f"not installed ({missing})"
    outcomes: dict[str, list[dict[str, Any]]] = {contender.key: [] for contender in runnable}
    with ServerProcess(**call.server) as server:
        # The heaviest imports first, so that the probes share the workers evenly.
        weight = {"llama_index": 0, "langchain": 1, "strings": 2}
        jobs = sorted(
            (contender for _ in range(repeats) for contender in runnable),
            key=lambda contender: weight[contender.family],
        )
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [
                (contender, pool.submit(_probe, contender, server.base_url, call))
                for contender in jobs
            ]
            for contender, future in futures:
                outcomes[contender.key].append(future.result())
    for key, runs in outcomes.items():
        measurement = measurements[key]
        errors = [run["error"] for run in runs if "error" in run]
        if errors:
            measurement.error = f"fails: {errors[0]}"
            continue
        measurement.growth = median([float(run["growth"]) for run in runs])
        measurement.samples = len(runs)
    return [measurements[contender.key] for contender in contenders]


def run_memory(
    scale: Scale, contenders: Sequence[Contender], rounds: int, workers: int = 2
) -> ScenarioResult:
    """Scenario 5: peak RSS growth of one call with many short documents, each contender in
    fresh processes, against the size of the JSON that carries them."""
    texts = make_documents(scale.memory_documents, scale.memory_words)
    payload = payload_size(texts, scale.top_n)
    repeats = max(1, min(rounds, 3))
    result = ScenarioResult(
        5,
        f"{scale.memory_documents:,} documents of {scale.memory_words} words in one call",
        f"one fresh process per contender and repeat ({repeats} each, median): imports, "
        "inputs built, one 10-document warm-up call, then the peak RSS (kernel high-water "
        "mark, reset just before) during the call, minus the RSS just before it; server "
        f"limit {scale.memory_documents:,} a request; the package's contenders keep their "
        "default batching",
        payload=payload,
    )
    chosen = [
        contender
        for contender in contenders
        if contender.group != "peers" or contender.mode == "sync"
    ]
    call = MemoryCall(
        scale.memory_documents,
        scale.memory_words,
        scale.top_n,
        server={"latency_ms": 0, "max_documents": scale.memory_documents},
    )
    result.measurements = measure_memory(call, chosen, repeats, workers)
    result.notes.append(
        "peers are measured on their sync path only (their async path runs the same code "
        "in a worker thread)"
    )
    return result
