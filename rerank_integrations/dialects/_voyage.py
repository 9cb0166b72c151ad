"""Voyage AI rerank: model required, ``top_k``, results under ``data``."""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest, optional, texts, top_n

__all__ = ["VOYAGE"]


def _body(request: RankingRequest) -> dict[str, Any]:
    body = {"model": request.model, "query": request.query, "documents": texts(request)}
    return {**body, **optional(top_k=top_n(request)), "return_documents": False}


#: Voyage AI rerank: ``top_k`` and results under ``data``.
VOYAGE = Dialect(
    name="voyage",
    default_path="/v1/rerank",
    description="Voyage AI: model required, top_k, results under data.",
    build_body=_body,
    model_required=True,
)
