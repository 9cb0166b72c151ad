"""The codec: a batch's request body out, its answer in, an error answer as a typed error.

:func:`encode_request` builds one batch's JSON body in the dialect's shape;
:func:`decode_response` reads a successful answer and checks every index and score;
:func:`make_status_error` turns an error answer into the matching
:class:`~rerank_integrations.APIStatusError`, every secret scrubbed. No I/O here.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _json
from ._answers import EmbeddedAPIError, ParsedRanking, ResponseShapeError, message_from_text
from ._constants import BODY_EXCERPT_CHARS
from ._exceptions import APIStatusError, ResponseFormatError, status_error_class
from ._plan import Batch, RerankPlan
from ._secrets import Scrubber
from .dialects import Dialect, RankingRequest

__all__ = [
    "BatchRanking",
    "body_excerpt",
    "decode_response",
    "encode_request",
    "make_status_error",
    "merge_fields",
    "request_id_from",
    "scale_mismatch",
    "shorten",
]

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-trace-id", "cf-ray")
_NO_SECRETS = Scrubber()


@dataclass(frozen=True, slots=True)
class BatchRanking:
    """A checked answer to one batch: ``(index within the batch, score)`` pairs."""

    pairs: list[tuple[int, float]]
    model: str | None
    total_tokens: int | None
    billed_units: float | None
    next_page: str | None = None
    sent_bytes: int = 0  # the largest body sent for it
    requests: int = 1
    input_tokens: int | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)  # as the dialect's parser read it


def encode_request(
    dialect: Dialect,
    plan: RerankPlan,
    batch: Batch,
    model: str | None,
    extra_body: Mapping[str, Any],
    path: str,
    location: str | None = None,
    project: str | None = None,
) -> bytes:
    """The JSON body of one batch's request, as bytes."""
    documents = batch.texts if isinstance(batch.texts, list) else list(batch.texts)
    if plan.wrapper is not None:  # a prompt template's document side, around each text
        before, after = plan.wrapper
        documents = [f"{before}{d}{after}" if type(d) is str else d for d in documents]
    request = RankingRequest(
        plan.query,
        documents,
        batch.top_n,
        model,
        path,
        location,
        plan.rank_fields,
        plan.mixed and not all(type(document) is str for document in documents),
        plan.instruction,
        project,
    )
    body = dialect.body(request)
    return _json.dumps(merge_fields(body, extra_body) if extra_body else body)


def merge_fields(body: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with the fields of ``extra`` added, one level deep: ``parameters={"x": 1}``
    adds to a body's own ``parameters`` instead of replacing them."""
    merged = dict(body)
    for key, value in extra.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = {**current, **value}
        else:
            merged[key] = value
    return merged


def shorten(text: str, limit: int = BODY_EXCERPT_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text[: limit * 4].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def body_excerpt(content: bytes, limit: int = BODY_EXCERPT_CHARS) -> str:
    """The start of a body as one line of text, for error messages."""
    return shorten(content[: limit * 4].decode("utf-8", errors="replace"), limit)


def request_id_from(headers: Mapping[str, str]) -> str | None:
    """The server's request id, from the usual headers."""
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def _scrubbed_body(content: bytes, scrubber: Scrubber) -> tuple[Any, str]:
    """An error body, decoded and scrubbed, and the excerpt to quote from it.

    The excerpt of a JSON body is taken from the scrubbed value encoded again, so that a
    secret the server escaped in its own way (``\u002f``) cannot slip through.
    """
    content = scrubber.bytes(content)
    if not content:
        return "", ""
    try:
        body = scrubber.value(_json.loads(content))
    except _json.JSONDecodeError:
        text = scrubber.text(html.unescape(content.decode("utf-8", errors="replace")))
        return text, shorten(text)
    except RecursionError:
        body = content.decode("utf-8", errors="replace")
        return body, body_excerpt(content)
    if not scrubber:
        return body, body_excerpt(content)
    try:
        return body, shorten(json.dumps(body, ensure_ascii=False))
    except (RecursionError, ValueError):
        return body, body_excerpt(content)


def make_status_error(
    dialect: Dialect,
    status_code: int,
    reason: str,
    content: bytes,
    headers: Mapping[str, str],
    scrubber: Scrubber | None = None,
    url: str = "",
) -> APIStatusError:
    """The typed error for an error answer: the status, the server's own message, the URL
    and a body excerpt, with every secret scrubbed."""
    scrubber = scrubber or _NO_SECRETS
    body, excerpt = _scrubbed_body(content, scrubber)
    content = b""  # only the scrubbed body is kept in this frame
    try:
        server_message = (
            message_from_text(body) if isinstance(body, str) else dialect.error_message(body)
        )
    except (RecursionError, LookupError, TypeError, ValueError, AttributeError):
        server_message = None  # an odd body must not hide the status error behind another

    if server_message:
        server_message = shorten(scrubber.text(server_message))
    request_id = request_id_from(headers)
    message = f"HTTP {status_code} {reason}".rstrip()
    message += f": {server_message}" if server_message else " (no message from the server)"
    if url:
        message += f" (POST {url})"
    if request_id:
        message += f" [request id {request_id}]"
    if excerpt and excerpt != server_message:
        message += f" | body: {excerpt}"
    elif not excerpt:
        message += " | empty body"
    return status_error_class(status_code)(
        message,
        status_code=status_code,
        body=body,
        request_id=request_id,
        url=url or None,
        server_message=server_message,
    )


def scale_mismatch(logits_expected: bool, scores: Sequence[float]) -> str | None:
    """Why ``scores`` do not look like the scale expected, or ``None`` when they may.

    0..1 probabilities are expected unless the dialect returns logits or ``"sigmoid"`` is
    asked for. Scores outside 0..1 mean raw scores (``raw_scores`` sent, a llama.cpp server);
    three or more scores all within 0..1 while logits are expected mean probabilities (a
    proxy that dropped ``raw_scores``), which a sigmoid would squash twice.
    """
    if not scores:
        return None
    low, high = min(scores), max(scores)
    if not logits_expected and (low < -1e-9 or high > 1 + 1e-9):
        return (
            f"scores from {low:.4g} to {high:.4g} are not 0..1 probabilities: the server sends "
            "raw scores (logits); set score_transform='sigmoid' to map them to 0..1"
        )
    if logits_expected and len(scores) >= 3 and low >= 0 and high <= 1 and low < high:
        return (
            f"scores all within 0..1 ({low:.4g} to {high:.4g}) where logits were expected: "
            "they look like probabilities already (a proxy may have dropped raw_scores), and "
            "score_transform='sigmoid' would squash them twice"
        )
    return None


@dataclass(frozen=True, slots=True)
class _NotARanking:
    """Why an answer is not a ranking; ``status`` for an error reported inside a 2xx."""

    message: str
    status: int | None = None


def decode_response(
    dialect: Dialect,
    status_code: int,
    content: bytes,
    batch_size: int,
    scrubber: Scrubber | None = None,
    url: str = "",
    expected: int | None = None,
) -> BatchRanking:
    """Decode a successful answer to a batch of ``batch_size`` documents and check it.

    Every index must be an integer in range and appear at most once; every score must be a
    finite number; at least ``expected`` results (default: one per document) must come
    back. An answer that reports an error inside a 2xx status raises the matching
    :class:`APIStatusError`; anything else that is not a ranking raises
    :class:`ResponseFormatError`.
    """
    outcome = _read_ranking(dialect, content, batch_size, expected)
    if isinstance(outcome, BatchRanking):
        return outcome
    # From here on only scrubbed text is kept: the frames of a traceback (which error
    # trackers record) must not hold what a hostile server echoed.
    scrubber = scrubber or _NO_SECRETS
    message, status = scrubber.text(outcome.message), outcome.status
    del outcome
    body, excerpt = _scrubbed_body(content, scrubber)
    content = b""
    where = f" from {url}" if url else ""
    if status is not None:
        raise status_error_class(status)(
            f"HTTP {status_code} answer{where} reports an error: {message} | body: {excerpt}",
            status_code=status,
            body=body,
            url=url or None,
        )
    raise ResponseFormatError(
        f"invalid rerank answer (HTTP {status_code}{where}): {message}"
        f" | body: {excerpt or '(empty)'}",
        status_code=status_code,
        body_excerpt=excerpt,
        url=url or None,
    )


def _read_ranking(
    dialect: Dialect, content: bytes, batch_size: int, expected: int | None
) -> BatchRanking | _NotARanking:
    """The checked ranking in an answer, or why there is none (never raised, so that no
    frame holding the answer ends up in a traceback)."""
    try:
        body = _json.loads(content)
    except _json.JSONDecodeError:
        return _NotARanking("the body is not JSON")
    try:
        parsed: ParsedRanking = dialect.parse_body(body)
    except ResponseShapeError as exc:
        return _NotARanking(str(exc))
    except (RecursionError, LookupError, TypeError, ValueError, AttributeError) as exc:
        # A parser tripped over a shape it did not foresee: still a bad answer, not a crash.
        return _NotARanking(f"unreadable answer ({type(exc).__name__})")
    except EmbeddedAPIError as exc:
        return _NotARanking(exc.message, exc.status_code)

    seen = bytearray(batch_size)
    pairs: list[tuple[int, float]] = []
    for index, score in parsed.pairs:
        # What JSON decodes to (an int, a float) is told by its type alone, the rest checked.
        if type(index) is not int and (isinstance(index, bool) or not isinstance(index, int)):
            if isinstance(index, float) and index.is_integer():
                index = int(index)
            else:
                return _NotARanking(f"index {index!r} is not an integer")
        if not 0 <= index < batch_size:
            return _NotARanking(f"index {index} is out of range for {batch_size} documents")
        if seen[index]:
            return _NotARanking(f"index {index} appears more than once")
        seen[index] = 1
        if type(score) is not float and (
            isinstance(score, bool) or not isinstance(score, (int, float))
        ):
            return _NotARanking(f"score of index {index} is not a number: {score!r}")
        value = float(score)
        if not math.isfinite(value):
            return _NotARanking(f"score of index {index} is not finite: {score!r}")
        pairs.append((index, value))
    wanted = batch_size if expected is None else min(expected, batch_size)
    if len(pairs) < wanted and parsed.next_page is None:
        # A ranking that leaves out documents it was asked to rank would drop them silently
        # (a paged answer is counted once all its pages are in).
        got = f"{len(pairs)} results" if pairs else "no results"
        return _NotARanking(f"{got} for {batch_size} documents sent, {wanted} expected")
    return BatchRanking(
        pairs,
        parsed.model,
        parsed.total_tokens,
        parsed.billed_units,
        parsed.next_page,
        input_tokens=parsed.input_tokens,
        usage=parsed.usage,
    )
