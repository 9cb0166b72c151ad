"""Scenarios 10 and 11: the offline job, in (query, document) pairs per second.

Scenario 10 runs the batch job on one machine against bare httpx sending the same requests,
row by row, with the same number in flight. Scenario 11 runs the Ray Data step with one and
with two workers on a local Ray runtime, and says what the machine's CPUs were doing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .contenders import Contender
from .corpus import make_documents
from .measure import Sample, median, settle
from .registry import Check, Context, Scenario, register
from .report import markdown_table, ratio_of, ratio_verdicts, seconds, times, verdict
from .scenarios import Measurement, Scale, ScenarioResult
from .server import ServerProcess

__all__ = [
    "BATCH_JOB_TARGET",
    "OFFLINE_CONTENDERS",
    "RAY_CONTENDERS",
    "offline_contenders",
    "run_batch_throughput",
    "run_ray_scaling",
]

_TIMEOUT = 120.0

#: Scenario 10: the batch job's least throughput, as a multiple of bare httpx's.
BATCH_JOB_TARGET = 0.9


@dataclass(frozen=True)
class _Options:
    base_url: str
    top_n: int
    concurrency: int
    folder: Path


# -- scenario 10: the batch job against bare httpx ---------------------------------------------


class _FloorRows:
    """Bare ``httpx.AsyncClient``: one ``post(json=...)`` per row, ``concurrency`` in flight."""

    def __init__(self, options: _Options, rows: list[dict[str, Any]]) -> None:
        import httpx

        self._url = f"{options.base_url}/v1/rerank"
        self._top_n = options.top_n
        self._rows = rows
        self._concurrency = options.concurrency
        self._client = httpx.AsyncClient(timeout=_TIMEOUT)

    async def load(self) -> int:
        limit = asyncio.Semaphore(self._concurrency)

        async def one(row: dict[str, Any]) -> int:
            body = {
                "query": row["query"],
                "documents": row["documents"],
                "top_n": min(self._top_n, len(row["documents"])),
                "return_documents": False,
            }
            async with limit:
                response = await self._client.post(self._url, json=body)
            return len(response.json()["results"])

        counts = await asyncio.gather(*(one(row) for row in self._rows))
        return sum(counts)

    async def aclose(self) -> None:
        await self._client.aclose()


class _BatchFile:
    """``batch.arun``: a JSON Lines file in, a JSON Lines file out, the job's own client."""

    def __init__(self, options: _Options, rows: list[dict[str, Any]]) -> None:
        self._options = options
        self._source = options.folder / "rows.jsonl"
        if not self._source.exists():
            with self._source.open("w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row) + "\n")
        self._output = options.folder / "reranked.jsonl"

    async def load(self) -> int:
        from rerank_integrations import batch

        options = self._options
        summary = await batch.arun(
            self._source,
            self._output,
            base_url=options.base_url,
            top_n=options.top_n,
            concurrency=options.concurrency,
            overwrite=True,
            progress=False,
        )
        if not summary.ok:
            raise RuntimeError(f"{summary.failed} rows failed: {summary.stopped}")
        return summary.succeeded * options.top_n

    async def aclose(self) -> None:
        pass


class _BatchRows:
    """``batch.arerank_rows``: rows from memory through one client, kept open."""

    def __init__(self, options: _Options, rows: list[dict[str, Any]]) -> None:
        from rerank_integrations import RerankClient

        self._rows = rows
        self._options = options
        self._client = RerankClient(
            options.base_url, adaptive_concurrency=True, max_concurrency=options.concurrency
        )

    async def load(self) -> int:
        from rerank_integrations import batch

        count = 0
        stream = batch.arerank_rows(
            self._rows,
            self._client,
            top_n=self._options.top_n,
            concurrency=self._options.concurrency,
        )
        async for row in stream:
            count += len(row["results"])
        return count

    async def aclose(self) -> None:
        await self._client.aclose()


def _contender(key: str, label: str, group: str, opener: Callable[..., Any]) -> Contender:
    modules = ("httpx",) if group == "floor" else ("rerank_integrations",)
    return Contender(key, label, group, "async", "rows", modules, "URL argument", opener)


#: Scenario 10's contenders, in report order.
OFFLINE_CONTENDERS: tuple[Contender, ...] = (
    _contender(
        "floor-rows",
        "httpx.AsyncClient.post(json=...), one row a request, N in flight",
        "floor",
        _FloorRows,
    ),
    _contender("batch-file", "batch.arun (JSON Lines file to JSON Lines file)", "ours", _BatchFile),
    _contender("batch-rows", "batch.arerank_rows (rows in memory)", "ours", _BatchRows),
)

#: Scenario 11's contenders: the Ray step with one and with two workers.
RAY_CONTENDERS: tuple[Contender, ...] = tuple(
    Contender(
        f"ray-{workers}",
        f"Ray Data map_batches(Reranker), {workers} worker{'s' if workers > 1 else ''}",
        "ours",
        "async",
        "rows",
        ("ray", "ray.data"),
        "URL argument",
        lambda options: None,
    )
    for workers in (1, 2)
)


def offline_contenders(chosen: Sequence[Contender]) -> list[Contender]:
    """The offline contenders of the groups the run chose (``floor``, ``ours``)."""
    groups = {contender.group for contender in chosen}
    return [contender for contender in OFFLINE_CONTENDERS if contender.group in groups]


def make_rows(count: int, documents: int, words: int, seed: int = 6) -> list[dict[str, Any]]:
    """``count`` rows of ``documents`` distinct made-up documents each, with a query drawn
    from their words."""
    texts = make_documents(count * documents, words, seed=seed)
    rng = random.Random(seed)
    rows = []
    for number in range(count):
        candidates = texts[number * documents : (number + 1) * documents]
        query = " ".join(rng.sample(candidates[0].split(), 3))
        rows.append({"id": number, "query": query, "documents": candidates})
    return rows


def _time_load(loop: asyncio.AbstractEventLoop, session: Any) -> tuple[Sample, int]:
    async def timed() -> tuple[Sample, int]:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        results = await session.load()
        return Sample(time.perf_counter() - wall0, time.process_time() - cpu0), results

    return loop.run_until_complete(timed())


def run_batch_throughput(
    scale: Scale, contenders: Sequence[Contender], rounds: int
) -> ScenarioResult:
    """Scenario 10: a whole job of rows, each one rerank request, ``batch_concurrency`` in
    flight, against a server answering after ``batch_latency_ms``."""
    rows = make_rows(scale.batch_rows, scale.batch_documents, scale.batch_words)
    pairs = scale.batch_rows * scale.batch_documents
    concurrency = scale.batch_concurrency
    result = ScenarioResult(
        10,
        f"batch job: {scale.batch_rows:,} rows of {scale.batch_documents} documents "
        f"({pairs:,} pairs), {concurrency} rows in flight, {scale.batch_latency_ms:g} ms "
        "server latency",
        f"one request per row, top_n={scale.top_n}; the floor sends the same requests with "
        f"bare httpx and a semaphore of {concurrency}; the package's contenders run with their "
        "defaults (adaptive concurrency on, max_concurrency = rows in flight); one warm-up "
        f"job, then one timed job per contender per round, {rounds} rounds, taken in turns",
    )
    chosen = offline_contenders(contenders)
    loop = asyncio.new_event_loop()
    measurements = {contender.key: Measurement(contender) for contender in chosen}
    samples: dict[str, list[Sample]] = {contender.key: [] for contender in chosen}
    with (
        tempfile.TemporaryDirectory(prefix="rerank-bench-") as folder,
        ServerProcess(latency_ms=scale.batch_latency_ms, max_documents=1000) as server,
    ):
        options = _Options(server.base_url, scale.top_n, concurrency, Path(folder))
        sessions: dict[str, Any] = {}
        for contender in chosen:
            missing = contender.missing()
            if missing is not None:
                measurements[contender.key].error = f"not installed ({missing})"
                continue
            try:
                session = contender.opener(options, rows)
                _, results = _time_load(loop, session)  # the warm-up job
                if results != scale.batch_rows * scale.top_n:
                    expected = scale.batch_rows * scale.top_n
                    raise RuntimeError(f"{results} results instead of {expected}")
                sessions[contender.key] = session
            except Exception as exc:
                measurements[contender.key].error = f"fails: {type(exc).__name__}: {exc}"[:160]
        rng = random.Random(6)
        for _ in range(rounds):
            order = list(sessions)
            rng.shuffle(order)
            settle()
            for key in order:
                sample, _ = _time_load(loop, sessions[key])
                samples[key].append(sample)
        for session in sessions.values():
            loop.run_until_complete(session.aclose())
    loop.close()
    for key, measurement in measurements.items():
        measurement.take(samples[key])
        if measurement.wall is not None:
            measurement.throughput = pairs / measurement.wall
    result.measurements = [measurements[contender.key] for contender in chosen]
    result.references = {
        item.contender.mode: item
        for item in result.measurements
        if item.contender.group == "floor" and item.wall is not None
    }
    result.notes.append(
        "pairs per second is (query, document) pairs reranked per second of wall time; the "
        "ceiling of any client is rows in flight / latency × documents per row "
        f"({concurrency / (scale.batch_latency_ms / 1000) * scale.batch_documents:,.0f} "
        "pairs/s here), less the server's own time"
    )
    return result


# -- scenario 11: Ray with one and two workers -------------------------------------------------


def _machine_busy() -> float:
    """CPU seconds spent busy, over every core, since boot (``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [float(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


#: What each process of the machine is, for scenario 11's account of where the CPU went.
_GROUPS = ("workers", "server", "ray", "driver")


def _processes(server: int) -> dict[int, tuple[str, float]]:
    """Each process's group and CPU seconds so far: the Ray workers (the actors that
    rerank), the rerank server, the rest of Ray (raylet, GCS, its other actors), this driver,
    or ``"other"``."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rpartition(")")[2].split()
            with open(f"/proc/{entry}/cmdline", "rb") as command:
                cmdline = command.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        pid = int(entry)
        if pid == server:
            group = "server"
        elif pid == os.getpid():
            group = "driver"
        elif "MapWorker" in cmdline:
            group = "workers"
        elif cmdline.startswith("ray::") or "site-packages/ray" in cmdline:
            group = "ray"
        else:
            group = "other"
        found[pid] = (group, (float(fields[11]) + float(fields[12])) / ticks)
    return found


class _CpuSampler:
    """CPU seconds by group over a stretch of time, read every 0.1 s so that processes that
    end before the stretch does (Ray's actors, when a dataset is done) still count."""

    def __init__(self, server: int) -> None:
        self._server = server
        self._first = _processes(server)
        self._last = dict(self._first)
        self._busy = _machine_busy()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self._last.update(_processes(self._server))

    def stop(self, wall: float) -> dict[str, float]:
        """Cores used on average by each group, and by the whole machine, over ``wall``."""
        self._stop.set()
        self._thread.join()
        self._last.update(_processes(self._server))
        used = dict.fromkeys((*_GROUPS, "other"), 0.0)
        for pid, (group, spent) in self._last.items():
            before = self._first.get(pid, (group, 0.0))[1]
            used[group] += (spent - before) / wall
        used["machine"] = (_machine_busy() - self._busy) / wall
        return used


def run_ray_scaling(scale: Scale, contenders: Sequence[Contender], rounds: int) -> ScenarioResult:
    """Scenario 11: ``map_batches(Reranker)`` with one and with two actors on a local Ray
    runtime of this machine's CPUs, against a server answering after ``batch_latency_ms``."""
    rows = make_rows(scale.ray_rows, scale.batch_documents, scale.batch_words, seed=7)
    pairs = scale.ray_rows * scale.batch_documents
    cores = os.cpu_count() or 1
    repeats = max(1, min(rounds, 3))
    result = ScenarioResult(
        11,
        f"Ray Data: {scale.ray_rows:,} rows of {scale.batch_documents} documents "
        f"({pairs:,} pairs) with 1 and 2 workers, {scale.batch_latency_ms:g} ms server latency",
        f"a local Ray runtime of {cores} CPUs; the rows are materialized first; each worker "
        f"is an actor (num_cpus=0.5) with one client and {scale.batch_concurrency} rows of a "
        f"batch in flight, batches of {scale.ray_batch_size}; the timed run starts the actors, "
        f"reranks and materializes the result; {repeats} run(s) per contender, taken in turns",
    )
    chosen = [
        contender for contender in RAY_CONTENDERS if any(c.group == "ours" for c in contenders)
    ]
    measurements = {contender.key: Measurement(contender) for contender in chosen}
    result.measurements = list(measurements.values())
    missing = chosen[0].missing() if chosen else None
    if missing is not None or not chosen:
        for measurement in measurements.values():
            measurement.error = f"not installed ({missing})"
        return result
    import ray
    import ray.data

    from rerank_integrations.ray import Reranker

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ray.init(
        num_cpus=cores, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    busy: dict[str, list[dict[str, float]]] = {contender.key: [] for contender in chosen}
    samples: dict[str, list[Sample]] = {contender.key: [] for contender in chosen}
    try:
        with ServerProcess(latency_ms=scale.batch_latency_ms, max_documents=1000) as server:
            dataset = ray.data.from_items(rows).materialize()
            settings = {
                "base_url": server.base_url,
                "top_n": scale.top_n,
                "concurrency": scale.batch_concurrency,
            }

            def job(workers: int) -> tuple[Sample, int, dict[str, float]]:
                ranked = dataset.map_batches(
                    Reranker,
                    fn_constructor_kwargs=settings,
                    compute=ray.data.ActorPoolStrategy(size=workers),
                    batch_size=scale.ray_batch_size,
                    num_cpus=0.5,
                )
                sampler = _CpuSampler(server.pid)
                wall0, cpu0 = time.perf_counter(), time.process_time()
                done = ranked.materialize()
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                return Sample(wall, cpu), done.count(), sampler.stop(wall)

            for contender in chosen:  # a warm-up run each: workers' imports, the first pool
                try:
                    _, count, _ = job(int(contender.key.rpartition("-")[2]))
                    if count != scale.ray_rows:
                        raise RuntimeError(f"{count} rows instead of {scale.ray_rows}")
                except Exception as exc:
                    measurements[contender.key].error = f"fails: {type(exc).__name__}"
            rng = random.Random(7)
            live = [c for c in chosen if measurements[c.key].error is None]
            for _ in range(repeats):
                order = list(live)
                rng.shuffle(order)
                for contender in order:
                    sample, _, used = job(int(contender.key.rpartition("-")[2]))
                    samples[contender.key].append(sample)
                    busy[contender.key].append(used)
    finally:
        ray.shutdown()
    for key, measurement in measurements.items():
        measurement.take(samples[key])
        if measurement.wall is not None:
            measurement.throughput = pairs / measurement.wall
    reference = measurements.get("ray-1")
    if reference is not None and reference.wall is not None:
        result.references = {"async": reference}
    for key, readings in busy.items():
        if readings:
            used = {name: median([reading[name] for reading in readings]) for name in readings[0]}
            workers = key.rpartition("-")[2]
            result.notes.append(
                f"{workers} worker(s), CPU in cores on average over the run: the machine "
                f"{used['machine']:.2f} of {cores}; the workers' processes {used['workers']:.2f}, "
                f"the rerank server {used['server']:.2f}, the rest of Ray {used['ray']:.2f}, "
                f"the driver {used['driver']:.2f}, other processes {used['other']:.2f}"
            )
    return result


# -- verdicts, tables, registration -----------------------------------------------------------


def _throughput_ratios(result: ScenarioResult) -> dict[str, float | None]:
    reference = result.references.get("async")
    return {
        item.contender.key: ratio_of(item.throughput, reference.throughput if reference else None)
        for item in result.measurements
    }


def _batch_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    return ratio_verdicts(
        result,
        _throughput_ratios(result),
        {"async": BATCH_JOB_TARGET},
        higher_is_better=True,
        target_text={"async": f"pairs/s ≥ {BATCH_JOB_TARGET:g}x bare httpx's"},
    )


def _scaling_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    """Scenario 11 has no target: how two workers compare with one is reported as it is."""
    verdicts: dict[str, str] = {}
    for item in result.measurements:
        key = item.contender.key
        if item.error is not None:
            verdicts[key] = f"**{item.error}**"
        else:
            verdicts[key] = "reference" if key == "ray-1" else "—"
    scaling = _throughput_ratios(result).get("ray-2")
    measured = "not measured" if scaling is None else f"{scaling:.2f}x (2 workers / 1)"
    check = Check(
        result.number,
        "Ray: 2 workers against 1 on this machine (context, not a target)",
        measured,
        None if scaling is None else scaling > 1.0,
        informational=True,
    )
    return verdicts, [check]


def _table(result: ScenarioResult, verdicts: dict[str, str]) -> list[str]:
    ratios = _throughput_ratios(result)
    rows = [
        [
            item.contender.label,
            seconds(item.wall),
            "—" if item.throughput is None else f"{item.throughput:,.0f}",
            times(ratios[item.contender.key]),
            seconds(item.cpu),
            verdict(item, verdicts),
        ]
        for item in result.measurements
    ]
    base = "× floor" if result.number == 10 else "× 1 worker"
    cpu = "CPU, whole job" if result.number == 10 else "CPU of the driver"
    header = ["Contender", "Wall, whole job", "Pairs / s", base, cpu, ""]
    return markdown_table(header, rows, "lrrrrl")


def _run_batch(context: Context) -> ScenarioResult:
    return run_batch_throughput(context.scale, context.contenders, context.rounds)


def _run_ray(context: Context) -> ScenarioResult:
    return run_ray_scaling(context.scale, context.contenders, context.rounds)


register(
    Scenario(
        10,
        "batch job",
        _run_batch,
        _batch_verdicts,
        _table,
        reading="Scenario 10 times a whole batch job (2,000 rows at full scale, one rerank "
        "request each): `batch.arun` from a JSON Lines file to a JSON Lines file and "
        "`batch.arerank_rows` from rows in memory, against bare httpx sending each row's "
        "request with a semaphore of the same size; its ratio is (query, document) pairs per "
        "second (higher is better).",
    )
)
register(
    Scenario(
        11,
        "Ray scaling",
        _run_ray,
        _scaling_verdicts,
        _table,
        reading="Scenario 11 runs `map_batches(Reranker)` on a local Ray runtime with one and "
        "with two worker actors; its ratio is against one worker, and its notes say where the "
        "machine's CPU went (read from `/proc` every 0.1 s: the workers, the server, the rest "
        "of Ray, the driver, anything else).",
    )
)
