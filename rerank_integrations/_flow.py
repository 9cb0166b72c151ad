"""One batch's exchange with the server, written once for both the sync and the async client.

:func:`batch_flow` is a generator that does no I/O: it yields what to do next (:class:`Send`
a request, :class:`Sleep` a while) and is sent back what happened (an :class:`Answer`, or the
:class:`~rerank_integrations.RerankError` a failed send maps to). :func:`drive` and
:func:`adrive` carry it out, the one with blocking calls and the other with awaits; that is
all that differs between the two paths.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from ._answers import missing_field
from ._config import ClientSettings, check_deadline, shorten_timeout
from ._constants import DEFAULT_MAX_RESPONSE_BYTES, ENV_MODEL, LOGGER_NAME
from ._core import (
    BatchRanking,
    RerankPlan,
    check_extra_body,
    decode_response,
    encode_request,
    make_status_error,
    merge_fields,
    plan_rerank,
    scale_mismatch,
)
from ._dialects import Dialect
from ._exceptions import APIConnectionError, APIStatusError, APITimeoutError, RerankError
from ._retry import next_wait
from ._secrets import Scrubber
from ._text import display_url
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
    """

    url: str
    shown_url: str
    headers: Mapping[str, str]
    scrubber: Scrubber
    path: str
    alternate: str | None = None
    logits_expected: bool = False
    scale_warned: bool = False

    def __repr__(self) -> str:
        return f"Connection({self.shown_url!r})"

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
    max_bytes = settings.max_response_bytes
    retries_done = 0
    while True:
        left = call.time_left()
        if left is not None and left <= 0:
            raise call.deadline_error(retries_done + 1)
        attempt = settings.attempt_seconds
        limit = left if attempt is None else attempt if left is None else min(attempt, left)
        timeout = settings.timeout if left is None else shorten_timeout(settings.timeout, left)
        send = Send(connection.url, body, connection.headers, timeout, limit, max_bytes)
        outcome = yield send
        if (
            isinstance(outcome, Answer)
            and outcome.status_code == 404
            and connection.alternate
            and _no_such_path(dialect, outcome)
        ):
            # A path we derived may be the wrong one of the two common ones: try the other
            # once for the client's life, and keep it if it is a rerank endpoint.
            other, connection.alternate = connection.alternate, None
            answer = yield dataclasses.replace(send, url=other)
            if isinstance(answer, Answer) and answer.status_code not in (404, 405):
                connection.move_to(other)
                outcome = answer
        message: str | None = None
        if isinstance(outcome, Answer):
            status: int | None = outcome.status_code
            if 200 <= outcome.status_code < 300:
                ranking = decode_response(
                    dialect,
                    outcome.status_code,
                    outcome.content,
                    size,
                    connection.scrubber,
                    connection.shown_url,
                    batch.top_n,
                )
                connection.check_scale(ranking)
                return ranking
            status_error = make_status_error(
                dialect,
                outcome.status_code,
                outcome.reason,
                outcome.content,
                outcome.headers,
                connection.scrubber,
                connection.shown_url,
            )
            message = status_error.server_message
            field = missing_field(message or "") if outcome.status_code >= 500 else None
            if field is not None:
                # The request lacks something the server needs: sending it again cannot help.
                raise _with_hint(status_error, field)
            error: RerankError = status_error
            headers: Mapping[str, str] = outcome.headers
            cause = f"HTTP {outcome.status_code}"
        elif isinstance(outcome, APIConnectionError):
            error, status, headers = outcome, None, {}
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
        yield Sleep(wait)
        retries_done += 1


#: How servers say that they have no such path (as opposed to, say, no such model).
_NO_SUCH_PATH = re.compile(
    r"^(?:(?:http )?404:?\s*)?(?:not found|no route\b.*|cannot post\b.*|"
    r"the requested url was not found.*|page not found)\.?$",
    re.IGNORECASE,
)


def _no_such_path(dialect: Dialect, answer: Answer) -> bool:
    """Whether a 404 says the path does not exist, rather than a model or anything else."""
    error = make_status_error(dialect, 404, answer.reason, answer.content, answer.headers)
    message = (error.server_message or "").strip()
    return not message or _NO_SUCH_PATH.match(message) is not None


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
