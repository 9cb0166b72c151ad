"""Jina's format, the ``generic`` dialect (which OpenAI-compatible gateways adopted as their
standard), and the services that speak it at their own address with their own limits and
quirks (the presets: ``dialect="zhipu"`` gets Zhipu's path and limits).

Raw, unbounded scores also come from llama.cpp servers (``generic``) and from any server
asked for raw scores (TEI, Infinity ``raw_scores=True``, Zhipu ``return_raw_scores=True``).
"""

from __future__ import annotations

from typing import Any

from ._base import Dialect, RankingRequest, flat_body, optional

__all__ = ["GENERIC", "PRESETS"]

#: Jina's format, which OpenAI-compatible gateways adopted as their standard.
GENERIC = Dialect(
    name="generic",
    default_path="/v1/rerank",
    description=(
        "Jina's format and OpenAI-compatible gateways: New API, one-api, LiteLLM, Jina, vLLM, "
        "Infinity, Xinference, SiliconFlow, Together, llama.cpp (raw logits), Zhipu and "
        "DashScope's compatible mode."
    ),
    prompt_templates=True,
)


def _with_instruction(request: RankingRequest) -> dict[str, Any]:
    """The generic body without ``return_documents``, with an ``instruction`` field."""
    return flat_body(request, **optional(instruction=request.instruction))


def _preset(name: str, path: str, base_url: str | None, description: str, **quirks: Any) -> Dialect:
    """A service in the generic format: its name, path, public root and how it differs."""
    return Dialect(
        name=name, default_path=path, base_url=base_url, description=description, **quirks
    )


#: Services that speak the generic format at their own address, with their own limits and
#: quirks: named so that ``dialect="zhipu"`` gets the right path and limits.
#: ``build_body=flat_body``: the generic body without ``return_documents``, for the APIs that
#: do not document it.
PRESETS: tuple[Dialect, ...] = (
    _preset(
        "zhipu",
        "/api/paas/v4/rerank",
        "https://open.bigmodel.cn",
        "Zhipu AI (BigModel) in the generic format: /api/paas/v4/rerank; 128 documents "
        "of 4,096 characters a request.",
        max_documents_per_request=128,
        max_characters_per_document=4096,
    ),
    _preset(
        "qianfan",
        "/v2/rerankers",
        "https://qianfan.baidubce.com",
        "Baidu Qianfan v2 in the generic format: /v2/rerankers, model required; "
        "64 documents a request.",
        max_documents_per_request=64,
        build_body=flat_body,
        model_required=True,
    ),
    _preset(
        "siliconflow",
        "/v1/rerank",
        "https://api.siliconflow.cn",
        "SiliconFlow in the generic format: model required.",
        model_required=True,
    ),
    _preset(
        "together",
        "/v1/rerank",
        "https://api.together.xyz",
        "Together AI in the generic format: model required; structured documents as "
        "objects with rank_fields.",
        takes_objects=True,
        model_required=True,
    ),
    _preset(
        "fireworks",
        "/inference/v1/rerank",
        "https://api.fireworks.ai",
        "Fireworks AI in the generic format: /inference/v1/rerank, model required, "
        "results under data.",
        model_required=True,
    ),
    _preset(
        "zeroentropy",
        "/v1/models/rerank",
        "https://api.zeroentropy.dev",
        "ZeroEntropy in the generic format: /v1/models/rerank; 5,000,000 bytes a request.",
        max_request_bytes=5_000_000,
        build_body=flat_body,
    ),
    _preset(
        "contextual",
        "/v1/rerank",
        "https://api.contextual.ai",
        "Contextual AI in the generic format: model required, instructions in its "
        "instruction field.",
        build_body=_with_instruction,
        model_required=True,
        instruction="field",
    ),
    _preset(
        "scaleway",
        "/v1/rerank",
        "https://api.scaleway.ai",
        "Scaleway Generative APIs in the generic format: top_n always sent (its server "
        "requires it).",
        explicit_top_n=True,
    ),
    _preset(
        "jina",
        "/v1/rerank",
        "https://api.jina.ai",
        "Jina AI's own API, the generic format at api.jina.ai; image documents for "
        "jina-reranker-m0.",
        image_format="jina",
    ),
    _preset(
        "vllm",
        "/v1/rerank",
        None,
        "vLLM's /v1/rerank in the generic format, with its multimodal documents "
        "(image_url content parts) for vision-language rerankers.",
        image_format="vllm",
        prompt_templates=True,
    ),
    _preset(
        "infinity",
        "/rerank",
        None,
        "Infinity (michaelfeil/infinity) in the generic format: /rerank; 2,048 documents "
        "a request.",
        max_documents_per_request=2048,
        prompt_templates=True,
    ),
    _preset(
        "sglang",
        "/v1/rerank",
        None,
        "SGLang in the generic format: a bare list of raw scores, documents always echoed.",
        score_scale="logit",
        build_body=flat_body,
        prompt_templates=True,
    ),
    _preset(
        "openrouter",
        "/v1/rerank",
        "https://openrouter.ai/api",
        "OpenRouter's rerank API in the generic format: model required (e.g. "
        "cohere/rerank-v3.5), answers name the model and provider, usage in search units "
        "and tokens.",
        build_body=flat_body,
        model_required=True,
    ),
)
