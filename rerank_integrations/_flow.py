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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from ._actions import Answer, Flow, Run, Send, Sleep
from ._answers import missing_field
from ._auth import Authorizer
from ._config import ClientSettings, check_deadline, shorten_timeout
from ._constants import ENV_MODEL, LOGGER_NAME
from ._core import (
    BatchRanking,
    RerankPlan,
    check_extra_body,
    decode_response,
    encode_request,
    make_status_error,
    merge_fields,
    merge_pages,
    plan_rerank,
    scale_mismatch,
)
from ._dialects import Dialect
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    RerankError,
    ResponseFormatError,
)
from ._retry import next_wait
from ._secrets import Scrubber
from ._text import display_url
from ._types import NOT_GIVEN, NotGiven

__all__ = [
    "Answer",
    "Call",
    "Connection",
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

    An API that pages its answer (``dialect.next_page_field``) is asked for each next page
    until it has none; the pages make one ranking.
    """
    plan = call.plan
    batch = plan.batches[number]
    dialect = settings.dialect
    size = len(batch.texts)
    label = f"batch {number + 1}/{len(plan.batches)} ({size} documents)"
    auth = authorizer or _NO_AUTHORIZER
    pages: list[BatchRanking] = []
    token: str | None = None
    while True:
        extra = call.extra_body
        if token is not None and dialect.next_page_field:
            extra = merge_fields(extra, {dialect.next_page_field: token})
        body = encode_request(
            dialect, plan, batch, call.model, extra, connection.path, settings.location
        )
        page = yield from _exchange(
            settings, connection, call, batch.top_n, size, body, label, random, auth
        )
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
    return ranking


_NO_AUTHORIZER = Authorizer()


def _exchange(
    settings: ClientSettings,
    connection: Connection,
    call: Call,
    top_n: int | None,
    size: int,
    body: bytes,
    label: str,
    random: Callable[[], float],
    auth: Authorizer,
) -> Flow[BatchRanking]:
    """One request's attempts: credentials, send, retry decision, decoding."""
    dialect = settings.dialect
    url = dialect.request_url(connection.url, call.model)
    logger.debug("POST %s %s, %d bytes", display_url(url), label, len(body))
    policy = settings.retry
    max_bytes = settings.max_response_bytes
    retries_done = 0
    refreshed = False
    while True:
        left = call.time_left()
        if left is not None and left <= 0:
            raise call.deadline_error(retries_done + 1)
        attempt = settings.attempt_seconds
        limit = left if attempt is None else attempt if left is None else min(attempt, left)
        timeout = settings.timeout if left is None else shorten_timeout(settings.timeout, left)
        send = Send(url, body, connection.headers, timeout, limit, max_bytes)
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
