"""The demo: the same two-stage retrieval in LangChain and in LlamaIndex, scored before and
after reranking.

Both pipelines index the bundled corpus with the hashing embedding, fetch ``top_k``
candidates per query by cosine similarity, and send them to a rerank endpoint through this
package's adapters (the pipelines are in :mod:`._frameworks`):

- LangChain: ``InMemoryVectorStore`` -> ``as_retriever`` -> ``ContextualCompressionRetriever``
  with :class:`~rerank_integrations.langchain.RerankCompressor`, one query at a time (sync);
- LlamaIndex: ``VectorStoreIndex`` -> ``as_retriever`` -> :class:`~rerank_integrations.
  llama_index.RerankPostprocessor`, every query at once (``aretrieve`` and
  ``apostprocess_nodes`` under ``asyncio.gather``).

The endpoint is ``base_url``, else ``RERANK_BASE_URL``, else a BM25 server started
in-process for the run (:class:`~rerank_integrations.server.LocalRerankServer`), so the demo
runs offline with no key. :func:`run_demo` prints a report (:mod:`._report`) and returns the
figures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from rerank_integrations._client import RerankClient
from rerank_integrations._constants import ENV_BASE_URL
from rerank_integrations._exceptions import ConfigurationError
from rerank_integrations._text import display_url
from rerank_integrations.demo._corpus import LabelledQuery, load_passages, load_queries
from rerank_integrations.demo._embedding import (
    cosine,
    hashing_embedding,
)
from rerank_integrations.demo._frameworks import (
    LangChainPipeline,
    Rankings,
    evaluate_llama_index,
)
from rerank_integrations.demo._frameworks import (  # noqa: F401 - read from here by the tests
    tie_ordered as _tie_ordered,
)
from rerank_integrations.demo._long_documents import evaluate_long_documents, load_long_documents
from rerank_integrations.demo._report import (
    EMBEDDED_LATENCY_MS,
    DemoExample,
    DemoReport,
    ExampleRow,
    InstructionExample,
    LongDocumentsFigures,
    format_report,
    terminal_width,
)

if TYPE_CHECKING:
    pass

__all__ = ["run_demo"]

T = TypeVar("T")

#: The frameworks the demo needs, and the extra that brings them.
_INSTALL_HINT = (
    'the demo needs LangChain, LlamaIndex and the local server: pip install "rerank-integrations'
    '[demo]"'
)

#: The demo's instruction example: a query the corpus answers on two topics (espresso
#: pressure, tire pressure), and an instruction that says which is meant.
INSTRUCTION_QUERY = "What pressure should I use?"
DEMO_INSTRUCTION = "Prefer documents about bicycle tires"


# -- running it -------------------------------------------------------------------------------


def run_demo(
    *,
    base_url: str | None = None,
    query_id: str | None = None,
    query: str | None = None,
    top_k: int = 20,
    top_n: int = 5,
    out: TextIO | None = None,
    as_json: bool = False,
    long_documents: bool = True,
    instruction: str | None = None,
) -> DemoReport:
    """Run both pipelines over the labelled queries, print the report and return the figures.

    Args:
        base_url: the rerank endpoint; ``None`` reads ``RERANK_BASE_URL`` and, when that is
            unset too, starts the embedded BM25 server for the run. The key, model and
            dialect of an endpoint come from ``RERANK_API_KEY``, ``RERANK_MODEL`` and
            ``RERANK_DIALECT``.
        query_id: the labelled query to show as the example; by default the showcase (see
            :func:`_showcase`): reranking puts its answer first from furthest down, and the
            rest of what it shows stays on the query's topic.
        query: a free-text query to show instead (no relevance marks); not with ``query_id``.
        top_k: candidates per query fetched by the first stage and reranked.
        top_n: candidates of the example shown before and after.
        out: where the report goes (default ``sys.stdout``); in text mode one line there
            says what runs while the queries run, so a slow endpoint does not look hung.
        as_json: print the report as JSON instead of text (and nothing before it).
        long_documents: also rank the long-document set, first stage against
            ``long_documents="truncate"`` and ``"chunk"``, with a model limit of
            :data:`LONG_DOCUMENT_LIMIT` tokens (the embedded server refuses longer ones).
        instruction: the instruction of the instruction example (default
            :data:`DEMO_INSTRUCTION`), shown with :data:`INSTRUCTION_QUERY`'s best candidate
            without and with it; the figures above never use one.

    Returns:
        The :class:`DemoReport`.

    Raises:
        ValueError: a bad argument (an unknown ``query_id``, ``top_n`` above ``top_k``...).
        ImportError: LangChain, langchain-classic, LlamaIndex or the server is missing.
        RerankError: the rerank endpoint failed.
    """
    started = time.perf_counter()
    stream = out if out is not None else sys.stdout
    passages = load_passages()
    queries = load_queries()
    _check_arguments(queries, query_id, query, top_k, top_n)
    if base_url is None:
        base_url = os.environ.get(ENV_BASE_URL, "").strip() or None
    _check_frameworks(embedded=base_url is None)

    with _endpoint(base_url) as client:
        texts = {passage.id: passage.text for passage in passages}
        topics = {passage.id: passage.topic for passage in passages}
        labels = {labelled.id: labelled for labelled in queries}

        long_figures = None
        progress = stream if not as_json else None
        with _progress_line(progress, len(queries), top_k, long=long_documents):
            langchain = LangChainPipeline(passages, client, top_k)
            langchain_figures, langchain_runs = langchain.evaluate(queries)
            llama_index_figures, llama_index_runs = _run_coroutine(
                lambda: evaluate_llama_index(passages, queries, client, top_k)
            )
            if long_documents:
                long_figures = _long_documents(base_url, client)

        relevant: tuple[str, ...] = ()
        if query is not None:
            example_query, chosen = query, "the query asked for"
        else:
            if query_id is None:
                query_id, chosen = _showcase(queries, langchain_runs, topics, top_n)
            else:
                chosen = "the query asked for"
            example_query, relevant = labels[query_id].query, labels[query_id].relevant
        before, after = langchain.example(example_query, set(relevant), texts, top_n)
        steered = _instruction_example(
            langchain, client, texts, INSTRUCTION_QUERY, instruction or DEMO_INSTRUCTION
        )
        endpoint = display_url(client.endpoint)
        model = client.model

    moves = [_move(langchain_runs[labelled.id], labelled.relevant) for labelled in queries]
    report = DemoReport(
        endpoint=endpoint,
        embedded=base_url is None,
        passages=len(passages),
        queries=len(queries),
        top_k=top_k,
        top_n=top_n,
        example=DemoExample(
            query_id=query_id if query is None else None,
            query=example_query,
            relevant=tuple(relevant),
            before=before,
            after=after,
            chosen=chosen,
        ),
        pipelines=(langchain_figures, llama_index_figures),
        differing_queries=tuple(
            labelled.id
            for labelled in queries
            if langchain_runs[labelled.id] != llama_index_runs[labelled.id]
        ),
        seconds=time.perf_counter() - started,
        model=model,
        moved_up=moves.count(1),
        moved_down=moves.count(-1),
        long_documents=long_figures,
        instruction=steered,
    )
    if as_json:
        json.dump(report.to_dict(), stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    else:
        stream.write(format_report(report, width=terminal_width()))
    stream.flush()
    return report


def _instruction_example(
    pipeline: LangChainPipeline,
    client: RerankClient,
    texts: Mapping[str, str],
    query: str,
    instruction: str,
) -> InstructionExample:
    """The best of ``query``'s first-stage candidates reranked without and with
    ``instruction`` (the embedded server weighs its content words: see
    :mod:`rerank_integrations.server`)."""
    ids = [passage_id for passage_id, _ in pipeline.first_stage(query)]
    documents = [texts[passage_id] for passage_id in ids]
    try:
        plain = client.rerank(query, documents, top_n=1, instruction=None)
        steered = client.rerank(query, documents, top_n=1, instruction=instruction)
    except ConfigurationError as error:  # a dialect that cannot carry one
        return InstructionExample(query, instruction, None, None, refused=str(error))

    def best(results: Sequence[Any]) -> ExampleRow:
        index = results[0].index
        score = results[0].relevance_score
        return ExampleRow(1, ids[index], score, False, index + 1, documents[index])

    return InstructionExample(query, instruction, best(plain.results), best(steered.results))


def _check_arguments(
    queries: Sequence[LabelledQuery],
    query_id: str | None,
    query: str | None,
    top_k: int,
    top_n: int,
) -> None:
    """Refuse arguments that cannot work, before anything is started."""
    for name, value in (("top_k", top_k), ("top_n", top_n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    if top_n > top_k:
        raise ValueError(f"top_n ({top_n}) cannot exceed top_k ({top_k}), the candidates fetched")
    if query_id is not None and query is not None:
        raise ValueError("give either a query id or a query, not both")
    if query is not None and not query.strip():
        raise ValueError("the query is empty")
    if query_id is not None and query_id not in {labelled.id for labelled in queries}:
        raise ValueError(
            f"unknown query id {query_id!r}; the labelled queries are "
            f"{queries[0].id} to {queries[-1].id}"
        )


def _check_frameworks(*, embedded: bool) -> None:
    """Fail early, with the install command, when a framework the demo uses is missing."""
    modules = ["langchain_core", "langchain_classic", "llama_index.core"]
    if embedded:
        modules += ["starlette", "uvicorn"]
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise ImportError(f"{module} is not installed; {_INSTALL_HINT}", name=module)


@contextmanager
def _endpoint(base_url: str | None) -> Iterator[RerankClient]:
    """A client for ``base_url``, or for an embedded BM25 server started for the block."""
    if base_url is not None:
        with RerankClient(base_url) as client:
            yield client
        return
    from rerank_integrations.server import LocalRerankServer, ServerConfig

    # Neither the user's key nor their model or dialect is meant for this server.
    with (
        LocalRerankServer(ServerConfig(latency_ms=EMBEDDED_LATENCY_MS)) as server,
        RerankClient(server.base_url, api_key="", model="", dialect="generic") as client,
    ):
        yield client


#: Tokens of a document (query included) the long-document comparison's model reads.
LONG_DOCUMENT_LIMIT = 512


def _long_documents(base_url: str | None, client: RerankClient) -> LongDocumentsFigures:
    """The long-document set ranked three ways: the first stage, truncated, chunked."""
    data = load_long_documents()

    def first_stage(query: str, documents: list[str]) -> list[int]:
        wanted = hashing_embedding(query)
        scores = [cosine(wanted, hashing_embedding(document)) for document in documents]
        return sorted(range(len(documents)), key=lambda i: (-scores[i], i))

    first = evaluate_long_documents(first_stage, data)
    with contextlib.ExitStack() as stack:
        if base_url is None:  # a server of its own, that reads no more than a model would
            from rerank_integrations.server import LocalRerankServer, ServerConfig

            server = stack.enter_context(
                LocalRerankServer(ServerConfig(max_tokens_per_document=LONG_DOCUMENT_LIMIT))
            )
            url: str | None = server.base_url
        else:
            url = base_url
        results = {}
        windows = 0
        for mode in ("truncate", "chunk"):
            ranking = stack.enter_context(
                RerankClient(
                    url,
                    api_key=client.settings.api_key if base_url else None,
                    model=client.model,
                    dialect=client.dialect,
                    max_tokens_per_document=LONG_DOCUMENT_LIMIT,
                    long_documents=mode,
                )
            )
            sent: list[int] = []

            def rerank(
                query: str,
                documents: list[str],
                ranking: RerankClient = ranking,
                sent: list[int] = sent,
            ) -> Any:
                response = ranking.rerank(query, documents)
                sent.append(response.windows)
                return response

            results[mode] = evaluate_long_documents(rerank, data)
            if mode == "chunk":
                windows = sum(sent)
    words = [document.words for document in data.documents]
    return LongDocumentsFigures(
        limit=LONG_DOCUMENT_LIMIT,
        documents=len(data.documents),
        words=(min(words), max(words)),
        queries=len(data.queries),
        first_stage=first,
        truncate=results["truncate"],
        chunk=results["chunk"],
        windows=windows,
    )


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also when this thread already runs an
    event loop (a notebook): then it runs on a fresh loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rerank-demo") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _showcase(
    queries: Sequence[LabelledQuery],
    rankings: Rankings,
    topics: Mapping[str, str],
    top_n: int,
) -> tuple[str, str]:
    """The query that shows what reranking does, and a note saying why it was chosen.

    Of the queries whose answer reranking puts first, the one whose ``top_n`` shown after
    reranking stay most on its topic, then the one whose answer came from furthest down
    (the first on ties). Choosing by the answer alone showed a tail of off-topic passages:
    true, but a query where the reranker had nothing better to offer. When reranking puts
    no answer first, the first query whose answer it moved up the most is shown instead,
    and the note says so.
    """
    best: tuple[int, int] | None = None
    best_id = queries[0].id
    best_note = "the first labelled query (reranking put no answer first)"
    for labelled in queries:
        before, after = rankings[labelled.id]
        if not after or after[0] not in labelled.relevant:
            continue
        topic = topics[labelled.relevant[0]]
        on_topic = sum(topics[passage_id] == topic for passage_id in after[:top_n])
        was = _position(before, labelled.relevant) + 1
        if best is None or (on_topic, was) > best:
            best, best_id = (on_topic, was), labelled.id
            shown = min(top_n, len(after))
            stays = f"all {shown}" if on_topic == shown else f"{on_topic} of {shown}"
            best_note = f"the showcase: answer from #{was} to #1, {stays} shown on {topic}"
    if best is None:
        gains = [
            (_position(b, q.relevant) - _position(a, q.relevant), q.id)
            for q in queries
            for b, a in [rankings[q.id]]
        ]
        gain, query_id = max(gains, key=lambda pair: pair[0])
        if gain > 0:
            return query_id, "the query whose answer reranking moved up the most"
    return best_id, best_note


def _position(ranking: Sequence[str], relevant: Sequence[str]) -> int:
    """The 0-based position of the first relevant id, ``len(ranking)`` when there is none."""
    for rank, passage_id in enumerate(ranking):
        if passage_id in relevant:
            return rank
    return len(ranking)


@contextmanager
def _progress_line(
    stream: TextIO | None, queries: int, top_k: int, *, long: bool = False
) -> Iterator[None]:
    """One line on ``stream`` while the queries run, finished with how long they took."""
    if stream is None:
        yield
        return
    also = ", then long documents truncated and chunked" if long else ""
    stream.write(
        f"Reranking {queries} queries x {top_k} candidates in LangChain and LlamaIndex{also}..."
    )
    stream.flush()
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        stream.write(" failed.\n")
        stream.flush()
        raise
    stream.write(f" done in {time.perf_counter() - started:.1f} s.\n\n")
    stream.flush()


def _move(rankings: tuple[list[str], list[str]], relevant: Sequence[str]) -> int:
    """``1`` when reranking moved the first relevant passage up, ``-1`` down, else ``0``."""

    before, after = (_position(ranking, relevant) for ranking in rankings)
    return (after < before) - (after > before)
