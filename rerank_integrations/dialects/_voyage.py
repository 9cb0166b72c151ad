"""Voyage AI rerank: model required, ``top_k``, results under ``data``."""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest, flat_body

__all__ = ["VOYAGE"]


def _body(request: RankingRequest) -> dict[str, Any]:
    return flat_body(request, top="top_k", return_documents=False)


#: Voyage AI rerank: ``top_k`` and results under ``data``.
VOYAGE = Dialect(
    name="voyage",
    default_path="/v1/rerank",
    base_url="https://api.voyageai.com",
    description="Voyage AI: model required, top_k, results under data.",
    build_body=_body,
    model_required=True,
)
