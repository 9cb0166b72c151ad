"""How each rerank service reads a request, answers it and refuses it: the behaviour behind
:class:`~support.server.ScriptedServer`'s ``dialect`` option.

A service checks a request the way the real one does: the endpoint path, the auth header, the
body's field names and types, and its per-request document limit (more documents than that get
a 4xx in the service's own error envelope). It scores with :func:`~support.data.keyword_score`
and answers in its own response shape.

This module holds the services called with an API key, and :data:`SERVICES`, the one table of
every service: these and the cloud ones of :mod:`support.cloud_services`. What they are made
of is in :mod:`support.wire`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .cloud_services import CLOUD_SERVICES
from .wire import (
    Asked,
    Reject,
    Service,
    as_logit,
    error_detail,
    error_generic,
    error_message_only,
    fields,
    flag,
    limit_message,
    need,
    optional_count,
    optional_model,
    ranked,
    required_model,
    scored_documents,
    served_score,
    strings,
    text_objects,
    token_count,
    usage,
)

if TYPE_CHECKING:
    from .server import Received, ScriptedServer

__all__ = ["SERVICES", "Asked", "Reject", "Service", "as_logit", "limit_message", "served_score"]

DASHSCOPE_PATH = "/api/v1/services/rerank/text-rerank/text-rerank"


# -- reading each dialect's request -------------------------------------------------------


def _read_generic(body: Any, path: str) -> Asked:
    return _read_generic_kinds(body, path)


def _read_generic_kinds(
    body: Any, path: str, images: str | None = None, objects: bool = False
) -> Asked:
    """The generic reader, taking images in the format named or objects, when told to."""
    allowed = {"model", "top_n", "return_documents", *({"rank_fields"} if objects else ())}
    body = fields(body, {"query", "documents"}, allowed)
    return Asked(
        body["query"],
        scored_documents(
            body["documents"],
            "documents",
            images=images,
            objects=objects,
            rank_fields=body.get("rank_fields"),
        ),
        optional_count(body, "top_n"),
        optional_model(body),
        # Jina's format echoes documents unless told not to.
        wants_documents=body.get("return_documents", True) is not False,
    )


def _read_cohere(body: Any, path: str) -> Asked:
    if path.endswith("/v1/rerank"):
        body = fields(
            body, {"query", "documents"}, {"model", "top_n", "return_documents", "rank_fields"}
        )
        model = optional_model(body)
        wants = flag(body, "return_documents")
        documents = scored_documents(
            body["documents"], "documents", objects=True, rank_fields=body.get("rank_fields")
        )
    else:
        body = fields(
            body, {"model", "query", "documents"}, {"top_n", "max_tokens_per_doc", "priority"}
        )
        model = required_model(body)
        wants = False
        documents = strings(body["documents"], "documents")
    return Asked(body["query"], documents, optional_count(body, "top_n"), model, wants)


def _read_voyage(body: Any, path: str) -> Asked:
    body = fields(
        body, {"model", "query", "documents"}, {"top_k", "return_documents", "truncation"}
    )
    documents = strings(body["documents"], "documents")
    top_k = optional_count(body, "top_k")
    need(
        top_k is None or top_k <= len(documents),
        f"top_k ({top_k}) must not exceed the number of documents ({len(documents)})",
    )
    return Asked(
        body["query"],
        documents,
        top_k,
        required_model(body),
        flag(body, "return_documents"),
    )


def _read_tei(body: Any, path: str) -> Asked:
    body = fields(
        body,
        {"query", "texts"},
        {"truncate", "truncation_direction", "raw_scores", "return_text"},
    )
    return Asked(
        body["query"], strings(body["texts"], "texts"), None, None, flag(body, "return_text")
    )


def _read_nim(body: Any, path: str) -> Asked:
    body = fields(body, {"model", "query", "passages"}, {"truncate"})
    query = body["query"]
    need(isinstance(query, dict) and isinstance(query.get("text"), str), "'query' must be {text}")
    return Asked(
        query["text"], text_objects(body["passages"], "passages"), None, required_model(body)
    )


def _read_mixedbread(body: Any, path: str) -> Asked:
    body = fields(
        body, {"query", "input"}, {"model", "top_k", "return_input", "rank_fields", "rewrite_query"}
    )
    return Asked(
        body["query"],
        scored_documents(body["input"], "input", objects=True, rank_fields=body.get("rank_fields")),
        optional_count(body, "top_k"),
        optional_model(body),
        flag(body, "return_input"),
    )


def _read_pinecone(body: Any, path: str) -> Asked:
    body = fields(
        body,
        {"model", "query", "documents"},
        {"top_n", "return_documents", "rank_fields", "parameters"},
    )
    documents = body["documents"]
    rank_fields = body.get("rank_fields", ["text"])
    need(
        isinstance(documents, list) and all(isinstance(item, dict) for item in documents),
        "'documents' must hold objects",
    )
    return Asked(
        body["query"],
        scored_documents(documents, "documents", objects=True, rank_fields=rank_fields),
        optional_count(body, "top_n"),
        required_model(body),
        # Pinecone echoes documents unless told not to.
        wants_documents=body.get("return_documents", True) is not False,
    )


def _read_dashscope(body: Any, path: str) -> Asked:
    body = fields(body, {"model", "input"}, {"parameters"})
    given = fields(body["input"], {"query", "documents"}, set())
    parameters = fields(
        body.get("parameters", {}), set(), {"top_n", "return_documents", "instruct"}
    )
    return Asked(
        given["query"],
        scored_documents(given["documents"], "input.documents", images="dashscope"),
        optional_count(parameters, "top_n"),
        required_model(body),
        flag(parameters, "return_documents"),
    )


# -- answering in each dialect's shape ----------------------------------------------------


def _answer_generic(asked: Asked) -> Any:
    results = []
    for index, score in ranked("generic", asked):
        item: dict[str, Any] = {"index": index, "relevance_score": score}
        if asked.wants_documents:
            item["document"] = {"text": asked.documents[index]}
        results.append(item)
    return {"model": asked.model or "served-model", "results": results, "usage": usage(asked)}


def _answer_cohere(asked: Asked) -> Any:
    return {
        "id": "rerank-0001",
        "results": [
            {"index": index, "relevance_score": score} for index, score in ranked("cohere", asked)
        ],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
    }


def _answer_voyage(asked: Asked) -> Any:
    return {
        "object": "list",
        "data": [
            {"relevance_score": score, "index": index} for index, score in ranked("voyage", asked)
        ],
        "model": asked.model,
        "usage": {"total_tokens": token_count(asked)},
    }


def _answer_tei(asked: Asked) -> Any:
    # TEI has no top_n: every text comes back, best first.
    return [{"index": index, "score": score} for index, score in ranked("tei", asked, True)]


def _answer_nim(asked: Asked) -> Any:
    return {"rankings": [{"index": index, "logit": logit} for index, logit in ranked("nim", asked)]}


def _answer_mixedbread(asked: Asked) -> Any:
    return {
        "usage": {"prompt_tokens": token_count(asked), "total_tokens": token_count(asked)},
        "model": asked.model or "mixedbread-ai/mxbai-rerank-large-v2",
        "data": [
            {"index": index, "score": score, "object": "rank_result"}
            for index, score in ranked("mixedbread", asked)
        ],
        "object": "list",
        "top_k": asked.top_n or len(asked.documents),
        "return_input": asked.wants_documents,
    }


def _answer_pinecone(asked: Asked) -> Any:
    data = []
    for index, score in ranked("pinecone", asked):
        item: dict[str, Any] = {"index": index, "score": score}
        if asked.wants_documents:
            item["document"] = {"text": asked.documents[index]}
        data.append(item)
    return {"model": asked.model, "data": data, "usage": {"rerank_units": 1}}


def _answer_dashscope(asked: Asked) -> Any:
    return {
        "output": {
            "results": [
                {"index": index, "relevance_score": score}
                for index, score in ranked("dashscope", asked)
            ]
        },
        "usage": {"total_tokens": token_count(asked)},
        "request_id": "9676afe6-0000-0000-0000-000000000000",
    }


# -- each service's error envelope --------------------------------------------------------


def _error_tei(reject: Reject) -> bytes:
    if reject.kind == "auth":
        return b""  # TEI answers a bad key with a bare 401
    return json.dumps({"error": reject.message, "error_type": "Validation"}).encode()


def _error_mixedbread(reject: Reject) -> bytes:
    kinds = {"auth": "unauthorized_error", "not_found": "not_found_error"}
    return json.dumps(
        {
            "type": kinds.get(reject.kind, "validation_error"),
            "url": "https://www.mixedbread.com/api-reference",
            "message": reject.message,
            "details": {},
        }
    ).encode()


def _error_pinecone(reject: Reject) -> bytes:
    codes = {"auth": "UNAUTHENTICATED", "not_found": "NOT_FOUND"}
    code = codes.get(reject.kind, "INVALID_ARGUMENT")
    return json.dumps(
        {"error": {"code": code, "message": reject.message}, "status": reject.status}
    ).encode()


def _error_dashscope(reject: Reject) -> bytes:
    codes = {"auth": "InvalidApiKey", "not_found": "NotFound"}
    return json.dumps(
        {
            "code": codes.get(reject.kind, "InvalidParameter"),
            "message": reject.message,
            "request_id": "9676afe6-0000-0000-0000-000000000001",
        }
    ).encode()


# -- the presets: mostly the generic format, each with its own path and strictness ----------


def _read_plain(
    model_required: bool, more: frozenset[str] = frozenset()
) -> Callable[[Any, str], Asked]:
    """A generic-format reader for services that do not take ``return_documents``."""

    def read(body: Any, path: str) -> Asked:
        required = {"query", "documents"} | ({"model"} if model_required else set())
        body = fields(body, required, {"model", "top_n"} | set(more))
        return Asked(
            body["query"],
            strings(body["documents"], "documents"),
            optional_count(body, "top_n"),
            required_model(body) if model_required else optional_model(body),
        )

    return read


def _read_generic_with(
    model_required: bool = False,
    top_n_required: bool = False,
    images: str | None = None,
    objects: bool = False,
) -> Callable[[Any, str], Asked]:
    """The generic reader, with a model or a ``top_n`` required as well, or images in the
    format named, or objects, taken."""

    def read(body: Any, path: str) -> Asked:
        if model_required:
            required_model(body if isinstance(body, dict) else {})
        if top_n_required:
            need(isinstance(body, dict) and "top_n" in body, "top_n is required")
        return _read_generic_kinds(body, path, images, objects)

    return read


def _answer_data(asked: Asked) -> Any:
    """Fireworks: the generic answer with the results under ``data``."""
    answer = _answer_generic(asked)
    return {
        "object": "list",
        "model": answer["model"],
        "data": answer["results"],
        "usage": answer["usage"],
    }


def _answer_plain(asked: Asked) -> Any:
    return {"results": [{"index": i, "relevance_score": s} for i, s in ranked("generic", asked)]}


def _answer_sglang(asked: Asked) -> Any:
    return [
        {"score": s, "document": asked.documents[i], "index": i, "meta_info": {"id": f"r{i}"}}
        for i, s in ranked("sglang", asked)
    ]


def _read_deepinfra(body: Any, path: str) -> Asked:
    body = fields(body, {"queries", "documents"}, {"instruction", "service_tier", "webhook"})
    queries = strings(body["queries"], "queries")
    documents = strings(body["documents"], "documents")
    need(len(queries) == len(documents), "queries and documents must have the same length")
    need(len(set(queries)) == 1, "this test server ranks one query")
    model = path.removeprefix("/v1/inference/")
    return Asked(queries[0], documents, None, model)


def _answer_deepinfra(asked: Asked) -> Any:
    scores = [served_score("deepinfra", asked.query, text) for text in asked.documents]
    return {
        "scores": scores,  # in input order: no ranking
        "input_tokens": token_count(asked),
        "request_id": None,
        "inference_status": {"status": "succeeded", "runtime_ms": 3, "cost": 0.0},
    }


def _answer_openrouter(asked: Asked) -> Any:
    """OpenRouter: the model and the provider that served it, each document echoed, usage
    in search units and tokens."""
    return {
        "id": "gen-rerank-0001",
        "model": asked.model,
        "provider": "Cohere",
        "results": [
            {"document": {"text": asked.documents[i]}, "index": i, "relevance_score": s}
            for i, s in ranked("openrouter", asked)
        ],
        "usage": {"search_units": 1, "total_tokens": token_count(asked)},
    }


def _error_openrouter(reject: Reject) -> bytes:
    return json.dumps({"error": {"code": reject.status, "message": reject.message}}).encode()


def _error_detail_error(reject: Reject) -> bytes:
    return json.dumps({"detail": {"error": reject.message}}).encode()


# -- auth -----------------------------------------------------------------------------------


def _pinecone_auth(request: Received, server: ScriptedServer) -> None:
    headers = request.headers
    if headers.get("x-pinecone-api-version") != "2025-10":
        raise Reject(400, "missing X-Pinecone-Api-Version header")
    if server.api_key is None:
        return
    if "authorization" in headers or headers.get("api-key") != server.api_key:
        raise Reject(401, "Invalid API Key", "auth")


# -- the table ----------------------------------------------------------------------------

_GENERIC_WITH_MODEL = _read_generic_with(model_required=True)

API_KEY_SERVICES: dict[str, Service] = {
    "generic": Service(("/v1/rerank",), 1000, _read_generic, _answer_generic, error_generic),
    "cohere": Service(
        ("/v2/rerank", "/v1/rerank"), 1000, _read_cohere, _answer_cohere, error_message_only
    ),
    "voyage": Service(("/v1/rerank",), 1000, _read_voyage, _answer_voyage, error_detail),
    "tei": Service(("/rerank",), 32, _read_tei, _answer_tei, _error_tei, limit_status=413),
    "nim": Service(("/v1/ranking",), 512, _read_nim, _answer_nim, error_detail),
    "mixedbread": Service(
        ("/v1/reranking",),
        1000,
        _read_mixedbread,
        _answer_mixedbread,
        _error_mixedbread,
        limit_status=422,
    ),
    "pinecone": Service(
        ("/rerank",), 100, _read_pinecone, _answer_pinecone, _error_pinecone, _pinecone_auth
    ),
    "dashscope": Service(
        (DASHSCOPE_PATH,), 500, _read_dashscope, _answer_dashscope, _error_dashscope
    ),
    # DeepInfra names the model in the path: /v1/inference/<model>.
    "deepinfra": Service(
        ("/v1/inference/*",),
        1000,
        _read_deepinfra,
        _answer_deepinfra,
        _error_detail_error,
        limit_status=422,
    ),
    "zhipu": Service(
        ("/api/paas/v4/rerank",),
        128,
        _read_generic,
        _answer_generic,
        error_generic,
        max_characters=4096,
    ),
    "qianfan": Service(("/v2/rerankers",), 64, _read_plain(True), _answer_generic, error_generic),
    "siliconflow": Service(
        ("/v1/rerank",), 1000, _GENERIC_WITH_MODEL, _answer_generic, error_message_only
    ),
    "together": Service(
        ("/v1/rerank",),
        1000,
        _read_generic_with(model_required=True, objects=True),
        _answer_generic,
        error_generic,
    ),
    "fireworks": Service(
        ("/inference/v1/rerank",), 1000, _GENERIC_WITH_MODEL, _answer_data, error_generic
    ),
    "zeroentropy": Service(
        ("/v1/models/rerank",),
        1000,
        _read_plain(False),
        _answer_plain,
        error_detail,
        max_bytes=5_000_000,
    ),
    "contextual": Service(
        ("/v1/rerank",),
        1000,
        _read_plain(True, frozenset({"instruction", "metadata"})),
        _answer_plain,
        error_detail,
    ),
    "scaleway": Service(
        ("/v1/rerank",),
        1000,
        _read_generic_with(top_n_required=True),
        _answer_generic,
        error_generic,
    ),
    "jina": Service(
        ("/v1/rerank",), 1000, _read_generic_with(images="jina"), _answer_generic, error_detail
    ),
    "vllm": Service(
        ("/v1/rerank",), 1000, _read_generic_with(images="vllm"), _answer_generic, error_generic
    ),
    "infinity": Service(("/rerank",), 2048, _read_generic, _answer_generic, error_detail),
    "sglang": Service(("/v1/rerank",), 1000, _read_plain(False), _answer_sglang, error_generic),
    "openrouter": Service(
        ("/v1/rerank", "/api/v1/rerank"),
        1000,
        _read_plain(True, frozenset({"provider"})),
        _answer_openrouter,
        _error_openrouter,
    ),
    # Vercel AI Gateway speaks Cohere's format, v2 and v1.
    "vercel": Service(
        ("/v2/rerank", "/v1/rerank"), 1000, _read_cohere, _answer_cohere, error_message_only
    ),
}

#: Every service :class:`~support.server.ScriptedServer` can imitate, by dialect name.
SERVICES: dict[str, Service] = {**API_KEY_SERVICES, **CLOUD_SERVICES}
