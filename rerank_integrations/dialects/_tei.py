"""Hugging Face text-embeddings-inference: ``texts``, a bare list of ``{index, score}``."""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest, texts

__all__ = ["TEI"]


def _body(request: RankingRequest) -> dict[str, Any]:
    return {"query": request.query, "texts": texts(request)}


#: Hugging Face text-embeddings-inference: ``texts``, a bare list of ``{index, score}``.
TEI = Dialect(
    name="tei",
    default_path="/rerank",
    description=(
        "Hugging Face text-embeddings-inference: texts, no model and no top_n, a bare list "
        "of scores; 32 texts a request."
    ),
    max_documents_per_request=32,
    build_body=_body,
    prompt_templates=True,
)
