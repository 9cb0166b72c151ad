"""A cache of scores, one entry per (query, document) pair.

A client with ``cache=`` looks up every text of a call before it plans the batches, sends
only those it does not know, asks the server for the score of each one sent (not only the
best ``top_n``), and keeps them all. The cache is any object with ``get(key)`` and
``set(key, value)``, or a mutable mapping: :class:`RerankCache` (in memory, LRU with a
TTL), a ``dict``, a ``diskcache.Cache``, a Redis client. Both are called as plain functions
on both paths (the cache is read while a call is planned): a cache whose ``get``/``set`` are
coroutines (``redis.asyncio``) is refused. A store that also has ``get_many(keys)``,
answering a mapping of the keys it holds (Django's caches, pymemcache, the evaluation's
``ScoreStore``), is read once per call rather than once per text, and one with
``set_many(mapping)`` is written once per batch.

Keys are ``"rerank:"`` and 32 hex digits: a SHA-256 of what decides the score (the dialect,
the endpoint, the model, the cloud location, the extra body fields, the ``rank_fields``,
the query, and the document tagged with its kind: a text, an image's URL or bytes, a
record's fields), and of the credential's scope. The endpoint's password and query values
whose names look secret go in as keyed hashes, never in the clear. The scope is a keyed
hash of the credentials the client holds (the key, secret headers and URL values, a cloud
identity), so that a client is answered from the cache only what the same credentials
asked for before; a cache meant to be shared by several credentials says so
(``RerankCache(shared=True)``, or any store wrapped in :class:`SharedCache`). The hashes
are keyed with a fixed key, so that processes sharing a cache make the same keys. Values
are short JSON strings: the score as the server gave it and the batch that produced it (its
size and a digest of its texts), for models whose scores depend on the other documents of
a batch.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ._constants import LOGGER_NAME
from ._documents import Document, Image
from ._observe import Counters
from ._secrets import is_secret_header

__all__ = [
    "RerankCache",
    "ScoreCache",
    "ScoreLookup",
    "SharedCache",
    "credential_scope",
    "endpoint_key",
    "score_cache_for",
]

logger = logging.getLogger(LOGGER_NAME)

#: Changed whenever what a key is made of changes, so that old entries are never read.
#: 2: documents tagged with their kind, secret URL values hashed, entries scoped.
KEY_VERSION = 2
KEY_PREFIX = "rerank:"
#: The key of the keyed hashes in cache keys. Fixed, so that every process sharing a cache
#: (a diskcache, Redis) makes the same keys. It cannot be a secret from whoever reads this
#: code; it separates these digests from a plain SHA-256 of a credential, which could be
#: matched against digests made elsewhere.
_HASH_KEY = b"rerank-integrations/cache-keys/v2"
#: The scope of a cache shared by every credential.
SHARED_SCOPE = "shared"
#: Attributes of cloud credentials that name who they are (an AWS access key id, a Google
#: service account or OAuth client, a project, an OCI signing key's ``tenancy/user/
#: fingerprint``), read without any I/O.
_IDENTITY_ATTRIBUTES = (
    "api_key",
    "access_key",
    "_access_key",
    "_service_account_email",
    "_client_id",
    "_project_id",
    "_quota_project_id",
)
_ASYNC_REFUSED = (
    "a cache whose get/set are coroutines ({name}) is not supported: the cache is read while "
    "a call is planned, on the sync and the async path alike. Pass a synchronous one: a "
    "RerankCache, a dict, a diskcache.Cache, a redis.Redis (not redis.asyncio)"
)


def keyed_hash(purpose: str, value: str) -> str:
    """A keyed SHA-256 of ``value`` for ``purpose`` (the domain), in hex."""
    message = purpose.encode() + b"\0" + value.encode("utf-8", "surrogatepass")
    return hmac.new(_HASH_KEY, message, hashlib.sha256).hexdigest()


def credential_scope(secrets: Sequence[str], credentials: object = None) -> str:
    """The scope of a client's entries: a keyed hash of the secrets it sends (its key,
    secret header values, secret URL values) and of who its cloud ``credentials`` name.
    The same for every client and process with the same credentials; never reversible to
    them."""
    parts = sorted({secret for secret in secrets if secret})
    if credentials is not None:
        state = getattr(credentials, "__dict__", {})
        parts.append(type(credentials).__qualname__)
        for name in _IDENTITY_ATTRIBUTES:
            value = state.get(name)
            # An OCI security token (``ST$...``) is renewed and names no one for long.
            if isinstance(value, str) and value and not value.startswith("ST$"):
                parts.append(f"{name}={value}")
    return keyed_hash("credential", json.dumps(parts, ensure_ascii=False))


def endpoint_key(url: str) -> str:
    """``url`` as it goes into a key: its password and the values of query parameters
    whose names look secret (``key``, ``token``: ``max_tokens`` too) replaced by their keyed
    hashes, so that different values make different keys and no secret is in the clear."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return keyed_hash("endpoint", url)
    netloc = parts.netloc
    if password:
        netloc = netloc.replace(f":{password}@", f":#{keyed_hash('password', password)}@", 1)
    query = "&".join(
        f"{name}=#{keyed_hash('parameter', value)}" if is_secret_header(name) else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class RerankCache:
    """An in-memory cache of scores: least recently used entries go first, and with a
    ``ttl`` each entry expires that many seconds after it was set. Safe to share between
    threads and clients.

    Args:
        max_entries: the most (query, document) scores kept.
        ttl: seconds an entry lives; ``None``: until it is pushed out.
        shared: answer clients with any credentials alike. By default (``False``) a client
            is answered only what a client with the same key, secret headers and cloud
            identity asked for: a key the server would refuse gets no ranking from here.
        clock: the time in seconds (``time.monotonic``; tests pass a fake one).
    """

    def __init__(
        self,
        max_entries: int = 100_000,
        ttl: float | None = None,
        *,
        shared: bool = False,
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
        if not isinstance(shared, bool):
            raise TypeError(f"shared must be True or False, got {shared!r}")
        self.max_entries = max_entries
        self.ttl = ttl
        self.shared = shared
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, float | None]] = OrderedDict()

    def __repr__(self) -> str:
        shared = ", shared=True" if self.shared else ""
        return (
            f"RerankCache(max_entries={self.max_entries}, ttl={self.ttl}{shared}, "
            f"entries={len(self)})"
        )

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
        return {"max_entries": self.max_entries, "ttl": self.ttl, "shared": self.shared}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["max_entries"], state["ttl"], shared=state.get("shared", False)
        )


class SharedCache:
    """Any cache (a ``dict``, a ``diskcache.Cache``, a Redis client) marked as shared by
    every credential: clients with different keys are answered from each other's entries.
    Without it a cache's entries are scoped by a keyed hash of the client's credentials.

    ``RerankClient(..., cache=SharedCache(diskcache.Cache("/var/cache/rerank")))``
    """

    __slots__ = ("store",)

    def __init__(self, store: object) -> None:
        self.store = check_cache(store)

    def __repr__(self) -> str:
        return f"SharedCache({type(self.store).__name__})"

    def get(self, key: str) -> Any:
        """The value the store holds for ``key``."""
        return self.store.get(key)  # type: ignore[attr-defined]

    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` for ``key`` in the store."""
        _setter(self.store)(key, value)


def _setter(store: Any) -> Callable[[str, Any], Any]:
    setter = getattr(store, "set", None)
    return setter if callable(setter) else store.__setitem__  # type: ignore[no-any-return]


def _is_shared(store: object) -> bool:
    return isinstance(store, SharedCache) or (
        isinstance(store, RerankCache) and store.shared is True
    )


class ScoreCache:
    """A client's view of a user's cache: keys made, values read and written, failures
    logged rather than raised (a cache never fails a call).

    Args:
        store: the user's cache.
        counters: the client's counters, of hits and misses.
        scope: the client's :func:`credential_scope`; entries of a shared store ignore it.
    """

    def __init__(self, store: Any, counters: Counters, scope: str) -> None:
        self.store = store
        self.counters = counters
        self.scope = SHARED_SCOPE if _is_shared(store) else scope
        inner: Any = store.store if isinstance(store, SharedCache) else store
        self._get: Callable[[str], Any] = inner.get
        self._set = _setter(inner)
        self._get_many: Callable[[list[str]], Any] | None = _method(inner, "get_many")
        self._set_many: Callable[[dict[str, str]], Any] | None = _method(inner, "set_many")
        self._warned = False
        self._endpoint: tuple[str, str] | None = None

    def endpoint_key(self, url: str) -> str:
        """:func:`endpoint_key` of ``url``, kept for the client's endpoint."""
        known = self._endpoint
        if known is None or known[0] != url:
            known = self._endpoint = (url, endpoint_key(url))
        return known[1]

    def lookup(self, context: Sequence[Any], query: str) -> ScoreLookup:
        """A lookup for one call's texts; ``context`` is what besides the query, the text
        and the scope decides a score."""
        head = json.dumps(
            [KEY_VERSION, self.scope, *context, query],
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
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
        # Each kind under its own tag: a text that reads "image:url:..." or "record:{...}"
        # (retrieved content is anyone's) never shares their entry. The texts' tag is
        # hashed once per call (the same bytes as after each copy: the same keys).
        texts_head = head.copy()
        texts_head.update(b"\0text\0")
        keys = []
        for text in texts:
            if isinstance(text, str):
                digest = texts_head.copy()
                digest.update(text.encode("utf-8", "surrogatepass"))
            else:
                digest = head.copy()
                digest.update(b"\0image\0" if isinstance(text, Image) else b"\0record\0")
                digest.update(text.key.encode("utf-8", "surrogatepass"))
            keys.append(KEY_PREFIX + digest.hexdigest()[:32])
        self.keys = keys
        known: dict[int, float] = {}
        cache = self.cache
        try:
            found = _found(cache, keys)
            get = cache._get if found is None else found.get
            for position, key in enumerate(keys):
                score = _score_of(get(key), cache.store)
                if score is not None:
                    known[position] = score
        except _AsyncStoreError:
            raise
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
        cache = self.cache
        try:
            if cache._set_many is not None:
                values = {
                    batch[local]: f'{{"score":{score!r},{context}}}'
                    for local, score in pairs
                    if math.isfinite(score)
                }
                if values:
                    _settled(cache._set_many(values), cache.store)
                return
            setter = cache._set
            for local, score in pairs:
                if math.isfinite(score):
                    _settled(setter(batch[local], f'{{"score":{score!r},{context}}}'), cache.store)
        except Exception as error:
            self.cache.failed("store", error)


def _method(store: object, name: str) -> Callable[..., Any] | None:
    method = getattr(store, name, None)
    return method if callable(method) else None


def _found(cache: ScoreCache, keys: list[str]) -> Mapping[str, Any] | None:
    """What the store's ``get_many`` holds of ``keys``, or ``None`` to read them one by one
    (no ``get_many``, or one that answers something else than a mapping: then never again)."""
    get_many = cache._get_many
    if get_many is None:
        return None
    found = get_many(keys)
    if isinstance(found, Mapping):
        return found
    if inspect.isawaitable(found):
        _refuse_awaitable(found, cache.store)
    cache._get_many = None  # another protocol (cachelib answers a list): key by key
    return None


def _settled(done: Any, store: object) -> None:
    """Refuse what a store's setter answered if it is an awaitable (a coroutine ``set``)."""
    if done is not None and inspect.isawaitable(done):
        _refuse_awaitable(done, store)


class _AsyncStoreError(TypeError):
    """A cache answered with an awaitable: refused, never swallowed as a miss."""


def _refuse_awaitable(value: Any, store: object) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        close()  # no "coroutine was never awaited" warning on top of the error
    raise _AsyncStoreError(_ASYNC_REFUSED.format(name=type(store).__name__))


def _score_of(value: Any, store: object = None) -> float | None:
    """The score in a cache entry, or ``None`` for no entry or one not ours.

    Raises:
        TypeError: the entry is an awaitable (the cache's ``get`` is a coroutine).
    """
    if value is None:
        return None
    if not isinstance(value, (str, bytes, bytearray, Mapping)):
        if inspect.isawaitable(value):
            _refuse_awaitable(value, store)
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


def score_cache_for(cache: object, counters: Counters, scope: str) -> ScoreCache | None:
    """The client's view of ``cache`` (``None`` for none), its entries scoped by ``scope``
    (the client's :func:`credential_scope`) unless the cache is shared.

    Raises:
        TypeError: ``cache`` has no ``get`` or no way to set a value, or they are coroutines.
    """
    if cache is None:
        return None
    return ScoreCache(check_cache(cache), counters, scope)


def check_cache(cache: object) -> object:
    """``cache`` if it can serve as one: ``get`` and ``set``, or a mutable mapping, called
    as plain functions.

    Raises:
        TypeError: naming what is supported.
    """
    getter = getattr(cache, "get", None)
    setter = getattr(cache, "set", None)
    if not (callable(getter) and (callable(setter) or isinstance(cache, MutableMapping))):
        raise TypeError(
            "cache must have get(key) and set(key, value) (a RerankCache, a diskcache.Cache) "
            f"or be a mutable mapping (a dict), got {type(cache).__name__}"
        )
    if _is_async(cache):
        raise TypeError(_ASYNC_REFUSED.format(name=type(cache).__name__))
    return cache


def _is_async(cache: object) -> bool:
    """Whether ``cache`` answers with coroutines: its ``get``/``set`` are coroutine
    functions, or (``redis.asyncio``, whose commands are plain functions returning
    coroutines) its ``execute_command`` is one."""
    for name in (
        "get",
        "set",
        "get_many",
        "set_many",
        "__getitem__",
        "__setitem__",
        "execute_command",
    ):
        method = getattr(cache, name, None)
        if method is not None and inspect.iscoroutinefunction(method):
            return True
    return False
