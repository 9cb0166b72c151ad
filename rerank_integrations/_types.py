"""The values a rerank call returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
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
    """What the call used, summed over every request that was answered: its batches, the
    parts of a split batch, the pages of a paged answer, the retry that got through, and the
    fallback that answered. A count some request did not report is ``None``, never a guess.

    Attributes:
        total_tokens: tokens processed (the server's total, else its input count), when
            every request reported them.
        billed_units: billing units (search units, rerank units) as the servers reported
            them, summed over the requests that did; ``None`` when none did.
        requests: the requests those counts come from (answered ones).
        documents: documents (or windows of long documents) those requests carried.
        search_units: billing units as reported, or as the dialect's documented rule
            computes them where the server did not say (``Dialect.billing``); ``None`` when
            some request has neither.
        input_tokens: input tokens, when every request reported them.
        search_units_source: ``"reported"``, ``"computed"`` (by the dialect's rule),
            ``"reported and computed"``, or ``None`` with ``search_units``.
        per_request: each answered request's usage as the dialect's parser read it (the
            usage parts of the answer: ``usage``, ``meta``, ...), in batch order.
    """

    total_tokens: int | None = None
    billed_units: float | None = None
    requests: int = 0
    documents: int = 0
    search_units: float | None = None
    input_tokens: int | None = None
    search_units_source: str | None = None
    per_request: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class RerankResponse:
    """The answer to one rerank call: results sorted best first.

    Attributes:
        results: ranked documents, best first; ties keep the caller's order.
        model: the model the server says answered, else the one that was asked for.
        usage: what the answered requests used (:class:`Usage`); ``None`` only for a
            response built by hand.
        requests: how many requests the call sent (retries not counted).
        windows: how many cut parts of documents (windows, truncated starts) were sent in
            place of whole documents.
        endpoint: the URL that answered, without credentials.
        requested_model: the model the call asked for (``None``: the server's choice).
        cost: the call's cost in the client's ``price`` currency, a ``Decimal``; ``None``
            without a price, or when a unit it counts was not reported nor computable.
    """

    results: list[RerankResult] = field(default_factory=list)
    model: str | None = None
    usage: Usage | None = None
    requests: int = 0
    windows: int = 0
    endpoint: str | None = None
    requested_model: str | None = None
    cost: Decimal | None = None


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
