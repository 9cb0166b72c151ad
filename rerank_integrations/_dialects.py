"""Wire dialects: how one family of rerank APIs spells requests, answers and errors.

A dialect is data plus pure functions. The client's HTTP, retry and batching code is the same
for every dialect; supporting another API means adding one :class:`Dialect` to ``DIALECTS``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DIALECTS",
    "Dialect",
    "EmbeddedAPIError",
    "ParsedRanking",
    "RankingRequest",
    "ResponseShapeError",
    "bearer_auth",
    "extract_error_message",
    "get_dialect",
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
        build_body: builds the JSON request body of one batch.
        parse_body: turns a decoded 2xx body into a :class:`ParsedRanking`; raises
            :class:`ResponseShapeError` or :class:`EmbeddedAPIError`.
        auth_headers: the headers that carry an API key.
        static_headers: headers sent with every request of this dialect.
        error_message: pulls the server's own message out of a decoded error body.
        description: who speaks this dialect, for documentation.
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


def bearer_auth(api_key: str) -> dict[str, str]:
    """``Authorization: Bearer <key>``, the auth header of most rerank APIs."""
    return {"Authorization": f"Bearer {api_key}"}


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


def _as_message(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and value:
        parts = [_as_message(item) for item in value[:3]]
        joined = "; ".join(part for part in parts if part)
        return joined or None
    if isinstance(value, Mapping):
        for key in ("message", "msg", "detail", "error_msg", "error"):
            if key in value:
                found = _as_message(value[key])
                if found:
                    location = value.get("loc")
                    if key == "msg" and isinstance(location, list):
                        found = f"{'.'.join(str(part) for part in location)}: {found}"
                    return found
    return None


def extract_error_message(body: Any) -> str | None:
    """The server's own message from a decoded error body of any common envelope.

    Knows ``{error: {message}}`` (OpenAI style), ``{error: "..."}``, ``{message}``,
    ``{detail}`` (FastAPI; a string or a list of ``{loc, msg}``), ``{error_msg}`` and ``{msg}``.
    """
    if isinstance(body, str):
        return message_from_text(body)
    return _as_message(body)


def _optional_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _embedded_error(body: Mapping[str, Any]) -> EmbeddedAPIError | None:
    """An error reported inside a 2xx answer (``{error_code, error_msg}`` or ``{error: ...}``)."""
    code = body.get("error_code")
    if code not in (None, 0, "0", "") or "error" in body:
        message = extract_error_message(body) or f"error code {code}"
        status = _optional_int(code) if code is not None else None
        nested = body.get("error")
        if isinstance(nested, Mapping):
            status = _optional_int(nested.get("code")) or status
        if status is None or not 400 <= status <= 599:
            status = 400
        return EmbeddedAPIError(message, status)
    return None


def _generic_body(request: RankingRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"query": request.query, "documents": request.documents}
    if request.model is not None:
        body["model"] = request.model
    if request.top_n is not None:
        body["top_n"] = request.top_n
    return body


def _generic_parse(body: Any) -> ParsedRanking:
    if isinstance(body, list):
        items: Any = body
        meta: Mapping[str, Any] = {}
    elif isinstance(body, Mapping):
        meta = body
        items = None
        for key in ("results", "data"):
            if key in body:
                items = body[key]
                break
        if items is None:
            embedded = _embedded_error(body)
            if embedded is not None:
                raise embedded
            raise ResponseShapeError("the answer has no 'results' list")
    else:
        raise ResponseShapeError(f"the answer is a JSON {type(body).__name__}, not an object")
    if not isinstance(items, list):
        raise ResponseShapeError(f"'results' is a {type(items).__name__}, not a list")
    pairs: list[tuple[object, object]] = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ResponseShapeError(f"result {position} is not an object")
        if "index" not in item:
            raise ResponseShapeError(f"result {position} has no 'index'")
        if "relevance_score" in item:
            score = item["relevance_score"]
        elif "score" in item:
            score = item["score"]
        else:
            raise ResponseShapeError(f"result {position} has no 'relevance_score'")
        pairs.append((item["index"], score))
    model = meta.get("model")
    usage = meta.get("usage")
    total_tokens = None
    if isinstance(usage, Mapping):
        total_tokens = _optional_int(usage.get("total_tokens"))
        if total_tokens is None:
            total_tokens = _optional_int(usage.get("prompt_tokens"))
    return ParsedRanking(
        pairs=pairs,
        model=model if isinstance(model, str) else None,
        total_tokens=total_tokens,
    )


GENERIC = Dialect(
    name="generic",
    default_path="/v1/rerank",
    max_documents_per_request=1000,
    score_scale="probability",
    build_body=_generic_body,
    parse_body=_generic_parse,
    auth_headers=bearer_auth,
    error_message=extract_error_message,
    description=(
        "OpenAI-compatible gateways and Jina's format: Jina, vLLM, Infinity, Xinference, "
        "SiliconFlow, Together, LiteLLM, llama.cpp, Zhipu, DashScope compatible mode"
    ),
)

#: Every dialect by name.
DIALECTS: dict[str, Dialect] = {dialect.name: dialect for dialect in (GENERIC,)}


def get_dialect(name: str) -> Dialect:
    """Look a dialect up by name; an unknown name raises a ``ValueError`` listing the known ones."""
    try:
        return DIALECTS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown dialect {name!r}; known dialects: {known}") from None
