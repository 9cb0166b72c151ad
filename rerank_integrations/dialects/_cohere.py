"""Cohere rerank: v2 by default (model required, no ``return_documents``), v1 when the
endpoint path is ``/v1/rerank`` (Jina's format, structured documents as objects)."""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest, generic_body, is_version_segment, optional, texts, top_n

__all__ = ["COHERE"]


def is_cohere_v1(path: str) -> bool:
    """Whether the endpoint is Cohere's v1 rerank: its last version segment is ``v1``."""
    versions = [part for part in path.split("/") if is_version_segment(part)]
    return bool(versions) and versions[-1] == "v1"


def _body(request: RankingRequest) -> dict[str, Any]:
    if is_cohere_v1(request.path):
        return generic_body(request)
    body = {"model": request.model, "query": request.query, "documents": texts(request)}
    return {**body, **optional(top_n=top_n(request))}


#: Cohere rerank: v2 by default, v1 when the endpoint path is ``/v1/rerank``.
COHERE = Dialect(
    name="cohere",
    default_path="/v2/rerank",
    description=(
        "Cohere rerank: v2 (model required, no return_documents) by default, v1 when the "
        "endpoint is /v1/rerank; billed in search units."
    ),
    build_body=_body,
    model_required=lambda path: not is_cohere_v1(path),
    takes_objects=is_cohere_v1,
)
