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
import difflib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from ._actions import Answer, Flow, Run, Send, Sleep
from ._auth import Authorizer
from ._config import ClientSettings, check_deadline, shorten_timeout
from ._constants import LOGGER_NAME
from ._core import (
    BatchRanking,
    RerankPlan,
    check_extra_body,
    decode_response,
    encode_request,
    make_status_error,
    merge_fields,
    merge_pages,
    scrub,
)
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    RerankError,
    ResponseFormatError,
)
from ._retry import next_wait
from ._types import NOT_GIVEN, NotGiven

__all__ = [
    "Answer",
    "Call",
    "Flow",
    "Run",
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
    plan: RerankPlan,
    model: str | NotGiven | None,
    deadline: float | NotGiven | None,
    extra_body: object,
    fields: Mapping[str, Any],
) -> Call:
    """Check the per-call overrides and start the clock, before anything is sent.

    The request's extra fields are the client's ``extra_body``, then the call's, then the
    call's keyword fields, each merged one level deep over the one before.
    """
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


def batch_flow(
    settings: ClientSettings,
    call: Call,
    number: int,
    path: str,
    random: Callable[[], float],
    authorizer: Authorizer | None = None,
) -> Flow[BatchRanking]:
    """Send batch ``number`` of ``call``, retrying as the policy says; return its ranking.

    An API that pages its answer (``dialect.next_page_field``) is asked for each next page
    until it has none; the pages make one ranking.
    """
    plan = call.plan
    batch = plan.batches[number]
    dialect = settings.dialect
    url = dialect.request_url(settings.endpoint, call.model)
    label = f"batch {number + 1}/{len(plan.batches)} ({len(batch.texts)} documents)"
    auth = authorizer or _NO_AUTHORIZER
    pages: list[BatchRanking] = []
    token: str | None = None
    while True:
        extra = call.extra_body
        if token is not None and dialect.next_page_field:
            extra = merge_fields(extra, {dialect.next_page_field: token})
        body = encode_request(dialect, plan, batch, call.model, extra, path, settings.location)
        count = len(batch.texts)
        page = yield from _exchange(settings, call, url, body, label, count, random, auth)
        pages.append(page)
        if page.next_page is None or dialect.next_page_field is None:
            break
        if page.next_page == token or len(pages) > len(batch.texts):
            raise ResponseFormatError(
                f"the answer to {label} keeps asking for another page (nextToken); giving up"
            )
        token = page.next_page
    return pages[0] if len(pages) == 1 else merge_pages(pages, len(batch.texts))


_NO_AUTHORIZER = Authorizer()


def _exchange(
    settings: ClientSettings,
    call: Call,
    url: str,
    body: bytes,
    label: str,
    count: int,
    random: Callable[[], float],
    auth: Authorizer,
) -> Flow[BatchRanking]:
    """One request's attempts: credentials, send, retry decision, decoding."""
    dialect = settings.dialect
    logger.debug("POST %s %s, %d bytes", url, label, len(body))
    secret = None if settings.api_key is None else settings.api_key.get_secret_value()
    policy = settings.retry
    retries_done = 0
    refreshed = False
    while True:
        left = call.time_left()
        if left is not None and left <= 0:
            raise call.deadline_error(retries_done + 1)
        timeout = settings.timeout if left is None else shorten_timeout(settings.timeout, left)
        request = Send(url, body, settings.headers, timeout)
        headers: Mapping[str, str] = {}
        status: int | None = None
        try:
            request = yield from auth.authorize(request)
        except (APIStatusError, APIConnectionError) as failure:  # getting credentials failed
            error: RerankError = failure
            status = failure.status_code if isinstance(failure, APIStatusError) else None
            cause = f"credentials: {type(failure).__name__}"
        else:
            outcome = yield request
            if isinstance(outcome, Answer):
                content = outcome.content
                for live in auth.secrets():
                    content = scrub(content, live)
                if 200 <= outcome.status_code < 300:
                    return decode_response(dialect, outcome.status_code, content, count, secret)
                if outcome.status_code == 401 and auth.refreshable and not refreshed:
                    # An expired or revoked token: a new one, at once, and only once.
                    auth.invalidate(request)
                    refreshed = True
                    logger.warning("rerank %s: token refused (HTTP 401); fetching a new one", label)
                    continue
                error = make_status_error(
                    dialect, outcome.status_code, outcome.reason, content, outcome.headers, secret
                )
                status, headers = outcome.status_code, outcome.headers
                cause = f"HTTP {outcome.status_code}"
            else:
                assert outcome is not None
                error = outcome
                cause = type(outcome).__name__
        wait = next_wait(policy, retries_done, status, headers, random(), call.time_left())
        if wait is None:
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
