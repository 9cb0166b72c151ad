"""Wire dialects: how one family of rerank APIs spells requests, answers and errors.

A dialect is data plus pure functions. The client's HTTP, retry and batching code is the same
for every dialect; supporting another API means adding one :class:`Dialect` to ``DIALECTS``.

Every dialect reads answers with the same tolerant reader (:func:`parse_ranking`): the result
list may be ``results``, ``data``, ``rankings``, ``output.results`` or the body itself; each
score may be ``relevance_score``, ``score`` or ``logit``; an echoed document may be ``{text}``,
a bare string, any object, ``null`` or absent (it is never used: results point back into the
caller's own texts by index). What differs between dialects is the request, the endpoint, the
auth header and the per-request document limit.

Scores are passed through as the server gives them. ``score_scale`` says what to expect:
``"logit"`` for NVIDIA NIM. Raw, unbounded scores also come from llama.cpp servers (``generic``)
and from any server asked for raw scores (TEI, Infinity ``raw_scores=True``; Zhipu
``return_raw_scores=True``), although those dialects are marked ``"probability"``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._constants import ENV_MODEL
from ._exceptions import ConfigurationError

__all__ = [
    "COHERE",
    "DASHSCOPE",
    "DIALECTS",
    "GENERIC",
    "MIXEDBREAD",
    "NIM",
    "PINECONE",
    "TEI",
    "VOYAGE",
    "Dialect",
    "EmbeddedAPIError",
    "ParsedRanking",
    "RankingRequest",
    "ResponseShapeError",
    "api_key_auth",
    "bearer_auth",
    "extract_error_message",
    "get_dialect",
    "parse_ranking",
]


class ResponseShapeError(ValueError):
    """Raised by a parser when an answer does not have the dialect's shape."""


class EmbeddedAPIError(Exception):
    """Raised by a parser when a successful HTTP answer actually reports an error."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class RankingRequest:
    """What one HTTP request has to ask for.

    Attributes:
        query: the search query.
        documents: the texts of this request (one batch).
        top_n: how many of this batch's best results to return; ``None`` means all.
        model: the model to ask for; ``None`` leaves the choice to the server.
        path: the endpoint's URL path, for dialects whose versions differ by path.
    """

    query: str
    documents: Sequence[str]
    top_n: int | None
    model: str | None
    path: str


@dataclass(frozen=True, slots=True)
class ParsedRanking:
    """A decoded answer, before the shared checks of indexes and scores.

    Attributes:
        pairs: ``(index, score)`` as the server gave them, in its order, not yet checked.
        model: the model the server names, if any.
        total_tokens: tokens the server reports, if any.
        billed_units: billing units the server reports (search or rerank units), if any.
    """

    pairs: list[tuple[object, object]]
    model: str | None = None
    total_tokens: int | None = None
    billed_units: float | None = None


@dataclass(frozen=True)
class Dialect:
    """One rerank wire format.

    Attributes:
        name: the name users pass as ``dialect=``.
        default_path: the endpoint path appended to a host root.
        max_documents_per_request: documents per request unless the user sets another limit.
        score_scale: ``"probability"`` (0..1) or ``"logit"`` (raw, may be negative).
        build_body: builds the JSON request body of one batch; raises
            :class:`~rerank_integrations.ConfigurationError` when the API needs a model and
            none was given.
        parse_body: turns a decoded 2xx body into a :class:`ParsedRanking`; raises
            :class:`ResponseShapeError` or :class:`EmbeddedAPIError`.
        auth_headers: the headers that carry an API key.
        static_headers: headers sent with every request of this dialect.
        error_message: pulls the server's own message out of a decoded error body.
        description: who speaks this dialect, for documentation.
        model_required: whether every request must name a model (``build_body`` refuses
            ``model=None``).
    """

    name: str
    default_path: str
    max_documents_per_request: int
    score_scale: Literal["probability", "logit"]
    build_body: Callable[[RankingRequest], dict[str, Any]]
    parse_body: Callable[[Any], ParsedRanking]
    auth_headers: Callable[[str], dict[str, str]]
    static_headers: Mapping[str, str] = field(default_factory=dict)
    error_message: Callable[[Any], str | None] = field(default=lambda body: None)
    description: str = ""
    model_required: bool = False


# -- auth headers -----------------------------------------------------------------------------


def bearer_auth(api_key: str) -> dict[str, str]:
    """``Authorization: Bearer <key>``, the auth header of most rerank APIs."""
    return {"Authorization": f"Bearer {api_key}"}


def api_key_auth(api_key: str) -> dict[str, str]:
    """``Api-Key: <key>``, Pinecone's auth header."""
    return {"Api-Key": api_key}


# -- error messages ---------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def message_from_text(text: str) -> str | None:
    """A readable message from a non-JSON body: an HTML page's title, or the text itself."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("<"):
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", text)
        text = html.unescape(text)
    text = _SPACE.sub(" ", text).strip()
    return text or None


#: How deep :func:`extract_error_message` looks into nested lists and objects.
_MESSAGE_DEPTH = 6


def _as_message(value: Any, depth: int = 0) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if depth >= _MESSAGE_DEPTH:
        return None
    if isinstance(value, list) and value:
        parts = [_as_message(item, depth + 1) for item in value[:3]]
        joined = "; ".join(part for part in parts if part)
        return joined or None
    if isinstance(value, Mapping):
        for key in ("message", "msg", "detail", "error_msg", "error"):
            if key in value:
                found = _as_message(value[key], depth + 1)
                if found:
                    location = value.get("loc")
                    if key == "msg" and isinstance(location, list):
                        found = f"{'.'.join(str(part) for part in location)}: {found}"
                    return found
    return None


def extract_error_message(body: Any) -> str | None:
    """The server's own message from a decoded error body of any common envelope.

    Knows ``{error: {message}}`` (OpenAI style: vLLM, Together, LiteLLM, llama.cpp; also
    Pinecone), ``{error: "..."}`` (TEI), ``{message}`` (Cohere, Mixedbread, DashScope,
    SiliconFlow), ``{detail}`` (FastAPI: Voyage, Infinity, Xinference, NIM; a string or a
    list of ``{loc, msg}``), ``{error_msg}`` (Baidu Qianfan) and ``{msg}``.
    """
    if isinstance(body, str):
        return message_from_text(body)
    return _as_message(body)


# -- reading answers --------------------------------------------------------------------------

_LIST_KEYS = ("results", "data", "rankings")
_SCORE_KEYS = ("relevance_score", "score", "logit")

# Baidu Qianfan v1 (and other Baidu AI APIs) report errors with HTTP 200 and a numeric
# ``error_code``; these are the codes that mean something other than a bad request.
_VENDOR_CODE_STATUS: dict[int, int] = {
    2: 503,  # service temporarily unavailable
    4: 429,  # request limit reached
    6: 403,  # no permission
    13: 401,  # getting the service token failed
    14: 401,  # IAM certification failed
    17: 429,  # daily request limit reached
    18: 429,  # QPS limit reached
    19: 429,  # total request limit reached
    110: 401,  # access token invalid
    111: 401,  # access token expired
    336000: 500,  # internal error
    336501: 429,  # requests-per-minute limit
    336502: 429,  # tokens-per-minute limit
}

# Words in error codes and types (normalized: lower case, letters and digits only), checked
# in this order; the first match decides the status.
_NAMED_STATUS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("ratelimit", "throttl", "toomany", "quota", "resourceexhausted", "limitreached"), 429),
    (("permission", "forbidden", "accessdenied"), 403),
    (("auth", "apikey", "invalidtoken", "tokenexpired", "credential"), 401),
    (("notfound", "nosuch"), 404),
    (("unavailable", "overload", "loading"), 503),
    (("timeout", "timedout"), 504),
    (("internal", "servererror"), 500),
)


def _optional_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _code_number(value: Any) -> int | None:
    """An error code as a number: an integer, or a string of digits."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return _optional_int(value)


def _optional_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _is_success_code(value: Any) -> bool:
    if value is None or value is True:
        return True
    number = _code_number(value)
    if number is not None:
        return number in (0, 200)
    if isinstance(value, str):
        return value.strip().lower() in ("", "ok", "success", "succeeded")
    return False


def _status_from_name(name: str) -> int | None:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    for words, status in _NAMED_STATUS:
        if any(word in key for word in words):
            return status
    return None


def _embedded_status(body: Mapping[str, Any]) -> int:
    """The HTTP status an error reported inside a 2xx answer stands for: an HTTP status the
    body names, else one implied by a known code or by the words of a code or type, else 400."""
    nested = body.get("error")
    inner: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    codes = [
        body.get("status_code"),
        body.get("status"),
        inner.get("code"),
        inner.get("status"),
        body.get("code"),
        body.get("error_code"),
    ]
    for value in codes:
        number = _code_number(value)
        if number is not None and 400 <= number <= 599:
            return number
    for value in codes:
        number = _code_number(value)
        if number is not None and number in _VENDOR_CODE_STATUS:
            return _VENDOR_CODE_STATUS[number]
    names = [*codes, inner.get("type"), body.get("type"), body.get("error_type")]
    if isinstance(nested, str):
        names.append(nested)
    for value in names:
        if isinstance(value, str) and not value.strip().isdigit():
            status = _status_from_name(value)
            if status is not None:
                return status
    return 400


def _reports_error(body: Mapping[str, Any]) -> bool:
    """Whether the body carries an explicit error marker."""
    if body.get("error"):  # null, false, 0, "", {} and [] mean no error
        return True
    if not _is_success_code(body.get("error_code")):
        return True
    return body.get("success") is False or not _is_success_code(body.get("code"))


def _embedded_error(body: Mapping[str, Any]) -> EmbeddedAPIError:
    message = extract_error_message(body)
    if message is None:
        code = body.get("error_code", body.get("code"))
        message = f"error code {code}" if code is not None else "the answer reports an error"
    return EmbeddedAPIError(message, _embedded_status(body))


def _find_results(body: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The result list's name and value: a top-level list key, else one inside ``output``."""
    for key in _LIST_KEYS:
        value = body.get(key)
        if value is not None:
            return key, value
    output = body.get("output")
    if isinstance(output, Mapping):
        for key in _LIST_KEYS:
            value = output.get(key)
            if value is not None:
                return f"output.{key}", value
    return None


def _first_int(values: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        number = _optional_int(values.get(key))
        if number is not None:
            return number
    return None


def _usage(body: Mapping[str, Any]) -> tuple[int | None, float | None]:
    """``(tokens, billing units)`` from wherever the body reports them.

    Tokens: ``usage.total_tokens`` (else ``prompt_tokens``, ``input_tokens``),
    ``meta.billed_units.total_tokens`` (LiteLLM), ``meta.tokens.input_tokens`` (Cohere-like
    meta: Xinference, SiliconFlow) or a top-level ``tokens.input_tokens`` (older SiliconFlow).
    Billing units: ``usage.rerank_units`` (Pinecone) or ``meta.billed_units.search_units``
    (Cohere, SiliconFlow, LiteLLM). The two are kept apart, never added together.
    """
    tokens: int | None = None
    units: float | None = None
    token_keys = ("total_tokens", "prompt_tokens", "input_tokens")
    usage = body.get("usage")
    if isinstance(usage, Mapping):
        tokens = _first_int(usage, token_keys)
        units = _optional_number(usage.get("rerank_units"))
        if units is None:
            units = _optional_number(usage.get("search_units"))
    meta = body.get("meta")
    if isinstance(meta, Mapping):
        billed = meta.get("billed_units")
        if isinstance(billed, Mapping):
            if units is None:
                units = _optional_number(billed.get("search_units"))
            if tokens is None:
                tokens = _first_int(billed, ("total_tokens",))
        meta_tokens = meta.get("tokens")
        if tokens is None and isinstance(meta_tokens, Mapping):
            tokens = _first_int(meta_tokens, token_keys)
    top_tokens = body.get("tokens")
    if tokens is None and isinstance(top_tokens, Mapping):
        tokens = _first_int(top_tokens, token_keys)
    return tokens, units


def _pairs(items: list[Any], name: str) -> list[tuple[object, object]]:
    pairs: list[tuple[object, object]] = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ResponseShapeError(f"{name}[{position}] is not an object")
        if "index" not in item:
            raise ResponseShapeError(f"{name}[{position}] has no 'index'")
        for key in _SCORE_KEYS:
            if key in item:
                pairs.append((item["index"], item[key]))
                break
        else:
            raise ResponseShapeError(
                f"{name}[{position}] has no 'relevance_score' (nor 'score' or 'logit')"
            )
    return pairs


def parse_ranking(body: Any) -> ParsedRanking:
    """Read a decoded 2xx answer of any dialect into raw ``(index, score)`` pairs.

    Accepts the result list as ``results``, ``data``, ``rankings``, ``output.results`` or a
    bare JSON list; scores as ``relevance_score``, ``score`` or ``logit``; ignores echoed
    documents whatever their form. Usage comes from every documented place (see
    :func:`_usage`).

    Raises:
        EmbeddedAPIError: the answer reports an error instead of a ranking
            (``{error_code, error_msg}``, ``{error: ...}``, ``{code, message}`` with no
            ``output``, or any message with no result list).
        ResponseShapeError: the answer is neither a ranking nor an error.
    """
    if isinstance(body, list):
        return ParsedRanking(pairs=_pairs(body, "result"))
    if not isinstance(body, Mapping):
        raise ResponseShapeError(f"the answer is a JSON {type(body).__name__}, not an object")
    found = _find_results(body)
    if found is None:
        if _reports_error(body) or extract_error_message(body) is not None:
            raise _embedded_error(body)
        raise ResponseShapeError(
            "the answer has no 'results' list (nor 'data', 'rankings' or 'output.results')"
        )
    name, items = found
    if not isinstance(items, list):
        raise ResponseShapeError(f"'{name}' is a {type(items).__name__}, not a list")
    if not items and _reports_error(body):
        raise _embedded_error(body)
    model = body.get("model")
    tokens, units = _usage(body)
    return ParsedRanking(
        pairs=_pairs(items, name),
        model=model if isinstance(model, str) and model else None,
        total_tokens=tokens,
        billed_units=units,
    )


# -- building requests ------------------------------------------------------------------------


def _texts(request: RankingRequest) -> list[str]:
    documents = request.documents
    return documents if isinstance(documents, list) else list(documents)


def _top_n(request: RankingRequest) -> int | None:
    """``top_n``, never above the number of documents (some APIs refuse more)."""
    if request.top_n is None:
        return None
    return min(request.top_n, len(request.documents))


def _required_model(request: RankingRequest, api: str) -> str:
    if not request.model:
        raise ConfigurationError(
            f"the {api} API needs a model: pass model=... to the client or the call, "
            f"or set {ENV_MODEL}",
            setting="model",
        )
    return request.model


def _with_optional(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body.update({name: value for name, value in fields.items() if value is not None})
    return body


def _generic_body(request: RankingRequest) -> dict[str, Any]:
    body = _with_optional({}, model=request.model)
    body.update(query=request.query, documents=_texts(request))
    _with_optional(body, top_n=_top_n(request))
    body["return_documents"] = False
    return body


_VERSION = re.compile(r"v\d+")


def _is_cohere_v1(path: str) -> bool:
    """Whether the endpoint is Cohere's v1 rerank: its last version segment is ``v1``."""
    versions = [part for part in path.split("/") if _VERSION.fullmatch(part)]
    return bool(versions) and versions[-1] == "v1"


def _cohere_body(request: RankingRequest) -> dict[str, Any]:
    if _is_cohere_v1(request.path):
        body = _with_optional({}, model=request.model)
        body.update(query=request.query, documents=_texts(request))
        _with_optional(body, top_n=_top_n(request))
        body["return_documents"] = False
        return body
    body = {
        "model": _required_model(request, "Cohere v2 rerank"),
        "query": request.query,
        "documents": _texts(request),
    }
    return _with_optional(body, top_n=_top_n(request))


def _voyage_body(request: RankingRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": _required_model(request, "Voyage rerank"),
        "query": request.query,
        "documents": _texts(request),
    }
    _with_optional(body, top_k=_top_n(request))
    body["return_documents"] = False
    return body


def _tei_body(request: RankingRequest) -> dict[str, Any]:
    return {"query": request.query, "texts": _texts(request)}


def _nim_body(request: RankingRequest) -> dict[str, Any]:
    return {
        "model": _required_model(request, "NVIDIA NIM ranking"),
        "query": {"text": request.query},
        "passages": [{"text": text} for text in request.documents],
    }


def _mixedbread_body(request: RankingRequest) -> dict[str, Any]:
    body = _with_optional({}, model=request.model)
    body.update(query=request.query, input=_texts(request))
    return _with_optional(body, top_k=_top_n(request))


def _pinecone_body(request: RankingRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": _required_model(request, "Pinecone rerank"),
        "query": request.query,
        "documents": [{"text": text} for text in request.documents],
    }
    _with_optional(body, top_n=_top_n(request))
    body["return_documents"] = False
    return body


def _dashscope_body(request: RankingRequest) -> dict[str, Any]:
    parameters: dict[str, Any] = _with_optional({}, top_n=_top_n(request))
    parameters["return_documents"] = False
    return {
        "model": _required_model(request, "DashScope text-rerank"),
        "input": {"query": request.query, "documents": _texts(request)},
        "parameters": parameters,
    }


# -- the dialects -----------------------------------------------------------------------------

#: Jina's format, which OpenAI-compatible gateways adopted as their standard.
GENERIC = Dialect(
    name="generic",
    default_path="/v1/rerank",
    max_documents_per_request=1000,
    score_scale="probability",
    build_body=_generic_body,
    parse_body=parse_ranking,
    auth_headers=bearer_auth,
    error_message=extract_error_message,
    description=(
        "OpenAI-compatible gateways and Jina's format: the seed gateway (New API and "
        "one-api style), Jina, vLLM, Infinity, Xinference, SiliconFlow, Together, LiteLLM, "
        "llama.cpp (raw logits), Zhipu, DashScope compatible mode. Sends "
        "return_documents=false; the model is left out when none is set."
    ),
)

#: Cohere rerank: v2 by default, v1 when the endpoint path is ``/v1/rerank``.
COHERE = Dialect(
    name="cohere",
    default_path="/v2/rerank",
    max_documents_per_request=1000,
    score_scale="probability",
    build_body=_cohere_body,
    parse_body=parse_ranking,
    auth_headers=bearer_auth,
    error_message=extract_error_message,
    # Not model_required: only v2 needs a model, which its body builder checks.
    description=(
        "Cohere rerank: v2 (/v2/rerank, model required, no return_documents) by default; "
        "v1 (model optional, return_documents=false) when the endpoint is /v1/rerank. "
        "Billing: meta.billed_units.search_units."
    ),
)

#: Voyage AI rerank: ``top_k`` and results under ``data``.
VOYAGE = Dialect(
    name="voyage",
    default_path="/v1/rerank",
    max_documents_per_request=1000,
    score_scale="probability",
    build_body=_voyage_body,
    parse_body=parse_ranking,
    auth_headers=bearer_auth,
    error_message=extract_error_message,
    description=(
        "Voyage AI (/v1/rerank): model required, top_k (never above the batch size), "
        "results under data, usage.total_tokens."
    ),
    model_required=True,
)

#: Hugging Face text-embeddings-inference: ``texts``, a bare list of ``{index, score}``.
TEI = Dialect(
    name="tei",
    default_path="/rerank",
    max_documents_per_request=32,
    score_scale="probability",
    build_body=_tei_body,
    parse_body=parse_ranking,
    auth_headers=bearer_auth,
    error_message=extract_error_message,
    description=(
        "Hugging Face text-embeddings-inference (/rerank): texts instead of documents, no "
        "model and no top_n (every text is scored; the client keeps the best), a bare list "
        "of {index, score}; 32 texts per request (--max-client-batch-size). Scores are "
        "probabilities unless raw_scores=true is sent."
    ),
)

#: NVIDIA NIM reranking: ``query: {text}``, ``passages``, raw logits.
NIM = Dialect(
    name="nim",
    default_path="/v1/ranking",
    max_documents_per_request=512,
    score_scale="logit",
    build_body=_nim_body,
    parse_body=parse_ranking,
    auth_headers=bearer_auth,
    error_message=extract_error_message,
    description=(
        "NVIDIA NIM / NeMo Retriever reranking (/v1/ranking): model required, query {text}, "
        "passages [{text}], no top_n (the client keeps the best), rankings of raw logits "
        "(may be negative); up to 512 passages a request."
    ),
    model_required=True,
)

#: Mixedbread reranking: ``input`` and ``top_k``, results under ``data`` with ``score``.
MIXEDBREAD = Dialect(
    name="mixedbread",
    default_path="/v1/reranking",
    max_documents_per_request=1000,
    score_scale="probability",
    build_body=_mixedbread_body,
    parse_body=parse_ranking,
    auth_headers=bearer_auth,
    error_message=extract_error_message,
    description=(
        "Mixedbread (/v1/reranking): input instead of documents, top_k, results under data "
        "with score; up to 1,000 inputs a request."
    ),
)

#: Pinecone inference rerank: ``Api-Key`` header, API version header, document objects.
PINECONE = Dialect(
    name="pinecone",
    default_path="/rerank",
    max_documents_per_request=100,
    score_scale="probability",
    build_body=_pinecone_body,
    parse_body=parse_ranking,
    auth_headers=api_key_auth,
    static_headers={"X-Pinecone-Api-Version": "2025-10"},
    error_message=extract_error_message,
    description=(
        "Pinecone inference (/rerank on api.pinecone.io): Api-Key and X-Pinecone-Api-Version "
        "headers, model required, documents as {text} objects, return_documents=false, "
        "results under data with score, usage.rerank_units. 100 documents a request, the "
        "smallest per-model limit (cohere-rerank-3.5 takes 200)."
    ),
    model_required=True,
)

#: Alibaba DashScope native text-rerank: ``input`` and ``parameters``, ``output.results``.
DASHSCOPE = Dialect(
    name="dashscope",
    default_path="/api/v1/services/rerank/text-rerank/text-rerank",
    max_documents_per_request=500,
    score_scale="probability",
    build_body=_dashscope_body,
    parse_body=parse_ranking,
    auth_headers=bearer_auth,
    error_message=extract_error_message,
    description=(
        "Alibaba DashScope / Model Studio native API: model required, "
        "{model, input: {query, documents}, parameters: {top_n, return_documents}}, "
        "output.results, usage.total_tokens; 500 documents a request. Its OpenAI-compatible "
        "mode speaks generic."
    ),
    model_required=True,
)

#: Every dialect by name.
DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (GENERIC, COHERE, VOYAGE, TEI, NIM, MIXEDBREAD, PINECONE, DASHSCOPE)
}


def get_dialect(name: str) -> Dialect:
    """Look a dialect up by name; an unknown name raises a ``ValueError`` listing the known ones."""
    try:
        return DIALECTS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown dialect {name!r}; known dialects: {known}") from None
