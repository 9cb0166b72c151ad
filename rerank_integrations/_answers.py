"""Reading answers tolerantly: rankings, error messages, errors inside 2xx answers, usage.

Every dialect reads answers with :func:`parse_ranking` unless it says otherwise: the result
list may be ``results``, ``data``, ``rankings``, ``output.results`` or the body itself; each
score may be ``relevance_score``, ``score`` or ``logit``; an echoed document may take any form
or be absent (it is never used: results point back into the caller's own texts by index).
"""

from __future__ import annotations

import ast
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EmbeddedAPIError",
    "ParsedRanking",
    "ResponseShapeError",
    "extract_error_message",
    "input_tokens",
    "message_from_text",
    "parse_ranking",
    "unwrap_gateway_message",
    "usage_parts",
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
class ParsedRanking:
    """A decoded answer, before the shared checks of indexes and scores.

    Attributes:
        pairs: ``(index, score)`` as the server gave them, in its order, not yet checked.
        model: the model the server names, if any.
        total_tokens: tokens the server reports, if any.
        billed_units: billing units the server reports (search or rerank units), if any.
        next_page: the token to ask for the rest of the results with, for an API that pages
            its answers (Bedrock's ``nextToken``); ``None`` when this is the last page.
        input_tokens: input tokens the server reports, if any.
        usage: the parts of the answer that report usage, as read (``usage``, ``meta``,
            ``tokens``, a vendor's own fields); empty when it reports none.
    """

    pairs: list[tuple[object, object]]
    model: str | None = None
    total_tokens: int | None = None
    billed_units: float | None = None
    next_page: str | None = None
    input_tokens: int | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)


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
    message = message_from_text(body) if isinstance(body, str) else _as_message(body)
    return None if message is None else unwrap_gateway_message(message)


# LiteLLM passes an upstream's error on as the upstream's whole body, as text, followed by
# the model group: "<body>. Received Model Group=X\nAvailable Model Group Fallbacks=None".
_MODEL_GROUP = re.compile(r"\.?\s*Received Model Group=(?P<group>[^\n]*)(?:\n.*)?$", re.DOTALL)
_STATUS_PREFIX = re.compile(r"^\d{3}:\s*")
#: The longest nested body read for its message (a Python literal is parsed, so bounded).
_NESTED_LIMIT = 20_000


def unwrap_gateway_message(message: str) -> str:
    """A gateway's message with the upstream's own message taken out of the upstream body
    it carries (JSON, a Python dict's repr, an HTML page), and the model group as context."""
    found = _MODEL_GROUP.search(message)
    if found is None:
        return message
    group = found["group"].strip()
    own = _message_in(message[: found.start()].strip()) or message[: found.start()].strip()
    return f"{own} (model group {group})" if group and own else own or message


def _message_in(text: str) -> str | None:
    """The message in a body that came as text: JSON, a Python literal or a page."""
    text = _STATUS_PREFIX.sub("", text, count=1)
    if text[:1] in ("{", "[") and len(text) <= _NESTED_LIMIT:
        for parse in (json.loads, ast.literal_eval):
            try:
                decoded = parse(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            return extract_error_message(decoded)
    return message_from_text(text)


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


#: The fields of an answer that report usage, kept as the raw usage of each request.
USAGE_FIELDS = ("usage", "meta", "tokens")


def input_tokens(body: Mapping[str, Any]) -> int | None:
    """Input tokens where the body reports them as such: ``usage.input_tokens`` (else
    ``prompt_tokens``), ``meta.tokens.input_tokens``, ``meta.billed_units.input_tokens`` or
    a top-level ``tokens.input_tokens``."""
    keys = ("input_tokens", "prompt_tokens")
    places: list[Any] = [body.get("usage")]
    meta = body.get("meta")
    if isinstance(meta, Mapping):
        places += [meta.get("tokens"), meta.get("billed_units")]
    places.append(body.get("tokens"))
    for place in places:
        if isinstance(place, Mapping):
            found = _first_int(place, keys)
            if found is not None:
                return found
    return None


def usage_parts(body: Any, *names: str) -> dict[str, Any]:
    """The usage-reporting fields of an answer (:data:`USAGE_FIELDS` and ``names``)."""
    if not isinstance(body, Mapping):
        return {}
    return {name: body[name] for name in (*USAGE_FIELDS, *names) if body.get(name) is not None}


def _pairs(items: list[Any], name: str) -> list[tuple[object, object]]:
    pairs: list[tuple[object, object]] = []
    for position, item in enumerate(items):
        if type(item) is not dict and not isinstance(item, Mapping):  # a dict: no ABC check
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
        input_tokens=input_tokens(body),
        usage=usage_parts(body),
    )
