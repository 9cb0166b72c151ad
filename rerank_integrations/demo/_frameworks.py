"""The demo's two pipelines, one per framework, each run over every query: the first
stage's candidates and the reranked ones, and their figures.

- LangChain: ``InMemoryVectorStore`` -> ``as_retriever`` -> ``ContextualCompressionRetriever``
  with :class:`~rerank_integrations.langchain.RerankCompressor`, one query at a time (sync);
- LlamaIndex: ``VectorStoreIndex`` -> ``as_retriever`` -> :class:`~rerank_integrations.
  llama_index.RerankPostprocessor`, every query at once (``aretrieve`` and
  ``apostprocess_nodes`` under ``asyncio.gather``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rerank_integrations._adapters import SCORE_KEY
from rerank_integrations._client import RerankClient
from rerank_integrations.demo._corpus import LabelledQuery, Passage
from rerank_integrations.demo._embedding import (
    DEFAULT_DIMENSIONS,
    langchain_embeddings,
    llama_index_embedding,
)
from rerank_integrations.demo._metrics import Run, hit_rate_at_k, mrr_at_k
from rerank_integrations.demo._report import ExampleRow, PipelineFigures, StageFigures

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.vectorstores import InMemoryVectorStore

__all__ = [
    "LANGCHAIN",
    "LLAMA_INDEX",
    "LangChainPipeline",
    "Rankings",
    "evaluate_llama_index",
    "pipeline_figures",
    "stage_figures",
    "tie_ordered",
]

LANGCHAIN = "LangChain"
LLAMA_INDEX = "LlamaIndex"


def stage_figures(runs: Sequence[Run], seconds: float) -> StageFigures:
    """One stage's figures over ``runs``: MRR@10, hits at 1 and 3, and its time."""
    return StageFigures(
        mrr_at_10=mrr_at_k(runs, 10),
        hit_at_1=hit_rate_at_k(runs, 1),
        hit_at_3=hit_rate_at_k(runs, 3),
        seconds=seconds,
    )


# Per query id: (first-stage ids, reranked ids).
Rankings = dict[str, tuple[list[str], list[str]]]


def pipeline_figures(
    name: str,
    mode: str,
    queries: Sequence[LabelledQuery],
    rankings: Rankings,
    first_seconds: float,
    reranked_seconds: float,
) -> PipelineFigures:
    """A pipeline's figures, before and after reranking, from its ``rankings``."""
    first: list[Run] = [(rankings[q.id][0], set(q.relevant)) for q in queries]
    reranked: list[Run] = [(rankings[q.id][1], set(q.relevant)) for q in queries]
    return PipelineFigures(
        name=name,
        mode=mode,
        first_stage=stage_figures(first, first_seconds),
        reranked=stage_figures(reranked, reranked_seconds),
    )


# -- LangChain --------------------------------------------------------------------------------


class LangChainPipeline:
    """``InMemoryVectorStore`` -> retriever -> ``ContextualCompressionRetriever``."""

    def __init__(self, passages: Sequence[Passage], client: RerankClient, top_k: int) -> None:
        from langchain_classic.retrievers import ContextualCompressionRetriever
        from langchain_core.documents import Document
        from langchain_core.vectorstores import InMemoryVectorStore

        from rerank_integrations.langchain import RerankCompressor

        self.top_k = top_k
        self.store: InMemoryVectorStore = InMemoryVectorStore(
            embedding=langchain_embeddings(DEFAULT_DIMENSIONS)
        )
        # page_content is exactly the passage: it is what gets embedded and reranked.
        self.store.add_documents(
            [
                Document(
                    id=passage.id, page_content=passage.text, metadata={"topic": passage.topic}
                )
                for passage in passages
            ]
        )
        self.base: BaseRetriever = self.store.as_retriever(search_kwargs={"k": top_k})
        self.retriever: BaseRetriever = ContextualCompressionRetriever(
            base_compressor=RerankCompressor(client=client, top_n=top_k),
            base_retriever=self.base,
        )

    def evaluate(self, queries: Sequence[LabelledQuery]) -> tuple[PipelineFigures, Rankings]:
        """Both stages for every query, one query at a time."""
        rankings: Rankings = {}
        first_seconds = reranked_seconds = 0.0
        for labelled in queries:
            start = time.perf_counter()
            first = self.first_stage(labelled.query)
            middle = time.perf_counter()
            reranked = self.reranked(labelled.query)
            reranked_seconds += time.perf_counter() - middle
            first_seconds += middle - start
            rankings[labelled.id] = (ids(first), ids(reranked))
        figures = pipeline_figures(
            LANGCHAIN, "sync", queries, rankings, first_seconds, reranked_seconds
        )
        return figures, rankings

    def first_stage(self, query: str) -> list[tuple[str, float]]:
        """The vector store's ``top_k`` candidates with their cosine similarity, the same
        search the base retriever runs."""
        scored = self.store.similarity_search_with_score(query, k=self.top_k)
        return tie_ordered([(doc_id(doc), float(score)) for doc, score in scored])

    def reranked(self, query: str) -> list[tuple[str, float]]:
        """The compression retriever's documents with their relevance scores."""
        documents = self.retriever.invoke(query)
        return tie_ordered([(doc_id(doc), float(doc.metadata[SCORE_KEY])) for doc in documents])

    def example(
        self, query: str, relevant: set[str], texts: dict[str, str], top_n: int
    ) -> tuple[tuple[ExampleRow, ...], tuple[ExampleRow, ...]]:
        """The first ``top_n`` candidates for ``query`` before and after reranking."""
        first = self.first_stage(query)
        first_rank = {passage_id: rank for rank, (passage_id, _) in enumerate(first, start=1)}

        def rows(scored: list[tuple[str, float]]) -> tuple[ExampleRow, ...]:
            return tuple(
                ExampleRow(
                    rank=rank,
                    passage_id=passage_id,
                    score=score,
                    relevant=passage_id in relevant,
                    first_stage_rank=first_rank.get(passage_id, 0),
                    text=texts[passage_id],
                )
                for rank, (passage_id, score) in enumerate(scored[:top_n], start=1)
            )

        return rows(first), rows(self.reranked(query))


def doc_id(document: Any) -> str:
    return str(document.id)


def tie_ordered(scored: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """``(id, score)`` pairs best first, equal scores ordered by id.

    Scores that agree to 9 decimals count as equal. Mathematically equal cosine scores come
    out of the two vector stores a rounding error apart, and each store orders ties its own
    way; ordering ties by id makes the figures depend on the scores alone.
    """
    return sorted(scored, key=lambda pair: (-round(pair[1], 9), pair[0]))


def ids(scored: Sequence[tuple[str, float]]) -> list[str]:
    return [passage_id for passage_id, _ in scored]


# -- LlamaIndex -------------------------------------------------------------------------------


async def evaluate_llama_index(
    passages: Sequence[Passage],
    queries: Sequence[LabelledQuery],
    client: RerankClient,
    top_k: int,
) -> tuple[PipelineFigures, Rankings]:
    """``VectorStoreIndex`` -> retriever -> ``RerankPostprocessor``, every query at once:
    all first stages under one ``asyncio.gather``, then all reranks under another."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import MetadataMode, TextNode

    from rerank_integrations.llama_index import RerankPostprocessor

    # No metadata on the nodes: the embedded and the reranked text is exactly the passage.
    nodes = [TextNode(id_=passage.id, text=passage.text) for passage in passages]
    index = VectorStoreIndex(nodes, embed_model=llama_index_embedding(DEFAULT_DIMENSIONS))
    retriever = index.as_retriever(similarity_top_k=top_k)
    reranker = RerankPostprocessor(client=client, top_n=top_k, metadata_mode=MetadataMode.NONE)
    try:
        start = time.perf_counter()
        retrieved = await asyncio.gather(*(retriever.aretrieve(q.query) for q in queries))
        first_seconds = time.perf_counter() - start
        reranked = await asyncio.gather(
            *(
                reranker.apostprocess_nodes(candidates, query_str=q.query)
                for q, candidates in zip(queries, retrieved, strict=True)
            )
        )
        reranked_seconds = time.perf_counter() - start
    finally:
        await client.aclose()  # this loop's connection pool; the sync one reopens on demand
    rankings: Rankings = {
        q.id: (ids(node_scores(first)), ids(node_scores(second)))
        for q, first, second in zip(queries, retrieved, reranked, strict=True)
    }
    figures = pipeline_figures(
        LLAMA_INDEX, "async", queries, rankings, first_seconds, reranked_seconds
    )
    return figures, rankings


def node_scores(nodes: Sequence[Any]) -> list[tuple[str, float]]:
    """``(node id, score)`` of LlamaIndex ``NodeWithScore`` objects, ties ordered by id."""
    return tie_ordered([(str(item.node.node_id), float(item.score or 0.0)) for item in nodes])
