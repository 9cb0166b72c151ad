"""The features' scenarios: long documents chunked, limits learned through 413s, the result
cache, and chunking's memory. Each compares the package's client with the feature on
against a reference in the same run, by the method of the first five: the same server
process, untimed warm-up calls, contenders timed in turns in shuffled order, medians."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .contenders import Contender, SessionOptions, get_contender
from .corpus import QUERY, make_documents, payload_size
from .measure import TICK, Sample, time_async_call, time_async_call_stalls, time_sync_call
from .registry import Check, Context, Scenario, register
from .report import MEMORY_TARGET, markdown_row, ratio_of, seconds, times, verdict
from .scenarios import (
    Bench,
    Entry,
    Measurement,
    MemoryCall,
    ScenarioResult,
    measure_memory,
)
from .server import ServerProcess

__all__ = [
    "SIZES",
    "FeatureSizes",
    "Pair",
    "feature_contender",
    "paired_table",
    "paired_verdicts",
    "timed",
]

_TIMEOUT = 120.0

#: Scenario 6: the most wall time of a chunked call, against bare httpx sending its windows.
CHUNK_TARGET = 1.2
#: Scenario 6: the longest the async first call may keep other tasks of its loop waiting.
STALL_TARGET = 0.010
#: Scenario 7: the most wall time with the body limit unknown, against the limit set.
LEARN_TARGETS = {"first": 1.5, "later": 1.05}


@dataclass(frozen=True)
class FeatureSizes:
    """The sizes of the features' scenarios.

    Attributes:
        chunk_documents: documents per call in scenarios 6 and 9.
        chunk_words: words per document there.
        chunk_tokens: the server's (and the client's) ``max_tokens_per_document``.
        chunk_calls: timed calls per contender per round in scenario 6.
        learn_documents: documents per call in scenario 7.
        learn_words: words per document there.
        learn_bytes: the server's body limit there.
        learn_calls: timed calls per contender per round in scenario 7.
        cache_calls: calls in one load of scenario 8.
        cache_documents: documents per call there.
        cache_repeated: the share of those calls that repeat an earlier query.
    """

    chunk_documents: int
    chunk_words: int
    chunk_tokens: int
    chunk_calls: int
    learn_documents: int
    learn_words: int
    learn_bytes: int
    learn_calls: int
    cache_calls: int
    cache_documents: int
    cache_repeated: float = 0.8


#: By the name of the benchmark's scale.
SIZES = {
    "full": FeatureSizes(1000, 5000, 512, 1, 5000, 240, 1 << 20, 5, 1000, 50),
    "tiny": FeatureSizes(12, 600, 128, 1, 300, 60, 32 << 10, 1, 40, 5),
}


def _chosen(context: Context, mode: str) -> bool:
    """Whether the command line chose the package's client in ``mode``."""
    return any(item.key == f"client-{mode}" for item in context.contenders)


def _modes(context: Context) -> list[str]:
    return [mode for mode in ("sync", "async") if _chosen(context, mode)]


def _client(options: SessionOptions, **settings: Any) -> Any:
    from rerank_integrations import RerankClient

    return RerankClient(base_url=options.rerank_url, timeout=_TIMEOUT, **settings)


@dataclass
class Pair:
    """A scenario's rows in pairs: each of the package's rows (by key) against its
    reference row, with the most its wall time may be against it (``limit_of``; none: a
    reading for context) and the words of that target (``text_of``); ``timed`` is what one
    timing covers, for the table's header."""

    reference_of: dict[str, str] = field(default_factory=dict)
    limit_of: dict[str, float] = field(default_factory=dict)
    text_of: dict[str, str] = field(default_factory=dict)
    timed: str = "one call"


# -- sessions ---------------------------------------------------------------------------------


class _Client:
    """``RerankClient.rerank`` / ``arerank`` with settings; with ``fresh``, every call is
    the first of a new client (nothing learned, no connection open)."""

    def __init__(self, options: SessionOptions, fresh: bool = False, **settings: Any) -> None:
        self._options, self._settings, self._fresh = options, settings, fresh
        self._top_n = options.top_n
        self._kept = None if fresh else _client(options, **settings)
        self.requests = 0

    def call(self, inputs: list[str]) -> Any:
        client = _client(self._options, **self._settings) if self._fresh else self._kept
        before = client.stats().requests
        try:
            return client.rerank(QUERY, inputs, top_n=self._top_n)
        finally:
            self.requests = client.stats().requests - before
            if self._fresh:
                client.close()

    async def acall(self, inputs: list[str]) -> Any:
        client = _client(self._options, **self._settings) if self._fresh else self._kept
        before = client.stats().requests
        try:
            return await client.arerank(QUERY, inputs, top_n=self._top_n)
        finally:
            self.requests = client.stats().requests - before
            if self._fresh:
                await client.aclose()

    def close(self) -> None:
        if self._kept is not None:
            self._kept.close()

    async def aclose(self) -> None:
        if self._kept is not None:
            await self._kept.aclose()


class _Windows:
    """Bare httpx posting the very windows the client would send, all at once (threads, or
    gather), their bodies split and encoded before the timing starts; the answers decoded
    and each document given its best window's score (a lower bound, not a client)."""

    def __init__(self, options: SessionOptions, mode: str, **settings: Any) -> None:
        import httpx

        self._options, self._settings = options, settings
        self._top_n = options.top_n
        self._mode = mode
        self._bodies: dict[int, tuple[list[bytes], list[list[int]]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        if mode == "sync":
            self._sync = httpx.Client(timeout=_TIMEOUT)
        else:
            self._async = httpx.AsyncClient(timeout=_TIMEOUT)

    def _prepared(self, inputs: list[str]) -> tuple[list[bytes], list[list[int]]]:
        key = id(inputs)
        if key not in self._bodies:  # the first (untimed, warm-up) call splits and encodes
            from rerank_integrations._call import start_call
            from rerank_integrations._codec import encode_request
            from rerank_integrations._types import NOT_GIVEN

            client = _client(self._options, **self._settings)
            settings, connection = client.settings, client._connection
            call = start_call(
                settings, connection, QUERY, inputs, self._top_n, NOT_GIVEN, NOT_GIVEN, None, {}
            )
            if call.stream is not None:  # cut as the batches are asked for: all of them here
                while call.stream.next_batch() is not None:
                    pass
                call = dataclasses.replace(call, plan=call.stream.plan)
            plan = call.plan
            assert plan.parts is not None, "no document was long enough to be cut"
            bodies = [
                encode_request(settings.dialect, plan, batch, None, {}, connection.path)
                for batch in plan.batches
            ]
            owners = [
                [plan.parts[batch.start + local][0][0] for local in range(len(batch.texts))]
                for batch in plan.batches
            ]
            self._bodies[key] = (bodies, owners)
            client.close()
        return self._bodies[key]

    def _merged(self, answers: Sequence[Any], owners: list[list[int]]) -> dict[str, Any]:
        best: dict[int, float] = {}
        for answer, owner in zip(answers, owners, strict=True):
            for item in answer["results"]:
                document, score = owner[item["index"]], item["relevance_score"]
                if score > best.get(document, float("-inf")):
                    best[document] = score
        top = heapq.nlargest(self._top_n or len(best), best.items(), key=lambda pair: pair[1])
        return {"results": [{"index": index, "relevance_score": score} for index, score in top]}

    def call(self, inputs: list[str]) -> Any:
        bodies, owners = self._prepared(inputs)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(bodies))

        def post(body: bytes) -> Any:
            headers = {"content-type": "application/json"}
            return self._sync.post(self._options.rerank_url, content=body, headers=headers).json()

        return self._merged(list(self._pool.map(post, bodies)), owners)

    async def acall(self, inputs: list[str]) -> Any:
        bodies, owners = self._prepared(inputs)

        async def post(body: bytes) -> Any:
            headers = {"content-type": "application/json"}
            response = await self._async.post(
                self._options.rerank_url, content=body, headers=headers
            )
            return response.json()

        return self._merged(await asyncio.gather(*map(post, bodies)), owners)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()


class _Repeated:
    """A load of many calls of one new client (a new cache, with ``cache``), in which most
    queries repeat an earlier one; returns the last answer and counts the requests sent."""

    def __init__(self, options: SessionOptions, queries: Sequence[str], cache: bool) -> None:
        self._options, self._queries, self._cache = options, queries, cache
        self._top_n = options.top_n
        self.requests = 0

    def _new(self) -> Any:
        from rerank_integrations import RerankCache

        return _client(self._options, cache=RerankCache() if self._cache else None)

    def call(self, inputs: list[str]) -> Any:
        with self._new() as client:
            for query in self._queries:
                answer = client.rerank(query, inputs, top_n=self._top_n)
            self.requests = client.stats().requests
        return answer

    async def acall(self, inputs: list[str]) -> Any:
        async with self._new() as client:
            for query in self._queries:
                answer = await client.arerank(query, inputs, top_n=self._top_n)
            self.requests = client.stats().requests
        return answer

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


# -- shared: contenders, timing, verdicts, tables ---------------------------------------------


def feature_contender(
    key: str, label: str, mode: str, opener: Callable[[SessionOptions], Any], reference: bool
) -> Contender:
    """A row of a feature's scenario: the package's client in some configuration, or (with
    ``reference``) what it is measured against."""
    return Contender(
        key,
        label,
        "floor" if reference else "ours",
        mode,
        "strings",
        ("rerank_integrations",),
        "base_url=.../v1/rerank",
        opener,
        role="reference",
    )


def timed(bench: Bench, *counts: str) -> Callable[[Entry], Sample]:
    """A timer of one call that also records what the session counted (``requests``)."""

    def timer(entry: Entry) -> Sample:
        if entry.contender.mode == "sync":
            sample = time_sync_call(entry.session, entry.inputs)
        else:
            sample = time_async_call(bench.loop, entry.session, entry.inputs)
        for name in counts:
            entry.extra.setdefault(name, []).append(float(getattr(entry.session, name)))
        return sample

    return timer


def timed_with_stalls(bench: Bench, *counts: str) -> Callable[[Entry], Sample]:
    """:func:`timed`, async calls also measured for the longest stall of their loop (a
    ticker task beside them, :func:`~benchmarks.measure.time_async_call_stalls`), kept as
    ``stall`` in seconds."""
    plain = timed(bench, *counts)

    def timer(entry: Entry) -> Sample:
        if entry.contender.mode == "sync":
            return plain(entry)
        sample, stall = time_async_call_stalls(bench.loop, entry.session, entry.inputs)
        entry.extra.setdefault("stall", []).append(stall)
        for name in counts:
            entry.extra.setdefault(name, []).append(float(getattr(entry.session, name)))
        return sample

    return timer


def paired_verdicts(result: ScenarioResult, pairs: Pair) -> tuple[dict[str, str], list[Check]]:
    """Each of the package's rows against its reference row, by wall time; one check per
    target text, the worst row of it shown."""
    by_key = {item.contender.key: item for item in result.measurements}
    verdicts: dict[str, str] = {}
    worst: dict[str, tuple[float, str]] = {}
    for key, reference_key in pairs.reference_of.items():
        item, reference = by_key.get(key), by_key.get(reference_key)
        if item is None:
            continue
        text, limit = pairs.text_of[key], pairs.limit_of.get(key)
        ratio = ratio_of(item.wall, reference.wall if reference else None)
        label = item.contender.label
        if ratio is None:
            verdicts[key] = f"**missed**: {item.error or 'no reference measured'}"
            worst[text] = (float("inf"), label)
            continue
        if text not in worst or ratio > worst[text][0]:
            worst[text] = (ratio, label)
        if limit is None:
            verdicts[key] = f"{ratio:.2f}x"
        else:
            verdicts[key] = "met" if ratio <= limit else f"**missed**: {ratio:.2f}x > {limit:.2f}x"
    checks = []
    for key, text in pairs.text_of.items():
        if text in (check.target for check in checks):
            continue
        limit = pairs.limit_of.get(key)
        found = worst.get(text)
        if found is None:
            checks.append(Check(result.number, text, "nothing measured", None))
            continue
        ratio, label = found
        shown = f"failed ({label})" if ratio == float("inf") else f"{ratio:.2f}x ({label})"
        met = ratio <= limit if limit is not None else ratio < 1
        checks.append(Check(result.number, text, shown, met, informational=limit is None))
    return verdicts, checks


def _reference_of(result: ScenarioResult, pairs: Pair, item: Measurement) -> Measurement | None:
    key = pairs.reference_of.get(item.contender.key)
    return next((other for other in result.measurements if other.contender.key == key), None)


def paired_table(pairs: Pair) -> Callable[[ScenarioResult, dict[str, str]], list[str]]:
    """The table of a paired scenario: wall, CPU and requests, each row against its
    reference."""

    def table(result: ScenarioResult, verdicts: dict[str, str]) -> list[str]:
        counted = any("requests" in item.extra for item in result.measurements)
        stalled = any("stall" in item.extra for item in result.measurements)
        header = ["Contender", "Mode", f"Wall, {pairs.timed}", "× reference", f"CPU, {pairs.timed}"]
        align = ["l", "l", "r", "r", "r"]
        if counted:
            header += ["Requests", "× reference"]
            align += ["r", "r"]
        if stalled:
            header.append("Longest loop stall")
            align.append("r")
        header.append("")
        align.append("l")
        lines = [
            markdown_row(header),
            "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|",
        ]
        for item in result.measurements:
            reference = _reference_of(result, pairs, item)
            ratio = ratio_of(item.wall, reference.wall if reference else None)
            cells = [
                item.contender.label,
                item.contender.mode,
                seconds(item.wall),
                "1.00x" if item.contender.group == "floor" else times(ratio),
                seconds(item.cpu),
            ]
            if counted:
                requests = item.extra.get("requests")
                theirs = reference.extra.get("requests") if reference else None
                cells.append("—" if requests is None else f"{requests:,.0f}")
                cells.append(
                    "1.00x"
                    if item.contender.group == "floor"
                    else times(ratio_of(requests, theirs))
                )
            if stalled:
                stall = item.extra.get("stall")
                cells.append("—" if stall is None else f"{stall * 1000:.1f} ms")
            cells.append(verdict(item, verdicts))
            lines.append(markdown_row(cells))
        return lines

    return table


# -- scenario 6: long documents, chunked ------------------------------------------------------

_CHUNK = Pair(
    reference_of={
        f"chunk-{when}-{mode}": f"windows-{mode}"
        for mode in ("sync", "async")
        for when in ("first", "later")
    },
    limit_of={
        f"chunk-{when}-{mode}": CHUNK_TARGET
        for mode in ("sync", "async")
        for when in ("first", "later")
    },
    text_of={
        f"chunk-{when}-{mode}": f"{mode}, {when} call{'s' if when == 'later' else ''}: wall "
        f"time ≤ {CHUNK_TARGET:g}x the windows sent bare"
        for mode in ("sync", "async")
        for when in ("first", "later")
    },
)


def _chunk_contenders(context: Context, sizes: FeatureSizes) -> list[Contender]:
    settings = {"max_tokens_per_document": sizes.chunk_tokens, "long_documents": "chunk"}
    chosen: list[Contender] = []
    for mode in _modes(context):
        method = "rerank" if mode == "sync" else "arerank"
        chosen.append(
            feature_contender(
                f"windows-{mode}",
                "httpx, the same windows pre-split and pre-encoded, all at once "
                + ("(threads)" if mode == "sync" else "(gather)"),
                mode,
                lambda options, mode=mode: _Windows(options, mode, **settings),
                reference=True,
            )
        )
        for when, fresh in (("first", True), ("later", False)):
            what = "first call of a new client" if fresh else "later calls of one client"
            chosen.append(
                feature_contender(
                    f"chunk-{when}-{mode}",
                    f"RerankClient.{method}, long_documents='chunk': {what}",
                    mode,
                    lambda options, fresh=fresh: _Client(options, fresh=fresh, **settings),
                    reference=False,
                )
            )
    return chosen


def _run_chunking(context: Context) -> ScenarioResult:
    sizes = SIZES[context.scale.name]
    top_n = context.scale.top_n
    texts = make_documents(sizes.chunk_documents, sizes.chunk_words, seed=6)
    result = ScenarioResult(
        6,
        f"{sizes.chunk_documents:,} documents of {sizes.chunk_words:,} words, chunked against "
        f"a {sizes.chunk_tokens}-token limit",
        f"server limit {sizes.chunk_tokens} tokens a document (query included) and 1,000 "
        f"documents a request; the client has max_tokens_per_document={sizes.chunk_tokens}, "
        "long_documents='chunk' and its default chunk_overlap; the reference posts the "
        "very windows the client sends, split and encoded before the timing starts; a first "
        "call is made by a new client each time, later calls by one client warmed up; "
        f"{sizes.chunk_calls} timed call(s) per contender per round, taken in turns, after "
        "one warm-up call",
    )
    chosen = _chunk_contenders(context, sizes)
    with ServerProcess(max_documents=1000, max_tokens_per_document=sizes.chunk_tokens) as server:
        bench = Bench(chosen, SessionOptions(server.base_url, top_n), lambda _: texts, top_n)
        bench.warm_up(1)
        bench.rounds(context.rounds, sizes.chunk_calls, timed_with_stalls(bench), seed=6)
        result.measurements = bench.finish()
    result.notes.append(
        "a client keeps where it cut each of the last 4,096 long documents (by a digest of "
        "the text): a new client's first call cuts every document, later calls of one "
        "client find the cuts of the call before"
    )
    result.notes.append(
        "each async call is timed with a ticker task on the same event loop, sleeping "
        f"{TICK * 1000:g} ms at a time: its longest stall is how late the ticker woke past "
        "its tick, the median over the rounds of each call's longest (the reference's shows "
        "what the machine and the wire cause alone)"
    )
    return result


def _chunk_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    """The wall-time pairs, and the async first call's longest stall of its loop."""
    verdicts, checks = paired_verdicts(result, _CHUNK)
    by_key = {item.contender.key: item for item in result.measurements}
    item, reference = by_key.get("chunk-first-async"), by_key.get("windows-async")
    text = f"async, first call: longest event-loop stall < {STALL_TARGET * 1000:g} ms"
    stall = None if item is None else item.extra.get("stall")
    if stall is None:
        if item is not None:
            checks.append(Check(result.number, text, "nothing measured", None))
        return verdicts, checks
    theirs = None if reference is None else reference.extra.get("stall")
    shown = f"{stall * 1000:.1f} ms ({item.contender.label})"
    if theirs is not None:
        shown += f"; the reference's {theirs * 1000:.1f} ms"
    checks.append(Check(result.number, text, shown, stall < STALL_TARGET))
    return verdicts, checks


# -- scenario 7: a body limit learned through 413s --------------------------------------------

_LEARN = Pair(
    reference_of={
        f"unknown-{when}-{mode}": f"known-{when}-{mode}"
        for mode in ("sync", "async")
        for when in LEARN_TARGETS
    },
    limit_of={
        f"unknown-{when}-{mode}": target
        for mode in ("sync", "async")
        for when, target in LEARN_TARGETS.items()
    },
    text_of={
        f"unknown-{when}-{mode}": f"{mode}, {when} call{'s' if when == 'later' else ''}: wall "
        f"time ≤ {target:g}x the same call with the limit set"
        for mode in ("sync", "async")
        for when, target in LEARN_TARGETS.items()
    },
)


def _learn_contenders(context: Context, sizes: FeatureSizes) -> list[Contender]:
    limit = sizes.learn_bytes
    chosen: list[Contender] = []
    for mode in _modes(context):
        method = "rerank" if mode == "sync" else "arerank"
        for when, fresh in (("first", True), ("later", False)):
            known, unknown = f"known-{when}-{mode}", f"unknown-{when}-{mode}"
            what = "first call of a new client" if fresh else "later calls of one client"
            chosen += [
                feature_contender(
                    known,
                    f"RerankClient.{method}, max_request_bytes={limit:,}: {what}",
                    mode,
                    lambda options, fresh=fresh: _Client(
                        options, fresh=fresh, max_request_bytes=limit
                    ),
                    reference=True,
                ),
                feature_contender(
                    unknown,
                    f"RerankClient.{method}, limit unknown: {what}",
                    mode,
                    lambda options, fresh=fresh: _Client(options, fresh=fresh),
                    reference=False,
                ),
            ]
    return chosen


def _run_learning(context: Context) -> ScenarioResult:
    sizes = SIZES[context.scale.name]
    top_n = context.scale.top_n
    texts = make_documents(sizes.learn_documents, sizes.learn_words, seed=7)
    result = ScenarioResult(
        7,
        f"{sizes.learn_documents:,} documents of {sizes.learn_words} words against an unknown "
        f"{sizes.learn_bytes:,}-byte body limit, learned through 413s",
        f"server body limit {sizes.learn_bytes:,} bytes (nginx's 413 page past it) and 1,000 "
        "documents a request; the client's default batches (1,000 documents) are larger; the "
        "reference is the same call of a client told max_request_bytes; a first call is "
        "made by a new client each time (connections opened, nothing learned), later calls "
        f"by one client warmed up; {sizes.learn_calls} timed call(s) per contender per "
        "round, taken in turns, after one warm-up call",
    )
    chosen = _learn_contenders(context, sizes)
    with ServerProcess(max_documents=1000, max_request_bytes=sizes.learn_bytes) as server:
        bench = Bench(chosen, SessionOptions(server.base_url, top_n), lambda _: texts, top_n)
        bench.warm_up(1)
        bench.rounds(context.rounds, sizes.learn_calls, timed(bench, "requests"), seed=7)
        result.measurements = bench.finish()
    return result


# -- scenario 8: the result cache -------------------------------------------------------------

_CACHE = Pair(
    reference_of={f"cache-on-{mode}": f"cache-off-{mode}" for mode in ("sync", "async")},
    text_of={
        f"cache-on-{mode}": f"{mode}, cache on: wall time of the load against cache off "
        "(context, not a target)"
        for mode in ("sync", "async")
    },
    timed="whole load",
)


def _queries(calls: int, repeated: float, seed: int = 8) -> list[str]:
    """``calls`` queries of which ``repeated`` (a share) repeat one asked before."""
    rng = random.Random(seed)
    fresh = max(1, round(calls * (1 - repeated)))
    kinds = [True] * (fresh - 1) + [False] * (calls - fresh)
    rng.shuffle(kinds)
    asked = [f"{QUERY} (variant 0)"]
    queries = [asked[0]]
    for new in kinds:
        if new:
            asked.append(f"{QUERY} (variant {len(asked)})")
            queries.append(asked[-1])
        else:
            queries.append(rng.choice(asked))
    return queries


def _cache_contenders(context: Context, sizes: FeatureSizes) -> list[Contender]:
    queries = _queries(sizes.cache_calls, sizes.cache_repeated)
    chosen: list[Contender] = []
    for mode in _modes(context):
        method = "rerank" if mode == "sync" else "arerank"
        off, on = f"cache-off-{mode}", f"cache-on-{mode}"
        chosen += [
            feature_contender(
                off,
                f"RerankClient.{method}, no cache",
                mode,
                lambda options: _Repeated(options, queries, cache=False),
                reference=True,
            ),
            feature_contender(
                on,
                f"RerankClient.{method}, cache=RerankCache()",
                mode,
                lambda options: _Repeated(options, queries, cache=True),
                reference=False,
            ),
        ]
    return chosen


def _run_cache(context: Context) -> ScenarioResult:
    sizes = SIZES[context.scale.name]
    top_n = context.scale.top_n
    texts = make_documents(sizes.cache_documents, context.scale.words, seed=8)
    result = ScenarioResult(
        8,
        f"{sizes.cache_calls:,} calls of {sizes.cache_documents} documents, "
        f"{sizes.cache_repeated:.0%} of them repeating an earlier query",
        "one load is every call in turn on one new client (with a new, empty RerankCache "
        "when the cache is on), the same documents each time; server: cheap scores, no "
        "added latency; wall and CPU are the whole load's, requests those the client sent "
        "(client.stats().requests); one warm-up load, then one timed load per contender per "
        "round, taken in turns",
    )
    chosen = _cache_contenders(context, sizes)
    with ServerProcess(max_documents=1000) as server:
        bench = Bench(chosen, SessionOptions(server.base_url, top_n), lambda _: texts, top_n)
        bench.warm_up(1)
        bench.rounds(context.rounds, 1, timed(bench, "requests"), seed=8)
        result.measurements = bench.finish()
    result.notes.append(
        "with the cache, a call whose query was asked before finds every score and sends "
        "nothing; a new query sends its documents and asks for every score (not only the "
        "best top_n), so that all of them can be kept"
    )
    return result


# -- scenario 9: chunking's memory ------------------------------------------------------------


def _run_chunk_memory(context: Context) -> ScenarioResult:
    sizes = SIZES[context.scale.name]
    top_n = context.scale.top_n
    texts = make_documents(sizes.chunk_documents, sizes.chunk_words)
    repeats = max(1, min(context.rounds, 3))
    call = MemoryCall(
        sizes.chunk_documents,
        sizes.chunk_words,
        top_n,
        client_settings={"max_tokens_per_document": sizes.chunk_tokens, "long_documents": "chunk"},
        server={"max_documents": 1000, "max_tokens_per_document": sizes.chunk_tokens},
    )
    result = ScenarioResult(
        9,
        f"{sizes.chunk_documents:,} documents of {sizes.chunk_words:,} words in one call, chunked",
        f"scenario 5's method (one fresh process per contender and repeat, {repeats} each, "
        "median; the kernel's high-water mark during the call minus the RSS before it); "
        f"server and client as in scenario 6 ({sizes.chunk_tokens}-token limit, "
        "long_documents='chunk'); the payload is the JSON that carries every whole document "
        "in one body",
        payload=payload_size(texts, top_n),
    )
    chosen = [get_contender(f"client-{mode}") for mode in _modes(context)]
    result.measurements = measure_memory(call, chosen, repeats, context.memory_workers)
    return result


def _memory_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    verdicts: dict[str, str] = {}
    checks: list[Check] = []
    for item in result.measurements:
        ratio = ratio_of(item.growth, result.payload)
        text = f"{item.contender.mode}: peak RSS growth ≤ {MEMORY_TARGET:g}x the payload"
        if ratio is None:
            verdicts[item.contender.key] = f"**missed**: {item.error or 'nothing measured'}"
            checks.append(Check(result.number, text, f"failed ({item.contender.label})", False))
            continue
        met = ratio <= MEMORY_TARGET
        verdicts[item.contender.key] = (
            "met" if met else f"**missed**: {ratio:.2f}x > {MEMORY_TARGET:.2f}x"
        )
        checks.append(Check(result.number, text, f"{ratio:.2f}x ({item.contender.label})", met))
    return verdicts, checks


def _memory_table(result: ScenarioResult, verdicts: dict[str, str]) -> list[str]:
    payload = result.payload or 0
    lines = [
        markdown_row(
            ["Contender", "Mode", "Peak RSS growth", f"× payload ({payload / 2**20:.1f} MiB)", ""]
        ),
        "|:---|:---|---:|---:|:---|",
    ]
    for item in result.measurements:
        growth = "—" if item.growth is None else f"{item.growth / 2**20:.1f} MiB"
        ratio = times(ratio_of(item.growth, result.payload))
        label = f"{item.contender.label}, long_documents='chunk'"
        lines.append(
            markdown_row(
                [label, item.contender.mode, growth, ratio, verdicts.get(item.contender.key, "")]
            )
        )
    return lines


register(
    Scenario(
        6,
        "chunking",
        _run_chunking,
        _chunk_verdicts,
        paired_table(_CHUNK),
        reading="Scenario 6's reference is bare httpx posting the very windows the client "
        "sends (its own plan, encoded beforehand), all at once, then keeping each "
        "document's best window: what chunking costs on the wire, with none of the cutting.",
    )
)
register(
    Scenario(
        7,
        "limits learned",
        _run_learning,
        lambda result: paired_verdicts(result, _LEARN),
        paired_table(_LEARN),
        reading="Scenario 7 compares a client that does not know the server's body limit "
        "(it learns it from 413s, splitting what was refused) with the same call of a client "
        "told the limit: on a new client's first call, and on later calls of one client.",
    )
)
register(
    Scenario(
        8,
        "cache",
        _run_cache,
        lambda result: paired_verdicts(result, _CACHE),
        paired_table(_CACHE),
        reading="Scenario 8's ratios are the cache's against no cache, for a whole load of "
        "calls: wall time and requests sent.",
    )
)
register(
    Scenario(
        9,
        "chunking memory",
        _run_chunk_memory,
        _memory_verdicts,
        _memory_table,
        reading="Scenario 9 is scenario 5's memory measure on scenario 6's chunked call.",
    )
)
