"""What servers' refusal messages mean: one table of real messages and every reading of each.

Each row is a status and a message as servers send them (TEI, vLLM, Infinity, LiteLLM,
gateways, web frameworks), with what :mod:`rerank_integrations._refusals` must read from
it: a refusal of the batch as too big (and the count it states), the tokens one document
may have, a missing field, a path that does not exist, a wait the message states. A new
message a server sends goes here first.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from rerank_integrations._exceptions import status_error_class
from rerank_integrations._refusals import (
    Refusal,
    document_limit,
    missing_field,
    missing_field_hint,
    no_such_path,
    plans_again_hint,
    too_big,
    wait_stated_in,
    with_hint,
)


class Reading(NamedTuple):
    too_big: Refusal | None = None
    document_limit: int | None = None
    missing_field: str | None = None
    no_such_path: bool = False
    wait: float | None = None


def count(documents: int | None = None, *, by_bytes: bool = False) -> Refusal:
    return Refusal(documents, by_bytes)


BYTES_ONLY = Refusal(None, by_bytes=True, only_bytes=True)

TABLE: list[tuple[int, str, Reading]] = [
    # -- the batch is too big -------------------------------------------------------------
    (413, "Request Entity Too Large", Reading(too_big=BYTES_ONLY)),
    (413, "", Reading(too_big=count(by_bytes=True), no_such_path=True)),
    (413, "Too many documents: got 12, the limit is 8.", Reading(too_big=count(8))),
    (400, "batch size 40 > maximum allowed batch size 32", Reading(too_big=count(32))),
    (422, "too many items: at most 100 items per request", Reading(too_big=count(100))),
    (
        400,
        "Payload too large: the request body exceeds the limit of 1048576 bytes",
        Reading(too_big=BYTES_ONLY),  # a size in bytes is no count of documents
    ),
    (400, "bad batch", Reading()),
    # -- one document is too long ----------------------------------------------------------
    (
        400,
        "Input validation error: `inputs` must have less than 8 tokens. Given: 9",
        Reading(document_limit=8),
    ),
    (
        400,
        "This model's maximum context length is 512 tokens, however you requested 700 tokens",
        Reading(document_limit=512),
    ),
    (413, "This model's maximum input length is 8192 tokens", Reading(document_limit=8192)),
    (400, "each document must have at most 100 characters", Reading()),
    # -- a field is missing ------------------------------------------------------------------
    (500, "'model'", Reading(missing_field="model")),
    (500, "model field required", Reading(missing_field="model")),
    (500, "Missing required parameter: 'query'", Reading(missing_field="query")),
    (500, "Field required", Reading(missing_field="")),
    (500, "CUDA out of memory", Reading()),
    # -- no such path (as opposed to no such model) -----------------------------------------
    (404, "Not Found", Reading(no_such_path=True)),
    (404, "404: Not Found", Reading(no_such_path=True)),
    (404, "Cannot POST /v1/rerank", Reading(no_such_path=True)),
    (404, "no route POST /rerank", Reading(no_such_path=True)),
    (404, "The requested URL was not found on the server.", Reading(no_such_path=True)),
    (404, "Model not found in the model list (cached, retry after 10.0s)", Reading(wait=10.0)),
    # -- a wait stated in the message -------------------------------------------------------
    (429, "Rate limit exceeded. Please retry after 5 seconds.", Reading(wait=5.0)),
    (429, "Please try again in 20s.", Reading(wait=20.0)),
    (429, "try again in 250ms", Reading(wait=0.25)),
    (503, "Retry after 1.5 sec", Reading(wait=1.5)),
    (429, "try again in 2 minutes", Reading(wait=120.0)),
    (429, "slow down", Reading()),
]


@pytest.mark.parametrize(("status", "message", "expected"), TABLE)
def test_each_message_is_read_as_the_table_says(
    status: int, message: str, expected: Reading
) -> None:
    error = status_error_class(status)("x", status_code=status, server_message=message or None)
    assert too_big(error) == expected.too_big
    assert document_limit(error) == expected.document_limit
    assert missing_field(message) == expected.missing_field
    assert no_such_path(message) is expected.no_such_path
    assert wait_stated_in(message) == expected.wait


def test_a_refusal_for_size_is_read_only_from_the_statuses_that_mean_it() -> None:
    # The same words under a status that cannot mean "too big" (a 500) are not a refusal.
    message = "Too many documents: got 12, the limit is 8."
    assert too_big(status_error_class(500)("x", status_code=500, server_message=message)) is None


# -- what the caller is told ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "hint"),
    [
        ("model", "; the server needs a model: pass model=... or set RERANK_MODEL"),
        ("query_id", "; the server needs the field 'query_id' (send it with extra_body=...)"),
        ("", "; the server says a required field is missing"),
    ],
)
def test_a_missing_field_is_told_with_what_to_do(field: str, hint: str) -> None:
    assert missing_field_hint(field) == hint


def test_a_limit_lowered_again_is_told_with_what_to_do() -> None:
    assert plans_again_hint(3) == (
        "; the server lowered its limit for a document again after 3 new plans of this "
        "call: set max_tokens_per_document= to what the model reads"
    )


@pytest.mark.parametrize(
    ("message", "told"),
    [
        ("HTTP 422 from https://h/rerank", "HTTP 422 from https://h/rerank; do this"),
        (
            "HTTP 422 from https://h/rerank | body: {'detail': 'x'}",
            "HTTP 422 from https://h/rerank; do this | body: {'detail': 'x'}",
        ),
        ("HTTP 422 from https://h/rerank; do this", "HTTP 422 from https://h/rerank; do this"),
    ],
    ids=["plain", "before-the-body", "once"],
)
def test_a_hint_goes_before_the_body_excerpt_and_only_once(message: str, told: str) -> None:
    error = status_error_class(422)(message, status_code=422)
    assert with_hint(error, "; do this") is error
    assert error.message == told
    assert error.args == (told,)
    assert str(error).startswith(told)
