"""DeepInfra inference API: the model in the path, queries repeated per document, scores in
input order (the merge sorts them)."""

from __future__ import annotations

from typing import Any

from .._answers import ParsedRanking, parse_ranking
from ._base import Dialect, RankingRequest, document_text, listed

__all__ = ["DEEPINFRA"]


def _body(request: RankingRequest) -> dict[str, Any]:
    # The model is in the path; the API pairs queries[i] with documents[i].
    texts = [document_text(d) for d in request.documents]
    body: dict[str, Any] = {"queries": [request.query] * len(texts), "documents": texts}
    if request.instruction is not None:  # the Qwen3 rerankers' own field
        body["instruction"] = request.instruction
    return body


def _answer(body: Any) -> ParsedRanking:
    """DeepInfra: ``scores`` in input order, no ranking (the merge sorts), ``input_tokens``."""
    scores = listed(body, "scores")
    if scores is None:
        return parse_ranking(body)
    tokens = body.get("input_tokens")
    return ParsedRanking(
        pairs=list(enumerate(scores)),
        total_tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
    )


#: DeepInfra inference API: the model in the path, scores in input order.
DEEPINFRA = Dialect(
    name="deepinfra",
    default_path="/v1/inference/{model}",
    description=(
        "DeepInfra inference API: the model in the path, queries repeated per document, "
        "scores in input order (sorted on our side)."
    ),
    base_url="https://api.deepinfra.com",
    build_body=_body,
    parse_body=_answer,
    model_required=True,
    instruction="field",
)
