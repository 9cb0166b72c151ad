"""What every fake rerank service is written in: the request as read (:class:`Asked`), a
refusal (:class:`Reject`), the service record (:class:`Service`), and the readers, scorers
and envelopes several services share.

A service is data plus a few functions; :class:`~support.server.ScriptedServer` runs it.
The services themselves are in :mod:`support.services` (API keys) and
:mod:`support.cloud_services` (token exchanges and request signing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .data import WORD, keyword_score

if TYPE_CHECKING:
    from .server import Received, ScriptedServer

#: Dialects whose services answer with raw logits instead of scores between 0 and 1.
LOGIT_DIALECTS = frozenset({"nim", "watsonx", "sglang"})


def as_logit(score: float) -> float:
    """How a logit service turns a keyword score into a raw logit (negative below 0.5)."""
    return round((score - 0.5) * 20.0, 6)


def served_score(dialect: str, query: str, document: str) -> float:
    """The score a service of ``dialect`` gives ``document``."""
    score = keyword_score(query, document)
    return as_logit(score) if dialect in LOGIT_DIALECTS else score


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
    """What one request asked for, once read in the dialect's own terms.

    ``page_token`` is the page a Bedrock request asks for; ``page_size`` the results one
    answer holds (set by the server, ``None``: all); ``ids`` the record ids a Vertex answer
    names its results by.
    """

    query: str
    documents: list[str]
    top_n: int | None
    model: str | None
    wants_documents: bool = False
    page_token: str | None = None
    page_size: int | None = None
    ids: list[str] | None = None


# -- reading a request ----------------------------------------------------------------------


def need(condition: bool, message: str) -> None:
    """Refuse the request with a 400 and ``message`` unless ``condition`` holds."""
    if not condition:
        raise Reject(400, message)


def fields(body: Any, required: set[str], allowed: set[str]) -> dict[str, Any]:
    """``body`` as a JSON object with every ``required`` field and no field but those and
    the ``allowed`` ones."""
    need(isinstance(body, dict), "the body must be a JSON object")
    missing = required - set(body)
    need(not missing, f"missing field(s): {', '.join(sorted(missing))}")
    unknown = set(body) - required - allowed
    need(not unknown, f"unknown field(s): {', '.join(sorted(unknown))}")
    return dict(body)


def strings(value: Any, name: str) -> list[str]:
    need(isinstance(value, list) and len(value) > 0, f"'{name}' must be a non-empty list")
    need(all(isinstance(item, str) for item in value), f"'{name}' must hold strings")
    return list(value)


def text_objects(value: Any, name: str) -> list[str]:
    need(isinstance(value, list) and len(value) > 0, f"'{name}' must be a non-empty list")
    need(
        all(isinstance(item, dict) and isinstance(item.get("text"), str) for item in value),
        f"'{name}' must hold {{text}} objects",
    )
    return [item["text"] for item in value]


def scored_documents(
    value: Any,
    name: str,
    *,
    images: str | None = None,
    objects: bool = False,
    rank_fields: Any = None,
) -> list[str]:
    """Documents that may be images or objects, each as the text a service scores it by:
    a string as it is, an image as ``"image "`` and its URL (or data), an object as the
    values of its ``rank_fields`` (else all of them). ``images`` names the dialect's image
    format (``"jina"``, ``"dashscope"``, ``"vllm"``); without it, or ``objects``, only
    strings are taken."""
    need(isinstance(value, list) and len(value) > 0, f"'{name}' must be a non-empty list")
    if rank_fields is not None:
        need(
            isinstance(rank_fields, list) and all(isinstance(f, str) for f in rank_fields),
            "'rank_fields' must be a list of field names",
        )
    texts: list[str] = []
    for position, item in enumerate(value):
        where = f"'{name}[{position}]'"
        if isinstance(item, str):
            texts.append(item)
        elif images in ("jina", "dashscope") and isinstance(item, dict) and set(item) == {"text"}:
            need(isinstance(item["text"], str), f"{where} text must be a string")
            texts.append(item["text"])
        elif images in ("jina", "dashscope") and isinstance(item, dict) and "image" in item:
            image = item["image"]
            need(isinstance(image, str) and image != "", f"{where} image must be a string")
            if images == "dashscope":
                need(image.startswith(("http", "data:image/")), f"{where} image: a URL")
            else:
                need(not image.startswith("data:"), f"{where} image: a URL or plain base64")
            texts.append(f"image {image}")
        elif images == "vllm" and isinstance(item, dict) and "content" in item:
            parts = item["content"]
            need(isinstance(parts, list) and len(parts) > 0, f"{where} content: a list")
            for part in parts:
                need(
                    isinstance(part, dict)
                    and part.get("type") == "image_url"
                    and isinstance(part.get("image_url", {}).get("url"), str),
                    f"{where} content parts must be image_url parts",
                )
            texts.append(" ".join(f"image {part['image_url']['url']}" for part in parts))
        elif objects and isinstance(item, dict):
            need(
                all(isinstance(v, str) for v in item.values()),
                f"{where} must hold string values",
            )
            names = rank_fields or list(item)
            texts.append(" ".join(item[field] for field in names if field in item))
        else:
            need(False, f"{where} must be a string")
    return texts


def optional_count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    need(
        isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        f"'{name}' must be a positive integer",
    )
    return int(value)


def optional_model(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    need(model is None or isinstance(model, str), "'model' must be a string")
    return model


def required_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    need(isinstance(model, str) and bool(model), "'model' is required")
    return str(model)


def flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    need(isinstance(value, bool), f"'{name}' must be a boolean")
    return bool(value)


# -- answering ----------------------------------------------------------------------------


def ranked(dialect: str, asked: Asked, keep_all: bool = False) -> list[tuple[int, float]]:
    """``(index, score)`` of the documents, best first, cut to ``top_n`` unless ``keep_all``."""
    scored = [
        (index, served_score(dialect, asked.query, text))
        for index, text in enumerate(asked.documents)
    ]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    if asked.top_n is not None and not keep_all:
        scored = scored[: asked.top_n]
    return scored


def token_count(asked: Asked) -> int:
    """The words in the query and the documents: what a service bills as tokens."""
    return sum(len(WORD.findall(text)) for text in [asked.query, *asked.documents])


def usage(asked: Asked) -> dict[str, int]:
    tokens = token_count(asked)
    return {"prompt_tokens": tokens, "total_tokens": tokens}


# -- error envelopes several services use ----------------------------------------------------


def error_generic(reject: Reject) -> bytes:
    kinds = {"auth": "authentication_error", "not_found": "not_found_error"}
    error = {"message": reject.message, "type": kinds.get(reject.kind, "invalid_request_error")}
    return json.dumps({"error": {**error, "code": reject.status}}).encode()


def error_message_only(reject: Reject) -> bytes:
    return json.dumps({"message": reject.message}).encode()


def error_detail(reject: Reject) -> bytes:
    return json.dumps({"detail": reject.message}).encode()


# -- auth and the service record --------------------------------------------------------------


def bearer(request: Received, server: ScriptedServer) -> None:
    """The server's key as a bearer token (any request passes when it has no key)."""
    key = server.api_key
    if key is not None and request.headers.get("authorization") != f"Bearer {key}":
        raise Reject(401, "invalid api token", "auth")


@dataclass(frozen=True)
class TokenEndpoint:
    """A token endpoint the server serves beside the rerank routes (IBM Cloud IAM's).

    Attributes:
        path: where it is.
        answer: the status and JSON body answering one token request; it may add the token
            it issues to ``server.tokens``.
    """

    path: str
    answer: Callable[[Received, ScriptedServer], tuple[int, bytes]]


@dataclass(frozen=True)
class Service:
    """One rerank service's wire behaviour.

    Attributes:
        paths: the endpoint paths it answers (the first is its usual one); a path ending in
            ``*`` stands for every path that starts with what comes before it.
        limit: the most documents it takes in one request, as its documentation states.
        read: reads a request body (given the path) into :class:`Asked`, or raises
            :class:`Reject`.
        answer: the JSON answer to an :class:`Asked`.
        error: the error body for a :class:`Reject`.
        check_auth: raises :class:`Reject` unless the request (its method, path with query,
            headers and raw body) carries the server's credentials; any request passes when
            the server has none.
        limit_status: the status of an answer to too many documents.
        max_characters: the longest document it takes, in characters (``None``: any).
        max_bytes: the largest request body it takes (``None``: any).
        token_endpoint: a token endpoint served beside the rerank routes.
    """

    paths: tuple[str, ...]
    limit: int
    read: Callable[[Any, str], Asked]
    answer: Callable[[Asked], Any]
    error: Callable[[Reject], bytes]
    check_auth: Callable[[Received, ScriptedServer], None] = bearer
    limit_status: int = 400
    max_characters: int | None = None
    max_bytes: int | None = None
    token_endpoint: TokenEndpoint | None = None


def routed(path: str, routes: tuple[str, ...]) -> bool:
    """Whether ``path`` (without its query) is one of ``routes`` (see :attr:`Service.paths`)."""
    return any(
        path.startswith(route[:-1]) if route.endswith("*") else path == route for route in routes
    )
