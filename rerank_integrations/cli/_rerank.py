"""``rerank``: rank documents from a file or stdin and print them best first."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import httpx

from .._config import make_timeout
from .._plan import plan_rerank
from .._text import cut_to_width
from .._types import RerankResponse
from ._common import PROG, CommandError, client_from_args

#: Inputs with more documents than this get a progress line on a terminal.
PROGRESS_THRESHOLD = 1000


def read_documents(
    stream: Iterable[str], field: str | None = None, *, name: str = "-"
) -> list[str]:
    """The documents of an input: JSON Lines or one document per line.

    The input is JSON Lines when ``field`` is given or when its first non-blank line is a
    JSON object; each object must then carry a string in ``field`` (default ``"text"``).
    Otherwise every non-blank line is a document, without its line ending. Blank lines are
    skipped in both forms.

    Undecodable bytes are expected as lone surrogates (``errors="surrogateescape"``), so
    that the error can name their line.

    Raises:
        CommandError: a line is not UTF-8, or a JSON line is malformed or lacks the field.
            Bad data is a runtime failure (status 1) wherever it is, whatever the options.
    """
    documents: list[str] = []
    jsonl: bool | None = True if field is not None else None
    key = field or "text"
    for number, raw in enumerate(stream, start=1):
        line = raw.lstrip("\ufeff") if number == 1 else raw
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        _check_utf8(line, name, number)
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
                f"{name}, line {number}: no string field {key!r} (fields: {found}){hint}"
            )
        _check_utf8(value, name, number, where=f" of field {key!r}")  # a JSON \ud800 escape
        documents.append(value)
    return documents


def _check_utf8(text: str, name: str, number: int, *, where: str = "") -> None:
    """Refuse text that cannot be sent as UTF-8, naming the line (and ``where`` on it)."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        # surrogateescape keeps an undecodable byte b as the code point 0xDC00 + b.
        what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "a lone surrogate"
        raise CommandError(
            f"{name}, line {number}: not UTF-8 text ({what} at character {exc.start + 1}{where})"
        ) from None


def _looks_like_object(line: str) -> bool:
    if not line.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _read_input(args: argparse.Namespace) -> list[str]:
    if args.file == "-":
        return _read_stdin(args.field)
    try:
        with open(args.file, encoding="utf-8", errors="surrogateescape") as handle:
            return read_documents(handle, args.field, name=args.file)
    except FileNotFoundError:
        raise CommandError(f"no such file: {args.file}", 2) from None
    except IsADirectoryError:
        raise CommandError(f"{args.file} is a directory, not a file of documents", 2) from None
    except PermissionError:
        raise CommandError(f"cannot read {args.file}: permission denied", 2) from None


def _read_stdin(field: str | None) -> list[str]:
    if sys.stdin.isatty():
        print(
            f"{PROG}: reading documents from stdin, one a line (end with Ctrl-D)",
            file=sys.stderr,
        )
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # already text (a test, an embedding program): take it as it is
        return read_documents(sys.stdin, field, name="stdin")
    return read_documents(_decoded_lines(buffer), field, name="stdin")


def _decoded_lines(buffer: Iterable[bytes]) -> Iterator[str]:
    """The lines of a binary stream as UTF-8, whatever the locale says, bad bytes kept as lone
    surrogates for :func:`read_documents` to report with their line.

    No ``TextIOWrapper`` around ``sys.stdin.buffer``: one that is not detached closes the
    buffer when collected, and detaching fails on a stream that cannot be read (pytest's
    stand-in for stdin), an error Python 3.13 reports as unraisable. A newline byte never
    occurs inside a UTF-8 sequence, so decoding line by line is decoding the whole.
    """
    for raw in buffer:
        line = raw.decode("utf-8", errors="surrogateescape")
        if "\r" not in line:
            yield line
            continue
        # Universal newlines, as files are read: a lone "\r" ends a line too.
        *whole, rest = line.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        yield from (piece + "\n" for piece in whole)
        if rest:
            yield rest


def command_rerank(args: argparse.Namespace) -> int:
    """Run ``rerank``: print the documents best first, as a table or as JSON."""
    if not args.query.strip():
        raise CommandError("the query is empty", 2)
    # The client first, so that a missing base URL is reported before stdin is read.
    with client_from_args(args) as client:
        documents = _read_input(args)
        if not documents:
            where = "stdin" if args.file == "-" else args.file
            raise CommandError(f"no documents in {where}")
        limit = client.max_documents_per_request
        requests = len(plan_rerank(args.query, documents, args.top_n, limit).batches)
        show = args.progress
        if show is None:
            show = sys.stderr.isatty() and len(documents) > PROGRESS_THRESHOLD
        if show:
            progress = _Progress(sys.stderr, len(documents), requests)
            response = _rerank_with_progress(args, documents, progress)
        else:
            response = client.rerank(args.query, documents, top_n=args.top_n)

    if args.json:
        json.dump(_response_json(response, documents), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(response, documents, sys.stdout)
    sys.stdout.flush()
    return 0


def _rerank_with_progress(
    args: argparse.Namespace, documents: list[str], progress: _Progress
) -> RerankResponse:
    # Our own pool, so that every answered request can tick the progress line.
    with (
        httpx.Client(
            timeout=make_timeout(args.timeout),
            follow_redirects=False,
            event_hooks={"response": [progress.tick]},
        ) as http_client,
        client_from_args(args, http_client) as client,
    ):
        progress.start()
        try:
            return client.rerank(args.query, documents, top_n=args.top_n)
        finally:
            progress.finish()


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
