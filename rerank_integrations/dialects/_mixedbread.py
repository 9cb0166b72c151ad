"""Mixedbread reranking: ``input`` and ``top_k``, results under ``data`` with ``score``."""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest, flat_body

__all__ = ["MIXEDBREAD"]


def _body(request: RankingRequest) -> dict[str, Any]:
    return flat_body(request, documents="input", top="top_k")


#: Mixedbread reranking: ``input`` and ``top_k``, results under ``data`` with ``score``.
MIXEDBREAD = Dialect(
    name="mixedbread",
    default_path="/v1/reranking",
    base_url="https://api.mixedbread.com",
    description=(
        "Mixedbread: input instead of documents, top_k always sent (a server-side default "
        "could cut the answer), results under data."
    ),
    build_body=_body,
    explicit_top_n=True,
    takes_objects=True,
)
