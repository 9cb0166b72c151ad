"""Mixedbread reranking: ``input`` and ``top_k``, results under ``data`` with ``score``."""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest, optional, texts, top_n

__all__ = ["MIXEDBREAD"]


def _body(request: RankingRequest) -> dict[str, Any]:
    body = {**optional(model=request.model), "query": request.query, "input": texts(request)}
    return {**body, **optional(top_k=top_n(request))}


#: Mixedbread reranking: ``input`` and ``top_k``, results under ``data`` with ``score``.
MIXEDBREAD = Dialect(
    name="mixedbread",
    default_path="/v1/reranking",
    description=(
        "Mixedbread: input instead of documents, top_k always sent (a server-side default "
        "could cut the answer), results under data."
    ),
    build_body=_body,
    explicit_top_n=True,
    takes_objects=True,
)
