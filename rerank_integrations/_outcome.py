"""What to do after an attempt failed: one pure decision, returned as a value.

:func:`decide` looks at what went wrong (the error, the server's message and headers) and
at where the call stands (retries made, whether a credential may be refreshed, the other
path tried, the batch's size, the limits known, fallbacks configured, time left) and
returns a :class:`Verdict`: retry after a wait, refresh the credential, try the other path,
split the batch, plan the call again with a limit learned, fall back, or fail. The batch
flow (:mod:`._flow`) acts on the steps that concern one request; the call (:mod:`._run`)
on the rest. No I/O, no clock, no randomness of its own: every input is passed in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._constants import MAX_PLANS_AGAIN
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    RateLimitError,
    RerankError,
    ServerError,
)
from ._refusals import (
    Refusal,
    document_limit,
    document_limit_hint,
    missing_field,
    missing_field_hint,
    no_such_path,
    plans_again_hint,
    too_big,
)
from ._retry import RetryPolicy, next_wait

__all__ = ["Attempt", "Step", "Verdict", "decide", "falls_back"]


class Step(enum.Enum):
    """What the flow does next after a failed attempt."""

    RETRY = "retry"  #: wait ``Verdict.wait`` seconds, then send again
    REFRESH = "refresh"  #: fetch a new credential and send again at once
    OTHER_PATH = "other path"  #: send to the other common rerank path
    SPLIT = "split"  #: send the batch in two halves
    PLAN_AGAIN = "plan again"  #: plan the call again with ``Verdict.document_tokens``
    FALL_BACK = "fall back"  #: hand the call to the client's fallbacks
    FAIL = "fail"  #: raise the error (with ``Verdict.hint`` added)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision: the step, and what it needs (a wait, a refusal, a limit, a hint)."""

    step: Step
    wait: float = 0.0
    refusal: Refusal | None = None
    document_tokens: int | None = None
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What is known when an attempt (or a whole call) has failed.

    Attributes:
        error: what went wrong.
        message: the server's message, for the readings that concern a request (the path,
            a missing field, a wait it states); ``None`` when there was no answer.
        headers: the answer's headers (``Retry-After``).
        retries_done: retries already made for this request.
        retry: whether sending again may be considered at all (not for an error reported
            inside a 2xx answer, nor once a call has failed as a whole).
        refresh: whether a fresh credential may help (refreshable, not yet refreshed).
        other_path: whether the other common rerank path is still to try.
        documents: documents in the batch (a refusal for size splits two or more).
        long_documents: the client's ``long_documents`` setting.
        document_tokens: the tokens a document may have, as learned so far.
        plans_again: times the call has been planned again already (at most
            :data:`~._constants.MAX_PLANS_AGAIN`).
        fallbacks: whether the client has fallbacks.
        time_left: seconds left before the call's deadline; ``None``: no deadline.
        policy: the retry policy.
        random: uniform in [0, 1), for the jitter.
    """

    error: RerankError
    message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retries_done: int = 0
    retry: bool = True
    refresh: bool = False
    other_path: bool = False
    documents: int = 1
    long_documents: str = "server"
    document_tokens: int | None = None
    plans_again: int = 0
    fallbacks: bool = False
    time_left: float | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    random: float = 0.0


def decide(attempt: Attempt) -> Verdict:
    """What to do after ``attempt`` failed (the order of the checks is the policy)."""
    error = attempt.error
    status = error.status_code if isinstance(error, APIStatusError) else None
    message = attempt.message
    if status == 404 and attempt.other_path and no_such_path(message):
        return Verdict(Step.OTHER_PATH)
    if status == 401 and attempt.refresh:
        return Verdict(Step.REFRESH)  # an expired or revoked token: a new one, once
    hint = ""
    missing = missing_field(message or "") if status is not None and status >= 500 else None
    if missing is not None:
        # The request lacks something the server needs: sending again cannot help.
        hint = missing_field_hint(missing)
    elif attempt.retry:
        wait = next_wait(
            attempt.policy,
            attempt.retries_done,
            status,
            attempt.headers,
            attempt.random,
            attempt.time_left,
            message,
        )
        if wait is not None:
            return Verdict(Step.RETRY, wait=wait)
    if isinstance(error, APIStatusError):
        refusal = too_big(error)
        if refusal is not None and attempt.documents > 1:
            return Verdict(Step.SPLIT, refusal=refusal)
        limit = document_limit(error)
        if limit is not None:
            known = attempt.document_tokens
            cuts = attempt.long_documents in ("chunk", "truncate")
            if cuts and (known is None or limit < known):
                if attempt.plans_again < MAX_PLANS_AGAIN:
                    return Verdict(Step.PLAN_AGAIN, document_tokens=limit)
                hint = plans_again_hint(attempt.plans_again)
            if attempt.long_documents == "server":
                hint = document_limit_hint(limit)
    if attempt.fallbacks and falls_back(error):
        return Verdict(Step.FALL_BACK, hint=hint)
    return Verdict(Step.FAIL, hint=hint)


def falls_back(error: RerankError) -> bool:
    """Whether a fallback may answer after ``error``: the server was unreachable, slow,
    out of quota or broken (a connection error, a timeout, a 429, a 5xx), not a refusal of
    the input."""
    return isinstance(error, (APIConnectionError, RateLimitError, ServerError))
