"""One batch's exchange with the server, written once for both the sync and the async client.

:func:`batch_flow` is a generator that does no I/O: it yields what to do next (:class:`Send`
a request, :class:`Sleep` a while, :class:`Run` a blocking credential call) and is sent back
what happened (an :class:`Answer`, or the :class:`~rerank_integrations.RerankError` a failed
send maps to). :func:`drive` and :func:`adrive` carry it out, the one with blocking calls and
the other with awaits; that is all that differs between the two paths. Credentials that are
exchanged or signed per request come from an :class:`~._auth.Authorizer`'s own flow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx

from ._actions import Answer, Flow, Run, Send, Sleep, Wait
from ._answers import missing_field
from ._auth import Authorizer
from ._budget import TokenCounter, counter_for
from ._cache import ScoreCache, ScoreLookup
from ._config import ClientSettings, check_deadline, shorten_timeout
from ._constants import ENV_MODEL, LOGGER_NAME
from ._core import (
    Batch,
    BatchRanking,
    Budget,
    RerankPlan,
    check_extra_body,
    check_query,
    decode_response,
    document_tokens,
    encode_request,
    make_status_error,
    merge_fields,
    merge_pages,
    plan_rerank,
    scale_mismatch,
)
from ._documents import check_rank_fields, prepare_documents
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    RerankError,
    ResponseFormatError,
)
from ._observe import Counters
from ._ratelimit import AdaptiveGate, Cost, RateLimiter
from ._retry import next_wait, parse_retry_after
from ._secrets import Scrubber
from ._text import display_url
from ._types import NOT_GIVEN, NotGiven
from .dialects import Dialect

__all__ = [
    "Answer",
    "Call",
    "Connection",
    "Flow",
    "Run",
    "Send",
    "Sleep",
    "adrive",
    "attempt_bounds",
    "batch_flow",
    "check_extra_fields",
    "drive",
    "start_call",
    "transport_error",
]

logger = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")


def _run(action: Run) -> Any:
    try:
        return action.function()
    except Exception as exc:  # handed back to the flow, which decides what it means
        return exc


def drive(
    flow: Flow[T], send: Callable[[Send], Answer | RerankError], sleep: Callable[[float], None]
) -> T:
    """Run ``flow`` to its end with blocking ``send``, ``sleep`` and calls; return its value."""
    outcome: Any = None
    try:
        while True:
            action = flow.send(outcome)
            if isinstance(action, Sleep):
                sleep(action.seconds)
                outcome = None
            elif isinstance(action, Run):
                outcome = _run(action)
            elif isinstance(action, Wait):
                outcome = action.latch.wait(action.seconds)
            else:
                outcome = send(action)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def adrive(
    flow: Flow[T],
    send: Callable[[Send], Awaitable[Answer | RerankError]],
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """The async twin of :func:`drive`; a blocking call runs in a worker thread."""
    outcome: Any = None
    try:
        while True:
            action = flow.send(outcome)
            if isinstance(action, Sleep):
                await sleep(action.seconds)
                outcome = None
            elif isinstance(action, Run):
                outcome = await asyncio.to_thread(_run, action)
            elif isinstance(action, Wait):
                outcome = await action.latch.wait_async(action.seconds)
            else:
                outcome = await send(action)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


# -- one call ---------------------------------------------------------------------------------

#: Arguments of ``rerank()`` that a misspelt extra body field is checked against.
_KNOWN_ARGUMENTS = ("top_n", "model", "query", "documents", "deadline", "rank_fields")
#: Spellings of known arguments used by other APIs, refused for the same reason.
_ALIASES = {"top_k": "top_n", "topn": "top_n", "topk": "top_n", "k": "top_n", "n": "top_n"}


def check_extra_fields(fields: Mapping[str, Any]) -> None:
    """Refuse extra body fields that look like a misspelt argument (``toop_n``, ``top_k``).

    Raises:
        TypeError: naming the field and the argument it was probably meant to be.
    """
    for name in fields:
        meant = _ALIASES.get(name.lower()) or next(
            iter(difflib.get_close_matches(name, _KNOWN_ARGUMENTS, n=1, cutoff=0.75)), None
        )
        if meant is not None:
            raise TypeError(
                f"unexpected argument {name!r}: did you mean {meant}=? (extra body fields that "
                f"look like an argument are refused; send them with extra_body={{{name!r}: ...}})"
            )


@dataclass(frozen=True, slots=True)
class Call:
    """One rerank call in progress: its plan, model, extra body fields and deadline."""

    plan: RerankPlan
    model: str | None
    extra_body: Mapping[str, Any]
    deadline: float | None
    expires: float | None  # time.monotonic() by which the call must end
    lookup: ScoreLookup | None = None  # the cache keys of the plan's texts, with a cache

    def time_left(self) -> float | None:
        """Seconds left before the deadline, ``None`` without one."""
        return None if self.expires is None else self.expires - time.monotonic()

    def deadline_error(self, attempts: int = 0) -> APITimeoutError:
        """The error raised when the deadline has run out."""
        after = f" after {attempts} attempts" if attempts > 1 else ""
        return APITimeoutError(f"the call's deadline of {self.deadline:g}s ran out{after}")


def start_call(
    settings: ClientSettings,
    connection: Connection,
    query: object,
    documents: object,
    top_n: object,
    model: str | NotGiven | None,
    deadline: float | NotGiven | None,
    extra_body: object,
    fields: Mapping[str, Any],
    rank_fields: object = None,
) -> Call:
    """Check the arguments, plan the batches and start the clock, before anything is sent.

    The request's extra fields are the client's ``extra_body``, then the call's, then the
    call's keyword fields, each merged one level deep over the one before. Images and
    mappings among the documents are prepared for the dialect (:mod:`._documents`).
    """
    check_extra_fields(fields)
    extra = settings.extra_body
    for more in (check_extra_body(extra_body), check_extra_body(fields, "extra fields")):
        if more:
            extra = merge_fields(extra, more)
    seconds = check_deadline(settings.deadline if deadline is NOT_GIVEN else deadline)
    if model is NOT_GIVEN or model is None:
        model = settings.model
    elif not isinstance(model, str):
        raise TypeError(f"model must be a string or None, got {type(model).__name__}")
    checked_query = check_query(query)
    fields_ranked = check_rank_fields(rank_fields)
    dialect = settings.dialect
    prepared, originals = prepare_documents(
        documents,
        dialect.name,
        dialect.image_format is not None,
        dialect.accepts_objects(connection.path),
        fields_ranked,
    )
    budget = budget_for(settings, connection, checked_query, model or None, extra)
    lookup = None
    if connection.scores is not None:
        lookup = _lookup(
            settings, connection, connection.scores, checked_query, model, extra, fields_ranked
        )
    plan = plan_rerank(query, prepared, top_n, budget, lookup, originals, fields_ranked)
    expires = None if seconds is None else time.monotonic() + seconds
    return Call(plan, model or None, extra, seconds, expires, lookup)


#: Models whose scores depend on which documents share a batch: a cache misleads them.
_LISTWISE = re.compile(r"jina-reranker-v3|listwise", re.IGNORECASE)


def _lookup(
    settings: ClientSettings,
    connection: Connection,
    scores: ScoreCache,
    query: str,
    model: str | None,
    extra: Mapping[str, Any],
    rank_fields: tuple[str, ...] | None,
) -> ScoreLookup:
    """The cache lookup of one call: keyed on what decides a score, scoped by the client's
    credentials (as a keyed hash) unless the cache is shared."""
    if model and not connection.listwise_warned and _LISTWISE.search(model):
        connection.listwise_warned = True
        logger.warning(
            "rerank: %r is a listwise model (its scores depend on the other documents of a "
            "batch) and a cache is on; scores kept from one batch may not fit another: "
            "turn the cache off for this model",
            model,
        )
    context = (
        settings.dialect.name,
        scores.endpoint_key(settings.endpoint),
        model or None,
        settings.location,
        extra,
        rank_fields,
    )
    return scores.lookup(context, query)


def budget_for(
    settings: ClientSettings,
    connection: Connection,
    query: str,
    model: str | None,
    extra: Mapping[str, Any],
) -> Budget | int:
    """What one request of a call may hold: the settings' limits (a dialect's own where it
    knows them), tightened by what the server has taught this client."""
    learned = connection.learned
    documents = settings.max_documents_per_request
    if learned.documents is not None:
        documents = min(documents, learned.documents)
    max_bytes = _smaller(settings.max_request_bytes, learned.bytes)
    per_document = _smaller(settings.max_tokens_per_document, learned.document_tokens)
    long_documents = settings.long_documents
    sized = max_bytes is not None or settings.max_tokens_per_request is not None
    if not sized and (
        long_documents == "server"
        or (per_document is None and not (settings.max_characters_per_document))
    ):
        return documents  # only the count to keep to: no text is measured
    body_bytes = document_bytes = 0
    if max_bytes is not None:
        body_bytes, document_bytes = _body_sizes(settings, connection, query, model, extra)
    return Budget(
        max_documents=documents,
        max_bytes=max_bytes,
        max_tokens=settings.max_tokens_per_request,
        max_document_tokens=per_document,
        max_document_characters=settings.max_characters_per_document,
        long_documents=long_documents,
        overlap=settings.chunk_overlap,
        aggregate=settings.chunk_aggregate,
        counter=connection.counter,
        body_bytes=body_bytes,
        document_bytes=document_bytes,
        cuts=connection.cuts,
    )


def _smaller(first: int | None, second: int | None) -> int | None:
    return second if first is None else first if second is None else min(first, second)


def _body_sizes(
    settings: ClientSettings,
    connection: Connection,
    query: str,
    model: str | None,
    extra: Mapping[str, Any],
) -> tuple[int, int]:
    """``(bytes of a body with one empty document, bytes each further one adds)``, measured
    on the dialect's own bodies, with the longest ``top_n`` a batch may carry."""
    sizes = []
    top_n = settings.max_documents_per_request
    for texts in ([""], ["", ""]):
        plan = RerankPlan(query, texts, texts, None, {}, [], None)
        body = encode_request(
            settings.dialect,
            plan,
            Batch(0, texts, top_n),
            model,
            extra,
            connection.path,
            settings.location,
        )
        sizes.append(len(body))
    return sizes[0], sizes[1] - sizes[0]


# -- one batch --------------------------------------------------------------------------------


#: Documents whose cuts a client keeps: a few kilobytes each, keyed by a digest (no text is
#: kept), so that a corpus reranked again is not cut again.
CUT_DOCUMENTS = 4096


class BoundedCache(OrderedDict[Any, Any]):
    """A mapping that forgets its oldest entries past ``size`` (safe to share: a lost race
    only measures a document twice)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self.size:
            try:
                self.popitem(last=False)
            except KeyError:
                break


@dataclass(slots=True)
class Learned:
    """Limits a server has shown, kept for the client's life: later calls plan with them.

    Attributes:
        documents: the most documents a request may hold: the limit the server stated, else
            the most that worked after a refusal.
        bytes: the largest body a request may be, after refusals for size.
        document_tokens: the tokens a server says one document may have.
    """

    documents: int | None = None
    bytes: int | None = None
    document_tokens: int | None = None
    _stated: bool = False
    _refused_documents: int | None = None
    _refused_bytes: int | None = None

    def refused(
        self, documents: int, body_bytes: int, stated: int | None, refusal: Refusal
    ) -> None:
        """A request of ``documents`` documents and ``body_bytes`` bytes was refused; a
        refusal that names the body alone teaches no count of documents."""
        if stated is not None:
            self.documents, self._stated = stated, True
        if not refusal.only_bytes:
            self._refused_documents = min(documents, self._refused_documents or documents)
        if refusal.by_bytes:
            self._refused_bytes = min(body_bytes, self._refused_bytes or body_bytes)

    def worked(self, documents: int, body_bytes: int) -> None:
        """A request split off after a refusal went through: as big may go again."""
        refused = self._refused_documents
        if not self._stated and refused is not None and documents < refused:
            self.documents = max(documents, self.documents or 0)
        if self._refused_bytes is not None and body_bytes < self._refused_bytes:
            self.bytes = max(body_bytes, self.bytes or 0)

    def learn(self, **limits: int | None) -> None:
        """Keep each limit given, or the smaller of it and the one known."""
        for name, value in limits.items():
            if value is not None:
                known = getattr(self, name)
                setattr(self, name, value if known is None else min(known, value))


@dataclass(slots=True, repr=False)
class Connection:
    """What every request of one client shares: where it goes, what it sends, what to hide,
    and what the client has learned on the way.

    Attributes:
        url: the endpoint.
        shown_url: the endpoint without credentials, for messages and logs.
        headers: every request's headers, credentials in the clear (the repr hides them).
        scrubber: removes every secret of the client from what is shown.
        path: the endpoint's path, for dialects whose versions differ by path.
        alternate: the other common rerank path, still to try once on a 404.
        logits_expected: whether scores should be raw logits rather than 0..1.
        scale_warned: whether the scores have already been found off their scale.
        counter: counts tokens for the size budgets.
        limiter: the client's rate limit, if any.
        gate: the adaptive limit on batches in flight, if on.
        counters: what the client has done (``client.stats()``).
        scores: the client's cache of scores, if any.
        listwise_warned: whether a cache used with a listwise model has been warned of.
        learned: limits the server has shown.
        cuts: where long documents were cut, for documents sent again.
    """

    url: str
    shown_url: str
    headers: Mapping[str, str]
    scrubber: Scrubber
    path: str
    alternate: str | None = None
    logits_expected: bool = False
    scale_warned: bool = False
    counter: TokenCounter | None = None
    limiter: RateLimiter | None = None
    gate: AdaptiveGate | None = None
    counters: Counters = field(default_factory=lambda: Counters())
    scores: ScoreCache | None = None
    listwise_warned: bool = False
    learned: Learned = field(default_factory=lambda: Learned())
    cuts: BoundedCache = field(default_factory=lambda: BoundedCache(CUT_DOCUMENTS))
    _scrubbers: dict[tuple[str, ...], Scrubber] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Connection({self.shown_url!r})"

    def scrubber_with(self, secrets: Sequence[str]) -> Scrubber:
        """The scrubber, also of ``secrets`` that change (a token fetched with the key)."""
        if not secrets:
            return self.scrubber
        key = tuple(secrets)
        cached = self._scrubbers.get(key)
        if cached is None:
            cached = Scrubber([*self.scrubber.secrets, *secrets])
            self._scrubbers = {key: cached}  # the token changes rarely: keep the latest
        return cached

    def move_to(self, url: str) -> None:
        """Send every later request to ``url``: it answered where the endpoint did not."""
        logger.info("%s is not a rerank endpoint; using %s", self.shown_url, display_url(url))
        self.url, self.shown_url, self.path = url, display_url(url), urlsplit(url).path

    def check_scale(self, ranking: BatchRanking) -> None:
        """Warn, once for this client, when scores do not fit the scale expected."""
        if self.scale_warned:
            return
        problem = scale_mismatch(self.logits_expected, [score for _, score in ranking.pairs])
        if problem is not None:
            self.scale_warned = True
            logger.warning("rerank scores from %s: %s", self.shown_url, problem)


def batch_flow(
    settings: ClientSettings,
    connection: Connection,
    call: Call,
    number: int,
    random: Callable[[], float],
    authorizer: Authorizer | None = None,
) -> Flow[BatchRanking]:
    """Send batch ``number`` of ``call``, retrying as the policy says; return its ranking.

    A batch the server refuses as too big (a 413, or a 400 or 422 that says so) is split in
    half and the halves sent, down to one document if need be; the size that worked is
    kept for later calls. An API that pages its answer (``dialect.next_page_field``) is
    asked for each next page until it has none; the pages make one ranking.
    """
    plan = call.plan
    batch = plan.batches[number]
    label = f"batch {number + 1}/{len(plan.batches)}"
    auth = authorizer or _NO_AUTHORIZER
    ranking = yield from _part(settings, connection, call, batch, label, random, auth, 0)
    if call.lookup is not None:  # kept as each batch arrives: a later failure loses none
        start = batch.start
        sent = plan.sent
        positions = range(start, start + len(batch.texts))
        call.lookup.keep(positions if sent is None else [sent[i] for i in positions], ranking.pairs)
    return ranking


def _part(
    settings: ClientSettings,
    connection: Connection,
    call: Call,
    batch: Batch,
    label: str,
    random: Callable[[], float],
    auth: Authorizer,
    depth: int,
) -> Flow[BatchRanking]:
    """One batch, or a part of one split off after a refusal for size."""
    size = len(batch.texts)
    named = f"{label} ({size} documents)" if not depth else f"{label}, part of {size} documents"
    try:
        ranking, sent = yield from _paged(settings, connection, call, batch, named, random, auth)
    except _Refused as refused:
        error, refusal, sent = refused.error, refused.refusal, refused.sent
        if size < 2:
            raise error from None
        stated = refusal.documents if refusal.documents and refusal.documents < size else None
        connection.learned.refused(size, sent, stated, refusal)
        half = size // 2
        logger.warning(
            "rerank %s: the server refused it as too big (HTTP %d); sending it in parts of "
            "%d and %d",
            named,
            error.status_code,
            half,
            size - half,
        )
        top_n = batch.top_n
        first = yield from _part(
            settings,
            connection,
            call,
            Batch(batch.start, batch.texts[:half], None if top_n is None else min(top_n, half)),
            label,
            random,
            auth,
            depth + 1,
        )
        second = yield from _part(
            settings,
            connection,
            call,
            Batch(
                batch.start + half,
                batch.texts[half:],
                None if top_n is None else min(top_n, size - half),
            ),
            label,
            random,
            auth,
            depth + 1,
        )
        return _joined(first, second, half)
    if depth:
        connection.learned.worked(size, sent)  # the size that went through after a refusal
    return dataclasses.replace(ranking, sent_bytes=sent)


def _joined(first: BatchRanking, second: BatchRanking, offset: int) -> BatchRanking:
    """The ranking of two halves of a batch, the second's indexes moved past the first's."""
    pairs = [*first.pairs, *((index + offset, score) for index, score in second.pairs)]
    return BatchRanking(
        pairs,
        first.model or second.model,
        _sum(first.total_tokens, second.total_tokens),
        _sum(first.billed_units, second.billed_units),
        None,
        max(first.sent_bytes, second.sent_bytes),
        first.requests + second.requests,
    )


def _sum(first: Any, second: Any) -> Any:
    return first if second is None else second if first is None else first + second


def _paged(
    settings: ClientSettings,
    connection: Connection,
    call: Call,
    batch: Batch,
    label: str,
    random: Callable[[], float],
    auth: Authorizer,
) -> Flow[tuple[BatchRanking, int]]:
    """One batch's request, and the next pages' for an API that pages its answer; with the
    size of the largest body sent."""
    dialect = settings.dialect
    plan = call.plan
    size = len(batch.texts)
    pages: list[BatchRanking] = []
    token: str | None = None
    sent = 0
    while True:
        extra = call.extra_body
        if token is not None and dialect.next_page_field:
            extra = merge_fields(extra, {dialect.next_page_field: token})
        body = encode_request(
            dialect, plan, batch, call.model, extra, connection.path, settings.location
        )
        sent = max(sent, len(body))
        try:
            page = yield from _exchange(
                settings, connection, call, batch, body, label, random, auth
            )
        except APIStatusError as error:
            refusal = too_big(error)
            if refusal is None:
                raise
            raise _Refused(error, refusal, len(body)) from None
        pages.append(page)
        if page.next_page is None or dialect.next_page_field is None:
            break
        if page.next_page == token or len(pages) > size:
            raise ResponseFormatError(
                f"the answer to {label} keeps asking for another page (nextToken); giving up"
            )
        token = page.next_page
    ranking = pages[0] if len(pages) == 1 else merge_pages(pages, size)
    wanted = size if batch.top_n is None else min(batch.top_n, size)
    if dialect.next_page_field and len(ranking.pairs) < wanted:  # counted once all are in
        raise ResponseFormatError(
            f"invalid rerank answer from {connection.shown_url}: {len(ranking.pairs)} results "
            f"in {len(pages)} pages for {size} documents sent, {wanted} expected"
        )
    return ranking, sent


class _Refused(Exception):
    """A request refused for its size, on its way to be split: the error, what it says,
    and the size of the body refused."""

    def __init__(self, error: APIStatusError, refusal: Refusal, sent: int) -> None:
        super().__init__(error.message)
        self.error, self.refusal, self.sent = error, refusal, sent


@dataclass(frozen=True, slots=True)
class Refusal:
    """A server's refusal of a batch as too big: the limit it states, if any, whether it
    may have been the body's size rather than its count of documents (``by_bytes``), and
    whether the server said so, naming the body and no count (``only_bytes``)."""

    documents: int | None
    by_bytes: bool
    only_bytes: bool = False


_TOO_BIG = re.compile(
    r"too many|at most \d+ items?|batch size|payload too large|entity too large|"
    r"request too large|body too large|too large|exceeds? the (?:max|limit)",
    re.IGNORECASE,
)
_BY_BYTES = re.compile(r"entity|payload|body|bytes", re.IGNORECASE)
_STATED_COUNT = re.compile(
    r"at most (\d+) items?|(?:limit|maximum(?: allowed)?(?: batch size)?) (?:is |of )?(\d+)"
    r"(?: per request| documents| items)?|max(?:imum)? allowed batch size (\d+)",
    re.IGNORECASE,
)
#: How a server says one document is too long (not the batch): TEI's own words first.
_DOCUMENT_TOO_LONG = re.compile(
    r"must have less than (\d+) tokens|maximum (?:context|input|sequence) length is (\d+)",
    re.IGNORECASE,
)


def too_big(error: APIStatusError) -> Refusal | None:
    """Whether ``error`` refuses a batch for its size (a 413, or a 400 or 422 that says so),
    and the limit it states; ``None`` for any other refusal, one long document's included."""
    message = error.server_message or ""
    if _DOCUMENT_TOO_LONG.search(message):
        return None
    if error.status_code != 413 and not (
        error.status_code in (400, 422) and _TOO_BIG.search(message)
    ):
        return None
    stated = _STATED_COUNT.search(message)
    count = next((int(group) for group in stated.groups() if group), None) if stated else None
    named = bool(_BY_BYTES.search(message))
    by_bytes = named or (error.status_code == 413 and count is None)
    return Refusal(count, by_bytes, only_bytes=named and count is None)


def document_limit(error: APIStatusError) -> int | None:
    """The tokens a server says one document may have, when it refused one as too long."""
    found = _DOCUMENT_TOO_LONG.search(error.server_message or "")
    return None if found is None else int(next(group for group in found.groups() if group))


_NO_AUTHORIZER = Authorizer()


def _exchange(
    settings: ClientSettings,
    connection: Connection,
    call: Call,
    batch: Batch,
    body: bytes,
    label: str,
    random: Callable[[], float],
    auth: Authorizer,
) -> Flow[BatchRanking]:
    """One request's attempts: budget, credentials, send, retry decision, decoding."""
    dialect = settings.dialect
    top_n, size = batch.top_n, len(batch.texts)
    url = dialect.request_url(connection.url, call.model)
    logger.debug("POST %s %s, %d bytes", display_url(url), label, len(body))
    policy = settings.retry
    max_bytes = settings.max_response_bytes
    counters, gate, limiter = connection.counters, connection.gate, connection.limiter
    cost = None if limiter is None else _cost(limiter, connection, call.plan.query, batch)
    retries_done = 0
    refreshed = False
    slept = 0.0  # since the attempt before: the backoff, then any budget or gate wait
    while True:
        if limiter is not None and cost is not None:
            waited = limiter.reserve(cost, call.time_left())
            if waited is None:
                raise RateLimitError(
                    f"the client's rate limit ({limiter!r}) has no room for {label} before "
                    f"the call's deadline of {call.deadline:g}s; nothing was sent",
                    status_code=429,
                    url=connection.shown_url,
                )
            if waited > 0:
                slept += waited
                yield Sleep(waited)
        if gate is not None:
            paused = gate.pause()
            if paused > 0:
                slept += paused
                yield Sleep(paused)
        left = call.time_left()
        if left is not None and left <= 0:
            raise call.deadline_error(retries_done + 1)
        counters.add(requests=1, retries=1 if retries_done else 0, documents=size)
        epoch = gate.epoch if gate is not None else 0
        timeout, limit = attempt_bounds(settings, call)
        send = Send(
            url, body, connection.headers, timeout, limit, max_bytes, label, retries_done, slept
        )
        slept = 0.0
        message: str | None = None
        headers: Mapping[str, str] = {}
        status: int | None = None
        try:
            send = yield from auth.authorize(send)
        except (APIStatusError, APIConnectionError) as failure:  # getting credentials failed
            error: RerankError = failure
            status = failure.status_code if isinstance(failure, APIStatusError) else None
            cause = f"credentials: {type(failure).__name__}"
        else:
            if call.expires is not None:  # the credentials' time counts against the deadline
                left = call.time_left()
                if left is not None and left <= 0:
                    raise call.deadline_error(retries_done + 1)
                timeout, limit = attempt_bounds(settings, call)
                send = dataclasses.replace(send, timeout=timeout, limit=limit)
            outcome = yield send
            if (
                isinstance(outcome, Answer)
                and outcome.status_code == 404
                and connection.alternate
                and _no_such_path(dialect, outcome)
            ):
                # A path we derived may be the wrong one of the two common ones: try the
                # other once for the client's life, and keep it if it is a rerank endpoint.
                other, connection.alternate = connection.alternate, None
                answer = yield dataclasses.replace(send, url=other)
                if isinstance(answer, Answer) and answer.status_code not in (404, 405):
                    connection.move_to(other)
                    url, outcome = other, answer
            if isinstance(outcome, Answer):
                scrubber = connection.scrubber_with(auth.secrets())
                status = outcome.status_code
                if status == 429:
                    counters.add(rate_limited=1)
                    if gate is not None:
                        gate.congested(epoch, parse_retry_after(outcome.headers))
                elif gate is not None:
                    gate.succeeded()
                if 200 <= outcome.status_code < 300:
                    ranking = decode_response(
                        dialect,
                        outcome.status_code,
                        outcome.content,
                        size,
                        scrubber,
                        connection.shown_url,
                        0 if dialect.next_page_field else top_n,  # pages: counted in all
                    )
                    connection.check_scale(ranking)
                    counters.add(tokens=ranking.total_tokens or 0)
                    return ranking
                if outcome.status_code == 401 and auth.refreshable and not refreshed:
                    # An expired or revoked token: a new one, at once, and only once.
                    auth.invalidate(send)
                    refreshed = True
                    logger.warning("rerank %s: token refused (HTTP 401); fetching a new one", label)
                    continue
                status_error = make_status_error(
                    dialect,
                    outcome.status_code,
                    outcome.reason,
                    outcome.content,
                    outcome.headers,
                    scrubber,
                    connection.shown_url,
                )
                message = status_error.server_message
                field = missing_field(message or "") if outcome.status_code >= 500 else None
                if field is not None:
                    # The request lacks something the server needs: sending again cannot help.
                    raise _with_hint(status_error, field)
                error = status_error
                headers = outcome.headers
                cause = f"HTTP {outcome.status_code}"
            elif isinstance(outcome, APIConnectionError):
                error = outcome
                cause = type(outcome).__name__
            else:
                assert outcome is not None
                raise outcome  # an answer refused while it arrived: sending again cannot help
        wait = next_wait(policy, retries_done, status, headers, random(), call.time_left(), message)
        if wait is None:
            left = call.time_left()
            if isinstance(error, APITimeoutError) and left is not None and left <= 0:
                raise call.deadline_error(retries_done + 1) from error
            raise error
        logger.warning(
            "rerank %s failed (%s); retry %d of %d in %.2fs",
            label,
            cause,
            retries_done + 1,
            policy.max_retries,
            wait,
        )
        slept = wait
        yield Sleep(wait)
        retries_done += 1


#: How servers say that they have no such path (as opposed to, say, no such model).
_NO_SUCH_PATH = re.compile(
    r"^(?:(?:http )?404:?\s*)?(?:not found|no route\b.*|cannot post\b.*|"
    r"the requested url was not found.*|page not found)\.?$",
    re.IGNORECASE,
)


def attempt_bounds(settings: ClientSettings, call: Call) -> tuple[httpx.Timeout, float | None]:
    """What bounds a request of ``call`` sent now: each phase (``timeout``, cut to what is
    left of the deadline) and the whole, connect to last byte (``None``: no bound)."""
    left = call.time_left()
    attempt = settings.attempt_seconds
    limit = left if attempt is None else attempt if left is None else min(attempt, left)
    timeout = settings.timeout if left is None else shorten_timeout(settings.timeout, left)
    return timeout, limit


def _no_such_path(dialect: Dialect, answer: Answer) -> bool:
    """Whether a 404 says the path does not exist, rather than a model or anything else."""
    error = make_status_error(dialect, 404, answer.reason, answer.content, answer.headers)
    message = (error.server_message or "").strip()
    return not message or _NO_SUCH_PATH.match(message) is not None


def _cost(limiter: RateLimiter, connection: Connection, query: str, batch: Batch) -> Cost:
    """What one request of ``batch`` spends: tokens are counted only for a limit of them."""
    tokens = 0
    if getattr(limiter, "counts_tokens", True):
        counter = connection.counter or counter_for(None)
        query_tokens = counter.count(query)
        tokens = sum(document_tokens(counter, text) + query_tokens for text in batch.texts)
    return Cost(requests=1, tokens=tokens, documents=len(batch.texts))


def _with_hint(error: APIStatusError, field: str) -> APIStatusError:
    """``error`` with what to do about the missing field added to its message."""
    if field == "model":
        hint = f"; the server needs a model: pass model=... or set {ENV_MODEL}"
    elif field:
        hint = f"; the server needs the field {field!r} (send it with extra_body=...)"
    else:
        hint = "; the server says a required field is missing"
    head, sep, tail = error.message.partition(" | body: ")
    error.message = f"{head}{hint}{sep}{tail}"
    error.args = (error.message,)
    return error


def _timed_out(exc: httpx.TransportError) -> bool:
    """Whether a failed send ran out of time. httpx-aiohttp reports every connection error
    of aiohttp's as a ``ConnectTimeout``; the cause it chains tells a refusal or a hang-up
    (no timeout at all) apart."""
    if not isinstance(exc, httpx.TimeoutException):
        return False
    cause = exc.__cause__
    timeouts = (TimeoutError, asyncio.TimeoutError, httpcore.TimeoutException)
    return cause is None or isinstance(cause, timeouts) or not _from_aiohttp(cause)


def _from_aiohttp(error: BaseException) -> bool:
    return type(error).__module__.split(".", 1)[0] == "aiohttp"


def transport_error(exc: httpx.TransportError, endpoint: str) -> RerankError:
    """The package's error for a failed send, naming the endpoint, caused by ``exc``."""
    detail = str(exc) or type(exc).__name__
    error: RerankError
    if _timed_out(exc):
        error = APITimeoutError(f"no answer from {endpoint} in time: {detail}")
    else:
        error = APIConnectionError(
            f"connection to {endpoint} failed: {type(exc).__name__}: {detail}"
        )
    error.__cause__ = exc
    error.__suppress_context__ = True
    return error
