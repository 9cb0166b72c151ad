"""The argument parser: the four subcommands, their options and help."""

from __future__ import annotations

import argparse
import importlib
import math
import re
import textwrap
from collections.abc import Callable
from typing import NoReturn

from .._config import ENV_DIALECT
from .._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ENV_API_KEY, ENV_BASE_URL, ENV_MODEL
from .._dialects import DIALECTS
from .._text import cut_to_width
from .._version import __version__
from ._check import CHECK_TIMEOUT, command_check
from ._common import PROG, CommandError
from ._demo import command_demo
from ._rerank import PROGRESS_THRESHOLD, command_rerank


class _ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are raised, not printed with the usage."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error as a :class:`CommandError` with status 2."""
        raise CommandError(f"{message} (see '{self.prog} --help')", 2)


_DESCRIPTION = """\
Rerank documents with any HTTP rerank API, check an endpoint, run the LangChain and
LlamaIndex demo, or serve a local BM25 rerank endpoint.

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
  rerank-integrations demo

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


def _paragraphs(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(paragraph, 88) for paragraph in paragraphs)


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""
    bound = "at least 1" if minimum == 1 else f"{minimum} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


_positive_int = _whole_number(1)
_non_negative_int = _whole_number(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


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
    group.add_argument(
        "--model", metavar="NAME", help=f"the model (default: ${ENV_MODEL}, else the server's)"
    )
    group.add_argument(
        "--dialect",
        choices=sorted(DIALECTS),
        metavar="NAME",
        help=f"the wire format, one of the dialects below (default: ${ENV_DIALECT}, else generic)",
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
        default=timeout,
        metavar="SECONDS",
        help="seconds allowed per HTTP request (default: %(default)g)",
    )
    group.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=max_retries,
        metavar="N",
        help="retries after a failed request (default: %(default)s)",
    )
    if not batching:
        return
    group.add_argument(
        "--max-documents-per-request",
        type=_positive_int,
        metavar="N",
        help="split larger inputs into requests of this many documents (default: the dialect's)",
    )


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show retries (-v) and every request (-vv) on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser, with its four subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _ArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    rerank = commands.add_parser(
        "rerank",
        help="rank documents from a file or stdin against a query",
        description=_paragraphs(
            "Rank documents against QUERY with the configured rerank endpoint and print them "
            "best first.",
            "FILE holds UTF-8 text, one document per line (blank lines are skipped), or JSON "
            "Lines whose objects carry the text in a 'text' field (or --field NAME). Without "
            "FILE, or with '-', documents are read from stdin.",
        ),
        epilog=(
            "examples:\n"
            '  rerank-integrations rerank "organic skincare" docs.txt --top-n 3\n'
            '  cat docs.jsonl | rerank-integrations rerank "q" --field body --json\n\n'
            + _dialect_listing()
        ),
        formatter_class=formatter,
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
        "--top-n", type=_positive_int, metavar="N", help="print only the N best (default: all)"
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
    _add_verbose(rerank)
    rerank.set_defaults(handler=command_rerank)

    check = commands.add_parser(
        "check",
        help="probe an endpoint and say what works",
        description=_paragraphs(
            "Send one 2-document sample request and report, step by step: the server is "
            "reachable, the key is accepted, the answer parses in the dialect, the sample "
            "ranking makes sense, and the round-trip time.",
            "Exit status 0 only if every step passes. Retries are off unless --max-retries "
            "is given.",
        ),
        epilog=_dialect_listing(),
        formatter_class=formatter,
    )
    _add_connection_options(check, timeout=CHECK_TIMEOUT, max_retries=0, batching=False)
    _add_verbose(check)
    check.set_defaults(handler=command_check)

    demo = commands.add_parser(
        "demo",
        help="rerank a labelled corpus with LangChain and LlamaIndex, before vs after",
        description=_paragraphs(
            "Retrieve candidates from the bundled corpus with a cheap first stage in LangChain "
            "and in LlamaIndex, rerank them, and compare MRR@10 and hit@k before and after.",
            "The endpoint is --base-url, else $RERANK_BASE_URL (with $RERANK_API_KEY, "
            "$RERANK_MODEL, $RERANK_DIALECT), else a BM25 server started in-process: no key "
            "and no network needed.",
        ),
        formatter_class=formatter,
    )
    which = demo.add_mutually_exclusive_group()
    which.add_argument("--query-id", metavar="ID", help="the labelled query to show (e.g. q03)")
    which.add_argument("--query", metavar="TEXT", help="a free-text query to show instead")
    demo.add_argument(
        "--top-k",
        type=_positive_int,
        default=20,
        metavar="K",
        help="candidates per query from the first stage (default: %(default)s)",
    )
    demo.add_argument(
        "--top-n",
        type=_positive_int,
        default=5,
        metavar="N",
        help="candidates shown for the example (default: %(default)s)",
    )
    demo.add_argument("--json", action="store_true", help="print the figures as JSON")
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

    serve = commands.add_parser(
        "serve",
        help="run a local BM25 rerank endpoint (no key, no model)",
        description=_paragraphs(
            "Serve POST /v1/rerank (also /rerank and /v2/rerank) on a local port, ranking each "
            "request's documents with BM25. Faults can be injected to test clients.",
        ),
        formatter_class=formatter,
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
