"""What a sans-IO flow asks its driver to do, and what it is told back.

A flow (a generator) yields :class:`Send` (post a request), :class:`Sleep` (wait) or
:class:`Run` (call a blocking function: a credential library's own refresh) and is sent back
an :class:`Answer` or the :class:`~rerank_integrations.RerankError` a failed send maps to,
``None`` after a sleep, and the function's result (or the exception it raised) after a run.
The batch flow (``_flow``) and the credential flows (``_auth``) share these types.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from ._constants import DEFAULT_MAX_RESPONSE_BYTES
from ._exceptions import RerankError

__all__ = ["Answer", "Flow", "Outcome", "Run", "Send", "Sleep"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send one POST request and report the whole answer.

    ``headers`` carry the content type: JSON for rerank requests, a form for token requests.
    ``timeout`` bounds each phase as httpx does; ``limit`` bounds the attempt as a whole,
    connect to last byte (``None``: no bound); the body may be at most ``max_bytes`` long.
    ``label``, ``retry`` and ``waited`` (seconds slept since the attempt before) describe
    the attempt to traces.
    """

    url: str = field(repr=False)  # may carry credentials in its query
    content: bytes = field(repr=False)  # the caller's documents, or a token request's form
    headers: Mapping[str, str] = field(repr=False)  # carries credentials
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(None))
    limit: float | None = None
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    label: str = ""
    retry: int = 0
    waited: float = 0.0


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this many seconds, then carry on."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Run:
    """Call ``function`` (it may block: the async driver runs it in a worker thread) and
    report what it returned, or the exception it raised."""

    function: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server answered: status, reason phrase, headers and the whole body."""

    status_code: int
    reason: str
    headers: Mapping[str, str] = field(repr=False)  # a hostile server may echo secrets
    content: bytes = field(repr=False)


#: What a flow is sent back: the answer to a :class:`Send`, or the error it failed with;
#: ``None`` after a :class:`Sleep`; anything after a :class:`Run`.
Outcome = Answer | RerankError | None
Flow = Generator[Send | Sleep | Run, Any, T]
