"""What a client has done: counters read as a plain snapshot (``client.stats()``).

When ``opentelemetry-api`` is installed, the same counts are also OpenTelemetry metrics
(meter ``rerank_integrations``); without it, nothing is imported and nothing is recorded.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

__all__ = ["Counters", "RerankStats"]


@dataclass(frozen=True, slots=True)
class RerankStats:
    """A client's counts since it was built.

    Attributes:
        calls: ``rerank``/``arerank`` calls.
        requests: HTTP requests sent, retries included.
        retries: requests that were retries.
        rate_limited: 429 answers.
        cache_hits: documents whose score came from the cache.
        cache_misses: documents looked up in the cache and not found.
        fallbacks: calls answered by a fallback client after the primary failed.
        passthroughs: adapter calls that passed documents through unranked.
        documents: documents (or windows) sent.
        tokens: tokens the servers reported.
        cost: what the calls cost at the client's ``price`` (a ``Decimal`` in its
            currency), summed over the calls whose cost is known; ``None`` without a price.
    """

    calls: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    fallbacks: int = 0
    passthroughs: int = 0
    documents: int = 0
    tokens: int = 0
    cost: Decimal | None = None


_NAMES = tuple(item.name for item in fields(RerankStats) if item.name != "cost")


class Counters:
    """Thread-safe counts behind :class:`RerankStats`, mirrored to OpenTelemetry metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(_NAMES, 0)
        self._cost: Decimal | None = None
        self._instruments = _instruments()

    def add(self, **amounts: int) -> None:
        """Add each amount to its count."""
        with self._lock:
            for name, amount in amounts.items():
                self._values[name] += amount
        if self._instruments:
            for name, amount in amounts.items():
                if amount:
                    self._instruments[name].add(amount)

    def add_cost(self, amount: Decimal, currency: str) -> None:
        """Add a call's cost (also to the ``rerank.cost`` metric, with its currency)."""
        with self._lock:
            self._cost = amount if self._cost is None else self._cost + amount
        instrument = self._instruments.get("cost")
        if instrument is not None and amount:
            instrument.add(float(amount), {"currency": currency})

    def price_set(self) -> None:
        """A price is set: the cost is known (0) before the first call."""
        with self._lock:
            if self._cost is None:
                self._cost = Decimal(0)

    def snapshot(self) -> RerankStats:
        """The counts now."""
        with self._lock:
            return RerankStats(**self._values, cost=self._cost)


def _instruments() -> dict[str, Any]:
    """One OpenTelemetry counter per count, when the API is installed."""
    if importlib.util.find_spec("opentelemetry") is None:
        return {}
    try:
        from opentelemetry import metrics
    except ImportError:  # pragma: no cover - a broken install
        return {}
    meter = metrics.get_meter_provider().get_meter("rerank_integrations")
    instruments = {
        name: meter.create_counter(f"rerank.{name}", description=f"rerank {name}")
        for name in _NAMES
    }
    instruments["cost"] = meter.create_counter(
        "rerank.cost", description="rerank cost at the client's price, in its currency"
    )
    return instruments
