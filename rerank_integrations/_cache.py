"""A cache of scores, one entry per (query, document) pair.

A client with ``cache=`` looks up every text of a call before it plans the batches, sends
only those it does not know, asks the server for the score of each one sent (not only the
best ``top_n``), and keeps them all. The cache is any object with ``get(key)`` and
``set(key, value)``, or a mutable mapping: :class:`RerankCache` (in memory, LRU with a
TTL), a ``dict``, a ``diskcache.Cache``, a Redis client.

Keys are ``"rerank:"`` and 32 hex digits: a SHA-256 of what decides the score (the dialect,
the endpoint without credentials, the model, the cloud location, the extra body fields, the
``rank_fields``, the query and the text, an image's URL or bytes, a record's fields), never
of the key or headers. Values are short JSON strings: the score as the server gave it and
the batch that produced it (its size and a digest of its texts), for models whose scores
depend on the other documents of a batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

from ._constants import LOGGER_NAME
from ._documents import Document, document_key
from ._observe import Counters

__all__ = ["RerankCache", "ScoreCache", "ScoreLookup", "score_cache_for"]

logger = logging.getLogger(LOGGER_NAME)

#: Changed whenever what a key is made of changes, so that old entries are never read.
KEY_VERSION = 1
KEY_PREFIX = "rerank:"


class RerankCache:
    """An in-memory cache of scores: least recently used entries go first, and with a
    ``ttl`` each entry expires that many seconds after it was set. Safe to share between
    threads and clients.

    Args:
        max_entries: the most (query, document) scores kept.
        ttl: seconds an entry lives; ``None``: until it is pushed out.
        clock: the time in seconds (``time.monotonic``; tests pass a fake one).
    """

    def __init__(
        self,
        max_entries: int = 100_000,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(
                f"max_entries must be a whole number of at least 1, got {max_entries!r}"
            )
        if ttl is not None and (
            isinstance(ttl, bool)
            or not isinstance(ttl, (int, float))
            or not math.isfinite(ttl)
            or ttl <= 0
        ):
            raise ValueError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, float | None]] = OrderedDict()

    def __repr__(self) -> str:
        return f"RerankCache(max_entries={self.max_entries}, ttl={self.ttl}, entries={len(self)})"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, default: Any = None) -> Any:
        """The value set for ``key``, or ``default`` if there is none or it has expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            value, expires = entry
            if expires is not None and self._clock() >= expires:
                del self._entries[key]
                return default
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` for ``key``, pushing out the least recently used past the limit."""
        expires = None if self.ttl is None else self._clock() + self.ttl
        with self._lock:
            self._entries[key] = (value, expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __getstate__(self) -> dict[str, Any]:
        # Travels empty: the lock cannot be pickled, and scores are cheap to learn again.
        return {"max_entries": self.max_entries, "ttl": self.ttl}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_entries"], state["ttl"])  # type: ignore[misc]


class ScoreCache:
    """A client's view of a user's cache: keys made, values read and written, failures
    logged rather than raised (a cache never fails a call)."""

    def __init__(self, store: Any, counters: Counters) -> None:
        self.store = store
        self.counters = counters
        self._get: Callable[[str], Any] = store.get
        setter = getattr(store, "set", None)
        self._set: Callable[[str, Any], Any] = setter if callable(setter) else store.__setitem__
        self._warned = False

    def lookup(self, context: Sequence[Any], query: str) -> ScoreLookup:
        """A lookup for one call's texts; ``context`` is what besides the query and text
        decides a score."""
        head = json.dumps(
            [KEY_VERSION, *context, query], ensure_ascii=False, separators=(",", ":"), default=str
        )
        return ScoreLookup(self, hashlib.sha256(head.encode("utf-8", "surrogatepass")))

    def failed(self, doing: str, error: Exception) -> None:
        """Log a failure of the user's cache, once per client at warning level."""
        log = logger.debug if self._warned else logger.warning
        self._warned = True
        log(
            "rerank cache %s failed, going on without it: %s: %s",
            doing,
            type(error).__name__,
            error,
        )


class ScoreLookup:
    """The cache keys of one call's texts, the scores found for them, and what to keep
    once batches come back. Called by the planner with the call's texts."""

    def __init__(self, cache: ScoreCache, head: Any) -> None:
        self.cache = cache
        self._head = head
        self.keys: list[str] = []

    def __call__(self, texts: Sequence[Document]) -> dict[int, float]:
        """The known score of each text, by position; the rest are counted as misses."""
        head = self._head
        keys = []
        for text in texts:
            digest = head.copy()
            digest.update(b"\0")
            digest.update(document_key(text).encode("utf-8", "surrogatepass"))
            keys.append(KEY_PREFIX + digest.hexdigest()[:32])
        self.keys = keys
        known: dict[int, float] = {}
        cache = self.cache
        get = cache._get
        try:
            for position, key in enumerate(keys):
                score = _score_of(get(key))
                if score is not None:
                    known[position] = score
        except Exception as error:  # any user cache: a failure is a miss, never a failed call
            cache.failed("lookup", error)
        cache.counters.add(cache_hits=len(known), cache_misses=len(keys) - len(known))
        return known

    def keep(self, positions: Sequence[int], pairs: Sequence[tuple[int, float]]) -> None:
        """Keep the scores of one batch: ``pairs`` index into ``positions``, the batch's
        texts' positions in the call."""
        keys = self.keys
        batch = [keys[position] for position in positions]
        digest = hashlib.sha256("".join(batch).encode()).hexdigest()[:16]
        context = f'"batch":{{"size":{len(batch)},"digest":"{digest}"}}'
        setter = self.cache._set
        try:
            for local, score in pairs:
                if math.isfinite(score):
                    setter(batch[local], f'{{"score":{score!r},{context}}}')
        except Exception as error:
            self.cache.failed("store", error)


def _score_of(value: Any) -> float | None:
    """The score in a cache entry, or ``None`` for no entry or one not ours."""
    if value is None:
        return None
    try:
        if isinstance(value, (str, bytes, bytearray)):
            value = json.loads(value)
        score = value["score"] if isinstance(value, Mapping) else None
    except (ValueError, TypeError, KeyError):
        return None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return None
    return float(score)


def score_cache_for(cache: object, counters: Counters) -> ScoreCache | None:
    """The client's view of ``cache`` (``None`` for none).

    Raises:
        TypeError: ``cache`` has no ``get`` or no way to set a value.
    """
    if cache is None:
        return None
    return ScoreCache(check_cache(cache), counters)


def check_cache(cache: object) -> object:
    """``cache`` if it can serve as one: ``get`` and ``set``, or a mutable mapping."""
    getter = getattr(cache, "get", None)
    setter = getattr(cache, "set", None)
    if callable(getter) and (callable(setter) or isinstance(cache, MutableMapping)):
        return cache
    raise TypeError(
        "cache must have get(key) and set(key, value) (a RerankCache, a diskcache.Cache) or "
        f"be a mutable mapping (a dict), got {type(cache).__name__}"
    )
