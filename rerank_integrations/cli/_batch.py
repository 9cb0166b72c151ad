"""``batch``: rerank every row of a file into a JSON Lines output, resumably."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._client import RerankClient
from .._ratelimit import RateLimit
from ..batch import PATIENT_RETRY, BatchSummary, ResumeError, run
from ..batch._files import check_not_same_file
from ._common import PROG, CommandError, client_from_args

__all__ = ["COST_LIMIT_STATUS", "command_batch", "summary_line"]

#: The exit status of a job stopped at ``--max-cost``.
COST_LIMIT_STATUS = 3


def _client(args: argparse.Namespace) -> RerankClient:
    limits = {
        "requests_per_minute": args.rate_limit_rpm,
        "tokens_per_minute": args.rate_limit_tpm,
        "documents_per_minute": args.rate_limit_dpm,
    }
    given = {name: value for name, value in limits.items() if value is not None}
    return client_from_args(
        args,
        max_concurrency=args.concurrency,
        max_tokens_per_document=args.max_tokens_per_document,
        long_documents=args.long_documents,
        rate_limit=RateLimit(**given) if given else None,
        adaptive_concurrency=args.adaptive_concurrency,
        retry=PATIENT_RETRY,
    )


def summary_line(summary: BatchSummary, output: str) -> str:
    """One line saying what a run did."""
    seconds = max(summary.seconds, 1e-9)
    parts = [
        f"{summary.rows:,} rows in {summary.seconds:.1f} s "
        f"({summary.rows / seconds:,.0f} rows/s, {summary.documents / seconds:,.0f} "
        f"documents/s) to {output}"
    ]
    if summary.already_done:
        there = f"{summary.already_done:,} already there"
        if summary.failed_before:
            there += f" ({summary.failed_before:,} failed: --retry-failed tries them again)"
        parts.append(there)
    failed = f"{summary.failed:,} failed"
    if summary.recorded or summary.skipped:
        failed += f" ({summary.recorded:,} recorded, {summary.skipped:,} skipped)"
    parts.append(failed)
    parts.append(f"{summary.retries:,} retries")
    if summary.cost is not None:
        parts.append(f"cost {summary.cost} {summary.currency}")
    return "; ".join(parts)


def command_batch(args: argparse.Namespace) -> int:
    """Run ``batch``: 0 when every row succeeded, 1 when some failed or the job stopped."""
    if args.output == "-" or args.input == "-":
        raise CommandError("batch reads and writes files (a rerun resumes from OUTPUT)", 2)
    if args.output.lower().endswith((".parquet", ".pq")):
        raise CommandError(
            "OUTPUT is written as JSON Lines (whole lines, so that a rerun can resume): "
            "name it .jsonl",
            2,
        )
    if args.overwrite and (args.retry_failed or args.redo_changed):
        raise CommandError(
            "--overwrite starts over: it cannot go with --retry-failed or --redo-changed", 2
        )
    check_not_same_file(args.input, args.output)  # a ValueError: a usage error, status 2
    # The client first, so that a missing base URL is reported before any file is touched.
    with _client(args) as client:
        try:
            summary = run(
                args.input,
                args.output,
                client=client,
                top_n=args.top_n,
                concurrency=args.concurrency,
                on_error=args.on_error,
                max_failures=args.max_failures,
                overwrite=args.overwrite,
                retry_failed=args.retry_failed,
                redo_changed=args.redo_changed,
                progress=args.progress,
                progress_interval=args.progress_interval,
                progress_stream=sys.stderr,
                input_format=args.input_format,
                query_field=args.query_field,
                documents_field=args.documents_field,
                id_field=args.id_field,
                text_field=args.text_field,
                document_id_field=args.document_id_field,
                results_field=args.results_field,
                error_field=args.error_field,
                max_cost=args.max_cost,
            )
        except FileNotFoundError as exc:
            raise CommandError(f"no such file: {exc.filename}", 2) from None
        except ValueError as exc:
            if args.max_cost is not None and "max_cost" in str(exc):
                raise CommandError(
                    "--max-cost needs a price: give --price-per-search-unit, "
                    "--price-per-million-tokens or --price-per-request",
                    2,
                ) from None
            raise
        except IsADirectoryError as exc:
            raise CommandError(f"{exc.filename} is a directory, not a file of rows", 2) from None
        except ResumeError as exc:
            raise CommandError(str(exc), 1) from None
        except KeyboardInterrupt:
            raise CommandError(_interrupted(args.output), 130) from None
    print(f"{PROG} batch: {summary_line(summary, args.output)}", file=sys.stderr)
    if summary.cost_limited:
        assert summary.stopped is not None
        limit = summary.stopped.error
        reached = summary.already_done + summary.rows
        raise CommandError(
            f"stopped at --max-cost: {reached:,} rows done, stopped at row "
            f"{summary.stopped.row} ({limit}); a rerun resumes there",
            COST_LIMIT_STATUS,
        )
    if summary.stopped is not None:
        raise CommandError(f"stopped: {summary.stopped}", 1)
    return 0 if summary.ok else 1


def _interrupted(output: str) -> str:
    """What an interrupted job leaves: how many rows OUTPUT holds, and how to go on."""
    try:
        rows = _whole_lines(Path(output))
    except OSError:
        return f"interrupted; run the same command again to resume from {output}"
    return (
        f"interrupted: {rows:,} rows are in {output}, each whole; run the same command "
        "again to resume (rows already there are skipped)"
    )


def _whole_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.endswith(b"\n") and line.strip())
