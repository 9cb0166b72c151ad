"""One batch's exchange with the server, written once for both the sync and the async client.

:func:`batch_flow` is a generator that does no I/O: it yields what to do next (:class:`Send`
a request, :class:`Sleep` a while, :class:`Run` a blocking credential call, :class:`Wait`
for a token another call is fetching) and is sent back
what happened (an :class:`Answer`, or the :class:`~rerank_integrations.RerankError` a failed
send maps to); :mod:`._drive` carries it out. After each failed attempt it asks
:func:`~._outcome.decide` what to do and does it: wait and retry, refresh the credential,
try the other path, or split the batch; any other verdict ends the batch with its error,
for the call (:mod:`._run`) to act on. Credentials that are exchanged or signed per request
come from an :class:`~._auth.Authorizer`'s own flow.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import httpx

from ._actions import Answer, Flow, Send, Sleep
from ._auth import Authorizer
from ._budget import counter_for
from ._call import Call
from ._codec import BatchRanking, decode_response, encode_request, make_status_error, merge_fields
from ._config import ClientSettings, shorten_timeout
from ._constants import LOGGER_NAME
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    RerankError,
    ResponseFormatError,
)
from ._merge import joined, merge_pages
from ._outcome import Attempt, Step, Verdict, decide
from ._plan import Batch, batch_of, document_tokens
from ._ratelimit import Cost, RateLimiter
from ._refusals import Refusal, with_hint
from ._retry import parse_retry_after
from ._state import Connection
from ._text import display_url
from ._usage import RequestUsage

__all__ = ["attempt_bounds", "batch_flow", "warm_up"]

logger = logging.getLogger(LOGGER_NAME)

_NO_AUTHORIZER = Authorizer()


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
    label = call.batch_label(number)
    auth = authorizer or _NO_AUTHORIZER
    work = _Batchwork(settings, connection, call, random, auth)
    ranking = yield from _part(work, batch, label, 0)
    if call.lookup is not None:  # kept as each batch arrives: a later failure loses none
        start = batch.start
        sent = plan.sent
        positions = range(start, start + len(batch.texts))
        call.lookup.keep(positions if sent is None else [sent[i] for i in positions], ranking.pairs)
    return ranking


def warm_up(settings: ClientSettings, authorizer: Authorizer | None, call: Call) -> Flow[None]:
    """Fetch a token before a call's batches fan out, so that they share one exchange
    instead of each making its own, within what is left of the call's deadline. A failure
    here is left to each batch's retries."""
    if authorizer is None:
        return
    timeout, limit = attempt_bounds(settings, call)
    probe = Send(settings.endpoint, b"", {}, timeout, limit)
    try:
        yield from authorizer.authorize(probe)
    except RerankError:
        return


def attempt_bounds(settings: ClientSettings, call: Call) -> tuple[httpx.Timeout, float | None]:
    """What bounds a request of ``call`` sent now: each phase (``timeout``, cut to what is
    left of the deadline) and the whole, connect to last byte (``None``: no bound)."""
    left = call.time_left()
    attempt = settings.attempt_seconds
    limit = left if attempt is None else attempt if left is None else min(attempt, left)
    timeout = settings.timeout if left is None else shorten_timeout(settings.timeout, left)
    return timeout, limit


@dataclass(frozen=True, slots=True)
class _Batchwork:
    """What every request of one batch flow shares."""

    settings: ClientSettings
    connection: Connection
    call: Call
    random: Callable[[], float]
    auth: Authorizer


def _part(work: _Batchwork, batch: Batch, label: str, depth: int) -> Flow[BatchRanking]:
    """One batch, or a part of one split off after a refusal for size."""
    connection = work.connection
    size = len(batch.texts)
    named = f"{label} ({size} documents)" if not depth else f"{label}, part of {size} documents"
    try:
        ranking, sent = yield from _paged(work, batch, named)
    except _Refused as refused:
        error, refusal, sent = refused.error, refused.refusal, refused.sent
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
        halves = []
        for start, end in ((0, half), (half, size)):
            part = batch_of(batch.texts, start, end, batch.top_n)
            part = dataclasses.replace(part, start=batch.start + start)
            halves.append((yield from _part(work, part, label, depth + 1)))
        return joined(halves[0], halves[1], half)
    if depth:
        connection.learned.worked(size, sent)  # the size that went through after a refusal
    return dataclasses.replace(ranking, sent_bytes=sent)


def _paged(work: _Batchwork, batch: Batch, label: str) -> Flow[tuple[BatchRanking, int]]:
    """One batch's request, and the next pages' for an API that pages its answer; with the
    size of the largest body sent."""
    settings, connection, call = work.settings, work.connection, work.call
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
            dialect,
            plan,
            batch,
            call.model,
            extra,
            connection.path,
            settings.location,
            settings.project,
        )
        sent = max(sent, len(body))
        page = yield from _exchange(work, batch, body, label)
        pages.append(page)
        if page.next_page is None or dialect.next_page_field is None:
            break
        if page.next_page == token or len(pages) > size:
            raise ResponseFormatError(
                f"the answer to {label} keeps asking for another page (nextToken); giving up"
            )
        token = page.next_page
    ranking = pages[0] if len(pages) == 1 else merge_pages(pages, size)
    wanted = size if batch.top_n is None else batch.top_n
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


def _exchange(work: _Batchwork, batch: Batch, body: bytes, label: str) -> Flow[BatchRanking]:
    """One request's attempts: budget, credentials, send, decoding, and what
    :func:`~._outcome.decide` says after each failure."""
    settings, connection, call, auth = work.settings, work.connection, work.call, work.auth
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
        failed: Attempt
        try:
            send = yield from auth.authorize(send)
        except (APIStatusError, APIConnectionError) as failure:  # getting credentials failed
            failed = Attempt(failure)
            cause = f"credentials: {type(failure).__name__}"
        else:
            if call.expires is not None:  # the credentials' time counts against the deadline
                left = call.time_left()
                if left is not None and left <= 0:
                    raise call.deadline_error(retries_done + 1)
                timeout, limit = attempt_bounds(settings, call)
                send = dataclasses.replace(send, timeout=timeout, limit=limit)
            outcome = yield send
            while isinstance(outcome, Answer) and not 200 <= outcome.status_code < 300:
                scrubber = connection.scrubber_with(auth.secrets())
                error = make_status_error(
                    dialect,
                    outcome.status_code,
                    outcome.reason,
                    outcome.content,
                    outcome.headers,
                    scrubber,
                    connection.shown_url,
                )
                failed = Attempt(
                    error,
                    error.server_message,
                    outcome.headers,
                    refresh=auth.refreshable and not refreshed,
                    other_path=connection.alternate is not None,
                )
                if decide(failed).step is not Step.OTHER_PATH:
                    break
                # A path we derived may be the wrong one of the two common ones: try the
                # other once for the client's life, and keep it if it is a rerank endpoint.
                other, connection.alternate = connection.alternate, None
                assert other is not None
                answer = yield dataclasses.replace(send, url=other)
                if isinstance(answer, Answer) and answer.status_code not in (404, 405):
                    connection.move_to(other)
                    url, outcome = other, answer
                else:
                    failed = dataclasses.replace(failed, other_path=False)
                    break
            if isinstance(outcome, Answer):
                status = outcome.status_code
                if status == 429:
                    counters.add(rate_limited=1)
                    if gate is not None:
                        gate.congested(epoch, parse_retry_after(outcome.headers))
                elif gate is not None:
                    gate.succeeded()
                cause = f"HTTP {status}"
                if 200 <= status < 300:
                    try:
                        ranking = decode_response(
                            dialect,
                            status,
                            outcome.content,
                            size,
                            connection.scrubber_with(auth.secrets()),
                            connection.shown_url,
                            0 if dialect.next_page_field else top_n,  # pages: counted in all
                        )
                    except APIStatusError as embedded:  # an error inside a 2xx: never resent
                        failed = Attempt(embedded, retry=False)
                    else:
                        connection.check_scale(ranking)
                        counters.add(tokens=ranking.total_tokens or 0)
                        call.spent.append(_used(settings, connection, call, batch, ranking))
                        return ranking
            elif isinstance(outcome, APIConnectionError):
                failed = Attempt(outcome)
                cause = type(outcome).__name__
            else:
                assert outcome is not None
                raise outcome  # an answer refused while it arrived: sending again cannot help
        verdict = decide(
            dataclasses.replace(
                failed,
                retries_done=retries_done,
                documents=size,
                long_documents=settings.long_documents,
                document_tokens=connection.learned.document_tokens,
                fallbacks=bool(settings.fallbacks),
                time_left=call.time_left(),
                policy=policy,
                random=work.random(),
            )
        )
        if verdict.step is Step.REFRESH:
            auth.invalidate(send)
            refreshed = True
            logger.warning("rerank %s: token refused (HTTP 401); fetching a new one", label)
            continue
        if verdict.step is Step.RETRY:
            logger.warning(
                "rerank %s failed (%s); retry %d of %d in %.2fs",
                label,
                cause,
                retries_done + 1,
                policy.max_retries,
                verdict.wait,
            )
            slept = verdict.wait
            yield Sleep(verdict.wait)
            retries_done += 1
            continue
        _stop(call, failed.error, verdict, retries_done, len(body))


def _stop(
    call: Call, error: RerankError, verdict: Verdict, retries_done: int, sent: int
) -> NoReturn:
    """End a request whose verdict is not to send it again: split it (the body of ``sent``
    bytes was too big), or raise its error, with the verdict's hint, for the call to act on."""
    if verdict.step is Step.SPLIT:
        assert isinstance(error, APIStatusError) and verdict.refusal is not None
        raise _Refused(error, verdict.refusal, sent)
    if verdict.hint and isinstance(error, APIStatusError):
        with_hint(error, verdict.hint)
    left = call.time_left()
    if isinstance(error, APITimeoutError) and left is not None and left <= 0:
        raise call.deadline_error(retries_done + 1) from error
    raise error


def _used(
    settings: ClientSettings,
    connection: Connection,
    call: Call,
    batch: Batch,
    ranking: BatchRanking,
) -> RequestUsage:
    """What one answered request used: as reported, the units by the dialect's billing
    rule where none are reported."""
    computed = None
    units = ranking.billed_units
    if units == 0 and batch.texts:
        units = None  # documents ranked for no unit: a gateway's placeholder, not a count
    rule = settings.dialect.billing
    if rule is not None and units is None:
        counter = connection.counter or counter_for(None)
        computed = float(
            rule.units(
                counter.count(call.plan.query),
                [document_tokens(counter, text) for text in batch.texts],
            )
        )
    return RequestUsage(
        documents=len(batch.texts),
        search_units=units,
        computed_units=computed,
        input_tokens=ranking.input_tokens,
        total_tokens=ranking.total_tokens,
        raw=ranking.usage,
        order=batch.start,
    )


def _cost(limiter: RateLimiter, connection: Connection, query: str, batch: Batch) -> Cost:
    """What one request of ``batch`` spends: tokens are counted only for a limit of them."""
    tokens = 0
    if getattr(limiter, "counts_tokens", True):
        counter = connection.counter or counter_for(None)
        query_tokens = counter.count(query)
        tokens = sum(document_tokens(counter, text) + query_tokens for text in batch.texts)
    return Cost(requests=1, tokens=tokens, documents=len(batch.texts))
