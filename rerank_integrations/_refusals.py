"""What servers mean when they refuse: read from their own words, in one place.

A refusal may say the batch is too big (and perhaps the most documents it takes), that one
document is too long (and how many tokens one may have), that a request field is missing,
that the path does not exist, or how long to wait before trying again. Each reading is a
pure function of the message; ``tests/test_refusals.py`` holds the table of real messages
each must read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._constants import ENV_MODEL
from ._exceptions import APIStatusError

__all__ = [
    "Refusal",
    "document_limit",
    "document_limit_hint",
    "missing_field",
    "missing_field_hint",
    "no_such_path",
    "plans_again_hint",
    "too_big",
    "wait_stated_in",
    "with_hint",
]


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
    r"(?!\d|\s*(?:bytes?|[kmg]i?b)\b)"  # a size in bytes is no count of documents
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


#: How servers say that they have no such path (as opposed to, say, no such model).
_NO_SUCH_PATH = re.compile(
    r"^(?:(?:http )?404:?\s*)?(?:not found|no route\b.*|cannot post\b.*|"
    r"the requested url was not found.*|page not found)\.?$",
    re.IGNORECASE,
)


def no_such_path(message: str | None) -> bool:
    """Whether a 404's message says the path does not exist, rather than a model or
    anything else (no message at all says so too)."""
    text = (message or "").strip()
    return not text or _NO_SUCH_PATH.match(text) is not None


def missing_field(message: str) -> str | None:
    """The request field a server's error says is missing (``model`` for "'model'" or
    "model field required"), ``""`` when it names none; ``None`` when it says no such thing."""
    text = message.strip()
    for pattern in _MISSING_FIELD:
        found = pattern.search(text)
        if found:
            return found.groupdict().get("field") or ""
    return None


_MISSING_FIELD = (
    re.compile(r"^'(?P<field>\w+)'$"),  # a KeyError's repr
    re.compile(r"\b(?P<field>\w+)\s+field required", re.IGNORECASE),  # pydantic
    re.compile(r"missing required (?:field|parameter|argument)s?[:\s]+'?(?P<field>\w+)", re.I),
    re.compile(r"'(?P<field>\w+)' is a required (?:property|field)", re.IGNORECASE),
    re.compile(r"\bfield required\b", re.IGNORECASE),
)


_STATED_WAIT = re.compile(
    r"(?:try again|retry)(?: the request)?\s+(?:in|after)\s+(?P<amount>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)\b",
    re.IGNORECASE,
)


def wait_stated_in(message: str | None) -> float | None:
    """Seconds an error message asks to wait ("Try again in 5 seconds", "retry after
    200ms"), or ``None``; gateways that drop ``Retry-After`` often keep this."""
    found = _STATED_WAIT.search(message or "")
    if found is None:
        return None
    amount, unit = float(found["amount"]), found["unit"].lower()
    if unit.startswith(("ms", "milli")):
        return amount / 1000.0
    return amount * 60.0 if unit.startswith("m") else amount


# -- what to tell the caller -------------------------------------------------------------------


def missing_field_hint(field: str) -> str:
    """What to do about a field the server says is missing (``""``: it named none)."""
    if field == "model":
        return f"; the server needs a model: pass model=... or set {ENV_MODEL}"
    if field:
        return f"; the server needs the field {field!r} (send it with extra_body=...)"
    return "; the server says a required field is missing"


def document_limit_hint(limit: int) -> str:
    """What to do when the server reads at most ``limit`` tokens of a document."""
    return (
        f"; the server reads at most {limit} tokens a document: set "
        "long_documents='chunk' or 'truncate' to send long documents in parts"
    )


def plans_again_hint(plans: int) -> str:
    """What to say when the server lowered its limit for a document again after ``plans``
    new plans of one call."""
    return (
        f"; the server lowered its limit for a document again after {plans} new plans of "
        "this call: set max_tokens_per_document= to what the model reads"
    )


def with_hint(error: APIStatusError, hint: str) -> APIStatusError:
    """``error`` with ``hint`` added to its message, before any body excerpt (once)."""
    head, sep, tail = error.message.partition(" | body: ")
    if not head.endswith(hint):
        error.message = f"{head}{hint}{sep}{tail}"
        error.args = (error.message,)
    return error
