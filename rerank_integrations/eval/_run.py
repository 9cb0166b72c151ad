"""Running the contenders: each reranker scores the first stage's candidates once, through
the batch job (:func:`rerank_integrations.batch.arun`: resumable, within the client's rate
limit), with every (query, document) score kept in an on-disk cache, so that a rerun, a
sweep or another report over the same pairs sends no request."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO, cast

from .._client import RerankClient
from .._exceptions import CostLimitError, EvalInputError, EvalRunError
from .._types import NOT_GIVEN, RerankResponse
from .._usage import check_max_cost, check_price
from ..batch import DEFAULT_CONCURRENCY, BatchSummary, arun
from ..batch._rows import encode_line
from ._data import Dataset, FirstStage, check_inputs
from ._measures import DEFAULT_MEASURES, parse_measures
from ._report import EvalReport, build_report
from ._store import ScoreStore

__all__ = [
    "DEFAULT_DEPTHS",
    "DEFAULT_TOP_NS",
    "FIRST_STAGE",
    "Reranker",
    "ScoreStore",
    "aevaluate",
    "evaluate",
]

#: The contender that is the first stage alone.
FIRST_STAGE = "first-stage"

#: Candidate depths swept unless others are asked for (cut to the first stage's depth).
DEFAULT_DEPTHS: tuple[int, ...] = (10, 20, 50, 100)

#: ``top_n`` values swept unless others are asked for.
DEFAULT_TOP_NS: tuple[int, ...] = (1, 3, 5, 10, 20)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Reranker:
    """One contender: a rerank endpoint and its settings, or a client of your own.

    Attributes:
        name: how the reports call it (letters, digits, ``.``, ``_``, ``-``).
        base_url: the endpoint (else ``RERANK_BASE_URL``).
        model: the model (else ``RERANK_MODEL``, else the server's).
        dialect: the wire format (else ``RERANK_DIALECT``, else ``generic``).
        api_key_env: the environment variable holding its key (else ``RERANK_API_KEY``).
        settings: any other ``RerankClient`` arguments (``max_documents_per_request``,
            ``rate_limit``, ``price`` for ``max_cost`` and the cost, ...).
        client: a client to use instead of building one (it keeps its own cache, if any).
        instruction: what the ranking should favour, in words, sent as the client's
            ``instruction`` (with ``client``, on each of its calls). It decides the scores:
            the same endpoint with another instruction is another contender, its scores
            kept apart.
    """

    name: str
    base_url: str | None = None
    model: str | None = None
    dialect: str | None = None
    api_key_env: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    client: RerankClient | None = None
    instruction: str | None = None

    def identity(self) -> str:
        """What decides its scores, as text (no key): part of its work files' names."""
        if self.client is not None:
            found: list[Any] = [self.name, self.client.endpoint, self.client.model]
            asked = self.client.settings.instruction
        else:
            found = [self.name, self.base_url, self.model, self.dialect]
            found.append(sorted(self.settings.items()))
            asked = None
        if self.instruction is not None or asked is not None:
            # Only then: a contender without one keeps the names its files had.
            found.append(["instruction", asked if self.instruction is None else self.instruction])
        return json.dumps(found, default=repr)


def _call_key(query: str, texts: Sequence[object]) -> tuple[str, tuple[str, ...]]:
    """What names one query's call among the candidates: its query and texts, as a key of
    a dict in memory (the texts are the corpus's own strings, not copies)."""
    return query, tuple(map(str, texts))


def call_record(response: RerankResponse, seconds: float) -> dict[str, Any]:
    """What one query's call cost, as kept in a contender's calls file: its time, requests,
    tokens and units, and its cost at the client's ``price`` (``None`` without one)."""
    usage = response.usage
    return {
        "seconds": seconds,
        "requests": response.requests,
        "tokens": usage.total_tokens if usage is not None else None,
        "billed_units": usage.billed_units if usage is not None else None,
        "cost": None if response.cost is None else str(response.cost),
    }


class _Measured:
    """A client that times each call and writes what it cost to a file, one line per
    query, and keeps each query's scores as they come (what the batch job writes to its
    output, without reading it back); every other attribute is the client's own."""

    def __init__(
        self,
        client: RerankClient,
        keys: Mapping[tuple[str, tuple[str, ...]], list[str]],
        ids: Mapping[str, Sequence[str]],
        path: Path,
    ) -> None:
        self._client = client
        self._keys = keys
        self._ids = ids
        self._lock = threading.Lock()
        self._file = path.open("ab")
        self.scores: dict[str, dict[str, float]] = {}
        self.calls: dict[str, list[dict[str, Any]]] = {}

    def close(self) -> None:
        """Close the calls file (the client is left open)."""
        with self._lock:
            self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _record(
        self, query: str, texts: Sequence[object], response: RerankResponse, started: float
    ) -> None:
        record = call_record(response, time.perf_counter() - started)
        record["documents"] = len(texts)
        queries = self._keys.get(_call_key(query, texts), [])
        lines = []
        for query_id in queries:
            ids = self._ids[query_id]
            self.scores[query_id] = {
                ids[result.index]: float(result.relevance_score) for result in response.results
            }
            call = {"id": query_id, **record}
            self.calls.setdefault(query_id, []).append(call)
            lines.append(encode_line(call))
        with self._lock:  # whole lines, flushed: a query scored is a query recorded
            self._file.write(b"".join(lines))
            self._file.flush()

    async def arerank(self, query: str, documents: Sequence[Any], **options: Any) -> Any:
        started = time.perf_counter()
        response = await self._client.arerank(query, documents, **options)
        self._record(query, documents, response, started)
        return response

    def rerank(self, query: str, documents: Sequence[Any], **options: Any) -> Any:
        started = time.perf_counter()
        response = self._client.rerank(query, documents, **options)
        self._record(query, documents, response, started)
        return response


def _check_rerankers(rerankers: Sequence[Reranker]) -> list[Reranker]:
    seen: set[str] = set()
    for reranker in rerankers:
        if not isinstance(reranker, Reranker):
            raise TypeError(f"rerankers must be Reranker objects, got {type(reranker).__name__}")
        if not _NAME.match(reranker.name) or reranker.name == FIRST_STAGE:
            raise ValueError(
                f"reranker name {reranker.name!r}: use letters, digits, '.', '_' or '-' "
                f"(up to 64), and not {FIRST_STAGE!r}"
            )
        if reranker.name in seen:
            raise ValueError(f"two rerankers are named {reranker.name!r}")
        seen.add(reranker.name)
        if reranker.api_key_env is not None and not os.environ.get(reranker.api_key_env):
            raise ValueError(
                f"reranker {reranker.name!r}: ${reranker.api_key_env} is not set (api_key_env)"
            )
        if reranker.instruction is not None and "instruction" in reranker.settings:
            raise ValueError(
                f"reranker {reranker.name!r}: give its instruction once, as instruction= "
                "(not also in settings)"
            )
    return list(rerankers)


def _positive(values: Sequence[int], what: str) -> list[int]:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be whole numbers of at least 1, got {value!r}")
    return sorted(set(values))


#: Scores the evaluation's own store holds before writing them (some 25 MB), so that the
#: file is written when a reranker is done rather than while it scores. A crash loses the
#: scores held from the store, not from the run: the reranker's work file has them, and a
#: rerun resumes from it (another report sharing the store asks for them again).
_STORE_BATCH = 100_000


def _report_folder(out: str | os.PathLike[str]) -> Path:
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise EvalInputError(f"{folder} is a file, not a report folder")
    return folder


def _client_for(reranker: Reranker, cache: object, concurrency: int) -> RerankClient:
    settings: dict[str, Any] = {"adaptive_concurrency": True, "max_concurrency": concurrency}
    settings.update(reranker.settings)
    if cache is not None:
        settings.setdefault("cache", cache)
    if reranker.instruction is not None:
        settings["instruction"] = reranker.instruction
    api_key = os.environ[reranker.api_key_env] if reranker.api_key_env else None
    return RerankClient(
        reranker.base_url, api_key, reranker.model, dialect=reranker.dialect, **settings
    )


def _check_prices(max_cost: object, contenders: Sequence[Reranker]) -> Decimal | None:
    """The run's ``max_cost``, once every reranker has a price, all in one currency."""
    if max_cost is None:
        return None
    limit = check_max_cost(max_cost)
    currencies: dict[str, str] = {}
    for reranker in contenders:
        if reranker.client is not None:
            price = reranker.client.settings.price
        else:
            price = check_price(reranker.settings.get("price"))
        if price is None:
            raise ValueError(
                f"max_cost needs a price: reranker {reranker.name!r} has none (give it "
                "settings={'price': Price(...)}, or the --price-* options)"
            )
        currencies[reranker.name] = price.currency
    if len(set(currencies.values())) > 1:
        listed = ", ".join(f"{name} in {currency}" for name, currency in currencies.items())
        raise ValueError(f"max_cost is one amount in one currency: the prices are {listed}")
    return limit


def _write_candidates(
    path: Path, dataset: Dataset, first_stage: FirstStage, depth: int
) -> dict[tuple[str, tuple[str, ...]], list[str]]:
    """Write the rows the rerankers' batch jobs read (unless they are there already), and
    map each row's (query, texts) to its query ids."""
    keys: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    write = not path.exists()
    lines = []
    corpus = dataset.corpus
    for query_id, ranked in first_stage.candidates.items():
        query = dataset.queries[query_id]
        texts = tuple(corpus[doc] for doc, _ in ranked[:depth])
        keys.setdefault((query, texts), []).append(query_id)
        if write:  # the texts alone: a result's index is its document's place in the list
            lines.append(encode_line({"id": query_id, "query": query, "documents": texts}))
    if write:
        partial = path.with_suffix(".partial")
        partial.write_bytes(b"".join(lines))
        partial.replace(path)
    return keys


def _read_scores(path: Path, ids: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """Every query's scores in a reranker's work file, its documents named by ``ids`` (a
    result's index is the document's place among the query's candidates)."""
    scores: dict[str, dict[str, float]] = {}
    if not path.exists():
        return scores
    with path.open("r", encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):  # a line cut by a crash is left out
                continue
            row = json.loads(line)
            if row.get("results") is None:
                continue
            query_id = str(row["id"])
            names = ids[query_id]
            scores[query_id] = {
                names[result["index"]]: float(result["relevance_score"])
                for result in row["results"]
            }
    return scores


def _read_calls(path: Path) -> dict[str, list[dict[str, Any]]]:
    calls: dict[str, list[dict[str, Any]]] = {}
    if path.exists():
        with path.open("r", encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):  # a line cut by a crash is left out
                    record = json.loads(line)
                    calls.setdefault(str(record["id"]), []).append(record)
    return calls


def _work_files(reranker: Reranker, candidates: Path, work: Path) -> tuple[Path, Path]:
    """A reranker's scored rows and its calls file, named by what decides its scores."""
    digest = hashlib.sha256(
        (candidates.name + reranker.identity()).encode("utf-8", "surrogatepass")
    ).hexdigest()[:12]
    return work / f"{reranker.name}-{digest}.jsonl", work / f"{reranker.name}-{digest}.calls.jsonl"


def _scored(path: Path) -> int:
    """Queries a reranker's work file holds scored: its whole lines (its batch job stops
    at a failed query rather than write it)."""
    try:
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.endswith(b"\n"))
    except FileNotFoundError:
        return 0


async def _score(
    reranker: Reranker,
    client: RerankClient,
    candidates: Path,
    work: Path,
    keys: Mapping[tuple[str, tuple[str, ...]], list[str]],
    ids: Mapping[str, Sequence[str]],
    concurrency: int,
    progress: bool,
    progress_stream: TextIO | None,
    max_cost: Decimal | None,
) -> tuple[BatchSummary, dict[str, dict[str, float]], dict[str, list[dict[str, Any]]]]:
    """Run the reranker's batch job over the candidates: its summary, and every query's
    scores and calls (as the job answered them, or read from its files when it resumed)."""
    output, calls = _work_files(reranker, candidates, work)
    stream = progress_stream if progress_stream is not None else sys.stderr
    if progress:
        print(f"{reranker.name}:", file=stream, flush=True)
    measured = _Measured(client, keys, ids, calls)
    try:
        summary = await arun(
            candidates,
            output,
            client=cast(RerankClient, measured),
            concurrency=concurrency,
            on_error="stop",
            progress=progress,
            progress_stream=stream,
            max_cost=max_cost,
            instruction=reranker.instruction
            if reranker.client is not None and reranker.instruction is not None
            else NOT_GIVEN,
        )
    finally:
        measured.close()
    if summary.already_done:  # earlier runs' rows are in the files only
        return summary, _read_scores(output, ids), _read_calls(calls)
    return summary, measured.scores, measured.calls


def _stopped(
    reranker: Reranker,
    summary: BatchSummary,
    contenders: Sequence[Reranker],
    candidates: Path,
    work: Path,
    total: int,
) -> EvalRunError:
    """The error that ends a run a reranker could not finish, saying how far each got."""
    scored = {
        other.name: (_scored(_work_files(other, candidates, work)[0]), total)
        for other in contenders
    }
    counts = ", ".join(f"{name} {done} of {whole}" for name, (done, whole) in scored.items())
    stopped = summary.stopped
    if summary.cost_limited:
        assert stopped is not None and isinstance(stopped.error, CostLimitError)
        error = EvalRunError(
            f"stopped at max_cost at reranker {reranker.name!r} ({stopped.error}); queries "
            f"scored: {counts}. No report written: run the evaluation again to carry on "
            "(what was scored is kept)",
            scored,
            stopped.error,
        )
    else:
        reason = stopped or f"{summary.failed} queries failed"
        error = EvalRunError(
            f"reranker {reranker.name!r} stopped: {reason}. Queries scored: {counts}. What "
            "was scored is kept: run the evaluation again to carry on",
            scored,
        )
    error.__cause__ = stopped.error if stopped is not None else None
    return error


async def aevaluate(
    dataset: Dataset,
    first_stage: FirstStage,
    rerankers: Sequence[Reranker],
    out: str | os.PathLike[str],
    *,
    measures: Sequence[str] = DEFAULT_MEASURES,
    depths: Sequence[int] = DEFAULT_DEPTHS,
    top_ns: Sequence[int] = DEFAULT_TOP_NS,
    concurrency: int = DEFAULT_CONCURRENCY,
    cache: object = "auto",
    target_precision: float = 0.8,
    target_recall: float = 0.9,
    alpha: float = 0.05,
    plots: bool = True,
    progress: bool = False,
    progress_stream: TextIO | None = None,
    max_cost: Decimal | float | str | None = None,
) -> EvalReport:
    """Score the first stage alone and each reranker over the same candidates, and write
    the report to ``out``.

    Every input is checked before the first request. Each reranker scores the first
    stage's top ``max(depths)`` candidates of each judged query once, through the batch job
    (rate-limited, ``concurrency`` queries at once, resumable from ``out/work``); the
    depth, ``top_n`` and threshold sweeps are computed from those scores.

    Args:
        dataset: queries, corpus and qrels (:func:`load_beir`, :func:`load_candidates`).
        first_stage: the candidates (:func:`read_trec_run`, :func:`load_candidates`).
        rerankers: the contenders besides the first stage.
        out: the report folder: ``metrics.json``, ``runs/<contender>.trec``, ``report.md``,
            ``per_query.jsonl``, ``sweeps.json``, ``significance.json``, plots.
        measures: ir-measures names (``nDCG@10``, ``RR@10``, ``R@100``, ``P@5``, ``AP``).
        depths: candidate depths swept; the rerankers see the deepest.
        top_ns: ``top_n`` values swept.
        concurrency: queries scored at once.
        cache: where scores are kept: ``"auto"`` (``out/scores.sqlite``), a path, a
            get/set object (:class:`~rerank_integrations.RerankCache`, ``diskcache``), or
            ``None`` (then only ``out/work`` makes a rerun free).
        target_precision: the precision a threshold is suggested for.
        target_recall: the recall a threshold is suggested for.
        alpha: the significance level, after Holm–Bonferroni's correction.
        plots: draw the plots (needs matplotlib).
        progress: the batch job's progress on ``progress_stream`` (default stderr).
        max_cost: the most this run may spend, over all its rerankers together, at their
            clients' ``price`` (each reranker needs one, all in one currency): a query
            whose estimated cost would take the run past it is not sent, and the run stops
            there (as the batch job's ``max_cost``) with :class:`EvalRunError`
            (``cost_limited``, ``scored``), writing no report. What was scored is kept; a
            rerun spends its own ``max_cost`` on what is left and finishes.

    Raises:
        EvalInputError: inputs that disagree (before any request).
        ValueError: ``max_cost`` without a price, or prices in different currencies
            (before any request).
        EvalRunError: a reranker could not score every query, or the run stopped at
            ``max_cost`` (run again to carry on).
    """
    parsed = parse_measures(measures)
    names = [str(measure) for measure in parsed]
    checked = check_inputs(dataset, first_stage)
    contenders = _check_rerankers(rerankers)
    wanted = _positive(list(depths), "depths")
    swept_top = _positive(list(top_ns), "top_ns")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number of at least 1, got {concurrency!r}")
    budget = _check_prices(max_cost, contenders)
    depth = min(max(wanted), checked.depth)
    swept = sorted({min(value, depth) for value in wanted})
    folder = _report_folder(out)
    store: ScoreStore | None = None
    if isinstance(cache, (str, os.PathLike)):
        path = folder / "scores.sqlite" if cache == "auto" else Path(cache)
        store = ScoreStore(path, batch=_STORE_BATCH)
        cache = store
    clients: dict[str, RerankClient] = {}
    try:
        for reranker in contenders:  # every setting checked before the first request
            clients[reranker.name] = reranker.client or _client_for(reranker, cache, concurrency)
        work = folder / "work"
        work.mkdir(parents=True, exist_ok=True)
        listing = json.dumps(
            [[q, [d for d, _ in r[:depth]]] for q, r in checked.candidates.items()]
        )
        candidates = work / (
            "candidates-" + hashlib.sha256(listing.encode()).hexdigest()[:12] + ".jsonl"
        )
        keys = _write_candidates(candidates, dataset, checked, depth)
        ids = {
            query: [doc for doc, _ in ranked[:depth]]
            for query, ranked in checked.candidates.items()
        }
        scores: dict[str, dict[str, dict[str, float]]] = {}
        calls: dict[str, dict[str, list[dict[str, Any]]]] = {}
        sent = 0
        spent = Decimal(0)
        started = time.perf_counter()
        for reranker in contenders:
            summary, scored, recorded = await _score(
                reranker,
                clients[reranker.name],
                candidates,
                work,
                keys,
                ids,
                concurrency,
                progress,
                progress_stream,
                None if budget is None else max(budget - spent, Decimal(0)),
            )
            sent += summary.requests
            spent += summary.cost or 0
            if not summary.ok:
                raise _stopped(
                    reranker, summary, contenders, candidates, work, len(checked.candidates)
                )
            scores[reranker.name] = scored
            calls[reranker.name] = recorded
            if store is not None:
                store.flush()
        scoring = time.perf_counter() - started
    finally:
        for reranker in contenders:
            client = clients.get(reranker.name)
            if client is not None and reranker.client is None:
                await client.aclose()
        if store is not None:
            store.close()
    return build_report(
        dataset,
        checked,
        scores,
        calls,
        folder,
        measures=parsed,
        names=names,
        depth=depth,
        depths=swept,
        top_ns=swept_top,
        target_precision=target_precision,
        target_recall=target_recall,
        alpha=alpha,
        plots=plots,
        requests_sent=sent,
        scoring_seconds=scoring,
    )


def evaluate(
    dataset: Dataset,
    first_stage: FirstStage,
    rerankers: Sequence[Reranker],
    out: str | os.PathLike[str],
    **options: Any,
) -> EvalReport:
    """The synchronous twin of :func:`aevaluate`, with the same options; where an event
    loop already runs (a notebook), it runs on a loop in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(aevaluate(dataset, first_stage, rerankers, out, **options))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rerank-eval") as pool:
        return pool.submit(
            asyncio.run, aevaluate(dataset, first_stage, rerankers, out, **options)
        ).result()
