"""The file job: rerank every row of an input file into a JSON Lines output, resumably."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .._client import RerankClient
from .._exceptions import RowFailedError
from .._retry import RetryPolicy
from .._types import NOT_GIVEN, NotGiven
from ._engine import (
    DEFAULT_CONCURRENCY,
    Kept,
    Outcome,
    Row,
    check_concurrency,
    check_on_error,
    fatal,
    outcomes,
    run_blocking,
)
from ._files import (
    OutputFile,
    ResumePlan,
    RewriteFile,
    RewritePlan,
    Source,
    check_not_same_file,
    open_source,
    plan_resume,
    plan_rewrite,
)
from ._progress import Progress
from ._rows import Fields, InvalidRow, encode_line

__all__ = ["PATIENT_RETRY", "BatchSummary", "arun", "run"]

#: The retry policy of a job that builds its own client (the command line's too). No one
#: waits on an offline job, so it is patient where an interactive call gives up: ten
#: retries, waits growing from 1 s to a cap of 60 s, and a server's ``Retry-After`` honoured
#: up to 10 minutes. A server failing 15 % of requests at random then fails about one row
#: in a billion (0.15 ** 11).
PATIENT_RETRY = RetryPolicy(
    max_retries=10, initial_delay=1.0, max_delay=60.0, max_retry_after=600.0
)

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
        failed_before: of the rows already done, those the output holds as failed
            (written with their error): ``retry_failed`` tries them again.
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
    failed_before: int = 0

    @property
    def ok(self) -> bool:
        """Whether every row of the input is in the output with its ranking, as far as this
        run knows: nothing failed, nothing stopped it, and no row done before had failed."""
        return self.failed == 0 and self.stopped is None and self.failed_before == 0

    @property
    def pairs_per_second(self) -> float:
        """(query, document) pairs reranked per second."""
        return self.documents / self.seconds if self.seconds > 0 else 0.0


class _Counts:
    def __init__(self) -> None:
        self.succeeded = 0
        self.recorded = 0
        self.skipped = 0
        self.failed = 0
        self.documents = 0


class _Feed:
    """The rows of a run, numbered as the file numbers them, for the engine.

    Remembers the file's number of each row in flight, so that a message can say "row N"
    and mean line N of a JSON Lines file.
    """

    def __init__(self) -> None:
        self.numbers: dict[int, int] = {}

    def resume(self, source: Source, plan: ResumePlan) -> Iterator[tuple[int, Row]]:
        first, offset = plan.start()
        for position, _, number, row in source.read_numbered(first, offset, plan.wanted()):
            self.numbers[position] = number
            yield position, row

    def rewrite(
        self, source: Source, plan: RewritePlan, output: RewriteFile, retry_failed: bool
    ) -> Iterator[tuple[int, Row]]:
        for position, _, number, row in source.read_numbered():
            self.numbers[position] = number
            line = plan.lines.get(position)
            if line is not None and not (retry_failed and line[2]):
                yield position, Kept(output.old_line(line[0], line[1]))
            else:
                yield position, row

    def number(self, position: int) -> int:
        return self.numbers.pop(position, position + 1)


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
    retry_failed: bool = False,
    redo_changed: bool = False,
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
    instruction: str | NotGiven | None = NOT_GIVEN,
    **client_settings: Any,
) -> BatchSummary:
    """Rerank every row of ``input_path`` into ``output_path`` (JSON Lines), in input order.

    Rows already in the output are skipped, so a job that was killed is finished by
    running it again; a killed job loses only the rows in flight, and the output holds
    whole lines at every instant (a failed write, a full disk, is cut back to the last
    whole line). Rows are known again by their content, id included, so rows sharing an id
    (or with a ``null`` one) are never mistaken for each other, and an output written from
    another input, or before rows of this one were edited, is refused. Rows stream in and
    out: memory does not grow with the input. The input is JSON Lines, or Parquet
    (``.parquet``, needs ``pyarrow``).

    Args:
        input_path: rows ``{"id"?, "query": str, "documents": [str | {"id", "text"}]}``.
        output_path: each input row with ``"results"`` added (see :func:`arerank_rows`);
            never the input file itself.
        client: the client to use (left open, with its own retry policy); without one, a
            client is built from ``client_settings`` (the ``RerankClient`` arguments and
            the ``RERANK_*`` environment) with ``adaptive_concurrency=True``,
            ``max_concurrency`` of ``concurrency`` and the patient ``retry`` of
            :data:`PATIENT_RETRY`, and closed at the end.
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
        retry_failed: try again the rows the output holds as failed (written with their
            error), and the rows it lacks, and rewrite the output with every row in input
            order: through a temporary file renamed over it, so that it is whole at every
            instant. Stopped or interrupted, what was redone so far is kept.
        redo_changed: rows of the output that are no row of the input as it is now (edited
            since) are dropped and their rows redone, rewriting the output as
            ``retry_failed`` does, instead of refusing the output.
        progress: progress on ``progress_stream``: a line redrawn in place on a terminal,
            else a plain line every ``progress_interval`` seconds; ``False``: none.
        progress_interval: seconds between plain progress lines.
        progress_stream: where progress goes (default ``sys.stderr``).
        input_format: ``"jsonl"`` or ``"parquet"``; default: from the file name.
        query_field, documents_field, id_field, text_field, document_id_field,
        results_field, error_field: the field names.
        instruction: what every row's ranking should favour (see the client's
            ``instruction``); left out, the client's; ``None``: none. Works with a
            ``client`` given too.
        **client_settings: ``RerankClient`` arguments, when no ``client`` is given.

    Returns:
        A :class:`BatchSummary`; ``summary.ok`` says whether every row succeeded.

    Raises:
        ResumeError: the output was written from another input (or rows of this one were
            edited since), or another job writes it.
        ValueError: the output is the input file (checked before either is touched).
        FileNotFoundError: no input file.
        OSError: writing the output failed (it is left with whole rows only).
    """
    mode = check_on_error(on_error)
    check_concurrency(concurrency)
    if max_failures is not None and (isinstance(max_failures, bool) or max_failures < 0):
        raise ValueError(f"max_failures must be 0 or more, got {max_failures!r}")
    if overwrite and (retry_failed or redo_changed):
        raise ValueError("overwrite starts over: it cannot go with retry_failed or redo_changed")
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
    check_not_same_file(input_path, output_path)
    source = open_source(input_path, input_format)
    own = client is None
    if client is None:
        client_settings.setdefault("adaptive_concurrency", True)
        client_settings.setdefault("max_concurrency", concurrency)
        client_settings.setdefault("retry", PATIENT_RETRY)
        client = RerankClient(**client_settings)
    started = time.monotonic()
    stream = progress_stream if progress_stream is not None else sys.stderr
    job = _Job(
        source,
        fields,
        mode,
        max_failures,
        client,
        top_n=top_n,
        concurrency=concurrency,
        instruction=instruction,
        progress=(stream, progress_interval) if progress else None,
    )
    try:
        if (retry_failed or redo_changed) and _has_rows(Path(output_path)):
            await job.rewrite(Path(output_path), retry_failed, redo_changed)
        else:
            await job.append(Path(output_path), overwrite)
    finally:
        if job.meter is not None:
            job.meter.finish()
        if own:
            await client.aclose()
    counts = job.counts
    after = client.stats()
    before = job.before
    return BatchSummary(
        already_done=job.already_done,
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
        stopped=job.stopped,
        failed_before=job.failed_before,
    )


def _has_rows(output: Path) -> bool:
    try:
        return output.stat().st_size > 0
    except FileNotFoundError:
        return False


class _Job:
    """One run: what it reads, where it writes, and what it counted."""

    def __init__(
        self,
        source: Source,
        fields: Fields,
        mode: str,
        max_failures: int | None,
        client: RerankClient,
        *,
        top_n: int | None,
        concurrency: int,
        instruction: str | NotGiven | None = NOT_GIVEN,
        progress: tuple[TextIO, float] | None,
    ) -> None:
        self.source = source
        self.fields = fields
        self.mode = mode
        self.max_failures = max_failures
        self.client = client
        self.top_n = top_n
        self.concurrency = concurrency
        self.instruction = instruction
        self.progress = progress
        self.meter: Progress | None = None
        self.counts = _Counts()
        self.before = client.stats()
        self.already_done = 0
        self.failed_before = 0
        self.stopped: RowFailedError | None = None
        self.feed = _Feed()
        self.last = -1  # the position of the last row handled

    def _start_meter(self) -> None:
        if self.progress is not None:
            stream, interval = self.progress
            self.meter = Progress(
                stream,
                total=self.source.count(),
                done_before=self.already_done,
                live=_is_terminal(stream),
                interval=interval,
            )

    async def append(self, path: Path, overwrite: bool) -> None:
        """Resume: append the rows the output lacks."""
        with OutputFile(path, overwrite=overwrite) as output:
            plan = ResumePlan() if overwrite else plan_resume(self.source, output.path, self.fields)
            if plan.partial or plan.good_size < output.path.stat().st_size:
                output.truncate(plan.good_size)
            self.already_done = plan.done
            self.failed_before = plan.failed
            self._start_meter()
            await self._drain(self.feed.resume(self.source, plan), output, {})

    async def rewrite(self, path: Path, retry_failed: bool, redo_changed: bool) -> None:
        """Rewrite the output in input order, redoing failed, missing or changed rows."""
        output = RewriteFile(path)
        try:
            plan = plan_rewrite(self.source, path, self.fields, redo_changed=redo_changed)
            kept = [
                failed for _, _, failed in plan.lines.values() if not retry_failed or not failed
            ]
            self.already_done = len(kept)
            self.failed_before = sum(kept)
            self._start_meter()
            rows = self.feed.rewrite(self.source, plan, output, retry_failed)
            try:
                await self._drain(rows, output, plan.lines)
            except (asyncio.CancelledError, KeyboardInterrupt):
                self._finish(output, plan)
                raise
            self._finish(output, plan)
        finally:
            output.close()  # after a failure (a full disk): the old output stands

    def _finish(self, output: RewriteFile, plan: RewritePlan) -> None:
        """Stopped or interrupted: the rows not reached keep the lines they had, so that
        what was redone so far is kept and nothing that was there is lost."""
        for position in sorted(p for p in plan.lines if p > self.last):
            offset, length, _ = plan.lines[position]
            output.write(output.old_line(offset, length))
        output.commit()

    async def _drain(
        self,
        rows: Iterator[tuple[int, Row]],
        output: OutputFile | RewriteFile,
        old: dict[int, tuple[int, int, bool]],
    ) -> None:
        """Rerank and write the rows as they come, in order."""
        stream = outcomes(
            rows,
            self.client,
            self.fields,
            top_n=self.top_n,
            concurrency=self.concurrency,
            instruction=self.instruction,
        )
        try:
            await self._write(stream, output, old)
        finally:
            await stream.aclose()

    async def _write(
        self,
        rows: AsyncIterator[Outcome],
        output: OutputFile | RewriteFile,
        old: dict[int, tuple[int, int, bool]],
    ) -> None:
        counts, fields, mode = self.counts, self.fields, self.mode
        synced = time.monotonic()
        async for outcome in rows:
            number = self.feed.number(outcome.position)
            if isinstance(outcome.row, Kept):
                output.write(outcome.row.line)
                self.last = outcome.position
                continue
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
                    self.stopped = RowFailedError(outcome.position, row_id, error, number)
                    return
                if mode == "record":
                    output.write(encode_line(outcome.output(fields)))
                    counts.recorded += 1
                else:
                    counts.skipped += 1
                    line = old.get(outcome.position)
                    if line is not None and isinstance(output, RewriteFile):
                        # Skipped again: it keeps the error line it had.
                        output.write(output.old_line(line[0], line[1]))
                self.last = outcome.position
                if self.max_failures is not None and counts.failed > self.max_failures:
                    self.stopped = RowFailedError(outcome.position, row_id, error, number)
                    return
            self.last = outcome.position
            if self.meter is not None:
                retries = self.client.stats().retries - self.before.retries
                self.meter.update(
                    counts.succeeded + counts.failed, counts.documents, retries, counts.failed
                )
            now = time.monotonic()
            if now - synced >= _SYNC_SECONDS:
                output.sync()
                synced = now


def _row_id(outcome: Outcome, fields: Fields) -> object:
    row = outcome.row
    return None if isinstance(row, (InvalidRow, Kept)) else row.get(fields.id)


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
