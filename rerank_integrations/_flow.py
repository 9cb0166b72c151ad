"""One batch's exchange with the server, written once for both the sync and the async client.

:func:`batch_flow` is a generator that does no I/O: it yields what to do next (:class:`Send`
a request, :class:`Sleep` a while) and is sent back what happened (an :class:`Answer`, or the
:class:`~rerank_integrations.RerankError` a failed send maps to). :func:`drive` and
:func:`adrive` carry it out, the one with blocking calls and the other with awaits; that is
all that differs between the two paths.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from ._config import ClientSettings, check_deadline, shorten_timeout
from ._constants import DEFAULT_MAX_RESPONSE_BYTES, LOGGER_NAME
from ._core import (
    BatchRanking,
    RerankPlan,
    check_extra_body,
    decode_response,
    encode_request,
    make_status_error,
    merge_fields,
    plan_rerank,
)
from ._exceptions import APIConnectionError, APITimeoutError, RerankError
from ._retry import next_wait
from ._secrets import Scrubber
from ._types import NOT_GIVEN, NotGiven

__all__ = [
    "Answer",
    "Call",
    "Connection",
    "Flow",
    "Send",
    "Sleep",
    "adrive",
    "batch_flow",
    "check_extra_fields",
    "drive",
    "start_call",
    "transport_error",
]

logger = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send one POST request and report the whole answer.

    ``timeout`` bounds each phase as httpx does; ``limit`` bounds the attempt as a whole,
    connect to last byte (``None``: no bound); the body may be at most ``max_bytes`` long.
    """

    url: str = field(repr=False)  # may carry credentials in its query
    content: bytes = field(repr=False)  # the caller's documents
    headers: Mapping[str, str] = field(repr=False)  # carries credentials
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(None))
    limit: float | None = None
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this many seconds, then carry on."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server answered: status, reason phrase, headers and the whole body."""

    status_code: int
    reason: str
    headers: Mapping[str, str] = field(repr=False)  # a hostile server may echo secrets
    content: bytes = field(repr=False)


#: What a flow is sent back: the answer to a :class:`Send`, or the error it failed with;
#: ``None`` after a :class:`Sleep`.
Outcome = Answer | RerankError | None
Flow = Generator[Send | Sleep, Outcome, T]


def drive(
    flow: Flow[T], send: Callable[[Send], Answer | RerankError], sleep: Callable[[float], None]
) -> T:
    """Run ``flow`` to its end with blocking ``send`` and ``sleep``; return its value."""
    outcome: Outcome = None
    try:
        while True:
            action = flow.send(outcome)
            if isinstance(action, Sleep):
                sleep(action.seconds)
                outcome = None
            else:
                outcome = send(action)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def adrive(
    flow: Flow[T],
    send: Callable[[Send], Awaitable[Answer | RerankError]],
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """The async twin of :func:`drive`."""
    outcome: Outcome = None
    try:
        while True:
            action = flow.send(outcome)
            if isinstance(action, Sleep):
                await sleep(action.seconds)
                outcome = None
            else:
                outcome = await send(action)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


# -- one call ---------------------------------------------------------------------------------

#: Arguments of ``rerank()`` that a misspelt extra body field is checked against.
_KNOWN_ARGUMENTS = ("top_n", "model", "query", "documents", "deadline")
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

    def time_left(self) -> float | None:
        """Seconds left before the deadline, ``None`` without one."""
        return None if self.expires is None else self.expires - time.monotonic()

    def deadline_error(self, attempts: int = 0) -> APITimeoutError:
        """The error raised when the deadline has run out."""
        after = f" after {attempts} attempts" if attempts > 1 else ""
        return APITimeoutError(f"the call's deadline of {self.deadline:g}s ran out{after}")


def start_call(
    settings: ClientSettings,
    query: object,
    documents: object,
    top_n: object,
    model: str | NotGiven | None,
    deadline: float | NotGiven | None,
    extra_body: object,
    fields: Mapping[str, Any],
) -> Call:
    """Check the arguments, plan the batches and start the clock, before anything is sent.

    The request's extra fields are the client's ``extra_body``, then the call's, then the
    call's keyword fields, each merged one level deep over the one before.
    """
    plan = plan_rerank(query, documents, top_n, settings.max_documents_per_request)
    check_extra_fields(fields)
    extra = settings.extra_body
    for more in (check_extra_body(extra_body), check_extra_body(fields, "extra fields")):
        if more:
            extra = merge_fields(extra, more)
    budget = check_deadline(settings.deadline if deadline is NOT_GIVEN else deadline)
    if model is NOT_GIVEN or model is None:
        model = settings.model
    elif not isinstance(model, str):
        raise TypeError(f"model must be a string or None, got {type(model).__name__}")
    expires = None if budget is None else time.monotonic() + budget
    return Call(plan, model or None, extra, budget, expires)


# -- one batch --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class Connection:
    """What every request of one client shares: where it goes, what it sends, what to hide.

    Attributes:
        url: the endpoint.
        shown_url: the endpoint without credentials, for messages and logs.
        headers: every request's headers, credentials in the clear (the repr hides them).
        scrubber: removes every secret of the client from what is shown.
        path: the endpoint's path, for dialects whose versions differ by path.
    """

    url: str
    shown_url: str
    headers: Mapping[str, str]
    scrubber: Scrubber
    path: str

    def __repr__(self) -> str:
        return f"Connection({self.shown_url!r})"


def batch_flow(
    settings: ClientSettings,
    connection: Connection,
    call: Call,
    number: int,
    random: Callable[[], float],
) -> Flow[BatchRanking]:
    """Send batch ``number`` of ``call``, retrying as the policy says; return its ranking."""
    plan = call.plan
    batch = plan.batches[number]
    dialect = settings.dialect
    size = len(batch.texts)
    body = encode_request(dialect, plan, batch, call.model, call.extra_body, connection.path)
    label = f"batch {number + 1}/{len(plan.batches)} ({size} documents)"
    logger.debug("POST %s %s, %d bytes", connection.shown_url, label, len(body))
    policy = settings.retry
    retries_done = 0
    while True:
        left = call.time_left()
        if left is not None and left <= 0:
            raise call.deadline_error(retries_done + 1)
        attempt = settings.attempt_seconds
        limit = left if attempt is None else attempt if left is None else min(attempt, left)
        timeout = settings.timeout if left is None else shorten_timeout(settings.timeout, left)
        outcome = yield Send(
            connection.url,
            body,
            connection.headers,
            timeout,
            limit,
            settings.max_response_bytes,
        )
        if isinstance(outcome, Answer):
            status: int | None = outcome.status_code
            if 200 <= outcome.status_code < 300:
                return decode_response(
                    dialect,
                    outcome.status_code,
                    outcome.content,
                    size,
                    connection.scrubber,
                    connection.shown_url,
                    batch.top_n,
                )
            error: RerankError = make_status_error(
                dialect,
                outcome.status_code,
                outcome.reason,
                outcome.content,
                outcome.headers,
                connection.scrubber,
                connection.shown_url,
            )
            headers: Mapping[str, str] = outcome.headers
            cause = f"HTTP {outcome.status_code}"
        elif isinstance(outcome, APIConnectionError):
            error, status, headers = outcome, None, {}
            cause = type(outcome).__name__
        else:
            assert outcome is not None
            raise outcome  # an answer refused while it arrived: sending again cannot help
        wait = next_wait(policy, retries_done, status, headers, random(), call.time_left())
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
        yield Sleep(wait)
        retries_done += 1


def transport_error(exc: httpx.TransportError, endpoint: str) -> RerankError:
    """The package's error for a failed send, naming the endpoint, caused by ``exc``."""
    detail = str(exc) or type(exc).__name__
    error: RerankError
    if isinstance(exc, httpx.TimeoutException):
        error = APITimeoutError(f"no answer from {endpoint} in time: {detail}")
    else:
        error = APIConnectionError(
            f"connection to {endpoint} failed: {type(exc).__name__}: {detail}"
        )
    error.__cause__ = exc
    error.__suppress_context__ = True
    return error
