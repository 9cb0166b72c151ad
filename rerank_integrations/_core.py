"""The sans-IO core: every step of a rerank call that does no I/O.

Validate the input, plan the batches (once per distinct text), build each request body,
decode and check each answer, merge the batches into one ranking, and turn an error answer
into a typed exception. The sync and async clients call these and only add the sending.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import html
import json
import math
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from . import _json
from ._answers import EmbeddedAPIError, ParsedRanking, ResponseShapeError, message_from_text
from ._budget import Cut, TokenCounter, counter_for, surely_longer, truncation, windows
from ._constants import BODY_EXCERPT_CHARS
from ._documents import IMAGE_TOKENS, Document, Image, Record, check_unicode
from ._exceptions import APIStatusError, ResponseFormatError, status_error_class
from ._secrets import Scrubber
from ._types import RerankResponse, RerankResult, Usage
from .dialects import Dialect, RankingRequest

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-trace-id", "cf-ray")
_NO_SECRETS = Scrubber()


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's share of a call: ``texts`` starts at ``start`` in the plan's texts."""

    start: int
    texts: Sequence[Document]
    top_n: int | None


@dataclass(frozen=True, slots=True)
class RerankPlan:
    """How one call is split into requests.

    Attributes:
        query: the query.
        documents: the caller's documents, as passed.
        texts: the distinct texts, in order of first appearance.
        first_index: for each distinct text, the caller's index of its first copy; ``None``
            when every text is distinct (the identity).
        copies: for distinct texts that appear more than once, the caller's other indexes.
        batches: the requests to send.
        top_n: results to return; ``None`` means all.
        parts: when documents were cut (truncated or chunked), for each distinct text the
            ``(document index, start, end)`` of every place it stands for; ``None`` when
            each text is a whole document.
        aggregate: how the scores of a document's windows make its score (``"max"``).
        windows: how many texts were sent in place of the documents' whole texts.
        sent: when some texts' scores were known already (a cache), the positions in
            ``texts`` of those sent, which the batches hold in order; ``None``: all of them.
        known: the scores already known, by position in ``texts``.
        originals: the caller's documents when they were not all strings (images and
            mappings), for the results; ``None``: ``documents`` are the caller's.
        rank_fields: the fields structured documents are ranked on.
        mixed: whether some texts are images or records rather than strings.
    """

    query: str
    documents: Sequence[Document]
    texts: Sequence[Document]
    first_index: list[int] | None
    copies: dict[int, list[int]]
    batches: list[Batch]
    top_n: int | None
    parts: list[list[tuple[int, int, int]]] | None = None
    aggregate: str = "max"
    windows: int = 0
    sent: list[int] | None = None
    known: dict[int, float] | None = None
    originals: Sequence[Any] | None = None
    rank_fields: tuple[str, ...] | None = None
    mixed: bool = False


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


def check_query(query: object) -> str:
    """The query, if it is a string with some text; otherwise an error naming it."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ValueError(f"query must not be empty or only white space, got {query!r}")
    check_unicode(query, "query")
    return query


def check_top_n(top_n: object) -> int | None:
    """``top_n`` if it is ``None`` or a positive integer; otherwise an error naming it."""
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int):
        raise TypeError(f"top_n must be a positive integer or None, got {top_n!r}")
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    return top_n


def check_documents(documents: object) -> Sequence[Document]:
    """The documents, if they are a sequence of strings (or, once prepared, images and
    records); otherwise a ``TypeError`` naming the first offender by position."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise TypeError(f"documents must be a list of strings, got {type(documents).__name__}")
    for position, document in enumerate(documents):
        if not isinstance(document, (str, Image, Record)):
            raise TypeError(
                f"documents[{position}] must be a string, got {type(document).__name__}"
            )
    return documents


@dataclass(frozen=True, slots=True)
class Budget:
    """What one request may hold, and what to do with a document longer than the model reads.

    Attributes:
        max_documents: distinct texts a request.
        max_bytes: bytes of a request body; ``None``: no limit.
        max_tokens: tokens of a request, the query counted once per text; ``None``: none.
        max_document_tokens: tokens of one text with the query; ``None``: not known.
        max_document_characters: characters of one text; ``None``: not known.
        long_documents: ``"server"`` (send as is), ``"truncate"``, ``"chunk"`` or ``"error"``.
        overlap: tokens two windows of a chunked document share.
        aggregate: how a chunked document's score comes from its windows' (``"max"``,
            ``"mean"``).
        counter: counts tokens (the estimate, or the ``tokenizer`` setting's).
        body_bytes: bytes of a body with one empty document and the query, extra fields
            included; ``document_bytes``: what each further document adds beyond its text.
        cuts: where texts were cut before, by a digest of the text and the limits (a
            client's own cache), so that a document sent again is not measured again.
    """

    max_documents: int
    max_bytes: int | None = None
    max_tokens: int | None = None
    max_document_tokens: int | None = None
    max_document_characters: int | None = None
    long_documents: str = "server"
    overlap: int = 0
    aggregate: str = "max"
    counter: TokenCounter | None = None
    body_bytes: int = 0
    document_bytes: int = 0
    cuts: MutableMapping[tuple[Any, ...], list[Cut]] | None = None

    def sized(self) -> bool:
        """Whether requests are sized by more than their count of documents."""
        return self.max_bytes is not None or self.max_tokens is not None

    def cuts_documents(self) -> bool:
        """Whether a document is cut, or refused, when it is too long."""
        known = (
            self.max_document_tokens,
            self.max_document_characters,
            self.max_tokens,
            self.max_bytes,
        )
        return self.long_documents != "server" and any(limit is not None for limit in known)


#: How a chunked document's score is made of its windows' (``chunk_aggregate=``).
CHUNK_AGGREGATES = ("max", "mean")

#: Tokens a model adds around a query and a document of its own ([CLS] ... [SEP] ... [SEP]).
_SPECIAL_TOKENS = 3


def plan_rerank(
    query: object,
    documents: object,
    top_n: object,
    budget: Budget | int,
    lookup: Callable[[Sequence[Document]], dict[int, float]] | None = None,
    originals: Sequence[Any] | None = None,
    rank_fields: tuple[str, ...] | None = None,
) -> RerankPlan:
    """Check the input and split it into batches of distinct texts.

    Each text is sent once however often it occurs; each batch asks only for as many
    results as the whole call needs, and holds no more than the budget allows. A document
    too long for the budget is cut into windows (``"chunk"``), cut short (``"truncate"``)
    or refused (``"error"``), as the budget says. With ``lookup`` (a cache: the known score
    of each text, by position), only texts it does not know are sent, and every one sent is
    asked for its score (not only the best ``top_n``), so that it can be kept. Images and
    records (``originals`` then holds the caller's documents) are planned like texts but
    never cut.
    """
    checked_query = check_query(query)
    checked_documents = check_documents(documents)
    checked_top_n = check_top_n(top_n)
    if not isinstance(budget, Budget):
        budget = Budget(max_documents=budget)

    copies: dict[int, list[int]] = {}
    distinct: Sequence[Document] = checked_documents
    first_index_or_none: list[int] | None = None
    # Usually every text is distinct: one set() (in C) proves it, with no Python loop.
    if len(set(checked_documents)) != len(checked_documents):
        position_of: dict[Document, int] = {}
        unique: list[Document] = []
        first_index: list[int] = []
        for index, text in enumerate(checked_documents):
            position = position_of.setdefault(text, len(unique))
            if position == len(unique):
                unique.append(text)
                first_index.append(index)
            else:
                copies.setdefault(position, []).append(index)
        distinct, first_index_or_none = unique, first_index

    if checked_top_n is not None and checked_top_n >= len(checked_documents):
        checked_top_n = None
    plan = RerankPlan(
        query=checked_query,
        documents=checked_documents,
        texts=distinct,
        first_index=first_index_or_none,
        copies=copies,
        batches=[],
        top_n=checked_top_n,
        aggregate=budget.aggregate,
        originals=originals,
        rank_fields=rank_fields,
        mixed=originals is not None,
    )
    if budget.cuts_documents():
        plan = _cut_long_documents(plan, budget)
    batch_top_n = None if plan.parts is not None or lookup is not None else checked_top_n
    texts: Sequence[Document] = plan.texts
    if lookup is not None:
        known = lookup(texts)
        if known:
            sent = [position for position in range(len(texts)) if position not in known]
            plan = dataclasses.replace(plan, sent=sent, known=known)
            texts = [texts[position] for position in sent]
    if budget.sized():
        batches = _sized_batches(plan.query, texts, batch_top_n, budget)
    else:
        size = budget.max_documents
        batches = [
            Batch(
                start=start,
                texts=texts[start : start + size],
                top_n=None if batch_top_n is None else min(batch_top_n, len(texts) - start, size),
            )
            for start in range(0, len(texts), size)
        ]
    return dataclasses.replace(plan, batches=batches)


def _document_limits(query: str, budget: Budget) -> tuple[int | None, int | None]:
    """``(tokens, characters)`` one text may have, the query taken into account."""
    counter = budget.counter or counter_for(None)
    query_tokens = counter.count(query) + _SPECIAL_TOKENS
    token_caps = [cap for cap in (budget.max_document_tokens, budget.max_tokens) if cap]
    tokens = max(1, min(token_caps) - query_tokens) if token_caps else None
    characters = budget.max_document_characters
    if budget.max_bytes is not None:
        # A character takes at most 6 bytes in JSON (a \uXXXX escape).
        room = budget.max_bytes - budget.body_bytes - budget.document_bytes
        by_bytes = max(1, room // 6)
        characters = by_bytes if characters is None else min(characters, by_bytes)
    return tokens, characters


def _cut_long_documents(plan: RerankPlan, budget: Budget) -> RerankPlan:
    """The plan with each text too long for the budget cut, chunked or refused."""
    counter = budget.counter or counter_for(None)
    max_tokens, max_characters = _document_limits(plan.query, budget)
    # Each piece's text, and the (document index, start, end) of every place it stands for.
    texts: list[Document] = []
    parts: list[list[tuple[int, int, int]]] = []
    cut_pieces = 0
    for position, text in enumerate(plan.texts):
        index = position if plan.first_index is None else plan.first_index[position]
        others = plan.copies.get(position, ())
        if not isinstance(text, str):  # an image or a record is sent whole
            texts.append(text)
            parts.append([(owner, 0, 0) for owner in (index, *others)])
            continue
        too_long = max_characters is not None and len(text) > max_characters
        # A text of n characters has at most 2n estimated tokens: short ones are not counted.
        cuts = None
        if too_long or (max_tokens is not None and len(text) * 2 > max_tokens):
            cuts = _cuts(text, index, too_long, max_tokens, max_characters, counter, budget)
        if cuts is None:
            texts.append(text)
            parts.append([(owner, 0, len(text)) for owner in (index, *others)])
            continue
        texts += [text[cut.start : cut.end] for cut in cuts]
        if others:
            owners = (index, *others)
            parts += [[(owner, cut.start, cut.end) for owner in owners] for cut in cuts]
        else:
            parts += [[(index, cut.start, cut.end)] for cut in cuts]
        cut_pieces += len(cuts)
    if not cut_pieces:
        return plan
    if len(set(texts)) != len(texts):  # a piece found twice is sent once
        position_of: dict[Document, int] = {}
        distinct: list[Document] = []
        merged: list[list[tuple[int, int, int]]] = []
        for text, places in zip(texts, parts, strict=True):
            position = position_of.setdefault(text, len(distinct))
            if position == len(distinct):
                distinct.append(text)
                merged.append(places)
            else:
                merged[position] = merged[position] + places
        texts, parts = distinct, merged
    return dataclasses.replace(
        plan, texts=texts, first_index=None, copies={}, parts=parts, windows=cut_pieces
    )


def document_tokens(counter: TokenCounter, document: Document) -> int:
    """The tokens of one document: a text's count, a record's text's, an image's share."""
    if isinstance(document, str):
        return counter.count(document)
    if isinstance(document, Image):
        return IMAGE_TOKENS
    return counter.count(document.rendered(None))


def _document_bytes(document: Document) -> int:
    if isinstance(document, str):
        return len(_json.dumps(document)) - 2
    return document.wire_size()


def _cuts(
    text: str,
    index: int,
    too_long: bool,
    max_tokens: int | None,
    max_characters: int | None,
    counter: TokenCounter,
    budget: Budget,
) -> list[Cut] | None:
    """Where to cut a text that may be too long for the budget; ``None`` when it fits. What
    is found is kept in the budget's cache, a fit included, so that a text sent again is
    neither counted nor cut again."""
    mode = budget.long_documents
    room = max_tokens if max_tokens is not None else len(text)
    kept = budget.cuts if mode != "error" else None
    key = None
    if kept is not None:
        key = (_digest(text), mode, room, budget.overlap, max_characters)
        known = kept.get(key)
        if known is not None:
            return known or None
    if not too_long and max_tokens is not None:
        # Long texts with more words than tokens allowed are not counted.
        too_long = surely_longer(text, max_tokens) or counter.count(text) > max_tokens
    cuts: list[Cut] = []
    if too_long and mode == "error":
        size = f"{len(text):,} characters, about {counter.count(text):,} tokens"
        allowed = " and ".join(
            f"{value:,} {name}"
            for name, value in (("tokens", max_tokens), ("characters", max_characters))
            if value is not None
        )
        raise ValueError(
            f"documents[{index}] is too long to send ({size}; next to the query a "
            f"document may have {allowed}): set long_documents='chunk' or 'truncate'"
        )
    if too_long and mode == "truncate":
        cuts = [truncation(text, counter, room, max_characters)]
    elif too_long:
        cuts = windows(text, counter, room, min(budget.overlap, room // 2), max_characters)
    if kept is not None and key is not None:
        kept[key] = cuts
    return cuts or None


def _digest(text: str) -> bytes:
    """A short digest of ``text``: a cache of cuts keyed by it keeps no document alive."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def _sized_batches(
    query: str, texts: Sequence[Document], top_n: int | None, budget: Budget
) -> list[Batch]:
    """Batches of consecutive texts, each within every limit of the budget."""
    counter = budget.counter or counter_for(None)
    query_tokens = counter.count(query) if budget.max_tokens is not None else 0
    batches: list[Batch] = []
    start = 0
    count = size = tokens = 0
    for position, text in enumerate(texts):
        text_bytes = _document_bytes(text) + budget.document_bytes
        text_tokens = (
            document_tokens(counter, text) + query_tokens if budget.max_tokens is not None else 0
        )
        full = count >= budget.max_documents or (
            count
            and (
                (
                    budget.max_bytes is not None
                    and budget.body_bytes + size + text_bytes > budget.max_bytes
                )
                or (budget.max_tokens is not None and tokens + text_tokens > budget.max_tokens)
            )
        )
        if full:
            batches.append(_batch(texts, start, position, top_n))
            start, count, size, tokens = position, 0, 0, 0
        count += 1
        size += text_bytes
        tokens += text_tokens
    if count:
        batches.append(_batch(texts, start, len(texts), top_n))
    return batches


def _batch(texts: Sequence[Document], start: int, end: int, top_n: int | None) -> Batch:
    return Batch(start, texts[start:end], None if top_n is None else min(top_n, end - start))


def encode_request(
    dialect: Dialect,
    plan: RerankPlan,
    batch: Batch,
    model: str | None,
    extra_body: Mapping[str, Any],
    path: str,
    location: str | None = None,
) -> bytes:
    """The JSON body of one batch's request, as bytes."""
    documents = batch.texts if isinstance(batch.texts, list) else list(batch.texts)
    request = RankingRequest(
        plan.query,
        documents,
        batch.top_n,
        model,
        path,
        location,
        plan.rank_fields,
        plan.mixed and not all(type(document) is str for document in documents),
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


def check_extra_body(extra_body: object, name: str = "extra_body") -> Mapping[str, Any]:
    """``extra_body`` if it is ``None`` (none) or a JSON-encodable mapping with string keys;
    otherwise a ``TypeError`` naming it."""
    if extra_body is None:
        return {}
    if not isinstance(extra_body, Mapping) or not all(isinstance(k, str) for k in extra_body):
        raise TypeError(f"{name} must be a dict with string keys, got {extra_body!r}")
    try:
        _json.dumps(extra_body)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be encodable as JSON: {exc}") from None
    return extra_body


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
class _Refusal:
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
) -> BatchRanking | _Refusal:
    """The checked ranking in an answer, or why there is none (never raised, so that no
    frame holding the answer ends up in a traceback)."""
    try:
        body = _json.loads(content)
    except _json.JSONDecodeError:
        return _Refusal("the body is not JSON")
    try:
        parsed: ParsedRanking = dialect.parse_body(body)
    except ResponseShapeError as exc:
        return _Refusal(str(exc))
    except (RecursionError, LookupError, TypeError, ValueError, AttributeError) as exc:
        # A parser tripped over a shape it did not foresee: still a bad answer, not a crash.
        return _Refusal(f"unreadable answer ({type(exc).__name__})")
    except EmbeddedAPIError as exc:
        return _Refusal(exc.message, exc.status_code)

    seen = bytearray(batch_size)
    pairs: list[tuple[int, float]] = []
    for index, score in parsed.pairs:
        # What JSON decodes to (an int, a float) is told by its type alone, the rest checked.
        if type(index) is not int and (isinstance(index, bool) or not isinstance(index, int)):
            if isinstance(index, float) and index.is_integer():
                index = int(index)
            else:
                return _Refusal(f"index {index!r} is not an integer")
        if not 0 <= index < batch_size:
            return _Refusal(f"index {index} is out of range for {batch_size} documents")
        if seen[index]:
            return _Refusal(f"index {index} appears more than once")
        seen[index] = 1
        if type(score) is not float and (
            isinstance(score, bool) or not isinstance(score, (int, float))
        ):
            return _Refusal(f"score of index {index} is not a number: {score!r}")
        value = float(score)
        if not math.isfinite(value):
            return _Refusal(f"score of index {index} is not finite: {score!r}")
        pairs.append((index, value))
    wanted = batch_size if expected is None else min(expected, batch_size)
    if len(pairs) < wanted and parsed.next_page is None:
        # A ranking that leaves out documents it was asked to rank would drop them silently
        # (a paged answer is counted once all its pages are in).
        got = f"{len(pairs)} results" if pairs else "no results"
        return _Refusal(f"{got} for {batch_size} documents sent, {wanted} expected")
    return BatchRanking(
        pairs, parsed.model, parsed.total_tokens, parsed.billed_units, parsed.next_page
    )


def merge_pages(pages: Sequence[BatchRanking], batch_size: int) -> BatchRanking:
    """One batch's ranking from the pages of a paged answer; an index may appear once in all.

    Raises:
        ResponseFormatError: a page repeats an index an earlier page gave.
    """
    seen = bytearray(batch_size)
    pairs: list[tuple[int, float]] = []
    for page in pages:
        for index, score in page.pairs:
            if seen[index]:
                raise ResponseFormatError(
                    f"invalid rerank answer: index {index} appears on more than one page"
                )
            seen[index] = 1
            pairs.append((index, score))
    models = [page.model for page in pages if page.model]
    return BatchRanking(
        pairs,
        models[0] if models else None,
        _sum_optional([page.total_tokens for page in pages]),
        _sum_optional([page.billed_units for page in pages]),
        requests=sum(page.requests for page in pages),
    )


def _sum_optional(values: Sequence[float | int | None]) -> Any:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def sigmoid(score: float) -> float:
    """The logistic function, without overflow for large logits of either sign."""
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    exp = math.exp(score)
    return exp / (1.0 + exp)


#: Maps a name users pass as ``score_transform`` to a function of a score.
SCORE_TRANSFORMS: dict[str, Callable[[float], float] | None] = {
    "none": None,
    "sigmoid": sigmoid,
}


def check_score_transform(name: object) -> Callable[[float], float] | None:
    """The transform called ``name`` (``None`` means ``"none"``); else an error naming it."""
    if name is None:
        return None
    if not isinstance(name, str) or name not in SCORE_TRANSFORMS:
        known = ", ".join(repr(key) for key in SCORE_TRANSFORMS)
        raise ValueError(f"score_transform must be one of {known} or None, got {name!r}")
    return SCORE_TRANSFORMS[name]


def merge_rankings(
    plan: RerankPlan,
    rankings: Sequence[BatchRanking],
    requested_model: str | None,
    transform: Callable[[float], float] | None = None,
    endpoint: str | None = None,
) -> RerankResponse:
    """One ranking from every batch's answer: scores mapped back to the caller's indexes
    (every copy of a repeated text gets its score; a chunked document its best window's,
    or their mean), sorted best first with ties in the caller's order, cut to ``top_n``;
    ``transform`` (monotone) is applied to the scores that are returned."""
    spans: dict[int, tuple[int, int]] = {}
    if plan.parts is not None:
        scored = _aggregate(plan, rankings, spans)
    else:
        scored = []
        first_index = plan.first_index
        copies = plan.copies
        if plan.sent is None:
            for batch, ranking in zip(plan.batches, rankings, strict=True):
                start = batch.start
                for local, score in ranking.pairs:
                    position = start + local
                    index = position if first_index is None else first_index[position]
                    scored.append((score, index))
                    if copies and position in copies:
                        scored.extend((score, other) for other in copies[position])
        else:
            for position, score in unit_scores(plan, rankings):
                scored.append((score, position if first_index is None else first_index[position]))
                if copies and position in copies:
                    scored.extend((score, other) for other in copies[position])

    def best_first(pair: tuple[float, int]) -> tuple[float, int]:
        return (-pair[0], pair[1])

    if plan.top_n is not None and plan.top_n * 4 < len(scored):
        ordered = heapq.nsmallest(plan.top_n, scored, key=best_first)
    else:
        scored.sort(key=itemgetter(1))
        scored.sort(key=itemgetter(0), reverse=True)  # stable: ties keep the caller's order
        ordered = scored if plan.top_n is None else scored[: plan.top_n]

    documents: Sequence[Any] = plan.documents if plan.originals is None else plan.originals
    if spans:
        results = [
            RerankResult(
                index,
                score if transform is None else transform(score),
                documents[index],
                spans.get(index),
            )
            for score, index in ordered
        ]
    elif transform is None:
        results = [RerankResult(index, score, documents[index]) for score, index in ordered]
    else:
        results = [
            RerankResult(index, transform(score), documents[index]) for score, index in ordered
        ]
    models = [ranking.model for ranking in rankings if ranking.model]
    tokens = _sum_optional([ranking.total_tokens for ranking in rankings])
    units = _sum_optional([ranking.billed_units for ranking in rankings])
    requests = sum(ranking.requests for ranking in rankings)
    usage = Usage(tokens, units, requests) if tokens is not None or units is not None else None
    return RerankResponse(
        results=results,
        model=models[0] if models else requested_model,
        usage=usage,
        requests=requests,
        windows=plan.windows,
        endpoint=endpoint,
    )


def unit_scores(plan: RerankPlan, rankings: Sequence[BatchRanking]) -> Iterator[tuple[int, float]]:
    """``(position in plan.texts, score)`` of every text: those sent, then those known."""
    sent = plan.sent
    for batch, ranking in zip(plan.batches, rankings, strict=True):
        start = batch.start
        for local, score in ranking.pairs:
            yield (start + local if sent is None else sent[start + local]), score
    if plan.known:
        yield from plan.known.items()


def _aggregate(
    plan: RerankPlan, rankings: Sequence[BatchRanking], spans: dict[int, tuple[int, int]]
) -> list[tuple[float, int]]:
    """Each document's score from its parts' (the best, or their mean), and in ``spans``
    the part that scored best, for documents that were cut."""
    assert plan.parts is not None
    best: dict[int, float] = {}
    totals: dict[int, list[float]] = {}
    mean = plan.aggregate == "mean"
    parts = plan.parts
    for position, score in unit_scores(plan, rankings):
        for index, start, end in parts[position]:
            if mean:
                totals.setdefault(index, []).append(score)
            if index not in best or score > best[index]:
                best[index] = score
                spans[index] = (start, end)
    documents = plan.documents
    for index, (start, end) in list(spans.items()):
        document = documents[index]
        if not isinstance(document, str) or (start == 0 and end == len(document)):
            del spans[index]  # scored whole: no span to point at
    if mean:
        return [(sum(values) / len(values), index) for index, values in totals.items()]
    return [(score, index) for index, score in best.items()]
