"""How each rerank service reads a request, answers it and refuses it: the behaviour behind
:class:`~support.server.ScriptedServer`'s ``dialect`` option.

A service checks a request the way the real one does: the endpoint path, the auth header, the
body's field names and types, and its per-request document limit (more documents than that get
a 4xx in the service's own error envelope). It scores with :func:`~support.data.keyword_score`
and answers in its own response shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .data import WORD, keyword_score

DASHSCOPE_PATH = "/api/v1/services/rerank/text-rerank/text-rerank"


def as_logit(score: float) -> float:
    """How the NIM service turns a keyword score into a raw logit (negative below 0.5)."""
    return round((score - 0.5) * 20.0, 6)


def served_score(dialect: str, query: str, document: str) -> float:
    """The score a service of ``dialect`` gives ``document``."""
    score = keyword_score(query, document)
    return as_logit(score) if dialect == "nim" else score


def limit_message(count: int, limit: int) -> str:
    """The message a service gives a request with too many documents."""
    return f"batch size {count} > maximum allowed batch size {limit}"


class Reject(Exception):
    """A request the service refuses: answered with ``status`` and ``message``."""

    def __init__(self, status: int, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind  # "invalid", "auth" or "not_found"


@dataclass
class Asked:
    """What one request asked for, once read in the dialect's own terms."""

    query: str
    documents: list[str]
    top_n: int | None
    model: str | None
    wants_documents: bool = False


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise Reject(400, message)


def _keys(body: Any, required: set[str], allowed: set[str]) -> dict[str, Any]:
    _need(isinstance(body, dict), "the body must be a JSON object")
    missing = required - set(body)
    _need(not missing, f"missing field(s): {', '.join(sorted(missing))}")
    unknown = set(body) - required - allowed
    _need(not unknown, f"unknown field(s): {', '.join(sorted(unknown))}")
    return dict(body)


def _strings(value: Any, name: str) -> list[str]:
    _need(isinstance(value, list) and len(value) > 0, f"'{name}' must be a non-empty list")
    _need(all(isinstance(item, str) for item in value), f"'{name}' must hold strings")
    return list(value)


def _text_objects(value: Any, name: str) -> list[str]:
    _need(isinstance(value, list) and len(value) > 0, f"'{name}' must be a non-empty list")
    _need(
        all(isinstance(item, dict) and isinstance(item.get("text"), str) for item in value),
        f"'{name}' must hold {{text}} objects",
    )
    return [item["text"] for item in value]


def _optional_count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    _need(
        isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        f"'{name}' must be a positive integer",
    )
    return int(value)


def _optional_model(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    _need(model is None or isinstance(model, str), "'model' must be a string")
    return model


def _required_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    _need(isinstance(model, str) and bool(model), "'model' is required")
    return str(model)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    _need(isinstance(value, bool), f"'{name}' must be a boolean")
    return bool(value)


# -- reading each dialect's request -------------------------------------------------------


def _read_generic(body: Any, path: str) -> Asked:
    body = _keys(body, {"query", "documents"}, {"model", "top_n", "return_documents"})
    return Asked(
        body["query"],
        _strings(body["documents"], "documents"),
        _optional_count(body, "top_n"),
        _optional_model(body),
        # Jina's format echoes documents unless told not to.
        wants_documents=body.get("return_documents", True) is not False,
    )


def _read_cohere(body: Any, path: str) -> Asked:
    if path.endswith("/v1/rerank"):
        body = _keys(
            body, {"query", "documents"}, {"model", "top_n", "return_documents", "rank_fields"}
        )
        model = _optional_model(body)
        wants = _flag(body, "return_documents")
    else:
        body = _keys(
            body, {"model", "query", "documents"}, {"top_n", "max_tokens_per_doc", "priority"}
        )
        model = _required_model(body)
        wants = False
    return Asked(
        body["query"],
        _strings(body["documents"], "documents"),
        _optional_count(body, "top_n"),
        model,
        wants,
    )


def _read_voyage(body: Any, path: str) -> Asked:
    body = _keys(body, {"model", "query", "documents"}, {"top_k", "return_documents", "truncation"})
    documents = _strings(body["documents"], "documents")
    top_k = _optional_count(body, "top_k")
    _need(
        top_k is None or top_k <= len(documents),
        f"top_k ({top_k}) must not exceed the number of documents ({len(documents)})",
    )
    return Asked(
        body["query"],
        documents,
        top_k,
        _required_model(body),
        _flag(body, "return_documents"),
    )


def _read_tei(body: Any, path: str) -> Asked:
    body = _keys(
        body,
        {"query", "texts"},
        {"truncate", "truncation_direction", "raw_scores", "return_text"},
    )
    return Asked(
        body["query"], _strings(body["texts"], "texts"), None, None, _flag(body, "return_text")
    )


def _read_nim(body: Any, path: str) -> Asked:
    body = _keys(body, {"model", "query", "passages"}, {"truncate"})
    query = body["query"]
    _need(isinstance(query, dict) and isinstance(query.get("text"), str), "'query' must be {text}")
    return Asked(
        query["text"], _text_objects(body["passages"], "passages"), None, _required_model(body)
    )


def _read_mixedbread(body: Any, path: str) -> Asked:
    body = _keys(
        body, {"query", "input"}, {"model", "top_k", "return_input", "rank_fields", "rewrite_query"}
    )
    return Asked(
        body["query"],
        _strings(body["input"], "input"),
        _optional_count(body, "top_k"),
        _optional_model(body),
        _flag(body, "return_input"),
    )


def _read_pinecone(body: Any, path: str) -> Asked:
    body = _keys(
        body,
        {"model", "query", "documents"},
        {"top_n", "return_documents", "rank_fields", "parameters"},
    )
    return Asked(
        body["query"],
        _text_objects(body["documents"], "documents"),
        _optional_count(body, "top_n"),
        _required_model(body),
        # Pinecone echoes documents unless told not to.
        wants_documents=body.get("return_documents", True) is not False,
    )


def _read_dashscope(body: Any, path: str) -> Asked:
    body = _keys(body, {"model", "input"}, {"parameters"})
    given = _keys(body["input"], {"query", "documents"}, set())
    parameters = _keys(body.get("parameters", {}), set(), {"top_n", "return_documents", "instruct"})
    return Asked(
        given["query"],
        _strings(given["documents"], "input.documents"),
        _optional_count(parameters, "top_n"),
        _required_model(body),
        _flag(parameters, "return_documents"),
    )


# -- answering in each dialect's shape ----------------------------------------------------


def _ranked(dialect: str, asked: Asked, keep_all: bool = False) -> list[tuple[int, float]]:
    scored = [
        (index, served_score(dialect, asked.query, text))
        for index, text in enumerate(asked.documents)
    ]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    if asked.top_n is not None and not keep_all:
        scored = scored[: asked.top_n]
    return scored


def _tokens(asked: Asked) -> int:
    return sum(len(WORD.findall(text)) for text in [asked.query, *asked.documents])


def _usage(asked: Asked) -> dict[str, int]:
    tokens = _tokens(asked)
    return {"prompt_tokens": tokens, "total_tokens": tokens}


def _answer_generic(asked: Asked) -> Any:
    results = []
    for index, score in _ranked("generic", asked):
        item: dict[str, Any] = {"index": index, "relevance_score": score}
        if asked.wants_documents:
            item["document"] = {"text": asked.documents[index]}
        results.append(item)
    return {"model": asked.model or "served-model", "results": results, "usage": _usage(asked)}


def _answer_cohere(asked: Asked) -> Any:
    return {
        "id": "rerank-0001",
        "results": [
            {"index": index, "relevance_score": score} for index, score in _ranked("cohere", asked)
        ],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
    }


def _answer_voyage(asked: Asked) -> Any:
    return {
        "object": "list",
        "data": [
            {"relevance_score": score, "index": index} for index, score in _ranked("voyage", asked)
        ],
        "model": asked.model,
        "usage": {"total_tokens": _tokens(asked)},
    }


def _answer_tei(asked: Asked) -> Any:
    # TEI has no top_n: every text comes back, best first.
    return [{"index": index, "score": score} for index, score in _ranked("tei", asked, True)]


def _answer_nim(asked: Asked) -> Any:
    return {
        "rankings": [{"index": index, "logit": logit} for index, logit in _ranked("nim", asked)]
    }


def _answer_mixedbread(asked: Asked) -> Any:
    return {
        "usage": {"prompt_tokens": _tokens(asked), "total_tokens": _tokens(asked)},
        "model": asked.model or "mixedbread-ai/mxbai-rerank-large-v2",
        "data": [
            {"index": index, "score": score, "object": "rank_result"}
            for index, score in _ranked("mixedbread", asked)
        ],
        "object": "list",
        "top_k": asked.top_n or len(asked.documents),
        "return_input": asked.wants_documents,
    }


def _answer_pinecone(asked: Asked) -> Any:
    data = []
    for index, score in _ranked("pinecone", asked):
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
                for index, score in _ranked("dashscope", asked)
            ]
        },
        "usage": {"total_tokens": _tokens(asked)},
        "request_id": "9676afe6-0000-0000-0000-000000000000",
    }


# -- each service's error envelope --------------------------------------------------------


def _error_generic(reject: Reject) -> bytes:
    kinds = {"auth": "authentication_error", "not_found": "not_found_error"}
    error = {"message": reject.message, "type": kinds.get(reject.kind, "invalid_request_error")}
    return json.dumps({"error": {**error, "code": reject.status}}).encode()


def _error_message_only(reject: Reject) -> bytes:
    return json.dumps({"message": reject.message}).encode()


def _error_detail(reject: Reject) -> bytes:
    return json.dumps({"detail": reject.message}).encode()


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


# -- auth -----------------------------------------------------------------------------------


def _bearer(headers: dict[str, str], api_key: str | None) -> None:
    if api_key is not None and headers.get("authorization") != f"Bearer {api_key}":
        raise Reject(401, "invalid api token", "auth")


def _pinecone_auth(headers: dict[str, str], api_key: str | None) -> None:
    if headers.get("x-pinecone-api-version") != "2025-10":
        raise Reject(400, "missing X-Pinecone-Api-Version header")
    if api_key is None:
        return
    if "authorization" in headers or headers.get("api-key") != api_key:
        raise Reject(401, "Invalid API Key", "auth")


@dataclass(frozen=True)
class Service:
    """One rerank service's wire behaviour.

    Attributes:
        paths: the endpoint paths it answers (the first is its usual one).
        limit: the most documents it takes in one request, as its documentation states.
        read: reads a request body (given the path) into :class:`Asked`, or raises
            :class:`Reject`.
        answer: the JSON answer to an :class:`Asked`.
        error: the error body for a :class:`Reject`.
        check_auth: raises :class:`Reject` unless the headers carry the key (any request
            passes when the key is ``None``).
        limit_status: the status of an answer to too many documents.
    """

    paths: tuple[str, ...]
    limit: int
    read: Callable[[Any, str], Asked]
    answer: Callable[[Asked], Any]
    error: Callable[[Reject], bytes]
    check_auth: Callable[[dict[str, str], str | None], None] = _bearer
    limit_status: int = 400


SERVICES: dict[str, Service] = {
    "generic": Service(("/v1/rerank",), 1000, _read_generic, _answer_generic, _error_generic),
    "cohere": Service(
        ("/v2/rerank", "/v1/rerank"), 1000, _read_cohere, _answer_cohere, _error_message_only
    ),
    "voyage": Service(("/v1/rerank",), 1000, _read_voyage, _answer_voyage, _error_detail),
    "tei": Service(("/rerank",), 32, _read_tei, _answer_tei, _error_tei, limit_status=413),
    "nim": Service(("/v1/ranking",), 512, _read_nim, _answer_nim, _error_detail),
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
}
