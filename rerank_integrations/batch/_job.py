"""The file job: rerank every row of an input file into a JSON Lines output, resumably."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from .._client import RerankClient
from ._engine import (
    DEFAULT_CONCURRENCY,
    Outcome,
    RowFailedError,
    check_concurrency,
    check_on_error,
    fatal,
    outcomes,
    run_blocking,
)
from ._files import OutputFile, ResumePlan, Source, open_source, plan_resume
from ._progress import Progress
from ._rows import Fields, InvalidRow, encode_line

__all__ = ["BatchSummary", "arun", "run"]

#: Seconds between syncs of the output to disk while a job runs.
_SYNC_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a job did.

    Attributes:
        already_done: rows found in the output when the job started (skipped).
        rows: rows this run handled: ``succeeded + failed``.
        succeeded: rows written with their ranking.
        failed: rows that failed after their retries (or could not be sent).
        recorded: failed rows written with their error.
        skipped: failed rows left out of the output (a rerun tries them again).
        documents: documents in the rows handled: (query, document) pairs.
        requests: HTTP requests sent, retries included.
        retries: requests that were retries.
        rate_limited: 429 answers.
        seconds: how long the run took.
        stopped: why the job stopped before the end of its input, if it did.
    """

    already_done: int = 0
    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    recorded: int = 0
    skipped: int = 0
    documents: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    stopped: RowFailedError | None = None

    @property
    def ok(self) -> bool:
        """Whether every row of the input is in the output with its ranking, as far as this
        run knows: nothing failed and nothing stopped it."""
        return self.failed == 0 and self.stopped is None

    @property
    def pairs_per_second(self) -> float:
        """(query, document) pairs reranked per second."""
        return self.documents / self.seconds if self.seconds > 0 else 0.0


def _rows_of(source: Source, plan: ResumePlan) -> Iterator[tuple[int, Any]]:
    position, offset = plan.start()
    for number, _, row in source.read(position, offset, plan.wanted()):
        yield number, row


class _Counts:
    def __init__(self) -> None:
        self.succeeded = 0
        self.recorded = 0
        self.skipped = 0
        self.failed = 0
        self.documents = 0


async def arun(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    client: RerankClient | None = None,
    top_n: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_error: str = "record",
    max_failures: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    progress_interval: float = 10.0,
    progress_stream: TextIO | None = None,
    input_format: str | None = None,
    query_field: str = "query",
    documents_field: str = "documents",
    id_field: str = "id",
    text_field: str = "text",
    document_id_field: str = "id",
    results_field: str = "results",
    error_field: str = "error",
    **client_settings: Any,
) -> BatchSummary:
    """Rerank every row of ``input_path`` into ``output_path`` (JSON Lines), in input order.

    Rows already in the output are skipped, so a job that was killed is finished by
    running it again; a killed job loses only the rows in flight, and the output holds
    whole lines at every instant. Rows stream in and out: memory does not grow with the
    input. The input is JSON Lines, or Parquet (``.parquet``, needs ``pyarrow``).

    Args:
        input_path: rows ``{"id"?, "query": str, "documents": [str | {"id", "text"}]}``.
        output_path: each input row with ``"results"`` added (see :func:`arerank_rows`).
        client: the client to use (left open); without one, a client is built from
            ``client_settings`` (the ``RerankClient`` arguments and the ``RERANK_*``
            environment) with ``adaptive_concurrency=True`` and ``max_concurrency`` of
            ``concurrency``, and closed at the end.
        top_n: results per row, best first; ``None``: all.
        concurrency: rows reranked at once.
        on_error: a row that fails after its retries: ``"record"`` writes it with
            ``"results": null`` and ``"error": {"type", "message"}``; ``"skip"`` leaves it
            out (a rerun tries it again); ``"stop"`` ends the job there (unwritten, so a
            rerun tries it again). A refused key or settings that cannot work stop the job
            whatever ``on_error`` says, and so does a line that is no JSON object unless
            ``on_error="skip"``.
        max_failures: stop once more rows than this have failed.
        overwrite: start over, emptying the output, instead of resuming.
        progress: progress on ``progress_stream``: a line redrawn in place on a terminal,
            else a plain line every ``progress_interval`` seconds; ``False``: none.
        progress_interval: seconds between plain progress lines.
        progress_stream: where progress goes (default ``sys.stderr``).
        input_format: ``"jsonl"`` or ``"parquet"``; default: from the file name.
        query_field: the field holding a row's query.
        documents_field: the field holding a row's documents.
        id_field: the field holding a row's id.
        text_field: the field holding a document's text, in a document object.
        document_id_field: the field holding a document's id, in a document object.
        results_field: the field the ranking is written to.
        error_field: the field a failed row's error is written to.
        **client_settings: ``RerankClient`` arguments, when no ``client`` is given.

    Returns:
        A :class:`BatchSummary`; ``summary.ok`` says whether every row succeeded.

    Raises:
        ResumeError: the output was written from another input, or another job writes it.
        FileNotFoundError: no input file.
    """
    mode = check_on_error(on_error)
    check_concurrency(concurrency)
    if max_failures is not None and (isinstance(max_failures, bool) or max_failures < 0):
        raise ValueError(f"max_failures must be 0 or more, got {max_failures!r}")
    fields = Fields(
        query_field,
        documents_field,
        id_field,
        text_field,
        document_id_field,
        results_field,
        error_field,
    )
    if client is not None and client_settings:
        raise TypeError(
            "pass either client= or client settings "
            f"({', '.join(sorted(client_settings))}), not both"
        )
    source = open_source(input_path, input_format)
    own = client is None
    if client is None:
        client_settings.setdefault("adaptive_concurrency", True)
        client_settings.setdefault("max_concurrency", concurrency)
        client = RerankClient(**client_settings)
    started = time.monotonic()
    try:
        with OutputFile(output_path, overwrite=overwrite) as output:
            plan = ResumePlan() if overwrite else plan_resume(source, output.path, fields)
            if plan.partial or plan.good_size < output.path.stat().st_size:
                output.truncate(plan.good_size)
            stream = progress_stream if progress_stream is not None else sys.stderr
            meter = None
            if progress:
                meter = Progress(
                    stream,
                    total=source.count(),
                    done_before=plan.done,
                    live=_is_terminal(stream),
                    interval=progress_interval,
                )
            before = client.stats()
            counts = _Counts()
            stopped: RowFailedError | None = None
            rows = outcomes(
                _rows_of(source, plan), client, fields, top_n=top_n, concurrency=concurrency
            )
            try:
                stopped = await _drain(
                    rows, output, fields, mode, max_failures, counts, meter, client, before
                )
            finally:
                await rows.aclose()
                if meter is not None:
                    meter.finish()
        after = client.stats()
    finally:
        if own:
            await client.aclose()
    return BatchSummary(
        already_done=plan.done,
        rows=counts.succeeded + counts.failed,
        succeeded=counts.succeeded,
        failed=counts.failed,
        recorded=counts.recorded,
        skipped=counts.skipped,
        documents=counts.documents,
        requests=after.requests - before.requests,
        retries=after.retries - before.retries,
        rate_limited=after.rate_limited - before.rate_limited,
        seconds=time.monotonic() - started,
        stopped=stopped,
    )


async def _drain(
    rows: AsyncIterator[Outcome],
    output: OutputFile,
    fields: Fields,
    mode: str,
    max_failures: int | None,
    counts: _Counts,
    meter: Progress | None,
    client: RerankClient,
    before: Any,
) -> RowFailedError | None:
    """Write the outcomes as they come, in order; the error that stopped the job, if one did."""
    synced = time.monotonic()
    async for outcome in rows:
        counts.documents += outcome.documents
        error = outcome.error
        if error is None:
            output.write(encode_line(outcome.output(fields)))
            counts.succeeded += 1
        else:
            counts.failed += 1
            invalid = isinstance(outcome.row, InvalidRow)
            row_id = None if invalid else _row_id(outcome, fields)
            if fatal(error) or mode == "stop" or (invalid and mode != "skip"):
                return RowFailedError(outcome.position, row_id, error)
            if mode == "record":
                output.write(encode_line(outcome.output(fields)))
                counts.recorded += 1
            else:
                counts.skipped += 1
            if max_failures is not None and counts.failed > max_failures:
                return RowFailedError(outcome.position, row_id, error)
        if meter is not None:
            retries = client.stats().retries - before.retries
            meter.update(counts.succeeded + counts.failed, counts.documents, retries, counts.failed)
        now = time.monotonic()
        if now - synced >= _SYNC_SECONDS:
            output.sync()
            synced = now
    return None


def _row_id(outcome: Outcome, fields: Fields) -> object:
    row = outcome.row
    return None if isinstance(row, InvalidRow) else row.get(fields.id)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


def run(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    **options: Any,
) -> BatchSummary:
    """The synchronous twin of :func:`arun`, with the same options. It also works where an
    event loop already runs (a notebook): the job then runs on a loop in a thread of its
    own, and an interrupt cancels it, leaving the output whole."""
    return run_blocking(lambda: arun(input_path, output_path, **options))
