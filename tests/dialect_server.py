"""A loopback rerank server that speaks one chosen wire dialect, for wire tests.

It checks each request the way the real service would: the endpoint path, the auth header,
the body's field names and types, and the per-request document limit (more documents than
the dialect's limit get a 4xx in the service's own error envelope). It scores with a simple
keyword rule and answers in the dialect's response shape.

The cloud dialects' credentials are checked too: ``watsonx`` serves IBM's IAM token endpoint
(``/identity/token``) and takes only the tokens it issued; ``vertex`` takes one bearer
token; ``bedrock`` recomputes each request's AWS SigV4 signature with botocore's signer.
:class:`MetadataServer` is a fake Google metadata server that hands out access tokens.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rerank_integrations._dialects import DIALECTS

_WORD = re.compile(r"\w+")


def keyword_score(query: str, document: str) -> float:
    """The share of query words found in the document, plus a tiny length term so that
    scores rarely tie; between 0 and about 1."""
    words = set(_WORD.findall(query.lower()))
    found = set(_WORD.findall(document.lower()))
    share = len(words & found) / len(words) if words else 0.0
    return round(share + min(len(document), 999) / 1e6, 9)


def as_logit(score: float) -> float:
    """How the NIM server turns a keyword score into a raw logit (negative below 0.5)."""
    return round((score - 0.5) * 20.0, 6)


#: Dialects whose servers answer with raw logits.
LOGIT_DIALECTS = {"nim", "watsonx", "sglang"}


def served_score(dialect: str, query: str, document: str) -> float:
    """The score this server gives ``document`` in ``dialect``."""
    score = keyword_score(query, document)
    return as_logit(score) if dialect in LOGIT_DIALECTS else score


class Reject(Exception):
    """A request the service would refuse: answered with ``status`` and ``message``."""

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
    page_token: str | None = None  # Bedrock: the page asked for
    page_size: int | None = None  # Bedrock: results a page holds, set by the server
    ids: list[str] | None = None  # Vertex: the record ids, to answer by


@dataclass
class Received:
    """One request as it arrived."""

    path: str
    headers: dict[str, str]
    body: Any
    asked: Asked | None = None


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
    return sum(len(_WORD.findall(text)) for text in [asked.query, *asked.documents])


def _answer_generic(asked: Asked) -> Any:
    results = []
    for index, score in _ranked("generic", asked):
        item: dict[str, Any] = {"index": index, "relevance_score": score}
        if asked.wants_documents:
            item["document"] = {"text": asked.documents[index]}
        results.append(item)
    return {"model": asked.model or "served-model", "results": results, "usage": _usage(asked)}


def _usage(asked: Asked) -> dict[str, int]:
    tokens = _tokens(asked)
    return {"prompt_tokens": tokens, "total_tokens": tokens}


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


# -- the cloud dialects and the presets -------------------------------------------------------


def _read_watsonx(body: Any, path: str) -> Asked:
    body = _keys(body, {"model_id", "query", "inputs"}, {"parameters", "project_id", "space_id"})
    _need(
        "project_id" in body or "space_id" in body,
        "Either 'space_id' or 'project_id' has to be provided",
    )
    parameters = _keys(
        body.get("parameters", {}), set(), {"return_options", "truncate_input_tokens"}
    )
    options = _keys(parameters.get("return_options", {}), set(), {"top_n", "inputs", "query"})
    model = body["model_id"]
    _need(isinstance(model, str) and bool(model), "'model_id' is required")
    return Asked(
        body["query"],
        _text_objects(body["inputs"], "inputs"),
        _optional_count(options, "top_n"),
        model,
        _flag(options, "inputs"),
    )


def _answer_watsonx(asked: Asked) -> Any:
    return {
        "model_id": asked.model,
        "results": [{"index": i, "score": s} for i, s in _ranked("watsonx", asked)],
        "created_at": "2026-12-01T08:00:00.000Z",
        "input_token_count": _tokens(asked),
    }


def _error_watsonx(reject: Reject) -> bytes:
    codes = {"auth": "authentication_token_expired", "not_found": "not_found"}
    error = {"code": codes.get(reject.kind, "invalid_input_argument"), "message": reject.message}
    return json.dumps({"errors": [error], "trace": "0a1b2c", "status_code": reject.status}).encode()


def _read_vertex(body: Any, path: str) -> Asked:
    body = _keys(
        body, {"query", "records"}, {"model", "topN", "ignoreRecordDetailsInResponse", "userLabels"}
    )
    records = body["records"]
    _need(isinstance(records, list) and len(records) > 0, "'records' must be a non-empty list")
    ids = [record.get("id") if isinstance(record, dict) else None for record in records]
    _need(all(isinstance(i, str) and i for i in ids), "every record needs a string id")
    _need(len(set(ids)) == len(ids), "record ids must be unique")
    _need(all(isinstance(r.get("content"), str) for r in records), "records need content")
    asked = Asked(
        body["query"],
        [r["content"] for r in records],
        _optional_count(body, "topN"),
        _optional_model(body),
        body.get("ignoreRecordDetailsInResponse") is not True,
    )
    asked.ids = [str(i) for i in ids]
    return asked


def _answer_vertex(asked: Asked) -> Any:
    ids = asked.ids or []
    return {"records": [{"id": ids[i], "score": s} for i, s in _ranked("vertex", asked)]}


def _error_google(reject: Reject) -> bytes:
    statuses = {"auth": "UNAUTHENTICATED", "not_found": "NOT_FOUND"}
    status = statuses.get(reject.kind, "INVALID_ARGUMENT")
    return json.dumps(
        {"error": {"code": reject.status, "message": reject.message, "status": status}}
    ).encode()


def _read_bedrock(body: Any, path: str) -> Asked:
    body = _keys(body, {"queries", "sources", "rerankingConfiguration"}, {"nextToken"})
    queries = body["queries"]
    _need(isinstance(queries, list) and len(queries) == 1, "queries must hold exactly 1 item")
    query = queries[0]
    _need(
        query.get("type") == "TEXT" and isinstance(query.get("textQuery", {}).get("text"), str),
        "a TEXT query",
    )
    sources = body["sources"]
    _need(isinstance(sources, list) and len(sources) > 0, "sources must be a non-empty list")
    texts = []
    for source in sources:
        inline = source.get("inlineDocumentSource", {}) if isinstance(source, dict) else {}
        _need(
            source.get("type") == "INLINE" and inline.get("type") == "TEXT", "INLINE TEXT sources"
        )
        texts.append(inline.get("textDocument", {}).get("text"))
    _need(all(isinstance(text, str) for text in texts), "sources need text")
    configuration = body["rerankingConfiguration"]
    _need(configuration.get("type") == "BEDROCK_RERANKING_MODEL", "type BEDROCK_RERANKING_MODEL")
    bedrock = configuration.get("bedrockRerankingConfiguration", {})
    arn = bedrock.get("modelConfiguration", {}).get("modelArn")
    _need(isinstance(arn, str) and arn.startswith("arn:aws:bedrock:"), "modelArn must be an ARN")
    count = _optional_count(bedrock, "numberOfResults")
    return Asked(query["textQuery"]["text"], texts, count, arn, page_token=body.get("nextToken"))


def _answer_bedrock(asked: Asked) -> Any:
    ranked = _ranked("bedrock", asked)
    start = int(base64.b64decode(asked.page_token)) if asked.page_token else 0
    size = asked.page_size or len(ranked)
    page = ranked[start : start + size]
    answer: dict[str, Any] = {"results": [{"index": i, "relevanceScore": s} for i, s in page]}
    if start + size < len(ranked):
        answer["nextToken"] = base64.b64encode(str(start + size).encode()).decode()
    return answer


def _read_deepinfra(body: Any, path: str) -> Asked:
    body = _keys(body, {"queries", "documents"}, {"instruction", "service_tier", "webhook"})
    queries = _strings(body["queries"], "queries")
    documents = _strings(body["documents"], "documents")
    _need(len(queries) == len(documents), "queries and documents must have the same length")
    _need(len(set(queries)) == 1, "this test server ranks one query")
    model = path.removeprefix("/v1/inference/")
    return Asked(queries[0], documents, None, model)


def _answer_deepinfra(asked: Asked) -> Any:
    scores = [served_score("deepinfra", asked.query, text) for text in asked.documents]
    return {
        "scores": scores,  # in input order: no ranking
        "input_tokens": _tokens(asked),
        "request_id": None,
        "inference_status": {"status": "succeeded", "runtime_ms": 3, "cost": 0.0},
    }


def _error_detail_error(reject: Reject) -> bytes:
    return json.dumps({"detail": {"error": reject.message}}).encode()


def _read_plain(
    required_model: bool, more: frozenset[str] = frozenset()
) -> Callable[[Any, str], Asked]:
    """A generic-format reader for servers that do not take ``return_documents``."""

    def read(body: Any, path: str) -> Asked:
        required = {"query", "documents"} | ({"model"} if required_model else set())
        body = _keys(body, required, {"model", "top_n"} | set(more))
        return Asked(
            body["query"],
            _strings(body["documents"], "documents"),
            _optional_count(body, "top_n"),
            _required_model(body) if required_model else _optional_model(body),
        )

    return read


def _read_generic_with(
    required_model: bool = False, top_n_required: bool = False
) -> Callable[[Any, str], Asked]:
    def read(body: Any, path: str) -> Asked:
        if required_model:
            _required_model(body if isinstance(body, dict) else {})
        if top_n_required:
            _need(isinstance(body, dict) and "top_n" in body, "top_n is required")
        return _read_generic(body, path)

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


def _answer_sglang(asked: Asked) -> Any:
    return [
        {"score": s, "document": asked.documents[i], "index": i, "meta_info": {"id": f"r{i}"}}
        for i, s in _ranked("sglang", asked)
    ]


def _answer_plain(asked: Asked) -> Any:
    return {"results": [{"index": i, "relevance_score": s} for i, s in _ranked("generic", asked)]}


@dataclass(frozen=True)
class _Service:
    paths: tuple[str, ...]
    read: Callable[[Any, str], Asked]
    answer: Callable[[Asked], Any]
    error: Callable[[Reject], bytes]
    limit_status: int = 400


_SERVICES: dict[str, _Service] = {
    "generic": _Service(("/v1/rerank",), _read_generic, _answer_generic, _error_generic),
    "cohere": _Service(
        ("/v2/rerank", "/v1/rerank"), _read_cohere, _answer_cohere, _error_message_only
    ),
    "voyage": _Service(("/v1/rerank",), _read_voyage, _answer_voyage, _error_detail),
    "tei": _Service(("/rerank",), _read_tei, _answer_tei, _error_tei, limit_status=413),
    "nim": _Service(("/v1/ranking",), _read_nim, _answer_nim, _error_detail),
    "mixedbread": _Service(
        ("/v1/reranking",), _read_mixedbread, _answer_mixedbread, _error_mixedbread, 422
    ),
    "pinecone": _Service(("/rerank",), _read_pinecone, _answer_pinecone, _error_pinecone),
    "dashscope": _Service(
        ("/api/v1/services/rerank/text-rerank/text-rerank",),
        _read_dashscope,
        _answer_dashscope,
        _error_dashscope,
    ),
    "watsonx": _Service(("/ml/v1/text/rerank",), _read_watsonx, _answer_watsonx, _error_watsonx),
    "vertex": _Service(
        ("/v1/projects/test-project/locations/global/rankingConfigs/default_ranking_config:rank",),
        _read_vertex,
        _answer_vertex,
        _error_google,
    ),
    "bedrock": _Service(("/rerank",), _read_bedrock, _answer_bedrock, _error_message_only),
    "deepinfra": _Service(
        ("/v1/inference/*",), _read_deepinfra, _answer_deepinfra, _error_detail_error, 422
    ),
    "zhipu": _Service(("/api/paas/v4/rerank",), _read_generic, _answer_generic, _error_generic),
    "qianfan": _Service(("/v2/rerankers",), _read_plain(True), _answer_generic, _error_generic),
    "siliconflow": _Service(
        ("/v1/rerank",),
        _read_generic_with(required_model=True),
        _answer_generic,
        _error_message_only,
    ),
    "together": _Service(
        ("/v1/rerank",), _read_generic_with(required_model=True), _answer_generic, _error_generic
    ),
    "fireworks": _Service(
        ("/inference/v1/rerank",),
        _read_generic_with(required_model=True),
        _answer_data,
        _error_generic,
    ),
    "zeroentropy": _Service(
        ("/v1/models/rerank",), _read_plain(False), _answer_plain, _error_detail
    ),
    "contextual": _Service(
        ("/v1/rerank",),
        _read_plain(True, frozenset({"instruction", "metadata"})),
        _answer_plain,
        _error_detail,
    ),
    "scaleway": _Service(
        ("/v1/rerank",), _read_generic_with(top_n_required=True), _answer_generic, _error_generic
    ),
    "jina": _Service(("/v1/rerank",), _read_generic, _answer_generic, _error_detail),
    "infinity": _Service(("/rerank",), _read_generic, _answer_generic, _error_detail),
    "sglang": _Service(("/v1/rerank",), _read_plain(False), _answer_sglang, _error_generic),
}


def limit_message(count: int, limit: int) -> str:
    """The message this server gives a request with too many documents."""
    return f"batch size {count} > maximum allowed batch size {limit}"


#: The key IAM takes, and the words it refuses another with.
IAM_UNKNOWN_KEY = "Provided API key could not be found."


def verify_sigv4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    service: str = "bedrock",
) -> str | None:
    """Why a request's AWS SigV4 signature is wrong, or ``None`` when it is right: the
    signature is computed again with botocore's own signer from the headers it names."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    found = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})",
        headers.get("authorization", ""),
    )
    if not found:
        return "no SigV4 Authorization header"
    access_key, day, region, signed_service, signed, signature = found.groups()
    if access_key not in secrets:
        return "The security token included in the request is invalid."
    if signed_service != service:
        return f"signed for service {signed_service}, not {service}"
    stamp = headers.get("x-amz-date", "")
    if not stamp.startswith(day):
        return "X-Amz-Date does not match the credential scope"
    names = signed.split(";")
    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={name: headers[name] for name in names if name != "host" and name in headers},
    )
    request.context["timestamp"] = stamp
    token = headers.get("x-amz-security-token")
    signer = SigV4Auth(Credentials(access_key, secrets[access_key], token), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != signature or signer.signed_headers(signer.headers_to_sign(request)) != signed:
        return (
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return None


@dataclass
class DialectServer:
    """A threaded HTTP server on 127.0.0.1 answering in ``dialect``.

    Attributes:
        dialect: the dialect it speaks.
        api_key: the key it expects (``watsonx``: the IBM Cloud API key it exchanges;
            ``vertex``: the access token it takes).
        limit: the most documents it takes in one request (the dialect's default limit).
        received: every rerank request, in arrival order.
        token_requests: every IAM token request (``watsonx``), in arrival order.
        token_lifetime: ``expires_in`` of the tokens it issues.
        page_size: ``bedrock``: results per page of an answer (``None``: one page).
        aws_secrets: ``bedrock``: the secret key of each access key it knows.
    """

    dialect: str
    api_key: str = "sk-dialect-SECRET-42"
    limit: int = 0
    received: list[Received] = field(default_factory=list)
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    token_lifetime: int = 3600
    page_size: int | None = None
    aws_secrets: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.service = _SERVICES[self.dialect]
        if not self.limit:
            self.limit = DIALECTS[self.dialect].max_documents_per_request
        self._lock = threading.Lock()
        self._issued: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, payload = server._handle(self.path, headers, raw)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        """Where this server's IAM token endpoint is (``watsonx``)."""
        return f"{self.base_url}/identity/token"

    def revoke_tokens(self) -> None:
        """Refuse every token issued so far (as after an expiry or a revocation)."""
        with self._lock:
            self._issued.clear()

    def _issue_token(self, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        form = parse_qs(raw.decode())
        with self._lock:
            self.token_requests.append(form)
            number = len(self.token_requests)
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, json.dumps(
                {"errorCode": "BXNIM0109E", "errorMessage": "Form expected"}
            ).encode()
        if form.get("grant_type") != ["urn:ibm:params:oauth:grant-type:apikey"] or form.get(
            "apikey"
        ) != [self.api_key]:
            error = {"errorCode": "BXNIM0415E", "errorMessage": IAM_UNKNOWN_KEY, "context": {}}
            return 400, json.dumps(error).encode()
        token = f"iam-token-{number}-{self.api_key[-6:]}"
        with self._lock:
            self._issued.add(token)
        answer = {
            "access_token": token,
            "refresh_token": "not_supported",
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "expiration": 1764579600 + self.token_lifetime,
            "scope": "ibm openid",
        }
        return 200, json.dumps(answer).encode()

    def _check_auth(self, path: str, headers: dict[str, str], raw: bytes) -> None:
        if self.dialect == "pinecone":
            if headers.get("x-pinecone-api-version") != "2025-10":
                raise Reject(400, "missing X-Pinecone-Api-Version header")
            if "authorization" in headers or headers.get("api-key") != self.api_key:
                raise Reject(401, "Invalid API Key", "auth")
        elif self.dialect == "watsonx":
            with self._lock:
                known = headers.get("authorization", "").removeprefix("Bearer ") in self._issued
            if not known:
                raise Reject(
                    401, "Failed to authenticate the request due to an expired token", "auth"
                )
        elif self.dialect == "bedrock":
            url = f"http://{headers.get('host', '')}{path}"
            wrong = verify_sigv4("POST", url, headers, raw, self.aws_secrets)
            if wrong:
                raise Reject(403, wrong, "auth")
        elif headers.get("authorization") != f"Bearer {self.api_key}":
            raise Reject(401, "invalid api token", "auth")

    def _routed(self, path: str) -> bool:
        return any(
            path.startswith(known[:-1]) if known.endswith("*") else path == known
            for known in self.service.paths
        )

    def _check_size(self, asked: Asked, raw: bytes) -> None:
        dialect = DIALECTS[self.dialect]
        if len(asked.documents) > self.limit:
            raise Reject(self.service.limit_status, limit_message(len(asked.documents), self.limit))
        most = dialect.max_characters_per_document
        if most is not None and any(len(text) > most for text in asked.documents):
            raise Reject(400, f"each document must have at most {most} characters")
        if dialect.max_request_bytes is not None and len(raw) > dialect.max_request_bytes:
            raise Reject(413, f"request body over {dialect.max_request_bytes} bytes")

    def _handle(self, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        parts = urlsplit(target)
        path = parts.path
        if self.dialect == "watsonx" and path == "/identity/token":
            return self._issue_token(headers, raw)
        record = Received(path, headers, None)
        try:
            try:
                record.body = json.loads(raw)
            except ValueError:
                raise Reject(400, "the body is not JSON") from None
            if not self._routed(path):
                raise Reject(404, f"no route {path}", "not_found")
            if self.dialect == "watsonx" and "version" not in parse_qs(parts.query):
                raise Reject(400, "Missing query parameter: version")
            self._check_auth(target, headers, raw)
            if not headers.get("content-type", "").startswith("application/json"):
                raise Reject(415, "Content-Type must be application/json")
            asked = self.service.read(record.body, path)
            asked.page_size = self.page_size
            record.asked = asked
            self._check_size(asked, raw)
            return 200, json.dumps(self.service.answer(asked)).encode()
        except Reject as reject:
            return reject.status, self.service.error(reject)
        finally:
            with self._lock:
                self.received.append(record)

    def clear(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self.received.clear()
            self.token_requests.clear()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class MetadataServer:
    """A fake Google metadata server on 127.0.0.1: the default service account's access
    tokens (``token-1``, ``token-2``, ... after ``prefix``), each lasting ``lifetime``."""

    def __init__(self, prefix: str = "ya29.metadata", lifetime: int = 3599) -> None:
        self.prefix = prefix
        self.lifetime = lifetime
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, payload = server._answer(self.path, self.headers.get("Metadata-Flavor"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.host = f"{host}:{port}"

    def _answer(self, target: str, flavor: str | None) -> tuple[int, bytes]:
        if flavor != "Google":
            return 403, b'"Missing Metadata-Flavor:Google header."'
        path = urlsplit(target).path
        found = re.fullmatch(r"/computeMetadata/v1/instance/service-accounts/[^/]+/(token)?", path)
        if found and not found.group(1):
            info = {
                "email": "reranker@test-project.iam.gserviceaccount.com",
                "aliases": ["default"],
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
            return 200, json.dumps(info).encode()
        if found and found.group(1):
            with self._lock:
                token = f"{self.prefix}-token-{len(self.tokens) + 1}"
                self.tokens.append(token)
            answer = {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"}
            return 200, json.dumps(answer).encode()
        return 404, b'"not found"'

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
