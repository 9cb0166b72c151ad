"""Scenario 12: ``rerank-integrations eval`` against the batch job on the same pairs, cold
(every pair sent, its score kept), and warm (a new report over the same pairs, every score
from the on-disk cache) against reading those scores from the cache alone."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .contenders import Contender
from .measure import Sample
from .offline import make_rows
from .registry import Check, Context, Scenario, register
from .report import markdown_table, ratio_of, ratio_verdicts, seconds, times, verdict
from .scenarios import Measurement, Scale, ScenarioResult
from .server import ServerProcess

__all__ = ["EVAL_CONTENDERS", "EVAL_TARGET", "run_eval_throughput"]

#: Scenario 12: the evaluation's least throughput, cold, as a multiple of the batch job's.
EVAL_TARGET = 0.9

_MODULES = ("rerank_integrations", "ir_measures", "scipy")


def _contender(key: str, label: str, group: str, mode: str, role: str = "reference") -> Contender:
    return Contender(
        key, label, group, mode, "rows", _MODULES, "URL argument", lambda options: None, role
    )


#: Scenario 12's contenders, in report order: mode ``async`` is the cold run (its reference
#: the batch job), mode ``cache`` the warm one (its reference the cache read alone).
EVAL_CONTENDERS: tuple[Contender, ...] = (
    _contender("eval-batch", "batch.arun over the same rows (no cache)", "floor", "async"),
    _contender(
        "eval-cold",
        "eval.aevaluate, cold, its scoring: every pair sent, its score kept",
        "ours",
        "async",
    ),
    _contender(
        "eval-cold-whole",
        "eval.aevaluate, cold, whole: the scoring and the report's measures and tests",
        "ours",
        "report",
    ),
    _contender(
        "eval-cache-read",
        "RerankClient.arerank of every row from the warm cache",
        "floor",
        "cache",
        "cache floor",
    ),
    _contender(
        "eval-warm",
        "eval.aevaluate, warm: a new report, every score from the cache",
        "ours",
        "cache",
    ),
)


class _Pairs:
    """The rows as the batch job reads them, and the same as a dataset and first stage."""

    def __init__(self, scale: Scale, folder: Path) -> None:
        from rerank_integrations.eval import Dataset, FirstStage

        rows = make_rows(scale.batch_rows, scale.batch_documents, scale.batch_words, seed=12)
        self.documents = scale.batch_documents
        self.rows = [
            {
                "id": f"q{row['id']}",
                "query": row["query"],
                "documents": [
                    {"id": f"q{row['id']}-d{n}", "text": text}
                    for n, text in enumerate(row["documents"])
                ],
            }
            for row in rows
        ]
        self.source = folder / "rows.jsonl"
        with self.source.open("w", encoding="utf-8") as handle:
            for row in self.rows:
                handle.write(json.dumps(row) + "\n")
        corpus = {d["id"]: d["text"] for row in self.rows for d in row["documents"]}
        self.dataset = Dataset(
            queries={row["id"]: row["query"] for row in self.rows},
            corpus=corpus,
            qrels={row["id"]: {row["documents"][0]["id"]: 1} for row in self.rows},
            name="benchmark rows",
        )
        self.first_stage = FirstStage(
            {
                row["id"]: [(d["id"], float(-n)) for n, d in enumerate(row["documents"])]
                for row in self.rows
            }
        )


async def _batch(pairs: _Pairs, base_url: str, concurrency: int, folder: Path) -> int:
    from rerank_integrations import batch

    summary = await batch.arun(
        pairs.source,
        folder / "reranked.jsonl",
        base_url=base_url,
        concurrency=concurrency,
        overwrite=True,
        progress=False,
    )
    if not summary.ok:
        raise RuntimeError(f"{summary.failed} rows failed: {summary.stopped}")
    return summary.requests


async def _evaluate(pairs: _Pairs, base_url: str, concurrency: int, out: Path, cache: Path) -> Any:
    from rerank_integrations import eval as rerank_eval

    return await rerank_eval.aevaluate(
        pairs.dataset,
        pairs.first_stage,
        [rerank_eval.Reranker("bench", base_url)],
        out,
        depths=(pairs.documents,),
        concurrency=concurrency,
        cache=cache,
        plots=False,
    )


async def _read_cache(pairs: _Pairs, base_url: str, concurrency: int, cache: Path) -> int:
    """Every row's scores through a client whose every score is in the cache."""
    from rerank_integrations import RerankClient
    from rerank_integrations.eval import ScoreStore

    store = ScoreStore(cache)
    limit = asyncio.Semaphore(concurrency)
    async with RerankClient(base_url, cache=store, max_concurrency=concurrency) as client:

        async def one(row: dict[str, Any]) -> int:
            async with limit:
                response = await client.arerank(row["query"], [d["text"] for d in row["documents"]])
            return response.requests

        sent = sum(await asyncio.gather(*(one(row) for row in pairs.rows)))
    store.close()
    return sent


def run_eval_throughput(
    scale: Scale, contenders: Sequence[Contender], rounds: int
) -> ScenarioResult:
    """Scenario 12: the same rows through the batch job and through the evaluation."""
    pairs_count = scale.batch_rows * scale.batch_documents
    concurrency = scale.batch_concurrency
    result = ScenarioResult(
        12,
        f"eval: {scale.batch_rows:,} queries of {scale.batch_documents} candidates "
        f"({pairs_count:,} pairs), {concurrency} in flight, {scale.batch_latency_ms:g} ms "
        "server latency",
        "cold: `eval.aevaluate` with one reranker, a fresh report folder and score cache each "
        "round (every pair sent, kept in SQLite, the report's measures, sweeps and tests "
        "computed; no plots), its scoring and its whole call timed from the same run, against "
        "`batch.arun` of the same rows (no top_n: every score); warm: a new report "
        "folder over the warm cache (no request), against `RerankClient.arerank` of every row "
        f"from that cache; one warm-up each, then {rounds} rounds taken in turns",
    )
    groups = {contender.group for contender in contenders}
    chosen = [contender for contender in EVAL_CONTENDERS if contender.group in groups]
    measurements = {contender.key: Measurement(contender) for contender in chosen}
    samples: dict[str, list[Sample]] = {contender.key: [] for contender in chosen}
    loop = asyncio.new_event_loop()
    with (
        tempfile.TemporaryDirectory(prefix="rerank-bench-eval-") as name,
        ServerProcess(latency_ms=scale.batch_latency_ms, max_documents=1000) as server,
    ):
        folder = Path(name)
        runs = {"n": 0}

        def fresh() -> Path:
            runs["n"] += 1
            return folder / f"run-{runs['n']}"

        warm_cache = folder / "warm.sqlite"

        def job(key: str) -> tuple[dict[str, Sample], int]:
            """Samples by contender (a cold evaluation times its scoring and the whole run)
            and the requests sent."""
            place = fresh()
            if key == "eval-batch":
                place.mkdir()
                work: Any = _batch(pairs, server.base_url, concurrency, place)
            elif key == "eval-cold":
                work = _evaluate(pairs, server.base_url, concurrency, place, place / "s.sqlite")
            elif key == "eval-warm":
                work = _evaluate(pairs, server.base_url, concurrency, place, warm_cache)
            else:
                work = _read_cache(pairs, server.base_url, concurrency, warm_cache)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            done = loop.run_until_complete(work)
            whole = Sample(time.perf_counter() - wall0, time.process_time() - cpu0)
            if isinstance(done, int):
                return {key: whole}, done
            if key == "eval-cold":
                scoring = Sample(done.seconds["scoring"], whole.cpu)
                return {key: scoring, "eval-cold-whole": whole}, done.requests_sent
            return {key: whole}, done.requests_sent

        pairs = _Pairs(scale, folder)
        # The warm cache, filled once; then a warm-up of each contender.
        loop.run_until_complete(_evaluate(pairs, server.base_url, concurrency, fresh(), warm_cache))
        live = []
        for contender in chosen:
            missing = contender.missing()
            if missing is not None:
                measurements[contender.key].error = f"not installed ({missing})"
                continue
            if contender.key == "eval-cold-whole":
                continue  # timed by eval-cold's runs
            try:
                _, sent = job(contender.key)
                warm = contender.mode == "cache"
                if warm and sent:
                    raise RuntimeError(f"{sent} requests from a warm cache")
                if not warm and sent != scale.batch_rows:
                    raise RuntimeError(f"{sent} requests instead of {scale.batch_rows}")
                live.append(contender)
            except Exception as exc:
                measurements[contender.key].error = f"fails: {type(exc).__name__}: {exc}"[:160]
        rng = random.Random(12)
        for _ in range(rounds):
            order = list(live)
            rng.shuffle(order)
            gc.collect()
            for contender in order:
                taken, _ = job(contender.key)
                for key, sample in taken.items():
                    if key in samples:
                        samples[key].append(sample)
    loop.close()
    for key, measurement in measurements.items():
        measurement.take(samples[key])
        if measurement.wall is not None:
            measurement.throughput = pairs_count / measurement.wall
    result.measurements = [measurements[contender.key] for contender in chosen]
    result.references = {
        item.contender.mode: item
        for item in result.measurements
        if item.contender.group == "floor" and item.wall is not None
    }
    result.notes.append(
        "pairs per second is (query, document) pairs scored per second of wall time; the "
        "cold evaluation's scoring is what `EvalReport.seconds['scoring']` says: the batch "
        "job through the client with its score cache, the scores written to SQLite and kept "
        "as the calls return; its whole run adds the report (ir-measures over every query for "
        "every measure, the depth and top_n sweeps, thresholds, paired tests, the files), a cost "
        "that does not grow with the reranker's latency; CPU is the whole job's"
    )
    return result


def _ratios(result: ScenarioResult) -> dict[str, float | None]:
    ratios: dict[str, float | None] = {}
    for item in result.measurements:
        reference = result.references.get(item.contender.mode)
        if item.contender.mode == "report":
            reference = result.references.get("async")
        ratios[item.contender.key] = ratio_of(
            item.throughput, reference.throughput if reference else None
        )
    return ratios


def _verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    ratios = _ratios(result)
    verdicts, checks = ratio_verdicts(
        result,
        ratios,
        {"async": EVAL_TARGET},
        higher_is_better=True,
        target_text={"async": f"eval pairs/s ≥ {EVAL_TARGET:g}x the batch job's"},
    )
    whole = ratios.get("eval-cold-whole")
    if "eval-cold-whole" in {item.contender.key for item in result.measurements}:
        verdicts.setdefault("eval-cold-whole", "—")
        checks.append(
            Check(
                result.number,
                "eval, cold and whole (with the report) against the batch job (context)",
                "not measured" if whole is None else f"{whole:.2f}x",
                None if whole is None else whole >= EVAL_TARGET,
                informational=True,
            )
        )
    warm = ratios.get("eval-warm")
    if "eval-warm" in {item.contender.key for item in result.measurements}:
        verdicts.setdefault("eval-warm", "—" if warm is not None else "not measured")
        checks.append(
            Check(
                result.number,
                "eval, warm rerun against reading the cache alone (context, not a target)",
                "not measured" if warm is None else f"{warm:.2f}x",
                None if warm is None else warm >= EVAL_TARGET,
                informational=True,
            )
        )
    return verdicts, checks


def _table(result: ScenarioResult, verdicts: dict[str, str]) -> list[str]:
    ratios = _ratios(result)
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
    header = ["Contender", "Wall, whole job", "Pairs / s", "× its floor", "CPU, whole job", ""]
    return markdown_table(header, rows, "lrrrrl")


def _run(context: Context) -> ScenarioResult:
    return run_eval_throughput(context.scale, context.contenders, context.rounds)


register(
    Scenario(
        12,
        "eval",
        _run,
        _verdicts,
        _table,
        reading="Scenario 12 times `rerank-integrations eval`'s engine on the batch job's rows: "
        "cold against `batch.arun` on the same rows (its ratio is pairs per second, higher "
        "is better), and warm (a second report over the same pairs, every score from the "
        "SQLite cache) against reading every row's scores from that cache through the client.",
    )
)
