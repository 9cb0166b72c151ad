"""The outcome of a failed attempt, decided by one pure function: a table, no HTTP.

Each row is what is known when an attempt failed (:class:`Attempt`) and the verdict
:func:`decide` must return; the batch flow and the call only carry verdicts out, so a
change of policy shows here first.
"""

from __future__ import annotations

from typing import Any

import pytest

from rerank_integrations import RetryPolicy
from rerank_integrations._exceptions import (
    APIConnectionError,
    APITimeoutError,
    RerankError,
    ResponseFormatError,
    status_error_class,
)
from rerank_integrations._outcome import Attempt, Step, Verdict, decide, falls_back
from rerank_integrations._refusals import Refusal, plans_again_hint

POLICY = RetryPolicy(max_retries=2, initial_delay=1.0, jitter=0.0)
MODEL_HINT = "; the server needs a model: pass model=... or set RERANK_MODEL"
LIMIT_HINT = (
    "; the server reads at most 8 tokens a document: set long_documents='chunk' or "
    "'truncate' to send long documents in parts"
)


def status(code: int, message: str | None = None) -> RerankError:
    return status_error_class(code)(f"HTTP {code}", status_code=code, server_message=message)


def attempt(error: RerankError, **known: Any) -> Attempt:
    """An attempt whose ``message`` is the error's own, as the flow builds it."""
    message = getattr(error, "server_message", None)
    return Attempt(error, message, policy=POLICY, **{"documents": 4, **known})


TOO_LONG = "Input validation error: `inputs` must have less than 8 tokens. Given: 9"

TABLE: list[tuple[str, Attempt, Verdict]] = [
    # -- send again ---------------------------------------------------------------------------
    ("a 503 is retried", attempt(status(503)), Verdict(Step.RETRY, wait=1.0)),
    (
        "the second retry waits longer",
        attempt(status(503), retries_done=1),
        Verdict(Step.RETRY, wait=2.0),
    ),
    (
        "a dropped connection is retried",
        attempt(APIConnectionError("reset")),
        Verdict(Step.RETRY, wait=1.0),
    ),
    ("a timeout is retried", attempt(APITimeoutError("slow")), Verdict(Step.RETRY, wait=1.0)),
    (
        "Retry-After is honoured",
        attempt(status(429), headers={"retry-after": "3"}),
        Verdict(Step.RETRY, wait=3.0),
    ),
    (
        "a wait stated in the message is honoured",
        attempt(status(429, "Please try again in 20s.")),
        Verdict(Step.RETRY, wait=20.0),
    ),
    # -- give up on retrying -------------------------------------------------------------------
    ("retries used up", attempt(status(503), retries_done=2), Verdict(Step.FAIL)),
    ("no time left for the wait", attempt(status(503), time_left=0.5), Verdict(Step.FAIL)),
    (
        "an error inside a 2xx is never resent",
        attempt(status(503), retry=False),
        Verdict(Step.FAIL),
    ),
    ("a 400 is not retried", attempt(status(400, "bad batch")), Verdict(Step.FAIL)),
    ("a 401 without a refreshable credential", attempt(status(401)), Verdict(Step.FAIL)),
    # -- the credential, the path --------------------------------------------------------------
    (
        "a 401 with a refreshable credential",
        attempt(status(401), refresh=True),
        Verdict(Step.REFRESH),
    ),
    (
        "a 404 that says there is no such path",
        attempt(status(404, "Cannot POST /rerank"), other_path=True),
        Verdict(Step.OTHER_PATH),
    ),
    (
        "a 404 for a model is not a path",
        attempt(status(404, "model not found"), other_path=True),
        Verdict(Step.FAIL),
    ),
    ("a 404 once the other path was tried", attempt(status(404)), Verdict(Step.FAIL)),
    # -- what the request lacks -----------------------------------------------------------------
    (
        "a missing model is not retried, and says what to do",
        attempt(status(500, "'model'")),
        Verdict(Step.FAIL, hint=MODEL_HINT),
    ),
    (
        "a missing field is read from a 5xx only: a 499 naming one is the client's error",
        attempt(status(499, "'model'")),
        Verdict(Step.FAIL),
    ),
    (
        "a missing field may still fall back",
        attempt(status(500, "'model'"), fallbacks=True),
        Verdict(Step.FALL_BACK, hint=MODEL_HINT),
    ),
    # -- too big, too long ---------------------------------------------------------------------
    (
        "a 413 splits the batch",
        attempt(status(413, "Too many documents: got 12, the limit is 8.")),
        Verdict(Step.SPLIT, refusal=Refusal(8, by_bytes=False)),
    ),
    (
        "a batch of two splits",
        attempt(status(413, "Too many documents: got 12, the limit is 8."), documents=2),
        Verdict(Step.SPLIT, refusal=Refusal(8, by_bytes=False)),
    ),
    (
        "a batch of one cannot be split",
        attempt(status(413, "Request Entity Too Large"), documents=1),
        Verdict(Step.FAIL),
    ),
    (
        "a document too long, when long documents are cut: plan again",
        attempt(status(400, TOO_LONG), long_documents="chunk"),
        Verdict(Step.PLAN_AGAIN, document_tokens=8),
    ),
    (
        "a limit lowered again after the last new plan allowed: fail, saying so",
        attempt(status(400, TOO_LONG), long_documents="chunk", document_tokens=9, plans_again=3),
        Verdict(Step.FAIL, hint=plans_again_hint(3)),
    ),
    (
        "a document too long, the limit already known",
        attempt(status(400, TOO_LONG), long_documents="truncate", document_tokens=8),
        Verdict(Step.FAIL),
    ),
    (
        "a document too long, sent as it is: say what to do",
        attempt(status(400, TOO_LONG)),
        Verdict(Step.FAIL, hint=LIMIT_HINT),
    ),
    # -- fallbacks -----------------------------------------------------------------------------
    (
        "a 5xx after the retries falls back",
        attempt(status(502), retries_done=2, fallbacks=True),
        Verdict(Step.FALL_BACK),
    ),
    (
        "a 429 after the retries falls back",
        attempt(status(429), retries_done=2, fallbacks=True),
        Verdict(Step.FALL_BACK),
    ),
    (
        "a refusal of the input never falls back",
        attempt(status(422), fallbacks=True),
        Verdict(Step.FAIL),
    ),
    (
        "a failed call falls back (the call's own decision)",
        Attempt(APITimeoutError("deadline"), retry=False, fallbacks=True),
        Verdict(Step.FALL_BACK),
    ),
    (
        "a bad answer never falls back",
        Attempt(ResponseFormatError("not a ranking"), retry=False, fallbacks=True),
        Verdict(Step.FAIL),
    ),
]


@pytest.mark.parametrize(("case", "known", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_each_failure_is_decided_as_the_table_says(
    case: str, known: Attempt, expected: Verdict
) -> None:
    assert decide(known) == expected


def test_the_jitter_comes_from_the_value_passed_in() -> None:
    jittery = RetryPolicy(max_retries=1, initial_delay=1.0, jitter=0.5)
    verdicts = [decide(Attempt(status(503), policy=jittery, random=u)) for u in (0.0, 0.5)]
    assert [verdict.wait for verdict in verdicts] == [1.0, 0.75]


def test_falls_back_only_when_the_server_failed() -> None:
    assert falls_back(APIConnectionError("x"))
    assert falls_back(status(429)) and falls_back(status(500))
    assert not falls_back(status(400)) and not falls_back(ResponseFormatError("x"))
