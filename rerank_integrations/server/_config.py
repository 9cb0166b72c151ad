"""The local server's settings, checked once when they are made.

A bad value fails here, naming the field, so a typo in a test or on the command line never
becomes a server that quietly behaves differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FAULT_KINDS", "FAULT_RATE_FIELDS", "LIMIT_KINDS", "SCORING_MODES", "ServerConfig"]

SCORING_MODES: tuple[str, ...] = ("bm25", "cheap")
"""The values of :attr:`ServerConfig.scoring`."""

FAULT_KINDS: tuple[str, ...] = ("drop", "stall", "rate_limit", "error")
"""The injectable faults, in the order one draw checks them."""

FAULT_RATE_FIELDS: dict[str, str] = {
    "drop": "drop_rate",
    "stall": "stall_rate",
    "rate_limit": "rate_limit_rate",
    "error": "error_rate",
}
"""The :class:`ServerConfig` field that holds each fault's probability."""

LIMIT_KINDS: tuple[str, ...] = ("documents", "request_bytes", "document_tokens", "request_tokens")
"""The size limits a request can be refused for: ``max_documents``, ``max_request_bytes``,
``max_tokens_per_document`` and ``max_tokens_per_request``."""

# Rates read from a command line (0.1 + 0.2 + ...) may sum to a hair over 1.
_RATE_TOLERANCE = 1e-9


def _check_non_negative(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_rate(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def _check_count(name: str, value: object, *, optional: bool) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        hint = " or None" if optional else ""
        raise ValueError(f"{name} must be an integer >= 1{hint}, got {value!r}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """How the local rerank server behaves.

    Attributes:
        api_key: the bearer token rerank requests must send (401 otherwise); ``None`` lets
            every request in.
        max_documents: the most documents one request may carry (413 past it).
        max_request_bytes: the largest request body, as behind nginx's
            ``client_max_body_size`` (413 with nginx's HTML page past it); ``None``: no limit.
        max_tokens_per_document: the most tokens of the query plus one document, as a model's
            input length (413 with TEI's message past it, unless truncating); ``None``: no
            limit. Tokens are :func:`~rerank_integrations.server.count_tokens`.
        max_tokens_per_request: the most tokens of a whole request, the query counted once per
            document (400 past it, after any truncation); ``None``: no limit.
        auto_truncate: score a too-long document on its first tokens instead of refusing it,
            when the request does not say (TEI's ``--auto-truncate``; a request's
            ``"truncate"`` field wins).
        rate_limit_rpm: the requests a minute the server takes, spread over the minute (at
            most one second's worth at once); past it, 429 with ``Retry-After``; ``None``: no
            limit.
        latency_ms: added to every authenticated rerank request, faulty or invalid ones too,
            to stand in for a network.
        error_rate: the probability of answering ``error_status``.
        error_status: the status of the error fault (400-599).
        error_html: answer the error fault with a proxy's HTML page instead of JSON.
        rate_limit_rate: the probability of a 429 with ``Retry-After``: a fault, drawn at
            random, unlike ``rate_limit_rpm``.
        retry_after: the seconds the rate-limit fault asks for (fractions to 3 decimals).
        drop_rate: the probability of sending the headers and part of the body, then
            dropping the connection.
        stall_rate: the probability of waiting ``stall_seconds`` before answering normally.
        stall_seconds: the length of a stall.
        seed: seeds the fault draws, so the same request order gives the same faults;
            ``None`` seeds from the system.
        scoring: ``"bm25"`` ranks by relevance; ``"cheap"`` scores each document in constant
            time from its position and length, for benchmarks that want the server's own
            cost out of the measurement.

    The four fault rates are probabilities summing to at most 1: each request draws once
    and gets at most one fault.
    """

    api_key: str | None = None
    max_documents: int = 1000
    max_request_bytes: int | None = None
    max_tokens_per_document: int | None = None
    max_tokens_per_request: int | None = None
    auto_truncate: bool = False
    rate_limit_rpm: int | None = None
    latency_ms: float = 0
    error_rate: float = 0
    error_status: int = 503
    error_html: bool = False
    rate_limit_rate: float = 0
    retry_after: float = 1
    drop_rate: float = 0
    stall_rate: float = 0
    stall_seconds: float = 30
    seed: int | None = None
    scoring: str = "bm25"

    def __post_init__(self) -> None:
        """Refuse any value the server could not honour."""
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise ValueError("api_key must be a non-empty string or None")
        _check_count("max_documents", self.max_documents, optional=False)
        for name in (
            "max_request_bytes",
            "max_tokens_per_document",
            "max_tokens_per_request",
            "rate_limit_rpm",
        ):
            _check_count(name, getattr(self, name), optional=True)
        _check_bool("auto_truncate", self.auto_truncate)
        _check_non_negative("latency_ms", self.latency_ms)
        _check_non_negative("retry_after", self.retry_after)
        _check_non_negative("stall_seconds", self.stall_seconds)
        for name in FAULT_RATE_FIELDS.values():
            _check_rate(name, getattr(self, name))
        if self.fault_rate > 1 + _RATE_TOLERANCE:
            raise ValueError(
                "drop_rate + stall_rate + rate_limit_rate + error_rate must be at most 1, "
                f"got {self.fault_rate:g}"
            )
        if (
            not isinstance(self.error_status, int)
            or isinstance(self.error_status, bool)
            or not 400 <= self.error_status <= 599
        ):
            raise ValueError(
                "error_status must be an HTTP error status between 400 and 599, "
                f"got {self.error_status!r}"
            )
        _check_bool("error_html", self.error_html)
        if self.seed is not None and (
            not isinstance(self.seed, int) or isinstance(self.seed, bool)
        ):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        if self.scoring not in SCORING_MODES:
            raise ValueError(
                f"scoring must be one of {', '.join(SCORING_MODES)}, got {self.scoring!r}"
            )

    @property
    def fault_rate(self) -> float:
        """The probability that a request gets some fault."""
        return float(sum(getattr(self, name) for name in FAULT_RATE_FIELDS.values()))
