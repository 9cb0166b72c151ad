"""The batch job's ``max_cost``: each row's cost estimated before it is sent, the actual cost
counted after, and the job stopped before a row would pass the limit (or after the row whose
actual cost passed it)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from .._budget import counter_for
from .._client import RerankClient
from .._constants import LOGGER_NAME
from .._exceptions import CostLimitError
from .._plan import document_tokens
from .._types import Usage
from .._usage import Price, check_max_cost

__all__ = ["CostBudget", "estimate_cost"]

logger = logging.getLogger(LOGGER_NAME)


def estimate_cost(client: RerankClient, query: str, texts: Sequence[Any]) -> Decimal | None:
    """What reranking ``texts`` against ``query`` should cost at the client's price: its
    requests (``max_documents_per_request`` documents each), its tokens (each document with
    the query, by the client's tokenizer or the estimate) and its units by the dialect's
    billing rule. ``None`` when the price counts units the dialect has no rule for."""
    settings = client.settings
    price = settings.price
    if price is None or not texts:
        return None if price is None else Decimal(0)
    per = settings.max_documents_per_request
    counter = counter_for(settings.tokenizer)
    query_tokens = counter.count(query)
    tokens = [document_tokens(counter, text) for text in texts]
    batches = [tokens[start : start + per] for start in range(0, len(tokens), per)]
    units = None
    if price.per_search_unit is not None:
        rule = settings.dialect.billing
        if rule is None:
            return None
        units = sum(rule.units(query_tokens, batch) for batch in batches)
    usage = Usage(
        total_tokens=sum(tokens) + query_tokens * len(tokens),
        requests=len(batches),
        documents=len(tokens),
        search_units=units,
    )
    return price.cost(usage)


class CostBudget:
    """What a job may still spend: estimates reserved for the rows in flight, actual costs
    counted as rows end. Used from one event loop only."""

    def __init__(self, max_cost: object, price: Price | None) -> None:
        self.max_cost = check_max_cost(max_cost)
        if price is None:
            raise ValueError(
                "max_cost needs a price: pass price=Price(...) (or --price-per-* options)"
            )
        self.currency = price.currency
        self.spent = Decimal(0)
        self.reserved = Decimal(0)
        self.refused: CostLimitError | None = None
        self._unestimated = False

    def admit(self, estimate: Decimal | None) -> CostLimitError | None:
        """Reserve ``estimate`` for a row about to be sent; the error that stops the job
        when it would pass the limit (then every later row is refused too)."""
        if self.refused is not None:
            return self.refused
        if estimate is None:
            if not self._unestimated:
                self._unestimated = True
                logger.warning(
                    "batch: a row's cost cannot be estimated before sending (the price "
                    "counts units the dialect has no rule for); max_cost is checked after "
                    "each row only"
                )
            return None
        if self.spent + self.reserved + estimate > self.max_cost:
            self.refused = CostLimitError(self.max_cost, self.spent, estimate, self.currency)
            return self.refused
        self.reserved += estimate
        return None

    def done(self, estimate: Decimal | None, actual: Decimal | None) -> None:
        """A row sent has ended: its reservation freed, its cost (as reported, else as
        estimated) counted."""
        if estimate is not None:
            self.reserved -= estimate
        spent = actual if actual is not None else estimate
        if spent is not None:
            self.spent += spent

    def passed(self) -> CostLimitError | None:
        """The error that stops the job when what was spent is past the limit."""
        if self.spent > self.max_cost:
            return CostLimitError(self.max_cost, self.spent, None, self.currency)
        return None
