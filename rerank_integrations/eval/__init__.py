"""Know what reranking buys you: the first stage alone and any number of rerankers, side by
side on the same candidates, scored with trec_eval's measures.

Needs the ``eval`` extra (ir-measures over pytrec_eval, scipy, matplotlib): ``pip install
"rerank-integrations[eval]"``. This is what ``rerank-integrations eval`` runs::

    from rerank_integrations import eval as rerank_eval

    dataset = rerank_eval.load_beir("scifact", split="test")
    first_stage = rerank_eval.read_trec_run("bm25.trec")
    report = rerank_eval.evaluate(
        dataset,
        first_stage,
        [rerank_eval.Reranker("tei", base_url="http://127.0.0.1:8080")],
        "report",
    )
    print(report.table())

Each reranker scores each judged query's candidates once, through the batch job
(:mod:`rerank_integrations.batch`: rate-limited, resumable); every (query, document) score is
kept on disk (``report/scores.sqlite``), so a rerun, and every sweep (candidate depth,
``top_n``, ``score_threshold``), sends no request. The report folder holds ``metrics.json``
(``{contender: {measure: mean}}``, measures named as ir-measures names them, the first stage
as ``first-stage``), ``runs/<contender>.trec``, ``per_query.jsonl``, ``significance.json``
(paired t-tests, Holm–Bonferroni), ``sweeps.json``, ``usage.json``, ``report.md`` and plots.
"""

from .._exceptions import EvalInputError, EvalRunError
from ._data import (
    Dataset,
    FirstStage,
    load_beir,
    load_candidates,
    read_qrels,
    read_trec_run,
)
from ._measures import DEFAULT_MEASURES, Comparison, ThresholdPoint, holm
from ._report import EvalReport
from ._retrievers import afirst_stage_from_retriever, first_stage_from_retriever
from ._run import (
    DEFAULT_DEPTHS,
    DEFAULT_TOP_NS,
    FIRST_STAGE,
    Reranker,
    ScoreStore,
    aevaluate,
    evaluate,
)

__all__ = [
    "DEFAULT_DEPTHS",
    "DEFAULT_MEASURES",
    "DEFAULT_TOP_NS",
    "FIRST_STAGE",
    "Comparison",
    "Dataset",
    "EvalInputError",
    "EvalReport",
    "EvalRunError",
    "FirstStage",
    "Reranker",
    "ScoreStore",
    "ThresholdPoint",
    "aevaluate",
    "afirst_stage_from_retriever",
    "evaluate",
    "first_stage_from_retriever",
    "holm",
    "load_beir",
    "load_candidates",
    "read_qrels",
    "read_trec_run",
]
