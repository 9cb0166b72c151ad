"""A self-contained retrieval demo: a labelled corpus, a cheap first stage and ranking metrics.

The pieces here show what a reranker adds to a retrieval pipeline. A deliberately
crude first stage (:func:`hashing_embedding` plus :func:`cosine`) fetches
candidate passages from the bundled corpus (:func:`load_passages`); a reranker
reorders them; and the metrics (:func:`mrr_at_k`, :func:`hit_rate_at_k`) compare
both orderings against the judgements in :func:`load_queries`.

:func:`load_long_documents` makes long documents from the same corpus, each with its answer
at a known depth, and :func:`evaluate_long_documents` scores how a reranker ranks them: what
truncating a long document loses, and what chunking it recovers.
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
from rerank_integrations.demo._long_documents import (
    DEPTHS,
    LongDocument,
    LongDocumentFigures,
    LongDocumentSet,
    LongQuery,
    aevaluate_long_documents,
    evaluate_long_documents,
    load_long_documents,
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
    "DEPTHS",
    "DemoExample",
    "DemoReport",
    "ExampleRow",
    "LabelledQuery",
    "LongDocument",
    "LongDocumentFigures",
    "LongDocumentSet",
    "LongQuery",
    "Passage",
    "PipelineFigures",
    "Run",
    "StageFigures",
    "aevaluate_long_documents",
    "cosine",
    "evaluate_long_documents",
    "format_report",
    "hashing_embedding",
    "hashing_tokens",
    "hit_at_k",
    "hit_rate_at_k",
    "langchain_embeddings",
    "llama_index_embedding",
    "load_long_documents",
    "load_passages",
    "load_queries",
    "mrr_at_k",
    "reciprocal_rank",
    "run_demo",
]
