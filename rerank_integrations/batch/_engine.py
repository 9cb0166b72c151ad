"""Rows in, rankings out, in input order: many rows in flight on one event loop, under the
client's rate limit and adaptive concurrency; and the same from synchronous code."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from typing import Any, TypeVar

from .._client import RerankClient
from .._exceptions import AuthenticationError, ConfigurationError, RerankError, RowFailedError
from .._types import NOT_GIVEN, NotGiven
from ._rows import (
    ON_ERROR_MODES,
    Fields,
    InvalidRow,
    InvalidRowError,
    error_json,
    parse_row,
    results_json,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Kept",
    "LoopThread",
    "Outcome",
    "RowFailedError",
    "arerank_rows",
    "check_concurrency",
    "check_on_error",
    "fatal",
    "outcomes",
    "rerank_rows",
    "run_blocking",
]

T = TypeVar("T")

#: Rows reranked at once by default: the client's default number of requests in flight.
DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Kept:
    """A row whose line is taken over as it is from the output being rewritten.

    Attributes:
        line: the whole line, with its newline.
    """

    line: bytes


Row = Mapping[str, Any] | InvalidRow | Kept


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one row.

    Attributes:
        position: the row's place in the input, from 0.
        row: the row as read (an :class:`InvalidRow` for a line that is no row, a
            :class:`Kept` for a line taken over from the output).
        results: its ranking, as written into the row; ``None`` when it failed.
        error: why it failed; ``None`` when it did not.
        documents: how many documents it had.
    """

    position: int
    row: Row
    results: list[dict[str, Any]] | None
    error: BaseException | None
    documents: int

    def output(self, fields: Fields) -> dict[str, Any]:
        """The row as written: the input row with its ranking, or with its error."""
        if isinstance(self.row, (InvalidRow, Kept)):
            raise ValueError("a line that is no row, or is kept, has no output row")
        written = dict(self.row)
        if self.error is None:
            written.pop(fields.error, None)
            written[fields.results] = self.results
        else:
            written[fields.results] = None
            written[fields.error] = error_json(self.error)
        return written


def check_on_error(on_error: object) -> str:
    """``on_error``, checked."""
    if on_error not in ON_ERROR_MODES:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR_MODES)}, got {on_error!r}")
    return str(on_error)


def check_concurrency(concurrency: object) -> int:
    """``concurrency``, checked."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number of at least 1, got {concurrency!r}")
    return concurrency


def fatal(error: BaseException) -> bool:
    """Whether an error would fail every row alike (a refused key, settings that cannot
    work), so that a job stops whatever ``on_error`` says rather than record it millions of
    times."""
    return isinstance(error, (AuthenticationError, ConfigurationError))


async def _rerank_one(
    client: RerankClient,
    position: int,
    row: Row,
    fields: Fields,
    top_n: int | None,
    instruction: str | NotGiven | None = NOT_GIVEN,
) -> Outcome:
    if isinstance(row, Kept):
        return Outcome(position, row, None, None, 0)
    documents = 0
    try:
        query, texts, ids = parse_row(row, fields)
        documents = len(texts)
        response = await client.arerank(query, texts, top_n=top_n, instruction=instruction)
    except (RerankError, InvalidRowError) as error:
        return Outcome(position, row, None, error, documents)
    except (TypeError, ValueError) as error:  # the client refused the row's data (no query)
        return Outcome(position, row, None, InvalidRowError(str(error)), documents)
    return Outcome(position, row, results_json(response, ids), None, documents)


async def _items(
    rows: Iterable[tuple[int, Row]] | AsyncIterable[tuple[int, Row]],
) -> AsyncIterator[tuple[int, Row]]:
    if isinstance(rows, AsyncIterable):
        async for item in rows:
            yield item
    else:
        for item in rows:
            yield item


async def outcomes(
    rows: Iterable[tuple[int, Row]] | AsyncIterable[tuple[int, Row]],
    client: RerankClient,
    fields: Fields,
    *,
    top_n: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    instruction: str | NotGiven | None = NOT_GIVEN,
) -> AsyncGenerator[Outcome, None]:
    """Rerank ``(position, row)`` pairs, ``concurrency`` rows at a time, and yield their
    outcomes in input order.

    At most ``2 * concurrency`` rows are read ahead of the one yielded last (the rows in
    flight and the finished ones waiting for a slower row before them), so memory stays
    bounded whatever the input's length. Closing the generator cancels the rows in flight.
    """
    window = 2 * concurrency
    limit = asyncio.Semaphore(concurrency)
    pending: deque[asyncio.Future[Outcome]] = deque()

    async def one(position: int, row: Row) -> Outcome:
        async with limit:
            return await _rerank_one(client, position, row, fields, top_n, instruction)

    try:
        async for position, row in _items(rows):
            pending.append(asyncio.ensure_future(one(position, row)))
            while pending and (len(pending) >= window or pending[0].done()):
                yield await pending[0]
                pending.popleft()
        while pending:
            yield await pending[0]
            pending.popleft()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _row_id(row: object, fields: Fields) -> object:
    return row.get(fields.id) if isinstance(row, Mapping) else None


async def arerank_rows(
    rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
    client: RerankClient,
    *,
    top_n: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_error: str = "record",
    query_field: str = "query",
    documents_field: str = "documents",
    id_field: str = "id",
    text_field: str = "text",
    document_id_field: str = "id",
    results_field: str = "results",
    error_field: str = "error",
    instruction: str | NotGiven | None = NOT_GIVEN,
) -> AsyncGenerator[dict[str, Any], None]:
    """Rerank rows and yield each with its ranking, in input order.

    Each row is ``{"query": str, "documents": [str | {"id": ..., "text": str}], ...}``; it
    comes back as a new dict with every field it had and
    ``"results": [{"index", "relevance_score", "id"?, "span"?}, ...]``, best first: ``id``
    when the document had one, ``span`` (character offsets of the part that was scored)
    when the client cut a long document. ``concurrency`` rows are reranked at once, each by
    one ``client.arerank`` call (so the client's rate limit, adaptive concurrency and
    batching apply); rows are read lazily, a few ahead, so an endless iterable is fine.

    Args:
        rows: the rows, a (async) iterable of mappings.
        client: the client that reranks them.
        top_n: results per row, best first; ``None``: all.
        concurrency: rows reranked at once.
        on_error: a row that fails after its retries (or cannot be sent): ``"record"``
            yields it with ``"results": None`` and ``"error": {"type", "message"}``;
            ``"skip"`` leaves it out; ``"stop"`` raises :class:`RowFailedError`.
        query_field, documents_field, id_field, text_field, document_id_field,
        results_field, error_field: the field names (see :class:`~._rows.Fields`).
        instruction: what every row's ranking should favour; left out, the client's
            ``instruction``; ``None``: none.

    Raises:
        RowFailedError: a row failed and ``on_error="stop"``, or it failed with an error
            that every row would meet (a refused key, settings that cannot work).
    """
    mode = check_on_error(on_error)
    fields = Fields(
        query_field,
        documents_field,
        id_field,
        text_field,
        document_id_field,
        results_field,
        error_field,
    )
    stream = outcomes(
        _numbered(rows),
        client,
        fields,
        top_n=top_n,
        concurrency=check_concurrency(concurrency),
        instruction=instruction,
    )
    try:
        async for outcome in stream:
            if outcome.error is not None:
                if mode == "stop" or fatal(outcome.error):
                    row_id = _row_id(outcome.row, fields)
                    raise RowFailedError(outcome.position, row_id, outcome.error) from (
                        outcome.error
                    )
                if mode == "skip":
                    continue
            yield outcome.output(fields)
    finally:
        await stream.aclose()


async def _numbered(
    rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
) -> AsyncIterator[tuple[int, Mapping[str, Any] | InvalidRow]]:
    position = 0
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            yield position, row
            position += 1
    else:
        for row in rows:
            yield position, row
            position += 1


def rerank_rows(
    rows: Iterable[Mapping[str, Any]],
    client: RerankClient,
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """The synchronous twin of :func:`arerank_rows`, with the same options: a generator of
    the rows with their rankings, in input order.

    The rows are reranked on an event loop of its own in a background thread, so it works
    where a loop is already running (a notebook) as well as in plain scripts; ``rows`` is
    read from that thread. Closing the generator early cancels the rows in flight.
    """
    runner = LoopThread()
    stream = arerank_rows(rows, client, **options)
    try:
        while True:
            try:
                yield runner.run(stream.__anext__())
            except StopAsyncIteration:
                return
    finally:
        try:
            runner.run(stream.aclose())
        finally:
            runner.close()


class LoopThread:
    """An event loop running in a daemon thread, to run coroutines from synchronous code
    (from any thread: coroutines sent at once run together on the one loop)."""

    def __init__(self, name: str = "rerank-batch-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result()

    def close(self) -> None:
        async def shutdown() -> None:
            await self._loop.shutdown_asyncgens()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


def run_blocking(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())``, or, when this thread already runs an event loop (a notebook),
    the same in a thread of its own, waited for."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    box: list[T] = []
    failure: list[BaseException] = []
    started = threading.Event()
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[T]]] = []

    async def watched() -> T:
        task = asyncio.ensure_future(main())
        running.append((asyncio.get_running_loop(), task))
        started.set()
        return await task

    def target() -> None:
        try:
            box.append(asyncio.run(watched()))
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)
        finally:
            started.set()

    thread = threading.Thread(target=target, name="rerank-batch", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        # Interrupted (Ctrl-C in a notebook): the job is cancelled, and what it wrote stays.
        started.wait()
        for loop, task in running:
            loop.call_soon_threadsafe(task.cancel)
        thread.join()
        raise
    if failure:
        raise failure[0]
    return box[0]
