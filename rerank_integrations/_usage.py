"""Usage and cost: what each answered request reported, summed for the call, and priced.

Every request that was answered (a batch, a half of a split batch, a page, a retry that
finally got through, a request of a call planned again, the fallback that answered) leaves a
:class:`RequestUsage`; :func:`summed` adds them into the call's :class:`~._types.Usage`, a
field left ``None`` when some request did not report it (never a guessed 0). A dialect whose
vendor documents how it bills (``Dialect.billing``) has its units computed by that rule where
the server does not report them. :class:`Price` turns a usage into a cost. No I/O here.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ._constants import LOGGER_NAME
from ._types import Usage

__all__ = [
    "CostLog",
    "Price",
    "RequestUsage",
    "check_max_cost",
    "check_price",
    "combined",
    "score_threshold_set",
    "summed",
    "warn_model_swap",
]

logger = logging.getLogger(LOGGER_NAME)

_MILLION = Decimal(1_000_000)


def _decimal(name: str, value: object) -> Decimal | None:
    """``value`` as a non-negative finite ``Decimal`` (a float through its shortest text)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise TypeError(
            f"Price({name}=...) must be a number or a decimal string, got {type(value).__name__}"
        )
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"Price({name}=...) must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"Price({name}=...) must be a finite number >= 0, got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class Price:
    """What a rerank API charges, to compute each response's ``cost`` from its usage.

    Give any of the three; the cost is their sum over the call's usage:
    ``search_units * per_search_unit + total_tokens / 1e6 * per_million_tokens +
    requests * per_request``. Values are kept as ``Decimal`` (floats are read through
    their shortest text: ``0.002`` is exactly ``Decimal("0.002")``). There is no built-in
    price table: prices change; the README shows a dated example.

    Attributes:
        per_search_unit: the price of one search unit (Cohere) or rerank unit (Pinecone).
        per_million_tokens: the price of one million tokens.
        per_request: the price of one request.
        currency: the currency the prices (and so the costs) are in; ``"USD"`` by default.
    """

    per_search_unit: Decimal | None = None
    per_million_tokens: Decimal | None = None
    per_request: Decimal | None = None
    currency: str = "USD"

    def __init__(
        self,
        per_search_unit: Decimal | float | str | None = None,
        per_million_tokens: Decimal | float | str | None = None,
        per_request: Decimal | float | str | None = None,
        currency: str = "USD",
    ) -> None:
        values = {
            "per_search_unit": _decimal("per_search_unit", per_search_unit),
            "per_million_tokens": _decimal("per_million_tokens", per_million_tokens),
            "per_request": _decimal("per_request", per_request),
        }
        if all(value is None for value in values.values()):
            raise ValueError(
                "Price needs at least one of per_search_unit=, per_million_tokens=, per_request="
            )
        if not isinstance(currency, str) or not currency.strip():
            raise ValueError(f"Price(currency=...) must be a currency code, got {currency!r}")
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "currency", currency.strip().upper())

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            Price,
            (self.per_search_unit, self.per_million_tokens, self.per_request, self.currency),
        )

    def cost(self, usage: Usage | None) -> Decimal | None:
        """The cost of ``usage`` at this price; ``None`` when a priced unit is unknown."""
        return self.cost_and_missing(usage)[0]

    def cost_and_missing(self, usage: Usage | None) -> tuple[Decimal | None, str | None]:
        """The cost of ``usage``, and the priced unit nobody reported when there is none."""
        if usage is None:
            return None, "usage"
        total = Decimal(0)
        if self.per_search_unit is not None:
            if usage.search_units is None:
                return None, "search_units"
            total += Decimal(str(usage.search_units)) * self.per_search_unit
        if self.per_million_tokens is not None:
            if usage.total_tokens is None:
                return None, "total_tokens"
            total += Decimal(usage.total_tokens) * self.per_million_tokens / _MILLION
        if self.per_request is not None:
            total += Decimal(usage.requests) * self.per_request
        return total, None


def check_max_cost(value: object) -> Decimal:
    """A ``max_cost`` as a ``Decimal``.

    Raises:
        TypeError, ValueError: not a finite number of 0 or more.
    """
    if value is None:
        raise ValueError("max_cost must be a number, got None")
    try:
        number = _decimal("max_cost", value)
    except (TypeError, ValueError) as error:
        raise type(error)(str(error).replace("Price(max_cost=...)", "max_cost")) from None
    assert number is not None
    return number


def check_price(price: object) -> Price | None:
    """``price`` if it is a :class:`Price` or ``None``.

    Raises:
        TypeError: anything else.
    """
    if price is None or isinstance(price, Price):
        return price
    raise TypeError(
        "price must be a Price(per_search_unit=..., per_million_tokens=..., per_request=...), "
        f"got {type(price).__name__}"
    )


@dataclass(frozen=True, slots=True)
class RequestUsage:
    """What one answered request used.

    Attributes:
        documents: documents (or windows) it carried.
        search_units: billing units the server reported; ``None``: not reported.
        computed_units: units by the dialect's billing rule, where the server reported none.
        input_tokens: input tokens the server reported.
        total_tokens: tokens the server reported (its total, else its input or prompt count).
        raw: the usage parts of the answer, as the dialect's parser read them.
        order: where its batch starts in the call, to list requests in a stable order.
    """

    documents: int
    search_units: float | None = None
    computed_units: float | None = None
    input_tokens: int | None = None
    total_tokens: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    order: int = 0

    @property
    def units(self) -> float | None:
        """The units reported, else those the rule computes."""
        return self.search_units if self.search_units is not None else self.computed_units


def _all_or_none(values: Sequence[Any]) -> Any:
    """The sum of ``values`` when every one is known, else ``None``."""
    if any(value is None for value in values):
        return None
    return sum(values)


def _present(values: Sequence[Any]) -> Any:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def summed(records: Sequence[RequestUsage]) -> Usage:
    """The call's usage from its answered requests: each count summed when every request
    reported it (``None`` otherwise); nothing sent counts 0 of everything."""
    ordered = sorted(records, key=lambda record: record.order)
    if not ordered:
        return Usage(0, None, 0, documents=0, search_units=0, input_tokens=0)
    units = [record.units for record in ordered]
    reported = [record.search_units is not None for record in ordered]
    computed = [
        record.computed_units is not None and record.search_units is None for record in ordered
    ]
    if any(value is None for value in units):
        source = None
    elif all(reported):
        source = "reported"
    else:
        source = "computed" if all(computed) else "reported and computed"
    return Usage(
        total_tokens=_all_or_none([record.total_tokens for record in ordered]),
        billed_units=_present([record.search_units for record in ordered]),
        requests=len(ordered),
        documents=sum(record.documents for record in ordered),
        search_units=_all_or_none(units),
        input_tokens=_all_or_none([record.input_tokens for record in ordered]),
        search_units_source=source,
        per_request=tuple(dict(record.raw) for record in ordered),
    )


def combined(first: Usage | None, second: Usage | None) -> Usage | None:
    """Two usages of one call added (a failed attempt's answered requests and the
    fallback's), each count ``None`` unless both know it."""
    if first is None or second is None:
        return first or second

    def both(a: Any, b: Any) -> Any:
        return None if a is None or b is None else a + b

    sources = {first.search_units_source, second.search_units_source}
    return Usage(
        total_tokens=both(first.total_tokens, second.total_tokens),
        billed_units=_present([first.billed_units, second.billed_units]),
        requests=first.requests + second.requests,
        documents=first.documents + second.documents,
        search_units=both(first.search_units, second.search_units),
        input_tokens=both(first.input_tokens, second.input_tokens),
        search_units_source=None
        if None in sources
        else sources.pop()
        if len(sources) == 1
        else "reported and computed",
        per_request=first.per_request + second.per_request,
    )


class CostLog:
    """Says once per client and missing unit why a cost could not be computed."""

    def __init__(self) -> None:
        self._said: set[str] = set()

    def cost(self, price: Price | None, usage: Usage | None, endpoint: str) -> Decimal | None:
        """The cost of ``usage`` at ``price``; a missing unit logged the first time."""
        if price is None:
            return None
        cost, missing = price.cost_and_missing(usage)
        if missing is not None and missing not in self._said:
            self._said.add(missing)
            logger.warning(
                "rerank via %s: no cost: the price counts %s and the server did not report "
                "them (and the dialect has no rule to compute them); response.cost is None",
                endpoint,
                missing.replace("_", " "),
            )
        return cost


# -- the model that answered ---------------------------------------------------------------

_threshold: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rerank_score_threshold", default=False
)


def score_threshold_set(active: bool) -> AbstractContextManager[None]:
    """Within the block, calls are made for results cut by a score threshold (an adapter's
    ``score_threshold``): a model other than the one asked for is warned of louder."""
    # Inactive, the block costs no generator: every adapter call passes through here.
    return _threshold_set() if active else _NOTHING


_NOTHING: AbstractContextManager[None] = nullcontext()


@contextmanager
def _threshold_set() -> Iterator[None]:
    token = _threshold.set(True)
    try:
        yield
    finally:
        _threshold.reset(token)


def warn_model_swap(
    warned: set[tuple[str | None, str, bool]], requested: str | None, answered: str | None
) -> None:
    """Warn, once per client and (asked, answered) pair, when the server says another model
    answered than the one asked for; louder when a score threshold cuts the results."""
    if not requested or not answered or answered == requested:
        return
    loud = _threshold.get()
    key = (requested, answered, loud)
    if key in warned:
        return
    warned.add(key)
    if loud:
        logger.warning(
            "rerank: asked for model %r, the server answered with %r: scores may be on "
            "another scale, check score_threshold (response.model names the model that "
            "answered, response.requested_model the one asked for)",
            requested,
            answered,
        )
    else:
        logger.warning(
            "rerank: asked for model %r, the server answered with %r (response.model names "
            "the model that answered, response.requested_model the one asked for)",
            requested,
            answered,
        )
