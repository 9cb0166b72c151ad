"""The values a rerank call returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["NOT_GIVEN", "NotGiven", "RerankResponse", "RerankResult", "Usage"]


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One ranked document.

    Attributes:
        index: position of the document in the list the caller passed in.
        relevance_score: the server's score for it; higher is more relevant.
        document: the caller's own document, whole: its text (or the ``Image`` or mapping
            passed).
        span: ``(start, end)`` character offsets into ``document`` of the part that was
            scored, when the document was cut: the best window of a chunked document, the
            start of a truncated one; ``None`` when it was scored whole.
    """

    index: int
    relevance_score: float
    document: Any = None
    span: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What the server says the call cost, summed over every request of the call.

    Attributes:
        total_tokens: tokens processed, when the server reports them.
        billed_units: vendor billing units (search units, rerank units), kept apart from tokens.
        requests: the requests those counts come from.
    """

    total_tokens: int | None = None
    billed_units: float | None = None
    requests: int = 0


@dataclass(frozen=True, slots=True)
class RerankResponse:
    """The answer to one rerank call: results sorted best first.

    Attributes:
        results: ranked documents, best first; ties keep the caller's order.
        model: the model the server says it used, else the one that was asked for.
        usage: token and billing counts, or ``None`` when the server reports none.
        requests: how many requests the call sent (retries not counted).
        windows: how many cut parts of documents (windows, truncated starts) were sent in
            place of whole documents.
        endpoint: the URL that answered, without credentials.
    """

    results: list[RerankResult] = field(default_factory=list)
    model: str | None = None
    usage: Usage | None = None
    requests: int = 0
    windows: int = 0
    endpoint: str | None = None


class NotGiven:
    """The type of :data:`NOT_GIVEN`: an argument left out, told apart from ``None``."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


#: Marks a per-call override that was not passed, so that ``None`` keeps its own meaning.
NOT_GIVEN = NotGiven()
