"""NVIDIA NIM / NeMo Retriever reranking: ``query: {text}``, ``passages``, raw logits."""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest

__all__ = ["NIM"]


def _body(request: RankingRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "query": {"text": request.query},
        "passages": [{"text": text} for text in request.documents],
    }


#: NVIDIA NIM reranking: ``query: {text}``, ``passages``, raw logits.
NIM = Dialect(
    name="nim",
    default_path="/v1/ranking",
    description=(
        "NVIDIA NIM / NeMo Retriever: model required, query and passages as {text}, raw "
        "logits; 512 passages a request."
    ),
    max_documents_per_request=512,
    score_scale="logit",
    build_body=_body,
    model_required=True,
    instruction="refuse",
)
