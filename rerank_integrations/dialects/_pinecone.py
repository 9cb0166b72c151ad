"""Pinecone inference rerank: ``Api-Key`` header, API version header, document objects."""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest, api_key_auth, optional, top_n

__all__ = ["PINECONE"]


def _body(request: RankingRequest) -> dict[str, Any]:
    body = {
        "model": request.model,
        "query": request.query,
        "documents": [
            {"text": document} if isinstance(document, str) else document
            for document in request.documents
        ],
    }
    return {**body, **optional(top_n=top_n(request)), "return_documents": False}


#: Pinecone inference rerank: ``Api-Key`` header, API version header, document objects.
PINECONE = Dialect(
    name="pinecone",
    default_path="/rerank",
    base_url="https://api.pinecone.io",
    description=(
        "Pinecone inference: Api-Key and API-version headers, model required, documents as "
        "{text}; 100 documents a request (the smallest model limit)."
    ),
    max_documents_per_request=100,
    build_body=_body,
    auth_headers=api_key_auth,
    static_headers={"X-Pinecone-Api-Version": "2025-10"},
    model_required=True,
    takes_objects=True,
    instruction="refuse",
)
