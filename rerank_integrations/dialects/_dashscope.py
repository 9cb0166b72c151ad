"""Alibaba DashScope native text-rerank: ``input`` and ``parameters``, ``output.results``;
image documents as ``data:`` URIs (qwen3-vl-rerank)."""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest, optional, texts, top_n

__all__ = ["DASHSCOPE"]


def _body(request: RankingRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "input": {"query": request.query, "documents": texts(request)},
        "parameters": {
            **optional(top_n=top_n(request)),
            "return_documents": False,
            **optional(instruct=request.instruction),
        },
    }


#: Alibaba DashScope native text-rerank: ``input`` and ``parameters``, ``output.results``.
DASHSCOPE = Dialect(
    name="dashscope",
    default_path="/api/v1/services/rerank/text-rerank/text-rerank",
    base_url="https://dashscope.aliyuncs.com",
    description=(
        "Alibaba DashScope native API: model required, input and parameters, "
        "output.results; 500 documents a request."
    ),
    max_documents_per_request=500,
    build_body=_body,
    model_required=True,
    image_format="dashscope",
    instruction="field",
)
