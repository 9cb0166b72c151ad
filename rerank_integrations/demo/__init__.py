"""A self-contained retrieval demo: a labelled corpus, a cheap first stage and ranking metrics.

The pieces here show what a reranker adds to a retrieval pipeline. A deliberately
crude first stage (:func:`hashing_embedding` plus :func:`cosine`) fetches
candidate passages from the bundled corpus (:func:`load_passages`); a reranker
reorders them; and the metrics (:func:`mrr_at_k`, :func:`hit_rate_at_k`) compare
both orderings against the judgements in :func:`load_queries`.
"""

from __future__ import annotations

from rerank_integrations.demo._corpus import LabelledQuery, Passage, load_passages, load_queries
from rerank_integrations.demo._embedding import (
    DEFAULT_DIMENSIONS,
    cosine,
    hashing_embedding,
    hashing_tokens,
    langchain_embeddings,
    llama_index_embedding,
)
from rerank_integrations.demo._metrics import (
    Run,
    hit_at_k,
    hit_rate_at_k,
    mrr_at_k,
    reciprocal_rank,
)
from rerank_integrations.demo._pipeline import run_demo
from rerank_integrations.demo._report import (
    DemoExample,
    DemoReport,
    ExampleRow,
    PipelineFigures,
    StageFigures,
    format_report,
)

__all__ = [
    "DEFAULT_DIMENSIONS",
    "DemoExample",
    "DemoReport",
    "ExampleRow",
    "LabelledQuery",
    "Passage",
    "PipelineFigures",
    "Run",
    "StageFigures",
    "cosine",
    "format_report",
    "hashing_embedding",
    "hashing_tokens",
    "hit_at_k",
    "hit_rate_at_k",
    "langchain_embeddings",
    "llama_index_embedding",
    "load_passages",
    "load_queries",
    "mrr_at_k",
    "reciprocal_rank",
    "run_demo",
]
