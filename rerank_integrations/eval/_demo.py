"""The demo's evaluation: the bundled corpus and its judged queries, the demo's first stage
(the hashing embedding, cosine), and two rerankers: a BM25 server reading whole passages and
one reading their first 24 tokens (as a small model would), both started in-process, or the
endpoint given. No key, no network. This is what ``rerank-integrations demo --eval DIR``
runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from .._constants import ENV_BASE_URL
from ._data import Dataset, FirstStage
from ._report import EvalReport
from ._run import Reranker, evaluate

__all__ = ["demo_dataset", "run_demo_eval"]

#: Candidates per query from the demo's first stage.
DEMO_DEPTH = 50

#: What the short-sighted reranker reads of each passage.
SHORT_TOKENS = 24


def demo_dataset(depth: int = DEMO_DEPTH) -> tuple[Dataset, FirstStage]:
    """The demo corpus as a dataset (relevance 1 for each listed passage), and its first
    stage: the top ``depth`` passages of each query by cosine of hashing embeddings."""
    from ..demo._corpus import load_passages, load_queries
    from ..demo._embedding import cosine, hashing_embedding

    passages = load_passages()
    queries = load_queries()
    vectors = [(passage.id, hashing_embedding(passage.text)) for passage in passages]
    candidates = {}
    for query in queries:
        vector = hashing_embedding(query.query)
        scored = [(pid, round(cosine(vector, other), 6)) for pid, other in vectors]
        scored.sort(key=lambda item: (item[1], item[0]), reverse=True)
        candidates[query.id] = scored[:depth]
    dataset = Dataset(
        queries={query.id: query.query for query in queries},
        corpus={passage.id: passage.text for passage in passages},
        qrels={query.id: dict.fromkeys(query.relevant, 1) for query in queries},
        name="demo corpus",
    )
    return dataset, FirstStage(candidates, name="hashing embedding (cosine)")


def run_demo_eval(
    out: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    progress: bool = False,
    progress_stream: TextIO | None = None,
) -> EvalReport:
    """Evaluate the demo corpus into ``out``: against ``base_url`` (else
    ``RERANK_BASE_URL``) when given, else against two local BM25 servers."""
    dataset, first_stage = demo_dataset()
    options = {
        "depths": (5, 10, 20, 50),
        "progress": progress,
        "progress_stream": progress_stream,
    }
    base_url = base_url or os.environ.get(ENV_BASE_URL, "").strip() or None
    if base_url is not None:
        return evaluate(dataset, first_stage, [Reranker("endpoint", base_url)], out, **options)
    from ..server import serve_in_thread

    with (
        serve_in_thread() as whole,
        serve_in_thread(max_tokens_per_document=SHORT_TOKENS, auto_truncate=True) as short,
    ):
        return evaluate(
            dataset,
            first_stage,
            [
                Reranker("bm25", whole.base_url),
                Reranker(f"bm25-first-{SHORT_TOKENS}-tokens", short.base_url),
            ],
            Path(out),
            **options,
        )
