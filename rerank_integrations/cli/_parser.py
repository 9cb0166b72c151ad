"""The argument parser: the subcommands, their options and help."""

from __future__ import annotations

import argparse
import importlib
import re
import textwrap
from collections.abc import Callable
from typing import Any, NoReturn

from .._budget import LONG_DOCUMENT_MODES
from .._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ENV_API_KEY, ENV_BASE_URL
from .._text import cut_to_width
from .._version import __version__
from ..batch import DEFAULT_CONCURRENCY, INPUT_FORMATS, ON_ERROR_MODES, PATIENT_RETRY
from ..dialects import DIALECTS
from ._batch import command_batch
from ._check import CHECK_TIMEOUT, command_check
from ._common import PROG, CommandError
from ._demo import command_demo
from ._eval import add_eval
from ._options import (
    DIALECT,
    INSTRUCTION,
    MAX_RETRIES,
    MODEL,
    TIMEOUT,
    add_price_options,
    non_negative_int,
    positive_int,
    price_value,
    seconds,
)
from ._rerank import PROGRESS_THRESHOLD, command_rerank


class _ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are raised, not printed with the usage."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error as a :class:`CommandError` with status 2."""
        raise CommandError(f"{message} (see '{self.prog} --help')", 2)


_DESCRIPTION = """\
Rerank documents with any HTTP rerank API, rerank a whole file of queries offline, check an
endpoint, run the LangChain and LlamaIndex demo, or serve a local BM25 rerank endpoint.

Connection settings come from the options, else from the environment:
  RERANK_BASE_URL   the API's base URL (host root, versioned root or full endpoint)
  RERANK_API_KEY    the API key, sent as a bearer token (never printed)
  RERANK_MODEL      the model name (else the server's default)
  RERANK_DIALECT    the wire format: generic (default), cohere, voyage, tei, ...
"""

_EPILOG = """\
examples:
  rerank-integrations serve --port 8080 &
  export RERANK_BASE_URL=http://127.0.0.1:8080
  rerank-integrations check
  rerank-integrations rerank "how do I descale an espresso machine" docs.txt --top-n 5
  rerank-integrations batch runs.jsonl reranked.jsonl --top-n 10
  rerank-integrations demo
  rerank-integrations eval --corpus beir/ --run bm25.trec --reranker a=URL --out report/

exit status: 0 success, 1 failure, 2 usage error
"""


_SCALES = {"probability": "scores 0..1", "logit": "raw scores, may be negative"}
_SUMMARY_END = re.compile(r":|\s\(|;|\.\s")


def _dialect_summary(description: str) -> str:
    """Who speaks a dialect, from its description: the words before the details start."""
    return cut_to_width(_SUMMARY_END.split(description, maxsplit=1)[0], 48)


def _dialect_listing() -> str:
    """The dialects, one a line, for the help of the commands that take ``--dialect``."""
    width = max(map(len, DIALECTS))
    lines = ["dialects:"]
    for name, dialect in DIALECTS.items():
        scale = _SCALES.get(dialect.score_scale, dialect.score_scale)
        summary = _dialect_summary(dialect.description)
        about = f"{summary} ({scale})" if summary else scale
        lines.append(f"  {name:<{width}}  {about}")
    return "\n".join(lines)


def _command(
    commands: Any, name: str, summary: str, *paragraphs: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    """Add the subcommand ``name``: ``summary`` in the command list, ``paragraphs`` (filled
    to 88 columns) and ``epilog`` (as written) in its ``--help``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=_paragraphs(*paragraphs),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _paragraphs(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(paragraph, 88) for paragraph in paragraphs)


def _add_connection_options(
    parser: argparse.ArgumentParser, *, timeout: float, max_retries: int, batching: bool = True
) -> None:
    group = parser.add_argument_group("connection (else the RERANK_* environment variables)")
    group.add_argument(
        "--base-url", metavar="URL", help=f"the rerank API's base URL (default: ${ENV_BASE_URL})"
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help=(
            f"the API key (default: ${ENV_API_KEY}; prefer the variable, "
            "command lines are visible to other users)"
        ),
    )
    MODEL.add(group)
    DIALECT.add(group)
    TIMEOUT.add(group, default=timeout)
    MAX_RETRIES.add(group, default=max_retries)
    if not batching:
        return
    group.add_argument(
        "--max-documents-per-request",
        type=positive_int,
        metavar="N",
        help="split larger inputs into requests of this many documents (default: the dialect's)",
    )


def _add_instruction(parser: argparse.ArgumentParser) -> None:
    INSTRUCTION.add(parser)


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show retries (-v) and every request (-vv) on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser, with its subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _ArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    rerank = _command(
        commands,
        "rerank",
        "rank documents from a file or stdin against a query",
        "Rank documents against QUERY with the configured rerank endpoint and print them "
        "best first.",
        "FILE holds UTF-8 text, one document per line (blank lines are skipped), or JSON "
        "Lines whose objects carry the text in a 'text' field (or --field NAME). Without "
        "FILE, or with '-', documents are read from stdin.",
        epilog=(
            "examples:\n"
            '  rerank-integrations rerank "organic skincare" docs.txt --top-n 3\n'
            '  cat docs.jsonl | rerank-integrations rerank "q" --field body --json\n\n'
            + _dialect_listing()
        ),
    )
    rerank.add_argument("query", metavar="QUERY", help="the search query")
    rerank.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        default="-",
        help="documents, one a line or JSON Lines; '-' or none for stdin",
    )
    rerank.add_argument(
        "--field",
        metavar="NAME",
        help="read JSON Lines and take each document's text from this field (default: text)",
    )
    rerank.add_argument(
        "--top-n", type=positive_int, metavar="N", help="print only the N best (default: all)"
    )
    rerank.add_argument(
        "--json",
        action="store_true",
        help='print JSON: {"model", "usage", "results": [{"index", "relevance_score", '
        '"document"}]}',
    )
    rerank.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            f"progress on stderr (default: on a terminal for more than "
            f"{PROGRESS_THRESHOLD:,} documents)"
        ),
    )
    _add_connection_options(rerank, timeout=DEFAULT_TIMEOUT, max_retries=DEFAULT_MAX_RETRIES)
    add_price_options(rerank)
    _add_instruction(rerank)
    _add_verbose(rerank)
    rerank.set_defaults(handler=command_rerank)

    _add_batch(commands, formatter)
    add_eval(commands, formatter)

    check = _command(
        commands,
        "check",
        "probe an endpoint and say what works",
        "Send one 2-document sample request and report, step by step: the server is "
        "reachable, the key is accepted, the answer parses in the dialect, the sample "
        "ranking makes sense, and the round-trip time.",
        "Exit status 0 only if every step passes. Retries are off unless --max-retries is given.",
        epilog=_dialect_listing(),
    )
    _add_connection_options(check, timeout=CHECK_TIMEOUT, max_retries=0, batching=False)
    _add_verbose(check)
    check.set_defaults(handler=command_check)

    demo = _command(
        commands,
        "demo",
        "rerank a labelled corpus with LangChain and LlamaIndex, before vs after",
        "Retrieve candidates from the bundled corpus with a cheap first stage in LangChain "
        "and in LlamaIndex, rerank them, and compare MRR@10 and hit@k before and after.",
        "The endpoint is --base-url, else $RERANK_BASE_URL (with $RERANK_API_KEY, "
        "$RERANK_MODEL, $RERANK_DIALECT), else a BM25 server started in-process: no key "
        "and no network needed.",
    )
    which = demo.add_mutually_exclusive_group()
    which.add_argument("--query-id", metavar="ID", help="the labelled query to show (e.g. q03)")
    which.add_argument("--query", metavar="TEXT", help="a free-text query to show instead")
    demo.add_argument(
        "--top-k",
        type=positive_int,
        default=20,
        metavar="K",
        help="candidates per query from the first stage (default: %(default)s)",
    )
    demo.add_argument(
        "--top-n",
        type=positive_int,
        default=5,
        metavar="N",
        help="candidates shown for the example (default: %(default)s)",
    )
    demo.add_argument("--json", action="store_true", help="print the figures as JSON")
    demo.add_argument(
        "--eval",
        metavar="REPORT_DIR",
        help="instead, run 'eval' over the corpus (two local BM25 rerankers) into REPORT_DIR",
    )
    demo.add_argument(
        "--instruction",
        metavar="TEXT",
        help=(
            'the instruction shown with "What pressure should I use?" '
            '(default: "Prefer documents about bicycle tires")'
        ),
    )
    demo.add_argument(
        "--long-documents",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also rank long documents truncated and chunked to a 512-token model (default: on)",
    )
    demo.add_argument(
        "--base-url",
        metavar="URL",
        help=f"the rerank endpoint (default: ${ENV_BASE_URL}, else the embedded server)",
    )
    _add_verbose(demo)
    demo.set_defaults(handler=command_demo)

    serve = _command(
        commands,
        "serve",
        "run a local BM25 rerank endpoint (no key, no model)",
        "Serve POST /v1/rerank (also /rerank and /v2/rerank) on a local port, ranking each "
        "request's documents with BM25. Faults can be injected to test clients.",
    )
    try:
        server_cli = importlib.import_module("rerank_integrations.server._cli")
    except ImportError as exc:
        # No options to parse without the extra: whatever follows 'serve' is let through
        # (see main), so that the install hint is what the user sees.
        serve.set_defaults(handler=_missing_server(exc), any_arguments=True)
    else:
        server_cli.add_arguments(serve)
        serve.set_defaults(handler=server_cli.run)
    return parser


_BATCH_EPILOG = """\
examples:
  rerank-integrations batch runs.jsonl reranked.jsonl --top-n 10
  rerank-integrations batch runs.parquet reranked.jsonl --rate-limit-rpm 600 --on-error skip
  rerank-integrations batch runs.jsonl reranked.jsonl --retry-failed
  rerank-integrations batch runs.jsonl reranked.jsonl --query-field question \\
      --documents-field passages --max-tokens-per-document 512 --long-documents chunk

retries: a request is retried up to 10 times (--max-retries), waiting 1 s, 2 s, 4 s ... up
to 60 s between tries, and as long as a server's Retry-After asks (up to 10 minutes)

exit status: 0 every row succeeded, 1 some row failed or the job stopped, 2 usage error
(INPUT and OUTPUT the same file too), 3 stopped at --max-cost (a rerun resumes),
130 interrupted (a rerun resumes)
"""


def _add_batch(
    commands: argparse._SubParsersAction[_ArgumentParser],
    formatter: type[argparse.HelpFormatter],
) -> None:
    batch = _command(
        commands,
        "batch",
        "rerank every row of a JSON Lines or Parquet file into a JSON Lines file",
        "Rerank each row of INPUT, one query with its candidates, and write it to OUTPUT "
        'with "results": [{"index", "relevance_score", "id"?, "span"?}, ...] added, best '
        "first, in input order. INPUT is JSON Lines or Parquet (.parquet, needs pyarrow); "
        'a row is {"id": ..., "query": "...", "documents": ["text", {"id": ..., "text": '
        '"..."}, ...]} (field names are options); OUTPUT is JSON Lines.',
        "Run it again after a crash or an interrupt and it carries on: rows already in "
        "OUTPUT are skipped (known by their content, id included; an OUTPUT of another "
        "INPUT, or of rows since edited, is refused). Rows are counted as INPUT's lines "
        "are: row 3 is line 3. Many rows are reranked at once, within the rate limit; the "
        "client halves its requests in flight on a 429 and grows them back "
        "(--no-adaptive-concurrency turns that off).",
        epilog=_BATCH_EPILOG + "\n" + _dialect_listing(),
    )
    batch.add_argument("input", metavar="INPUT", help="rows: JSON Lines, or Parquet")
    batch.add_argument("output", metavar="OUTPUT", help="the rows with rankings: JSON Lines")
    batch.add_argument(
        "--top-n", type=positive_int, metavar="N", help="results per row (default: all)"
    )
    batch.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="rows reranked at once, and the most requests in flight (default: %(default)s)",
    )
    batch.add_argument(
        "--on-error",
        choices=ON_ERROR_MODES,
        default="record",
        help="a row that fails after its retries: record it with its error, skip it (a rerun "
        "tries it again) or stop the job (default: %(default)s)",
    )
    batch.add_argument(
        "--max-failures",
        type=non_negative_int,
        metavar="N",
        help="stop once more than N rows have failed (default: no limit)",
    )
    batch.add_argument(
        "--overwrite", action="store_true", help="start over, emptying OUTPUT, instead of resuming"
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="try again the rows OUTPUT holds as failed (and any it lacks), rewriting it with "
        "every row in input order through a temporary file renamed over it",
    )
    batch.add_argument(
        "--redo-changed",
        action="store_true",
        help="rows of OUTPUT that INPUT no longer has as they were (edited since) are redone "
        "instead of refusing OUTPUT; OUTPUT is rewritten as with --retry-failed",
    )
    batch.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        help="the format of INPUT (default: parquet for .parquet/.pq, else jsonl)",
    )
    batch.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress on stderr: one line redrawn on a terminal, else a line every "
        "--progress-interval (default: on)",
    )
    batch.add_argument(
        "--progress-interval",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress lines off a terminal (default: %(default)g)",
    )
    names = batch.add_argument_group("field names")
    for option, default, what in (
        ("--query-field", "query", "the query"),
        ("--documents-field", "documents", "the candidates"),
        ("--id-field", "id", "the row's id, named in messages"),
        ("--text-field", "text", "a document object's text"),
        ("--document-id-field", "id", "a document object's id, copied to its result"),
        ("--results-field", "results", "where the ranking is written"),
        ("--error-field", "error", "where a failed row's error is written"),
    ):
        names.add_argument(
            option, default=default, metavar="NAME", help=f"{what} (default: {default})"
        )
    long = batch.add_argument_group("long documents")
    long.add_argument(
        "--max-tokens-per-document",
        type=positive_int,
        metavar="N",
        help="the most tokens of the query plus one document the model reads",
    )
    long.add_argument(
        "--long-documents",
        choices=LONG_DOCUMENT_MODES,
        help="a longer document: let the server decide, truncate it, chunk it and keep its "
        "best window (its span is written), or fail the row (default: $RERANK_LONG_DOCUMENTS, "
        "else server)",
    )
    limits = batch.add_argument_group("rate limits (for the whole job)")
    limits.add_argument(
        "--rate-limit-rpm", type=positive_int, metavar="N", help="requests a minute"
    )
    limits.add_argument("--rate-limit-tpm", type=positive_int, metavar="N", help="tokens a minute")
    limits.add_argument(
        "--rate-limit-dpm", type=positive_int, metavar="N", help="documents a minute"
    )
    limits.add_argument(
        "--adaptive-concurrency",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="halve the requests in flight on a 429 and grow them back (default: on)",
    )
    _add_connection_options(batch, timeout=DEFAULT_TIMEOUT, max_retries=PATIENT_RETRY.max_retries)
    add_price_options(batch)
    batch.add_argument(
        "--max-cost",
        type=price_value,
        metavar="AMOUNT",
        help=(
            "stop before a row whose estimated cost would take this run past AMOUNT (or "
            "after the row whose actual cost did), at the --price-* prices; exit status 3, "
            "and a rerun resumes"
        ),
    )
    _add_instruction(batch)
    _add_verbose(batch)
    batch.set_defaults(handler=command_batch)


_SERVER_MODULES = {"starlette", "uvicorn"}


def _missing_server(exc: ImportError) -> Callable[[argparse.Namespace], int]:
    missing = (exc.name or "").partition(".")[0]
    if missing in _SERVER_MODULES:
        message = (
            f"serve needs the server extra ({missing} is not installed): "
            'pip install "rerank-integrations[server]"'
        )
    else:
        message = str(exc)

    def handler(args: argparse.Namespace) -> int:
        raise CommandError(message, 1)

    return handler
