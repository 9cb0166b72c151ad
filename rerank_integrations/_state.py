"""What one client keeps between its calls: where it sends, what it hides, what it learned.

:class:`Connection` is shared by every request of a client (and its batches in threads);
:class:`BoundedCache` keeps where long documents were cut, so that a corpus reranked again
is not measured again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._budget import TokenCounter
from ._cache import ScoreCache
from ._codec import BatchRanking, scale_mismatch
from ._constants import LOGGER_NAME
from ._limits import Learned
from ._observe import Counters
from ._ratelimit import AdaptiveGate, RateLimiter
from ._secrets import Scrubber
from ._text import display_url
from ._usage import CostLog

__all__ = ["CUT_DOCUMENTS", "BoundedCache", "Connection"]

logger = logging.getLogger(LOGGER_NAME)

#: Documents whose cuts a client keeps: a few kilobytes each, keyed by a digest (no text is
#: kept), so that a corpus reranked again is not cut again.
CUT_DOCUMENTS = 4096


class BoundedCache(OrderedDict[Any, Any]):
    """A mapping that forgets its oldest entries past ``size`` (safe to share: a lost race
    only measures a document twice)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self.size:
            try:
                self.popitem(last=False)
            except KeyError:
                break


@dataclass(slots=True, repr=False)
class Connection:
    """What every request of one client shares: where it goes, what it sends, what to hide,
    and what the client has learned on the way.

    Attributes:
        url: the endpoint.
        shown_url: the endpoint without credentials, for messages and logs.
        headers: every request's headers, credentials in the clear (the repr hides them).
        scrubber: removes every secret of the client from what is shown.
        path: the endpoint's path, for dialects whose versions differ by path.
        alternate: the other common rerank path, still to try once on a 404.
        logits_expected: whether scores should be raw logits rather than 0..1.
        scale_warned: whether the scores have already been found off their scale.
        counter: counts tokens for the size budgets.
        limiter: the client's rate limit, if any.
        gate: the adaptive limit on batches in flight, if on.
        counters: what the client has done (``client.stats()``).
        scores: the client's cache of scores, if any.
        listwise_warned: whether a cache used with a listwise model has been warned of.
        learned: limits the server has shown.
        cuts: where long documents were cut, for documents sent again.
        models_warned: the (asked, answered, loud) model pairs already warned of.
        cost_log: says once per missing unit why a cost could not be computed.
    """

    url: str
    shown_url: str
    headers: Mapping[str, str]
    scrubber: Scrubber
    path: str
    alternate: str | None = None
    logits_expected: bool = False
    scale_warned: bool = False
    counter: TokenCounter | None = None
    limiter: RateLimiter | None = None
    gate: AdaptiveGate | None = None
    counters: Counters = field(default_factory=lambda: Counters())
    scores: ScoreCache | None = None
    listwise_warned: bool = False
    learned: Learned = field(default_factory=lambda: Learned())
    cuts: BoundedCache = field(default_factory=lambda: BoundedCache(CUT_DOCUMENTS))
    models_warned: set[tuple[str | None, str, bool]] = field(default_factory=set)
    cost_log: CostLog = field(default_factory=lambda: CostLog())
    _scrubbers: dict[tuple[str, ...], Scrubber] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Connection({self.shown_url!r})"

    def scrubber_with(self, secrets: Sequence[str]) -> Scrubber:
        """The scrubber, also of ``secrets`` that change (a token fetched with the key)."""
        if not secrets:
            return self.scrubber
        key = tuple(secrets)
        cached = self._scrubbers.get(key)
        if cached is None:
            cached = Scrubber([*self.scrubber.secrets, *secrets])
            self._scrubbers = {key: cached}  # the token changes rarely: keep the latest
        return cached

    def move_to(self, url: str) -> None:
        """Send every later request to ``url``: it answered where the endpoint did not."""
        logger.info("%s is not a rerank endpoint; using %s", self.shown_url, display_url(url))
        self.url, self.shown_url, self.path = url, display_url(url), urlsplit(url).path

    def check_scale(self, ranking: BatchRanking) -> None:
        """Warn, once for this client, when scores do not fit the scale expected."""
        if self.scale_warned:
            return
        problem = scale_mismatch(self.logits_expected, [score for _, score in ranking.pairs])
        if problem is not None:
            self.scale_warned = True
            logger.warning("rerank scores from %s: %s", self.shown_url, problem)
