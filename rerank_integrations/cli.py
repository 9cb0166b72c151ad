"""The ``rerank-integrations`` command: ``rerank``, ``check``, ``demo`` and ``serve``.

``main(argv)`` is the console script's entry point (also ``python -m rerank_integrations``);
it returns the exit status instead of exiting, so tests and other code can call it:

- ``0``: success;
- ``1``: a runtime failure (the endpoint refused, failed or could not be reached, bad input
  data, a failed ``check``);
- ``2``: a usage error (bad options, no base URL anywhere, a missing file).

Errors are one line on stderr, ``rerank-integrations: error: ...``, never a traceback, and
never the API key.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit

import httpx

from ._client import RerankClient
from ._config import ENV_DIALECT, make_timeout
from ._constants import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    LOGGER_NAME,
)
from ._core import plan_rerank
from ._dialects import DIALECTS
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    RerankError,
    ResponseFormatError,
    ServerError,
)
from ._text import cut_to_width, display_url
from ._types import RerankResponse
from ._version import __version__

__all__ = [
    "PROG",
    "CheckStep",
    "CommandError",
    "advice_for",
    "build_parser",
    "main",
    "read_documents",
    "run_check",
]

PROG = "rerank-integrations"
"""The command's name, as shown in help and error messages."""

#: Inputs with more documents than this get a progress line on a terminal.
PROGRESS_THRESHOLD = 1000

_CHECK_TIMEOUT = 10.0
_SAMPLE_QUERY = "How many legs does a spider have?"
_SAMPLE_DOCUMENTS = (
    "The Eiffel Tower in Paris was finished in 1889 for the World's Fair.",
    "A spider has eight legs, while insects such as ants and bees have six.",
)
_SAMPLE_MATCH = 1  # the index of the document that answers the sample query


class CommandError(Exception):
    """A failure to report as one line, with the exit status to return."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are raised, not printed with the usage."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error as a :class:`CommandError` with status 2."""
        raise CommandError(f"{message} (see '{self.prog} --help')", 2)


# -- the parser -------------------------------------------------------------------------------

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
        help=(f"the wire format: {', '.join(DIALECTS)} (default: ${ENV_DIALECT}, else generic)"),
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
            "FILE holds one document per line (blank lines are skipped), or JSON Lines whose "
            "objects carry the text in a 'text' field (or --field NAME). Without FILE, or "
            "with '-', documents are read from stdin.",
        ),
        epilog=(
            "examples:\n"
            '  rerank-integrations rerank "organic skincare" docs.txt --top-n 3\n'
            '  cat docs.jsonl | rerank-integrations rerank "q" --field body --json'
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
    rerank.set_defaults(handler=_command_rerank)

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
        formatter_class=formatter,
    )
    _add_connection_options(check, timeout=_CHECK_TIMEOUT, max_retries=0, batching=False)
    _add_verbose(check)
    check.set_defaults(handler=_command_check)

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
        "--base-url",
        metavar="URL",
        help=f"the rerank endpoint (default: ${ENV_BASE_URL}, else the embedded server)",
    )
    _add_verbose(demo)
    demo.set_defaults(handler=_command_demo)

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
        from .server import _cli as server_cli
    except ImportError as exc:
        serve.set_defaults(handler=_missing_server(exc))
    else:
        server_cli.add_arguments(serve)
        serve.set_defaults(handler=server_cli.run)
    return parser


def _missing_server(exc: ImportError) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        raise CommandError(str(exc), 1)

    return handler


# -- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    secrets = _Secrets()
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else 0
        secrets.add(getattr(args, "api_key", None), os.environ.get(ENV_API_KEY))
        for url in (getattr(args, "base_url", None), os.environ.get(ENV_BASE_URL)):
            secrets.add_url(url)
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is None:
            raise CommandError(
                "choose a command: rerank, check, demo or serve (see 'rerank-integrations --help')",
                2,
            )
        with _logging(getattr(args, "verbose", 0)):
            return handler(args)
    except CommandError as exc:
        return _fail(exc.message, exc.code, secrets)
    except ConfigurationError as exc:
        return _fail(str(exc), 2, secrets)
    except RerankError as exc:
        return _fail(_with_advice(exc), 1, secrets)
    except ImportError as exc:
        return _fail(str(exc), 1, secrets)
    except (TypeError, ValueError) as exc:
        return _fail(str(exc), 2, secrets)
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep Python from complaining
        # when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}", 1, secrets)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, secrets)


class _Secrets:
    """Strings that must never be printed: the API key from the options or the environment."""

    def __init__(self) -> None:
        self._values: list[str] = []

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and value.strip():
                self._values.append(value.strip())

    def add_url(self, url: str | None) -> None:
        """Also hide a password and a query string given in a URL."""
        if url:
            try:
                parts = urlsplit(url.strip())
                self.add(parts.password, parts.query)
            except ValueError:
                pass

    def redact(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def _fail(message: str, code: int, secrets: _Secrets) -> int:
    """Print ``message`` as one line on stderr and return ``code``."""
    line = " ".join(secrets.redact(message).split())
    print(f"{PROG}: error: {line}", file=sys.stderr)
    return code


class _logging:
    """Show the library's retries (``-v``) or requests (``-vv``) on stderr for one command;
    otherwise keep its warnings off the terminal (failures are reported as one line)."""

    def __init__(self, verbose: int) -> None:
        self._verbose = verbose
        self._logger = logging.getLogger(LOGGER_NAME)
        self._handler: logging.Handler = logging.NullHandler()
        self._level = self._logger.level

    def __enter__(self) -> None:
        if self._verbose:
            self._handler = logging.StreamHandler(sys.stderr)
            self._handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
            self._logger.setLevel(logging.DEBUG if self._verbose > 1 else logging.INFO)
        self._logger.addHandler(self._handler)

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)


# -- advice -----------------------------------------------------------------------------------

_OTHER_DIALECTS_SHOWN = 4


def _dialect_advice(dialect: str) -> str:
    others = " / ".join([name for name in DIALECTS if name != dialect][:_OTHER_DIALECTS_SHOWN])
    return (
        f"the server answered in another format: try --dialect {others} ... (now {dialect}), "
        "or check that the base URL is the rerank endpoint"
    )


def advice_for(exc: RerankError, *, dialect: str = "generic", key_sent: bool = True) -> str:
    """One line of concrete advice for an error from the rerank endpoint."""
    if isinstance(exc, AuthenticationError):
        if not key_sent:
            return f"the server wants an API key: set {ENV_API_KEY} or pass --api-key"
        if exc.status_code == 403:
            return f"check {ENV_API_KEY} / --api-key, and that the key may use this model"
        return f"check {ENV_API_KEY} / --api-key"
    if isinstance(exc, APITimeoutError):
        if _connect_failed(exc):
            return "is the host right and reachable from here (firewall, VPN, proxy)?"
        return "the server took too long to answer: raise --timeout, or check the server"
    if isinstance(exc, APIConnectionError):
        if not _connect_failed(exc):
            return "the server dropped the connection: check its logs, or retry"
        text = str(exc).lower()
        if "ssl" in text or "certificate" in text:
            return "TLS failed: check http:// versus https:// and the server's certificate"
        return "is the server running? is the base URL right?"
    if isinstance(exc, ResponseFormatError):
        return _dialect_advice(dialect)
    if isinstance(exc, RateLimitError):
        return "the server is rate-limiting: wait and retry, or check the key's quota"
    if isinstance(exc, ServerError):
        return "the server failed: check its logs, or retry later or with more --max-retries"
    if isinstance(exc, APIStatusError):
        if exc.status_code in (404, 405):
            return "check the base URL path or --dialect"
        return f"the server refused the request: check --dialect (now {dialect}) and --model"
    return "check the connection settings"


def _connect_failed(exc: RerankError) -> bool:
    """Whether a connection error happened before a connection was open."""
    cause = exc.__cause__
    return isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)) or (
        cause is None and not isinstance(exc, APITimeoutError)
    )


def _with_advice(exc: RerankError) -> str:
    if isinstance(exc, ConfigurationError):
        return str(exc)
    return f"{_error_text(exc, limit=400)} (advice: {advice_for(exc)})"


def _error_text(exc: RerankError, *, limit: int) -> str:
    """An error message on one line, at most ``limit`` characters.

    A connection error is told by its cause (``connection refused``); a status error that
    carries the server's own message drops the body excerpt that repeats it.
    """
    if isinstance(exc, APIConnectionError) and exc.__cause__ is not None:
        cause = exc.__cause__
        if isinstance(exc, APITimeoutError):
            reason = "no answer in time"
        else:
            reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(cause)) or "no details"
        text = f"{reason} ({type(cause).__name__})"
    else:
        text = str(exc)
        if isinstance(exc, APIStatusError) and "(no message from the server)" not in text:
            text = text.split(" | body:")[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- rerank -----------------------------------------------------------------------------------


def _client(args: argparse.Namespace, http_client: httpx.Client | None = None) -> RerankClient:
    if not (args.base_url or os.environ.get(ENV_BASE_URL, "").strip()):
        raise CommandError(
            f"no base URL: pass --base-url URL or set {ENV_BASE_URL} "
            "(e.g. http://127.0.0.1:8080 for 'rerank-integrations serve')",
            2,
        )
    client = RerankClient(
        base_url=args.base_url,
        api_key=args.api_key,
        model=args.model,
        dialect=args.dialect,
        timeout=args.timeout,
        max_retries=args.max_retries,
        max_documents_per_request=getattr(args, "max_documents_per_request", None),
        http_client=http_client,
    )
    if client.settings.dialect.model_required and client.model is None:
        client.close()
        raise CommandError(
            f"the {client.dialect} dialect needs a model: pass --model NAME or set {ENV_MODEL}",
            2,
        )
    return client


def read_documents(
    stream: Iterable[str], field: str | None = None, *, name: str = "-"
) -> list[str]:
    """The documents of an input: JSON Lines or one document per line.

    The input is JSON Lines when ``field`` is given or when its first non-blank line is a
    JSON object; each object must then carry a string in ``field`` (default ``"text"``).
    Otherwise every non-blank line is a document, without its line ending. Blank lines are
    skipped in both forms.

    Raises:
        CommandError: a JSON line is malformed or lacks the field.
    """
    documents: list[str] = []
    jsonl: bool | None = True if field is not None else None
    key = field or "text"
    for number, raw in enumerate(stream, start=1):
        line = raw.lstrip("\ufeff") if number == 1 else raw
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if jsonl is None:
            jsonl = _looks_like_object(line)
        if not jsonl:
            documents.append(line)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{name}, line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise CommandError(f"{name}, line {number}: expected a JSON object")
        value = record.get(key)
        if not isinstance(value, str):
            found = ", ".join(sorted(record)[:8]) or "none"
            hint = "" if field is not None else "; name the text field with --field"
            raise CommandError(
                f"{name}, line {number}: no string field {key!r} (fields: {found}){hint}",
                1 if field is not None else 2,
            )
        documents.append(value)
    return documents


def _looks_like_object(line: str) -> bool:
    if not line.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _read_input(args: argparse.Namespace) -> list[str]:
    if args.file == "-":
        if sys.stdin.isatty():
            print(
                f"{PROG}: reading documents from stdin, one a line (end with Ctrl-D)",
                file=sys.stderr,
            )
        return read_documents(sys.stdin, args.field, name="stdin")
    try:
        with open(args.file, encoding="utf-8") as handle:
            return read_documents(handle, args.field, name=args.file)
    except FileNotFoundError:
        raise CommandError(f"no such file: {args.file}", 2) from None
    except IsADirectoryError:
        raise CommandError(f"{args.file} is a directory, not a file of documents", 2) from None
    except PermissionError:
        raise CommandError(f"cannot read {args.file}: permission denied", 2) from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"{args.file} is not UTF-8 text ({exc.reason})") from None


def _command_rerank(args: argparse.Namespace) -> int:
    if not args.query.strip():
        raise CommandError("the query is empty", 2)
    # Settings first, so that a missing base URL is reported before stdin is read.
    with _client(args) as probe:
        limit = probe.max_documents_per_request
    documents = _read_input(args)
    if not documents:
        where = "stdin" if args.file == "-" else args.file
        raise CommandError(f"no documents in {where}")

    requests = len(plan_rerank(args.query, documents, args.top_n, limit).batches)
    show = args.progress
    if show is None:
        show = sys.stderr.isatty() and len(documents) > PROGRESS_THRESHOLD
    progress = _Progress(sys.stderr, len(documents), requests) if show else None

    http_client: httpx.Client | None = None
    if progress is not None:
        # Our own pool, so that every answered request can tick the progress line.
        http_client = httpx.Client(
            timeout=make_timeout(args.timeout),
            follow_redirects=False,
            event_hooks={"response": [progress.tick]},
        )
    try:
        with _client(args, http_client) as client:
            if progress is not None:
                progress.start()
            try:
                response = client.rerank(args.query, documents, top_n=args.top_n)
            finally:
                if progress is not None:
                    progress.finish()
    finally:
        if http_client is not None:
            http_client.close()

    if args.json:
        json.dump(_response_json(response, documents), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(response, documents, sys.stdout)
    sys.stdout.flush()
    return 0


def _response_json(response: RerankResponse, documents: Sequence[str]) -> dict[str, Any]:
    usage = response.usage
    return {
        "model": response.model,
        "usage": None
        if usage is None
        else {"total_tokens": usage.total_tokens, "billed_units": usage.billed_units},
        "results": [
            {
                "index": result.index,
                "relevance_score": result.relevance_score,
                "document": documents[result.index],
            }
            for result in response.results
        ],
    }


def _print_table(response: RerankResponse, documents: Sequence[str], out: TextIO) -> None:
    results = response.results
    columns = shutil.get_terminal_size((100, 24)).columns
    rank_width = max(4, len(str(len(results))))
    scores = [f"{result.relevance_score:.4f}" for result in results]
    score_width = max([5, *map(len, scores)])
    index_width = max([5, *(len(str(result.index)) for result in results)])
    text_width = max(columns - rank_width - score_width - index_width - 6, 20)
    out.write(f"{'rank':>{rank_width}}  {'score':>{score_width}}  {'index':>{index_width}}  text\n")
    for rank, (result, score) in enumerate(zip(results, scores, strict=True), start=1):
        text = cut_to_width(documents[result.index], text_width)
        out.write(
            f"{rank:>{rank_width}}  {score:>{score_width}}  {result.index:>{index_width}}  {text}\n"
        )


class _Progress:
    """A progress line on stderr: redrawn in place on a terminal, else a few plain lines."""

    def __init__(self, stream: TextIO, documents: int, requests: int) -> None:
        self._stream = stream
        self._documents = documents
        self._requests = requests
        self._answered = 0
        self._reported = 0
        self._live = stream.isatty()
        self._lock = threading.Lock()
        self._started = time.perf_counter()

    def start(self) -> None:
        self._started = time.perf_counter()
        plural = "s" if self._requests != 1 else ""
        self._write(
            f"reranking {self._documents:,} documents in {self._requests:,} request{plural}…",
            final=not self._live,
        )

    def tick(self, response: httpx.Response) -> None:
        """Count one answered request (an httpx response hook; called from any thread)."""
        with self._lock:
            self._answered += 1
            done = min(self._answered, self._requests)
            if self._live:
                self._write(self._status(done), final=False)
            elif done * 10 // self._requests > self._reported * 10 // self._requests:
                self._reported = done
                self._write(self._status(done), final=True)

    def finish(self) -> None:
        with self._lock:
            if self._live:
                self._write(self._status(min(self._answered, self._requests)), final=True)

    def _status(self, done: int) -> str:
        elapsed = time.perf_counter() - self._started
        return (
            f"reranking {self._documents:,} documents: {done:,}/{self._requests:,} requests "
            f"answered, {elapsed:.1f} s"
        )

    def _write(self, text: str, *, final: bool) -> None:
        if self._live:
            self._stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()


# -- check ------------------------------------------------------------------------------------

#: The outcomes of a check step.
OK, FAIL, SKIP = "ok", "FAIL", "skip"


@dataclass(frozen=True)
class CheckStep:
    """One line of ``check``: a step, its outcome, what was seen, and advice on failure.

    Attributes:
        name: ``reachable``, ``key accepted``, ``dialect answering``, ``sample ranking`` or
            ``round trip``.
        status: ``"ok"``, ``"FAIL"`` or ``"skip"`` (not reached, or not knowable).
        detail: what was seen.
        advice: one line on what to do, for a failed step.
    """

    name: str
    status: str
    detail: str = ""
    advice: str = ""


def _command_check(args: argparse.Namespace) -> int:
    with _client(args) as client:
        settings = client.settings
        key_sent = settings.api_key is not None
        model = client.model or "server default"
        print(
            f"Checking {display_url(client.endpoint)} (dialect: {client.dialect}, "
            f"model: {model}, API key: {'set' if key_sent else 'not set'})"
        )
        steps = run_check(client)
    width = max(len(step.name) for step in steps)
    for step in steps:
        print(f"  {step.status:<4}  {step.name:<{width}}  {step.detail}".rstrip())
        if step.advice:
            print(f"  {'':<4}  {'':<{width}}  advice: {step.advice}")
    failed = sum(step.status != OK for step in steps)
    if failed:
        broken = sum(step.status == FAIL for step in steps)
        print(f"{broken} check{'s' if broken != 1 else ''} failed.")
        return 1
    print(f"All {len(steps)} checks passed.")
    return 0


def run_check(client: RerankClient) -> list[CheckStep]:
    """Send the 2-document sample request with ``client`` and judge the answer step by step.

    Raises:
        ConfigurationError: the request cannot be built (e.g. the dialect needs a model).
    """
    dialect = client.dialect
    key_sent = client.settings.api_key is not None
    parts = urlsplit(client.endpoint)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    started = time.perf_counter()
    try:
        response = client.rerank(_SAMPLE_QUERY, list(_SAMPLE_DOCUMENTS))
    except ConfigurationError:
        raise
    except RerankError as exc:
        elapsed = time.perf_counter() - started
        return _failed_steps(exc, elapsed, where, dialect=dialect, key_sent=key_sent)
    elapsed = time.perf_counter() - started

    steps = [
        CheckStep("reachable", OK, f"connected to {where}"),
        CheckStep(
            "key accepted",
            OK,
            _key_accepted(key_sent),
        ),
        CheckStep(
            "dialect answering",
            OK,
            f"the 2-document sample came back as a valid {dialect} ranking",
        ),
    ]
    results = response.results
    scores = {result.index: result.relevance_score for result in results}
    if len(results) == 2 and results[0].index == _SAMPLE_MATCH:
        steps.append(
            CheckStep(
                "sample ranking",
                OK,
                f"the matching document came first ({scores[_SAMPLE_MATCH]:.4g} vs "
                f"{scores[1 - _SAMPLE_MATCH]:.4g})",
            )
        )
    else:
        shown = ", ".join(f"#{result.index}: {result.relevance_score:.4g}" for result in results)
        steps.append(
            CheckStep(
                "sample ranking",
                FAIL,
                f"the unrelated document came first ({shown})",
                "the endpoint answers but does not rank by relevance: is it a rerank model? "
                "check --model",
            )
        )
    steps.append(CheckStep("round trip", OK, f"{elapsed * 1000:.0f} ms for the sample request"))
    return steps


def _failed_steps(
    exc: RerankError, elapsed: float, where: str, *, dialect: str, key_sent: bool
) -> list[CheckStep]:
    advice = advice_for(exc, dialect=dialect, key_sent=key_sent)
    detail = _error_text(exc, limit=200)
    if isinstance(exc, (APIConnectionError,)):
        if _connect_failed(exc):
            steps = [CheckStep("reachable", FAIL, f"cannot connect to {where}: {detail}", advice)]
            return _pad(steps)
        steps = [
            CheckStep("reachable", OK, f"connected to {where}"),
            CheckStep("key accepted", SKIP, "no answer to judge"),
            CheckStep("dialect answering", FAIL, detail, advice),
        ]
        return _pad(steps)

    answered = CheckStep("reachable", OK, f"connected to {where}; the server answered")
    round_trip = CheckStep("round trip", OK, f"{elapsed * 1000:.0f} ms for the sample request")
    if isinstance(exc, AuthenticationError):
        steps = [answered, CheckStep("key accepted", FAIL, detail, advice)]
        return _pad(steps, round_trip)
    key_ok = CheckStep(
        "key accepted",
        OK,
        _key_accepted(key_sent),
    )
    if isinstance(exc, ResponseFormatError):
        steps = [answered, key_ok, CheckStep("dialect answering", FAIL, detail, advice)]
        return _pad(steps, round_trip)
    unknown = CheckStep("key accepted", SKIP, "not known: the request failed before that")
    steps = [answered, unknown, CheckStep("dialect answering", FAIL, detail, advice)]
    return _pad(steps, round_trip)


def _key_accepted(key_sent: bool) -> str:
    return (
        "the key was accepted (no 401/403)" if key_sent else "no key sent, and none was asked for"
    )


def _pad(steps: list[CheckStep], last: CheckStep | None = None) -> list[CheckStep]:
    """``steps`` followed by the steps not reached, marked skipped, and then ``last``."""
    names = ["reachable", "key accepted", "dialect answering", "sample ranking", "round trip"]
    done = {step.name for step in steps}
    if last is not None:
        done.add(last.name)
    padded = steps + [CheckStep(name, SKIP) for name in names if name not in done]
    if last is not None:
        padded.append(last)
    return padded


# -- demo -------------------------------------------------------------------------------------


def _command_demo(args: argparse.Namespace) -> int:
    from .demo._pipeline import run_demo

    run_demo(
        base_url=args.base_url,
        query_id=args.query_id,
        query=args.query,
        top_k=args.top_k,
        top_n=args.top_n,
        out=sys.stdout,
        as_json=args.json,
    )
    return 0
