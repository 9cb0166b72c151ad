"""Offline reranking of many rows: a resumable file job and the row stream beneath it.

A row is one query with its candidates, ``{"id"?, "query": str, "documents": [str | {"id",
"text"}]}``; its output is the same row with ``"results": [{"index", "relevance_score",
"id"?, "span"?}, ...]`` added, best first. Field names are options.

- :func:`run` / :func:`arun`: a JSON Lines (or Parquet) file in, a JSON Lines file out, in
  input order; rerun it after a crash and it carries on where it stopped. This is what
  ``rerank-integrations batch INPUT OUTPUT`` runs.
- :func:`arerank_rows` / :func:`rerank_rows`: any iterable of rows in, a generator of
  output rows out, in input order, with many rows in flight.

Both take the client's rate limit and adaptive concurrency as they are, so a job stays
within a provider's quota; both work in a notebook (the sync ones run their own loop in a
thread when one is already running)::

    from rerank_integrations import batch

    summary = batch.run("runs.jsonl", "reranked.jsonl", base_url="http://127.0.0.1:8080",
                        top_n=10, concurrency=16)
    print(summary.succeeded, summary.failed, summary.pairs_per_second)
"""

from ._engine import DEFAULT_CONCURRENCY, RowFailedError, arerank_rows, rerank_rows
from ._files import INPUT_FORMATS, ResumeError
from ._job import PATIENT_RETRY, BatchSummary, arun, run
from ._rows import ON_ERROR_MODES, Fields, InvalidRowError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "INPUT_FORMATS",
    "ON_ERROR_MODES",
    "PATIENT_RETRY",
    "BatchSummary",
    "Fields",
    "InvalidRowError",
    "ResumeError",
    "RowFailedError",
    "arerank_rows",
    "arun",
    "rerank_rows",
    "run",
]
