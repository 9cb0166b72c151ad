"""What the demo measured, and the text it prints: the report types and their rendering.

The runner (:mod:`._pipeline`) fills a :class:`DemoReport`; :func:`format_report` turns it into
the text of ``rerank-integrations demo`` and :meth:`DemoReport.to_dict` into its ``--json``.
Keeping them apart lets the report be rendered, tested or serialized without LangChain or
LlamaIndex installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rerank_integrations._text import cut_to_width
from rerank_integrations.demo._embedding import DEFAULT_DIMENSIONS
from rerank_integrations.demo._long_documents import LongDocumentFigures

__all__ = [
    "EMBEDDED_LATENCY_MS",
    "DemoExample",
    "DemoReport",
    "ExampleRow",
    "PipelineFigures",
    "StageFigures",
    "format_report",
    "terminal_width",
]

#: Milliseconds the embedded server waits before each answer, standing in for the network
#: between an application and a rerank API (without it, concurrency would have nothing to
#: overlap).
EMBEDDED_LATENCY_MS = 10


# -- the figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageFigures:
    """The metrics of one stage of one pipeline over every labelled query.

    Attributes:
        mrr_at_10: mean reciprocal rank of the first relevant passage within the top 10.
        hit_at_1: share of queries whose first result is relevant.
        hit_at_3: share of queries with a relevant passage in the top 3.
        seconds: wall time of the stage's loop over all queries (the reranked stage includes
            its first stage).
    """

    mrr_at_10: float
    hit_at_1: float
    hit_at_3: float
    seconds: float

    def same_scores(self, other: StageFigures) -> bool:
        """Whether ``other`` has the same metrics (wall time aside)."""
        return _metrics(self) == _metrics(other)


def _metrics(figures: StageFigures) -> tuple[float, float, float]:
    return (
        round(figures.mrr_at_10, 12),
        round(figures.hit_at_1, 12),
        round(figures.hit_at_3, 12),
    )


@dataclass(frozen=True)
class PipelineFigures:
    """One framework's figures, before and after reranking.

    Attributes:
        name: ``"LangChain"`` or ``"LlamaIndex"``.
        mode: how its queries ran: ``"sync"`` (one after another) or ``"async"`` (all at once).
        first_stage: the vector store's own order.
        reranked: the order after the rerank endpoint.
    """

    name: str
    mode: str
    first_stage: StageFigures
    reranked: StageFigures


@dataclass(frozen=True)
class ExampleRow:
    """One candidate of the example query, as shown before or after reranking.

    Attributes:
        rank: 1-based position in this list.
        passage_id: the passage's id.
        score: cosine similarity (before) or relevance score (after).
        relevant: whether the passage is judged relevant to the query.
        first_stage_rank: the passage's 1-based position before reranking.
        text: the passage.
    """

    rank: int
    passage_id: str
    score: float
    relevant: bool
    first_stage_rank: int
    text: str


@dataclass(frozen=True)
class DemoExample:
    """One query's top candidates before and after reranking (from the LangChain pipeline).

    Attributes:
        query_id: the labelled query's id, or ``None`` for a free-text query.
        query: the query text.
        relevant: ids of the passages judged relevant (empty for a free-text query).
        before: the first ``top_n`` candidates in first-stage order, with cosine scores.
        after: the first ``top_n`` after reranking, with relevance scores.
        chosen: why this query is shown.
    """

    query_id: str | None
    query: str
    relevant: tuple[str, ...]
    before: tuple[ExampleRow, ...]
    after: tuple[ExampleRow, ...]
    chosen: str


@dataclass(frozen=True)
class LongDocumentsFigures:
    """The long-document comparison: one model limit, three strategies.

    Attributes:
        limit: the tokens the rerank server reads of a document, query included.
        documents: long documents in the set; ``words``: the shortest and longest in words.
        queries: labelled queries ranked.
        first_stage: the cheap first stage's order (the hashing embedding, whole documents).
        truncate: ``long_documents="truncate"``: each document cut to its first tokens.
        chunk: ``long_documents="chunk"``: windows ranked, a document scored by its best.
        windows: windows sent, over every query, for ``chunk``.
    """

    limit: int
    documents: int
    words: tuple[int, int]
    queries: int
    first_stage: LongDocumentFigures
    truncate: LongDocumentFigures
    chunk: LongDocumentFigures
    windows: int

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data."""

        def figures(item: LongDocumentFigures) -> dict[str, Any]:
            return {
                "mrr_at_10": item.mrr_at_10,
                "hit_at_3": item.hit_at_3,
                "mrr_by_depth": item.mrr_by_depth,
                "seconds": round(item.seconds, 4),
            }

        return {
            "limit_tokens": self.limit,
            "documents": self.documents,
            "words": list(self.words),
            "queries": self.queries,
            "first_stage": figures(self.first_stage),
            "truncate": figures(self.truncate),
            "chunk": figures(self.chunk),
            "windows": self.windows,
        }


@dataclass(frozen=True)
class InstructionExample:
    """What one instruction does to an ambiguous query: the best candidate without it and
    with it (``None`` when the endpoint's dialect cannot carry an instruction).

    Attributes:
        query: the query, which the corpus answers on several topics.
        instruction: the instruction given with it.
        without: the best candidate without the instruction.
        with_instruction: the best candidate with it.
        refused: why the endpoint took no instruction, if it did not.
    """

    query: str
    instruction: str
    without: ExampleRow | None
    with_instruction: ExampleRow | None
    refused: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As JSON-ready data."""

        def row(item: ExampleRow | None) -> dict[str, Any] | None:
            if item is None:
                return None
            return {"id": item.passage_id, "score": item.score, "text": item.text}

        return {
            "query": self.query,
            "instruction": self.instruction,
            "without": row(self.without),
            "with": row(self.with_instruction),
            "refused": self.refused,
        }


@dataclass(frozen=True)
class DemoReport:
    """Everything the demo measured.

    Attributes:
        endpoint: the rerank URL used (without credentials).
        embedded: whether it was the BM25 server started for this run.
        passages: passages in the corpus.
        queries: labelled queries evaluated.
        top_k: candidates fetched by the first stage and reranked, per query.
        top_n: candidates shown for the example.
        example: the example query.
        pipelines: LangChain's and LlamaIndex's figures, in that order.
        differing_queries: ids of the queries on which the two pipelines' rankings differ.
        seconds: wall time of the whole run.
        model: the model asked for, or ``None`` for the server's default.
        moved_up: queries whose first relevant passage reranking moved up (LangChain).
        moved_down: queries whose first relevant passage reranking moved down (LangChain).
        long_documents: the long-document comparison, when it was run.
        instruction: what an instruction does to an ambiguous query.
    """

    endpoint: str
    embedded: bool
    passages: int
    queries: int
    top_k: int
    top_n: int
    example: DemoExample
    pipelines: tuple[PipelineFigures, ...]
    differing_queries: tuple[str, ...]
    seconds: float
    model: str | None = None
    moved_up: int = 0
    moved_down: int = 0
    long_documents: LongDocumentsFigures | None = None
    instruction: InstructionExample | None = None

    def pipeline(self, name: str) -> PipelineFigures:
        """The figures of the pipeline called ``name`` (``"LangChain"`` or ``"LlamaIndex"``)."""
        for figures in self.pipelines:
            if figures.name.lower() == name.lower():
                return figures
        raise KeyError(name)

    @property
    def figures_agree(self) -> bool:
        """Whether every pipeline has the same metrics, stage by stage."""
        first, *others = self.pipelines
        return all(
            other.first_stage.same_scores(first.first_stage)
            and other.reranked.same_scores(first.reranked)
            for other in others
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``--json`` prints)."""

        def stage(figures: StageFigures) -> dict[str, float]:
            return {
                "mrr_at_10": figures.mrr_at_10,
                "hit_at_1": figures.hit_at_1,
                "hit_at_3": figures.hit_at_3,
                "seconds": round(figures.seconds, 4),
            }

        def rows(items: Sequence[ExampleRow]) -> list[dict[str, Any]]:
            return [
                {
                    "rank": row.rank,
                    "id": row.passage_id,
                    "score": row.score,
                    "relevant": row.relevant,
                    "first_stage_rank": row.first_stage_rank,
                    "text": row.text,
                }
                for row in items
            ]

        example = self.example
        return {
            "endpoint": self.endpoint,
            "embedded_server": self.embedded,
            "model": self.model,
            "passages": self.passages,
            "queries": self.queries,
            "top_k": self.top_k,
            "top_n": self.top_n,
            "example": {
                "query_id": example.query_id,
                "query": example.query,
                "relevant": list(example.relevant),
                "chosen": example.chosen,
                "before": rows(example.before),
                "after": rows(example.after),
            },
            "pipelines": [
                {
                    "name": figures.name,
                    "mode": figures.mode,
                    "first_stage": stage(figures.first_stage),
                    "reranked": stage(figures.reranked),
                }
                for figures in self.pipelines
            ],
            "figures_agree": self.figures_agree,
            "moved_up": self.moved_up,
            "moved_down": self.moved_down,
            "differing_queries": list(self.differing_queries),
            "long_documents": None
            if self.long_documents is None
            else self.long_documents.to_dict(),
            "instruction": None if self.instruction is None else self.instruction.to_dict(),
            "seconds": round(self.seconds, 4),
        }


# -- the text report --------------------------------------------------------------------------


def terminal_width() -> int:
    """The terminal's width, kept between 60 and 120 columns."""
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))


def format_report(report: DemoReport, *, width: int = 100) -> str:
    """The text report of ``report``, lines cut to ``width`` characters."""
    lines: list[str] = []
    add = lines.append
    add(
        f"Rerank demo: {report.passages} passages, {report.queries} labelled queries, "
        f"{report.top_k} candidates per query"
    )
    add(f"Endpoint:    {report.endpoint}")
    if report.embedded:
        add(
            f"             the embedded BM25 server, started for this run; it answers after "
            f"{EMBEDDED_LATENCY_MS} ms,"
        )
        add("             like an API across a network (set RERANK_BASE_URL to use your own)")
    else:
        add(f"             from --base-url / RERANK_BASE_URL, model: {report.model or 'default'}")
    add(f"First stage: {DEFAULT_DIMENSIONS}-dim hashing embedding, cosine similarity")
    add("             LangChain InMemoryVectorStore / LlamaIndex VectorStoreIndex")
    add("")

    example = report.example
    label = f"Example {example.query_id}" if example.query_id else "Example"
    add(cut_to_width(f'{label}: "{example.query}"', width))
    add(cut_to_width(f"  ({example.chosen}; LangChain pipeline)", width))
    if example.relevant:
        add(f"  relevant passages, marked *: {', '.join(example.relevant)}")
    else:
        add("  no relevance judgements for a free-text query")
    add("")
    add("  Before reranking (first stage, cosine similarity):")
    lines.extend(_example_rows(example.before, width, after=False))
    add("  After reranking (relevance score from the endpoint; 'was' = first-stage rank):")
    lines.extend(_example_rows(example.after, width, after=True))
    add("")

    add(f"All {report.queries} labelled queries, {report.top_k} candidates each:")
    add(f"  {'pipeline':<11} {'stage':<12} {'MRR@10':>7} {'hit@1':>7} {'hit@3':>7}   wall time")
    for figures in report.pipelines:
        how = (
            "one query at a time (sync)"
            if figures.mode == "sync"
            else f"{report.queries} queries at once (async)"
        )
        for name, stage, note in (
            (figures.name, "first stage", ""),
            ("", "reranked", f"  {how}"),
        ):
            values = figures.first_stage if stage == "first stage" else figures.reranked
            add(
                f"  {name:<11} {stage:<12} {values.mrr_at_10:>7.3f} {values.hit_at_1:>7.3f} "
                f"{values.hit_at_3:>7.3f}   {values.seconds:>6.2f} s{note}"
            )
    add("")

    if report.figures_agree and not report.differing_queries:
        add(f"LangChain and LlamaIndex agree: the same rankings for all {report.queries} queries.")
    elif report.figures_agree:
        add(
            f"LangChain and LlamaIndex give the same figures; their rankings differ on "
            f"{len(report.differing_queries)} queries only where cosine scores tie."
        )
    else:
        shown = ", ".join(report.differing_queries[:6])
        more = ", ..." if len(report.differing_queries) > 6 else ""
        add(
            cut_to_width(
                f"LangChain and LlamaIndex figures DIFFER: their rankings differ on "
                f"{len(report.differing_queries)} queries ({shown}{more}).",
                width,
            )
        )
        add("  (their vector stores break ties between equal cosine scores differently)")
    first = report.pipelines[0]
    add(
        f"Reranking moves MRR@10 from {first.first_stage.mrr_at_10:.3f} to "
        f"{first.reranked.mrr_at_10:.3f} and hit@3 from {first.first_stage.hit_at_3:.3f} to "
        f"{first.reranked.hit_at_3:.3f}."
    )
    unchanged = report.queries - report.moved_up - report.moved_down
    add(
        f"The first relevant passage moved up in {report.moved_up} queries, down in "
        f"{report.moved_down}, and stayed put in {unchanged}."
    )
    if report.long_documents is not None:
        lines.extend(_long_documents_lines(report.long_documents, width))
    if report.instruction is not None:
        lines.extend(_instruction_lines(report.instruction, width))
    add(f"Done in {report.seconds:.1f} s.")
    add("")
    add("Try: rerank-integrations demo --query-id q05, or --query 'your own question'")
    add("     RERANK_BASE_URL=https://... RERANK_API_KEY=... rerank-integrations demo")
    return "\n".join(lines) + "\n"


def _instruction_lines(example: InstructionExample, width: int) -> list[str]:
    lines = ["", f'Instruction: "{example.query}" has answers on more than one topic.']
    if example.refused is not None:
        lines.append(cut_to_width(f"  (not shown: {example.refused})", width))
        return lines
    for label, row in (
        ("  best without an instruction:", example.without),
        (f'  best with "{example.instruction}":', example.with_instruction),
    ):
        if row is not None:
            lines.append(cut_to_width(f"{label} {row.passage_id} ({row.score:.3f})", width))
            lines.append(cut_to_width(f"    {row.text}", width))
    return lines


def _long_documents_lines(figures: LongDocumentsFigures, width: int) -> list[str]:
    shortest, longest = figures.words
    lines = [
        "",
        cut_to_width(
            f"Long documents: {figures.documents} documents of {shortest:,} to {longest:,} "
            "words, the answer at a varied depth,",
            width,
        ),
        cut_to_width(
            f"ranked by a server that reads {figures.limit} tokens of each "
            f"({figures.queries} queries, 10 candidates each):",
            width,
        ),
        f"  {'strategy':<26}  {'MRR@10':>7}  {'hit@3':>6}",
    ]
    rows = (
        ("first stage", figures.first_stage),
        ('long_documents="truncate"', figures.truncate),
        ('long_documents="chunk"', figures.chunk),
    )
    for name, item in rows:
        lines.append(f"  {name:<26}  {item.mrr_at_10:>7.3f}  {item.hit_at_3:>6.3f}")
    gain = figures.chunk.mrr_at_10 - figures.truncate.mrr_at_10
    lines.append(
        cut_to_width(
            f"Chunking ({figures.windows:,} windows) finds answers that truncation cuts off: "
            f"MRR@10 {gain:+.3f}.",
            width,
        )
    )
    return lines


def _example_rows(rows: Sequence[ExampleRow], width: int, *, after: bool) -> list[str]:
    header = f"    {'#':>2}  {'score':>7}    {'id':<5}{'  was' if after else ''}  text"
    lines = [header]
    for row in rows:
        mark = "*" if row.relevant else " "
        was = f"  {row.first_stage_rank:>3}" if after else ""
        start = f"    {row.rank:>2}  {row.score:>7.3f}  {mark} {row.passage_id:<5}{was}  "
        lines.append(start + cut_to_width(row.text, width - len(start)))
    return lines
