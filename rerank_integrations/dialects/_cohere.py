"""Cohere rerank: v2 by default (model required, no ``return_documents``), v1 when the
endpoint path is ``/v1/rerank`` (Jina's format, structured documents as objects)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ._base import Dialect, RankingRequest, flat_body, generic_body, is_version_segment

__all__ = ["COHERE", "VERCEL"]


def is_cohere_v1(path: str) -> bool:
    """Whether the endpoint is Cohere's v1 rerank: its last version segment is ``v1``."""
    versions = [part for part in path.split("/") if is_version_segment(part)]
    return bool(versions) and versions[-1] == "v1"


def _body(request: RankingRequest) -> dict[str, Any]:
    # v2 takes no return_documents (and always a model: Dialect.body checks it).
    return generic_body(request) if is_cohere_v1(request.path) else flat_body(request)


#: Cohere rerank: v2 by default, v1 when the endpoint path is ``/v1/rerank``.
COHERE = Dialect(
    name="cohere",
    default_path="/v2/rerank",
    base_url="https://api.cohere.com",
    description=(
        "Cohere rerank: v2 (model required, no return_documents) by default, v1 when the "
        "endpoint is /v1/rerank; billed in search units."
    ),
    build_body=_body,
    model_required=lambda path: not is_cohere_v1(path),
    takes_objects=is_cohere_v1,
)

#: Vercel AI Gateway's Cohere-compatible Rerank API: Cohere's format at the gateway's host
#: (v2 by default, v1 when the endpoint is ``/v1/rerank``), models named by provider.
VERCEL = replace(
    COHERE,
    name="vercel",
    base_url="https://ai-gateway.vercel.sh",
    description=(
        "Vercel AI Gateway's Cohere-compatible Rerank API: Cohere's v2 format at "
        "ai-gateway.vercel.sh (v1 when the endpoint is /v1/rerank), models named "
        "provider/model (cohere/rerank-v3.5, voyage/rerank-2.5)."
    ),
)
