"""Scenarios 13 to 15, 17 and 18: the newer ways in, each against what a user would write
without it.

13: ``RerankRetriever`` (LCEL ``invoke``/``ainvoke``) against the same retrieval and the
compressor called directly; 14: an agent with ``RerankMiddleware`` against the same agent
with the retrieve-and-rerank middleware written by hand; 15: cold start, a new process that
imports, builds a client and makes one call, against the same with bare httpx; 17: an
instruction against none; 18: cost accounting (a ``Price``) against none.
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from typing import Any

from .contenders import Contender, SessionOptions, _our_settings
from .corpus import QUERY, make_documents
from .features import Pair, feature_contender, paired_table, paired_verdicts, timed
from .measure import Sample
from .registry import Check, Context, Scenario, register
from .report import markdown_row, ratio_of, seconds, times
from .scenarios import Bench, Measurement, ScenarioResult
from .server import ServerProcess

__all__ = ["COLD_DOCUMENTS", "COST_TARGET", "PATH_TARGET"]

#: Scenarios 13 and 14: the most wall time against the same work written by hand.
PATH_TARGET = 1.05
#: Scenario 18: the most wall and CPU time with a price set, against the same call without.
COST_TARGET = 1.02
#: Scenario 15: documents of the one call a new process makes.
COLD_DOCUMENTS = 20


@dataclass(frozen=True)
class PathSizes:
    """Documents per call (13, 14) and timed calls per contender per round."""

    documents: int
    calls: int
    cold_runs: int


SIZES = {"full": PathSizes(100, 20, 5), "tiny": PathSizes(10, 2, 1)}


def _modes(context: Context) -> list[str]:
    keys = {item.key for item in context.contenders}
    return [mode for mode in ("sync", "async") if f"client-{mode}" in keys]


def _compressor(options: SessionOptions) -> Any:
    from rerank_integrations.langchain import RerankCompressor

    return RerankCompressor(top_n=options.top_n, **_our_settings(options))


def _retriever_of(documents: list[Any]) -> Any:
    """A retriever that returns ``documents`` (the call's inputs) for any query."""
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    class Given(BaseRetriever):
        documents: list[Document]

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            return self.documents

    return Given(documents=documents)


class _Base:
    """Holds the compressor; ``inputs`` are the documents the base retriever returns."""

    def __init__(self, options: SessionOptions) -> None:
        self.compressor = _compressor(options)
        self.base = _retriever_of([])

    def close(self) -> None:
        self.compressor.rerank_client.close()

    async def aclose(self) -> None:
        await self.compressor.rerank_client.aclose()


# -- scenario 13: RerankRetriever against the compressor called directly ---------------------


class _ByHand(_Base):
    """The base retriever's documents, then ``compress_documents``: no LCEL run of ours."""

    def call(self, inputs: Any) -> Any:
        self.base.documents = inputs
        return self.compressor.compress_documents(self.base.invoke(QUERY), QUERY)

    async def acall(self, inputs: Any) -> Any:
        self.base.documents = inputs
        return await self.compressor.acompress_documents(await self.base.ainvoke(QUERY), QUERY)


class _Retriever(_Base):
    """``RerankRetriever(base_retriever=..., reranker=...).invoke`` / ``ainvoke``."""

    def __init__(self, options: SessionOptions) -> None:
        super().__init__(options)
        self.retriever = self.compressor.wrap(self.base)

    def call(self, inputs: Any) -> Any:
        self.base.documents = inputs
        return self.retriever.invoke(QUERY)

    async def acall(self, inputs: Any) -> Any:
        self.base.documents = inputs
        return await self.retriever.ainvoke(QUERY)


def _langchain_contender(
    key: str, label: str, mode: str, opener: Any, reference: bool, modules: tuple[str, ...]
) -> Contender:
    contender = feature_contender(key, label, mode, opener, reference)
    return Contender(
        contender.key,
        contender.label,
        contender.group,
        contender.mode,
        "langchain",
        modules,
        contender.endpoint,
        opener,
        role="reference" if reference else contender.role,
    )


def _pair(prefix: str, what: str) -> Pair:
    return Pair(
        reference_of={f"{prefix}-{mode}": f"{prefix}-hand-{mode}" for mode in ("sync", "async")},
        limit_of={f"{prefix}-{mode}": PATH_TARGET for mode in ("sync", "async")},
        text_of={
            f"{prefix}-{mode}": f"{mode}: wall time ≤ {PATH_TARGET:g}x {what}"
            for mode in ("sync", "async")
        },
    )


_RETRIEVER = _pair("retriever", "the compressor called directly")


def _run_paths(
    context: Context, number: int, title: str, setup: str, chosen: list[Contender]
) -> ScenarioResult:
    sizes = SIZES[context.scale.name]
    top_n = context.scale.top_n
    texts = make_documents(sizes.documents, context.scale.words, seed=number)
    result = ScenarioResult(number, title, setup)
    with ServerProcess(max_documents=1000) as server:
        bench = Bench(chosen, SessionOptions(server.base_url, top_n), lambda _: texts, top_n)
        bench.warm_up(context.scale.warm_up)
        bench.rounds(context.rounds, sizes.calls, timed(bench), seed=number)
        result.measurements = bench.finish()
    return result


def _run_retriever(context: Context) -> ScenarioResult:
    chosen: list[Contender] = []
    modules = ("rerank_integrations", "langchain_core")
    for mode in _modes(context):
        verb = "invoke" if mode == "sync" else "ainvoke"
        method = "compress_documents" if mode == "sync" else "acompress_documents"
        chosen += [
            _langchain_contender(
                f"retriever-hand-{mode}",
                f"base retriever {verb}, then RerankCompressor.{method}",
                mode,
                _ByHand,
                True,
                modules,
            ),
            _langchain_contender(
                f"retriever-{mode}",
                f"RerankRetriever.{verb} (LCEL)",
                mode,
                _Retriever,
                False,
                modules,
            ),
        ]
    sizes = SIZES[context.scale.name]
    return _run_paths(
        context,
        13,
        f"RerankRetriever against the compressor called directly, {sizes.documents} documents",
        f"a base retriever returning the documents; server: cheap scores, no added latency; "
        f"{sizes.calls} timed calls per contender per round, taken in turns",
        chosen,
    )


# -- scenario 14: RerankMiddleware against the same middleware by hand ------------------------


_PASSAGE = re.compile(r"^\[\d+\] ", re.MULTILINE)


def _agent(middleware: Any, seen: list[Any]) -> Any:
    """An agent of a scripted chat model that notes the system message of each model call."""
    from langchain.agents import create_agent
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    class Noting(GenericFakeChatModel):
        def _generate(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
            seen[:] = [str(messages[0].content)]
            return super()._generate(messages, *args, **kwargs)

    model = Noting(messages=itertools.cycle([AIMessage("ok")]))
    return create_agent(model, system_prompt="Answer briefly.", middleware=[middleware])


class _Agent(_Base):
    """One agent run of one question; what it returns is the passages the model was given
    (counted in its system message), for the check that every row did the same work."""

    agent: Any

    def __init__(self, options: SessionOptions) -> None:
        super().__init__(options)
        self.seen: list[Any] = []

    def _state(self) -> dict[str, Any]:
        from langchain_core.messages import HumanMessage

        return {"messages": [HumanMessage(QUERY)]}

    def _passages(self) -> list[str]:
        return _PASSAGE.findall(self.seen[0]) if self.seen else []

    def call(self, inputs: Any) -> Any:
        self.base.documents = inputs
        self.agent.invoke(self._state())
        return self._passages()

    async def acall(self, inputs: Any) -> Any:
        self.base.documents = inputs
        await self.agent.ainvoke(self._state())
        return self._passages()


class _Middleware(_Agent):
    """``create_agent(..., middleware=[RerankMiddleware(reranker=..., retriever=...)])``."""

    def __init__(self, options: SessionOptions) -> None:
        super().__init__(options)
        from rerank_integrations.langchain import RerankMiddleware

        middleware = RerankMiddleware(reranker=self.compressor, retriever=self.base)
        self.agent = _agent(middleware, self.seen)


class _MiddlewareByHand(_Agent):
    """The LangChain docs' two-step RAG written by hand: a ``wrap_model_call`` middleware
    that retrieves, calls the compressor and puts the passages into the system message."""

    def __init__(self, options: SessionOptions) -> None:
        super().__init__(options)
        from langchain.agents.middleware import AgentMiddleware
        from langchain_core.messages import SystemMessage

        session = self

        def context(request: Any, documents: list[Any]) -> Any:
            passages = "\n\n".join(
                f"[{number}] {document.page_content}"
                for number, document in enumerate(documents, 1)
            )
            system = request.system_prompt or ""
            text = f"{system}\n\nPassages, most relevant first:\n\n{passages}".strip()
            return request.override(system_message=SystemMessage(text))

        class ByHand(AgentMiddleware):  # type: ignore[type-arg]
            def wrap_model_call(self, request: Any, handler: Any) -> Any:
                query = str(request.messages[-1].content)
                documents = session.base.invoke(query)
                kept = session.compressor.compress_documents(documents, query)
                return handler(context(request, kept))

            async def awrap_model_call(self, request: Any, handler: Any) -> Any:
                query = str(request.messages[-1].content)
                documents = await session.base.ainvoke(query)
                kept = await session.compressor.acompress_documents(documents, query)
                return await handler(context(request, kept))

        self.agent = _agent(ByHand(), self.seen)


_MIDDLEWARE = _pair("middleware", "the same middleware written by hand")


def _run_middleware(context: Context) -> ScenarioResult:
    chosen: list[Contender] = []
    modules = ("rerank_integrations", "langchain_core", "langchain.agents")
    for mode in _modes(context):
        verb = "invoke" if mode == "sync" else "ainvoke"
        chosen += [
            _langchain_contender(
                f"middleware-hand-{mode}",
                f"create_agent(...).{verb}, retrieve-and-rerank middleware by hand",
                mode,
                _MiddlewareByHand,
                True,
                modules,
            ),
            _langchain_contender(
                f"middleware-{mode}",
                f"create_agent(...).{verb}, RerankMiddleware(retriever=...)",
                mode,
                _Middleware,
                False,
                modules,
            ),
        ]
    sizes = SIZES[context.scale.name]
    return _run_paths(
        context,
        14,
        f"RerankMiddleware against the same middleware by hand, {sizes.documents} documents",
        "create_agent with a scripted chat model (no tools); before the model call the latest "
        "user message is the query, a base retriever returns the documents, the compressor "
        f"keeps the best top_n, they go into the system message; {sizes.calls} timed agent "
        "runs per contender per round, taken in turns",
        chosen,
    )


# -- scenario 15: cold start ------------------------------------------------------------------

_OURS = """
import time
start = time.perf_counter()
from rerank_integrations import RerankClient
imported = time.perf_counter()
client = RerankClient(base_url={url!r})
response = client.rerank({query!r}, {documents!r}, top_n=5)
assert len(response.results) == 5
print(imported - start, time.perf_counter() - start)
"""

_BARE = """
import time
start = time.perf_counter()
import httpx
imported = time.perf_counter()
client = httpx.Client()
payload = {{"query": {query!r}, "documents": {documents!r}, "top_n": 5}}
answer = client.post({url!r}, json=payload).json()
assert len(answer["results"]) == 5
print(imported - start, time.perf_counter() - start)
"""


#: A new process as a user's: byte code cached (here in a folder of its own), whatever the
#: benchmark's own environment says.
_COLD_ENVIRONMENT = {
    **{name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": os.path.join(tempfile.gettempdir(), "rerank-bench-pycache"),
}


def _cold(script: str) -> tuple[float, float, float]:
    """``(process wall time, import time, import-to-answer time)`` of one new process."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        check=True,
        capture_output=True,
        text=True,
        env=_COLD_ENVIRONMENT,
    ).stdout
    wall = time.perf_counter() - started
    imported, inside = (float(value) for value in out.split())
    return wall, imported, inside


def _run_cold(context: Context) -> ScenarioResult:
    sizes = SIZES[context.scale.name]
    runs = max(1, min(context.rounds, sizes.cold_runs))
    texts = make_documents(COLD_DOCUMENTS, context.scale.words, seed=14)
    floor = feature_contender("cold-httpx", "python -c: import httpx, post", "sync", None, True)  # type: ignore[arg-type]
    ours = feature_contender(
        "cold-client",
        "python -c: import rerank_integrations, RerankClient(...).rerank",
        "sync",
        None,  # type: ignore[arg-type]
        False,
    )
    result = ScenarioResult(
        15,
        f"cold start: a new process, import, one call of {COLD_DOCUMENTS} documents",
        f"each run is a new interpreter (python -c) that imports, builds a client and makes "
        f"one call against the local server; {runs} runs per contender, taken in turns, "
        "median; the import share is the import's time over the process's",
    )
    samples: dict[str, list[tuple[float, float, float]]] = {"cold-httpx": [], "cold-client": []}
    with ServerProcess(max_documents=1000) as server:
        options = SessionOptions(server.base_url, 5)
        fields = {"url": options.rerank_url, "query": QUERY, "documents": texts}
        scripts = {"cold-httpx": _BARE.format(**fields), "cold-client": _OURS.format(**fields)}
        for key in scripts:  # warm the disk cache and the byte code
            _cold(scripts[key])
        for _ in range(runs):
            for key, script in scripts.items():
                samples[key].append(_cold(script))
    for contender in (floor, ours):
        taken = samples[contender.key]
        measurement = Measurement(contender)
        measurement.take([Sample(wall, wall) for wall, _, _ in taken])
        measurement.cpu = None
        measurement.extra = {
            "import": statistics.median(imported for _, imported, _ in taken),
            "inside": statistics.median(inside for _, _, inside in taken),
        }
        result.measurements.append(measurement)
    return result


def _cold_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    by_key = {item.contender.key: item for item in result.measurements}
    floor, ours = by_key["cold-httpx"], by_key["cold-client"]
    ratio = ratio_of(ours.wall, floor.wall)
    share = ratio_of(ours.extra.get("import"), ours.wall)
    shown = "nothing measured" if ratio is None else f"{ratio:.2f}x, import {share or 0:.0%}"
    verdicts = {"cold-client": "—" if ratio is None else f"{ratio:.2f}x"}
    check = Check(
        15,
        "cold start: new process, import, client, one call against bare httpx (context, not a "
        "target)",
        shown,
        None if ratio is None else True,
        informational=True,
    )
    return verdicts, [check]


def _cold_table(result: ScenarioResult, verdicts: dict[str, str]) -> list[str]:
    lines = [
        markdown_row(
            ["Contender", "Process wall", "× bare httpx", "Import", "Import share", "Call", ""]
        ),
        "|:---|---:|---:|---:|---:|---:|:---|",
    ]
    floor = next(item for item in result.measurements if item.contender.group == "floor")
    for item in result.measurements:
        imported = item.extra.get("import")
        inside = item.extra.get("inside")
        call = None if imported is None or inside is None else inside - imported
        lines.append(
            markdown_row(
                [
                    item.contender.label,
                    seconds(item.wall),
                    times(ratio_of(item.wall, floor.wall)),
                    seconds(imported),
                    "—" if imported is None or not item.wall else f"{imported / item.wall:.0%}",
                    seconds(call),
                    "reference"
                    if item.contender.group == "floor"
                    else verdicts.get(item.contender.key, ""),
                ]
            )
        )
    return lines


register(
    Scenario(
        13,
        "retriever",
        _run_retriever,
        lambda result: paired_verdicts(result, _RETRIEVER),
        paired_table(_RETRIEVER),
        reading="Scenario 13 compares RerankRetriever (a Runnable: one retriever run of its "
        "own, the base retriever's nested in it) with the same base retrieval followed by "
        "the compressor, called by hand.",
    )
)
register(
    Scenario(
        14,
        "middleware",
        _run_middleware,
        lambda result: paired_verdicts(result, _MIDDLEWARE),
        paired_table(_MIDDLEWARE),
        reading="Scenario 14 runs one create_agent agent per row with a scripted chat model: "
        "RerankMiddleware(retriever=...) against a wrap_model_call middleware written by hand "
        "that does the same retrieve, rerank and system message.",
    )
)
register(
    Scenario(
        15,
        "cold start",
        _run_cold,
        _cold_verdicts,
        _cold_table,
        reading="Scenario 15 times whole new processes (python -c), the serverless and "
        "command-line case: import, build a client, one call; the import share is what the "
        "import takes of it.",
    )
)


def _with_and_without(
    context: Context,
    key: str,
    without: str,
    with_: str,
    settings: dict[str, Any],
    extra: dict[str, Any],
) -> list[Contender]:
    """Per mode, the client with ``settings`` (the reference, ``{key}-none-{mode}``) and the
    same client with ``extra`` too (``{key}-{mode}``); their labels end in ``without`` and
    ``with_``."""
    from .features import _Client

    chosen: list[Contender] = []
    for mode in _modes(context):
        method = "rerank" if mode == "sync" else "arerank"
        chosen += [
            feature_contender(
                f"{key}-none-{mode}",
                f"RerankClient.{method}{without}",
                mode,
                lambda options: _Client(options, **settings),
                reference=True,
            ),
            feature_contender(
                f"{key}-{mode}",
                f"RerankClient.{method}{with_}",
                mode,
                lambda options: _Client(options, **settings, **extra),
                reference=False,
            ),
        ]
    return chosen


# -- scenario 17: an instruction against none -------------------------------------------------

#: The model whose prompt template the generic dialect applies (each document wrapped).
INSTRUCTED_MODEL = "Qwen/Qwen3-Reranker-8B"
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

_INSTRUCTION = Pair(
    reference_of={f"instruction-{mode}": f"instruction-none-{mode}" for mode in ("sync", "async")},
    text_of={
        f"instruction-{mode}": f"{mode}: wall time with an instruction (the model's template) "
        "against none (context, not a target: the body is longer)"
        for mode in ("sync", "async")
    },
)


def _run_instruction(context: Context) -> ScenarioResult:
    chosen = _with_and_without(
        context,
        "instruction",
        f", model={INSTRUCTED_MODEL!r}, no instruction",
        ", the same model, instruction=...",
        {"model": INSTRUCTED_MODEL},
        {"instruction": INSTRUCTION},
    )
    sizes = SIZES[context.scale.name]
    return _run_paths(
        context,
        17,
        f"an instruction through the model's prompt template against none, {sizes.documents} "
        "documents",
        f"generic dialect, model {INSTRUCTED_MODEL} (vLLM's Qwen3-Reranker template: the query "
        "carries the instruction, each document its wrapper); server: cheap scores, no added "
        f"latency; {sizes.calls} timed calls per contender per round, taken in turns",
        chosen,
    )


register(
    Scenario(
        17,
        "instruction",
        _run_instruction,
        lambda result: paired_verdicts(result, _INSTRUCTION),
        paired_table(_INSTRUCTION),
        reading="Scenario 17 compares a call with an instruction (carried by the model's "
        "prompt template) with the same call without one.",
    )
)


# -- scenario 18: cost accounting on against off ----------------------------------------------

#: The price of scenario 18: all three parts, so that each is summed on every call.
PRICE = {"per_search_unit": "0.002", "per_million_tokens": "0.05", "per_request": "0.0001"}
#: Scenario 18's client: Cohere's dialect, whose billing rule gives every answer its search
#: units (the demo server reports tokens), so that all three parts of the price are summed.
COST_CLIENT = {"dialect": "cohere", "model": "rerank-v3.5", "api_key": "bench-key"}
#: Timed calls per contender per round in scenario 18 (a 2% target wants many).
COST_CALLS = {"full": 60, "tiny": 2}

_COST = Pair(
    reference_of={f"price-{mode}": f"price-none-{mode}" for mode in ("sync", "async")},
    limit_of={f"price-{mode}": COST_TARGET for mode in ("sync", "async")},
    text_of={
        f"price-{mode}": f"{mode}: wall time ≤ {COST_TARGET:g}x the same call without a price"
        for mode in ("sync", "async")
    },
)


def _run_cost(context: Context) -> ScenarioResult:
    from rerank_integrations import Price

    chosen = _with_and_without(
        context, "price", ", no price", ", price=Price(...)", COST_CLIENT, {"price": Price(**PRICE)}
    )
    sizes = SIZES[context.scale.name]
    calls = COST_CALLS[context.scale.name]
    top_n = context.scale.top_n
    texts = make_documents(sizes.documents, context.scale.words, seed=18)
    result = ScenarioResult(
        18,
        f"cost accounting on against off, {sizes.documents} documents",
        "Cohere's dialect (model rerank-v3.5), whose billing rule counts the search units; the "
        "server answers with its usage (tokens); the priced client has "
        f"price=Price(per_search_unit={PRICE['per_search_unit']}, per_million_tokens="
        f"{PRICE['per_million_tokens']}, per_request={PRICE['per_request']}), so that every "
        "response's usage is summed and priced; server: cheap scores, no added latency; "
        f"{calls} timed calls per contender per round, taken in turns",
    )
    with ServerProcess(max_documents=1000) as server:
        bench = Bench(chosen, SessionOptions(server.base_url, top_n), lambda _: texts, top_n)
        bench.warm_up(context.scale.warm_up)
        bench.rounds(context.rounds, calls, timed(bench), seed=18)
        result.measurements = bench.finish()
    return result


def _cost_verdicts(result: ScenarioResult) -> tuple[dict[str, str], list[Check]]:
    """Wall time by :func:`paired_verdicts`, and CPU time against the same limit."""
    verdicts, checks = paired_verdicts(result, _COST)
    by_key = {item.contender.key: item for item in result.measurements}
    for key, reference_key in _COST.reference_of.items():
        item, reference = by_key.get(key), by_key.get(reference_key)
        if item is None:
            continue
        mode = item.contender.mode
        text = f"{mode}: CPU time ≤ {COST_TARGET:g}x the same call without a price"
        ratio = ratio_of(item.cpu, reference.cpu if reference else None)
        if ratio is None:
            checks.append(Check(result.number, text, "nothing measured", None))
            continue
        met = ratio <= COST_TARGET
        checks.append(Check(result.number, text, f"{ratio:.2f}x ({item.contender.label})", met))
        if not met and verdicts.get(key) == "met":
            verdicts[key] = f"**missed**: CPU {ratio:.2f}x > {COST_TARGET:.2f}x"
    return verdicts, checks


register(
    Scenario(
        18,
        "cost accounting",
        _run_cost,
        _cost_verdicts,
        paired_table(_COST),
        reading="Scenario 18 compares a client with a price (every response's usage summed "
        "and priced in Decimal) with the same client without one: wall and CPU time.",
    )
)
