"""Files of rows: JSON Lines and Parquet read as streams, an output that only ever grows by
whole lines, and what a rerun finds already done in it."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from .. import _json
from ._rows import Fields, InvalidRow, row_key

try:  # POSIX: one job at a time per output file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "INPUT_FORMATS",
    "MAX_PENDING",
    "OutputFile",
    "ResumeError",
    "ResumePlan",
    "Source",
    "open_source",
    "plan_resume",
]

#: The formats a job reads.
INPUT_FORMATS = ("jsonl", "parquet")
#: The most rows before an output's last one that may be missing from it (failed and
#: skipped) before a rerun gives up: past that, it was probably written from another input.
MAX_PENDING = 1_000_000

_READ_CHUNK = 1 << 20
_PARQUET_BATCH = 1024
_BOM = b"\xef\xbb\xbf"

Row = Mapping[str, Any] | InvalidRow


class ResumeError(Exception):
    """An output file that this job cannot continue: written from another input, not JSON
    Lines, or being written by another job right now."""


class Source(Protocol):
    """An input file of rows."""

    name: str

    def count(self) -> int:
        """How many rows it holds (for JSON Lines: its lines, blank ones included)."""

    def read(
        self, position: int = 0, offset: int = 0, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, int, Row]]:
        """``(position, offset, row)`` from the row at ``position`` (found at ``offset``) on;
        rows that ``wanted`` refuses are passed over without being decoded."""


class JsonLinesSource:
    """A JSON Lines file, one object a line; blank lines are no rows. ``offset`` is a
    line's byte offset."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def count(self) -> int:
        lines = 0
        last = b"\n"
        with self.path.open("rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        return lines + (last != b"\n")

    def read(
        self, position: int = 0, offset: int = 0, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, int, Row]]:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            for line in handle:
                start = offset
                offset += len(line)
                if start == 0 and line.startswith(_BOM):
                    line = line[len(_BOM) :]
                text = line.strip()
                if not text:
                    continue
                if wanted is None or wanted(position):
                    yield position, start, decode_row(text)
                position += 1


def decode_row(text: bytes) -> Row:
    """One line of JSON Lines as a row, or an :class:`InvalidRow` saying what is wrong."""
    try:
        row = _json.loads(text)
    except _json.JSONDecodeError:
        return InvalidRow(text, "not valid JSON")
    if not isinstance(row, dict):
        return InvalidRow(text, f"not a JSON object but {type(row).__name__}")
    return row


class ParquetSource:
    """A Parquet file, read a batch of rows at a time (needs ``pyarrow``). ``offset`` is the
    row's position."""

    def __init__(self, path: Path) -> None:
        try:
            parquet = importlib.import_module("pyarrow.parquet")
        except ImportError:
            raise ImportError(
                'reading Parquet needs pyarrow: pip install "rerank-integrations[parquet]"',
                name="pyarrow",
            ) from None
        self.path = path
        self.name = str(path)
        self._file = parquet.ParquetFile(path)

    def count(self) -> int:
        return int(self._file.metadata.num_rows)

    def read(
        self, position: int = 0, offset: int = 0, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, int, Row]]:
        metadata = self._file.metadata
        first, start = 0, 0  # the row group holding ``position``, and its first row
        while first < metadata.num_row_groups:
            size = metadata.row_group(first).num_rows
            if start + size > position:
                break
            start += size
            first += 1
        groups = list(range(first, metadata.num_row_groups))
        if not groups:
            return
        current = start
        for batch in self._file.iter_batches(batch_size=_PARQUET_BATCH, row_groups=groups):
            end = current + batch.num_rows
            if end > position:
                for number, row in enumerate(batch.to_pylist(), start=current):
                    if number >= position and (wanted is None or wanted(number)):
                        yield number, number, row
            current = end


def open_source(path: str | os.PathLike[str], input_format: str | None = None) -> Source:
    """The input at ``path``: Parquet when ``input_format`` says so or the name ends in
    ``.parquet``/``.pq``, else JSON Lines.

    Raises:
        FileNotFoundError, IsADirectoryError: no such file.
        ValueError: an unknown ``input_format``.
        ImportError: Parquet without ``pyarrow``.
    """
    where = Path(path)
    if input_format is None:
        input_format = "parquet" if where.suffix.lower() in (".parquet", ".pq") else "jsonl"
    if input_format not in INPUT_FORMATS:
        raise ValueError(
            f"input_format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}"
        )
    if not where.exists():
        raise FileNotFoundError(2, "No such file or directory", str(where))
    if where.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(where))
    return ParquetSource(where) if input_format == "parquet" else JsonLinesSource(where)


class OutputFile:
    """The output: opened for appending, locked against a second job, grown one whole line
    per ``write`` call.

    Each row is a single ``write(2)`` of its whole line with its newline, so that a killed
    job leaves whole lines (a crash of the machine can leave half of the last one, which the
    next run cuts off). :meth:`sync` makes what was written survive a crash too.
    """

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(self.path))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ResumeError(
                        f"{self.path} is being written by another batch job right now"
                    ) from None
            if overwrite:
                os.ftruncate(self._fd, 0)
        except BaseException:
            os.close(self._fd)
            raise

    def write(self, line: bytes) -> None:
        """Append one whole line (it ends with a newline)."""
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes (a half line left by a crash)."""
        os.ftruncate(self._fd, size)

    def sync(self) -> None:
        """Make what was written durable."""
        with contextlib.suppress(OSError):  # a pipe or a device that cannot sync
            os.fsync(self._fd)

    def close(self) -> None:
        """Sync, unlock and close."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            with contextlib.suppress(OSError):
                os.fsync(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class ResumePlan:
    """What a rerun finds in its output.

    Attributes:
        done: rows of the input already in the output.
        pending: ``(position, offset)`` of rows before ``position`` that are not in it (rows
            that failed and were skipped), in input order.
        position: the first row of the input beyond the output's last one.
        offset: where that row starts.
        good_size: the bytes of the output that are whole lines.
        partial: whether a half line follows them (cut off before writing).
    """

    done: int = 0
    pending: list[tuple[int, int]] = field(default_factory=list)
    position: int = 0
    offset: int = 0
    good_size: int = 0
    partial: bool = False

    def start(self) -> tuple[int, int]:
        """Where to start reading: the first pending row, else ``(position, offset)``."""
        return self.pending[0] if self.pending else (self.position, self.offset)

    def wanted(self) -> Callable[[int], bool]:
        """Whether a row still has to be done."""
        pending = {position for position, _ in self.pending}
        boundary = self.position
        return lambda position: position >= boundary or position in pending


def plan_resume(source: Source, output: Path, fields: Fields) -> ResumePlan:
    """Match the output's rows against the input's, in one pass over each.

    A job writes rows in input order, so an output is the input with some rows left out
    (rows not reached yet, rows that failed and were skipped), and a rerun appends rows it
    had left out, again in input order. Each output row is either one of those left out
    before, or the next one of the input; the memory this takes grows with the rows left
    out, never with the rows done.

    Raises:
        ResumeError: a line of the output is not a JSON object, or is no row of the input.
    """
    plan = ResumePlan()
    if not output.exists():
        return plan
    rows = source.read()
    missing: dict[bytes, list[tuple[int, int]]] = {}
    missing_count = 0
    size = 0
    with output.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                plan.partial = True  # a half line: the rest never got written
                break
            size += len(line)
            text = line.strip()
            if not text:
                plan.good_size = size
                continue
            try:
                written = _json.loads(text)
            except _json.JSONDecodeError:
                written = None
            if not isinstance(written, dict):
                raise ResumeError(
                    f"{output}, line {number}: not a JSON object, so not a row a batch job "
                    "wrote; write to a new output file, or start over (overwrite)"
                )
            key = row_key(written, fields)
            earlier = missing.get(key)
            if earlier:
                earlier.pop(0)
                missing_count -= 1
                if not earlier:
                    del missing[key]
            else:
                for position, offset, row in rows:
                    plan.position, plan.offset = position + 1, offset
                    found = row_key(row, fields)
                    if found == key:
                        break
                    missing.setdefault(found, []).append((position, offset))
                    missing_count += 1
                    if missing_count > MAX_PENDING:
                        raise ResumeError(_not_from(output, number, source))
                else:
                    raise ResumeError(_not_from(output, number, source))
            plan.done += 1
            plan.good_size = size
    plan.offset = _next_offset(source, plan)
    plan.pending = sorted(item for items in missing.values() for item in items)
    return plan


def _next_offset(source: Source, plan: ResumePlan) -> int:
    """Where the row after the last one matched starts."""
    if plan.position == 0:
        return 0
    if isinstance(source, JsonLinesSource):
        with source.path.open("rb") as handle:
            handle.seek(plan.offset)
            handle.readline()  # the last row matched
            return handle.tell()
    return plan.position


def _not_from(output: Path, number: int, source: Source) -> str:
    return (
        f"{output}, line {number}: this row is not in {source.name} (or not in its order): "
        "the output was written from another input; write to a new output file, or start "
        "over (overwrite)"
    )
