"""Ray Data: rerank a dataset's rows on every machine of a cluster, under one rate limit.

:class:`Reranker` is a callable class for ``Dataset.map_batches``: Ray builds one per actor
of the pool (``concurrency=N``) from ``fn_constructor_kwargs``, and each keeps one client,
with its connections, for every batch it is given::

    import ray
    from pydantic import SecretStr
    from rerank_integrations import RateLimit
    from rerank_integrations.ray import Reranker

    ranked = ray.data.read_parquet("runs/").map_batches(
        Reranker,
        fn_constructor_kwargs={
            "base_url": "https://api.example.com/v1",
            "api_key": SecretStr("sk-..."),
            "model": "jina-reranker-v2-base-multilingual",
            "top_n": 10,
            "rate_limit": RateLimit(requests_per_minute=6000),  # for the whole cluster
        },
        concurrency=8,
        batch_size=256,
    )
    ranked.write_parquet("reranked/")

The rows and results are those of :mod:`rerank_integrations.batch`. A ``RateLimit`` given
to a Reranker is held by a named Ray actor (:class:`ClusterRateLimiter`) that every worker
draws from, so that N workers together stay under the provider's quota rather than N times
it. Needs the ``ray`` extra: ``pip install "rerank-integrations[ray]"``.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import SecretStr

from ._client import RerankClient
from ._ratelimit import Cost, Limiter, RateLimit, RateLimiter
from ._secrets import as_secret
from ._text import display_url
from .batch._engine import (
    DEFAULT_CONCURRENCY,
    LoopThread,
    Outcome,
    RowFailedError,
    check_concurrency,
    check_on_error,
    fatal,
    outcomes,
)
from .batch._rows import Fields, error_json

try:
    import ray
    import ray.exceptions
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'rerank_integrations.ray needs Ray Data: pip install "rerank-integrations[ray]"',
        name=_exc.name,
    ) from _exc

__all__ = ["DEFAULT_RATE_LIMIT_NAME", "ClusterRateLimiter", "Reranker"]

#: The name of the actor that holds a Reranker's ``RateLimit`` for the whole cluster.
DEFAULT_RATE_LIMIT_NAME = "rerank-integrations-rate-limit"

_Limits = tuple[float | None, float | None, float | None]


def _limits(limit: RateLimit) -> _Limits:
    return (limit.requests_per_minute, limit.tokens_per_minute, limit.documents_per_minute)


class _Budget:
    """The actor behind a :class:`ClusterRateLimiter`: one :class:`Limiter` on one clock.

    Plain numbers cross the wire, not the package's dataclasses, so that the actor and its
    callers need nothing in common but this class.
    """

    def __init__(self, requests: float | None, tokens: float | None, docs: float | None) -> None:
        self._limiter = Limiter(RateLimit(requests, tokens, docs), time.monotonic)

    def limits(self) -> _Limits:
        return _limits(self._limiter.limit)

    def reserve(
        self, requests: int, tokens: int, documents: int, max_wait: float | None
    ) -> float | None:
        return self._limiter.reserve(Cost(requests, tokens, documents), max_wait)


# No CPU of its own: a budget must find a place even when the actor pool takes every CPU.
_BudgetActor = ray.remote(num_cpus=0)(_Budget)


class ClusterRateLimiter:
    """A :class:`RateLimit` shared by every process of a Ray cluster, for ``rate_limit=``.

    The budget lives in a named actor (``name``, in ``namespace``: by default the job's),
    created by the first process that needs it; every other process, here or on another
    machine, finds it by its name and draws from it, one actor call per request. The
    limiter itself pickles as its settings, so it can travel in ``fn_constructor_kwargs``.

    Created with :meth:`start` on the driver, the budget lives as long as the driver;
    created by a worker, it lives as long as that worker, and is made again if it goes.

    Args:
        limit: the budget for the whole cluster.
        name: the actor's name: limiters with one name share one budget.
        namespace: the Ray namespace of the actor (default: the job's own).

    Raises:
        ValueError: (when used) an actor of that name holds another budget.
    """

    def __init__(
        self,
        limit: RateLimit,
        name: str = DEFAULT_RATE_LIMIT_NAME,
        namespace: str | None = None,
    ) -> None:
        if not isinstance(limit, RateLimit):
            raise TypeError(f"limit must be a RateLimit, got {type(limit).__name__}")
        self.limit = limit
        self.name = name
        self.namespace = namespace
        #: Whether requests' tokens need counting for this budget.
        self.counts_tokens = limit.tokens_per_minute is not None
        self._actor: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"limits": _limits(self.limit), "name": self.name, "namespace": self.namespace}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(RateLimit(*state["limits"]), state["name"], state["namespace"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ClusterRateLimiter({self.limit!r}, name={self.name!r})"

    def start(self) -> ClusterRateLimiter:
        """Find or create the budget's actor now (on the driver: it then lives as long as
        the driver does); return this limiter."""
        self._handle()
        return self

    def _handle(self) -> Any:
        with self._lock:
            if self._actor is None:
                actor: Any = _BudgetActor.options(
                    name=self.name, namespace=self.namespace, get_if_exists=True
                ).remote(*_limits(self.limit))
                held = tuple(ray.get(actor.limits.remote()))
                if held != _limits(self.limit):
                    raise ValueError(
                        f"the rate limit {self.name!r} already holds another budget "
                        f"({RateLimit(*held)!r}); give this one another name"
                    )
                self._actor = actor
            return self._actor

    def reserve(self, cost: Cost, max_wait: float | None) -> float | None:
        """See :meth:`~rerank_integrations.RateLimiter.reserve`: one call to the actor."""
        for attempt in (1, 2):
            actor = self._handle()
            try:
                wait: float | None = ray.get(
                    actor.reserve.remote(cost.requests, cost.tokens, cost.documents, max_wait)
                )
            except ray.exceptions.RayActorError:
                # The process that made the budget has gone: make it again, once.
                with self._lock:
                    self._actor = None
                if attempt == 2:
                    raise
                continue
            return wait
        raise AssertionError("unreachable")  # pragma: no cover


class Reranker:
    """Rerank the rows of a Ray Data batch: a callable class for ``Dataset.map_batches``.

    Each row has a query in ``query_field`` and its candidates in ``documents_field``
    (strings, or ``{"id", "text"}`` structs); the batch comes back, in the format it came
    in (``dict`` of arrays, pandas or pyarrow), with ``results_field`` added:
    ``[{"index", "relevance_score", "id"?, "span"?}, ...]`` best first, as the batch job
    writes it. ``concurrency`` rows of a batch are reranked at once by the actor's one
    client, reused for every batch.

    Args:
        base_url, api_key, model: as for ``RerankClient`` (else the ``RERANK_*``
            environment of the worker); the key is kept as a ``SecretStr`` and never shown:
            pass it as a ``SecretStr`` so that it is hidden on its way too.
        query_field, documents_field, results_field: the names of those fields of a row
            (its columns). One vocabulary for the batch job and this step: a *field* is a
            named value of a row, a key of a JSON object or a column of a dataset.
        error_field: where a failed row's error goes (``on_error="record"``).
        text_field, document_id_field: the fields of a document struct.
        query_column, documents_column, results_column, error_column: deprecated
            aliases of the ``*_field`` names (a ``DeprecationWarning``).
        top_n: results per row; ``None``: all.
        concurrency: rows of a batch reranked at once (and the client's requests in flight).
        on_error: a row that fails after its retries: ``"record"`` gives it
            ``results: None`` and its ``{"type", "message"}`` in ``error_field``; ``"skip"``
            drops it from the batch; ``"stop"`` raises (and Ray fails the task). A refused
            key raises whatever this says.
        rate_limit: a ``RateLimit`` for the whole cluster (held by a
            :class:`ClusterRateLimiter` named ``rate_limit_name``), or any rate limiter.
        rate_limit_name: the name of the cluster's budget for a ``RateLimit``.
        **settings: any other ``RerankClient`` argument (``dialect``, ``timeout``,
            ``max_retries``, ``max_tokens_per_document``, ``long_documents``...);
            ``adaptive_concurrency`` is on unless set.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        model: str | None = None,
        *,
        query_field: str = "query",
        documents_field: str = "documents",
        results_field: str = "results",
        error_field: str = "error",
        text_field: str = "text",
        document_id_field: str = "id",
        top_n: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_error: str = "record",
        rate_limit: RateLimit | RateLimiter | None = None,
        rate_limit_name: str = DEFAULT_RATE_LIMIT_NAME,
        query_column: str | None = None,
        documents_column: str | None = None,
        results_column: str | None = None,
        error_column: str | None = None,
        **settings: Any,
    ) -> None:
        api_key = as_secret(api_key)  # out of this frame's locals at once
        query_field = _renamed("query", query_column, query_field)
        documents_field = _renamed("documents", documents_column, documents_field)
        results_field = _renamed("results", results_column, results_field)
        error_field = _renamed("error", error_column, error_field)
        self._arguments: dict[str, Any] = {
            "base_url": base_url,
            "api_key": api_key,
            "model": model,
            "query_field": query_field,
            "documents_field": documents_field,
            "results_field": results_field,
            "error_field": error_field,
            "text_field": text_field,
            "document_id_field": document_id_field,
            "top_n": top_n,
            "concurrency": concurrency,
            "on_error": on_error,
            "rate_limit": rate_limit,
            "rate_limit_name": rate_limit_name,
            **settings,
        }
        self._on_error = check_on_error(on_error)
        self._concurrency = check_concurrency(concurrency)
        self._top_n = top_n
        self._fields = Fields(
            query=query_field,
            documents=documents_field,
            text=text_field,
            document_id=document_id_field,
            results=results_field,
            error=error_field,
        )
        if isinstance(rate_limit, RateLimit):
            rate_limit = ClusterRateLimiter(rate_limit, rate_limit_name)
        settings.setdefault("adaptive_concurrency", True)
        settings.setdefault("max_concurrency", concurrency)
        self.client = RerankClient(base_url, api_key, model, rate_limit=rate_limit, **settings)
        self._runner: LoopThread | None = None
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        # A Reranker travels as its settings (the key a SecretStr); the copy builds its own
        # client and loop where it lands.
        return (_rebuild, (self._arguments,))

    def __repr__(self) -> str:
        client = self.client
        return (
            f"Reranker(endpoint={display_url(client.endpoint)!r}, model={client.model!r}, "
            f"api_key={'***' if client.settings.api_key else None})"
        )

    def __call__(self, batch: Any) -> Any:
        """Rerank one batch: a ``dict`` of columns, a pandas ``DataFrame`` or a pyarrow
        ``Table``; the same comes back, with the results column added."""
        if isinstance(batch, Mapping):
            return self._columns(batch)
        package = type(batch).__module__.partition(".")[0]
        if package == "pandas":
            return self._frame(batch)
        if package == "pyarrow":
            return self._table(batch)
        raise TypeError(
            f"a batch must be a dict of columns, a pandas DataFrame or a pyarrow Table, "
            f"got {type(batch).__name__}"
        )

    def close(self) -> None:
        """Close the client's connections and stop the actor's event loop (Ray does both
        when it ends the actor; this is for a Reranker called by hand)."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.run(self.client.aclose())
            runner.close()
        self.client.close()

    def __enter__(self) -> Reranker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- batches ------------------------------------------------------------------------------

    def _rank(self, queries: Sequence[Any], documents: Sequence[Any]) -> list[Outcome]:
        fields = self._fields
        rows = [
            {fields.query: _plain(query), fields.documents: _plain(candidates)}
            for query, candidates in zip(queries, documents, strict=True)
        ]
        with self._lock:
            if self._runner is None:
                self._runner = LoopThread("rerank-ray-loop")
            runner = self._runner

        async def rank() -> list[Outcome]:
            stream = outcomes(
                enumerate(rows),
                self.client,
                fields,
                top_n=self._top_n,
                concurrency=self._concurrency,
            )
            return [outcome async for outcome in stream]

        ranked = runner.run(rank())
        for outcome in ranked:
            if outcome.error is not None and (self._on_error == "stop" or fatal(outcome.error)):
                raise RowFailedError(outcome.position, None, outcome.error) from outcome.error
        return ranked

    def _added(self, ranked: list[Outcome]) -> tuple[dict[str, list[Any]], list[bool] | None]:
        """The columns to add, and which rows to keep (``None``: all)."""
        added: dict[str, list[Any]] = {self._fields.results: [o.results for o in ranked]}
        if self._on_error == "record":
            added[self._fields.error] = [
                None if o.error is None else error_json(o.error) for o in ranked
            ]
        keep = None
        if self._on_error == "skip" and any(o.error is not None for o in ranked):
            keep = [o.error is None for o in ranked]
        return added, keep

    def _columns(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        fields = self._fields
        ranked = self._rank(batch[fields.query], batch[fields.documents])
        added, keep = self._added(ranked)
        # Ray turns an array of arrays into pickled objects: lists keep it a list column.
        out = {name: _listed(column) for name, column in batch.items()}
        out.update(added)
        if keep is not None:
            out = {
                name: [v for v, k in zip(column, keep, strict=True) if k]
                for name, column in out.items()
            }
        return out

    def _frame(self, frame: Any) -> Any:
        fields = self._fields
        ranked = self._rank(frame[fields.query].tolist(), frame[fields.documents].tolist())
        added, keep = self._added(ranked)
        out = frame.copy()
        for name, column in added.items():
            out[name] = column
        if keep is not None:
            out = out[keep].reset_index(drop=True)
        return out

    def _table(self, table: Any) -> Any:
        import pyarrow  # type: ignore[import-untyped]

        fields = self._fields
        ranked = self._rank(
            table.column(fields.query).to_pylist(), table.column(fields.documents).to_pylist()
        )
        added, keep = self._added(ranked)
        for name, column in added.items():
            array = pyarrow.array(column)
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, array)
            else:
                table = table.append_column(name, array)
        if keep is not None:
            table = table.filter(pyarrow.array(keep))
        return table


def _renamed(name: str, old: str | None, new: str) -> str:
    """``{name}_field``, given under its deprecated name ``{name}_column`` or its own."""
    if old is None:
        return new
    warnings.warn(
        f"{name}_column is deprecated: use {name}_field (the batch job and the Ray step "
        "name a row's fields alike)",
        DeprecationWarning,
        stacklevel=3,
    )
    if new != _FIELD_DEFAULTS[name]:
        raise TypeError(f"pass {name}_field or {name}_column, not both")
    return old


_FIELD_DEFAULTS = {
    "query": "query",
    "documents": "documents",
    "results": "results",
    "error": "error",
}


def _rebuild(arguments: dict[str, Any]) -> Reranker:
    return Reranker(**arguments)


def _plain(value: Any) -> Any:
    """Python values from numpy ones (an array of documents, a numpy string)."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def _listed(column: Any) -> Any:
    """A numpy array of arrays (a list column) as a list of lists; anything else as it is."""
    dtype = getattr(column, "dtype", None)
    if dtype is None or dtype.kind != "O" or not len(column):
        return column
    if any(hasattr(value, "tolist") for value in column):
        return [_plain(value) for value in column]
    return column
