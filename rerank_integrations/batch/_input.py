"""The input of a job: JSON Lines and Parquet files read as streams of rows, from any row
on; and the check that the output is not the input."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from ._rows import InvalidRow, decode_json

__all__ = [
    "INPUT_FORMATS",
    "JsonLinesSource",
    "ParquetSource",
    "Row",
    "Source",
    "check_not_same_file",
    "decode_row",
    "open_source",
]

#: The formats a job reads.
INPUT_FORMATS = ("jsonl", "parquet")

_READ_CHUNK = 1 << 20
_PARQUET_BATCH = 1024
_BOM = b"\xef\xbb\xbf"

Row = Mapping[str, Any] | InvalidRow


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

    def read_numbered(
        self, position: int = 0, offset: int = 0, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, int, int, Row]]:
        """As :meth:`read`, with each row's number as the file counts it, from 1 (for JSON
        Lines, its line number): ``(position, offset, number, row)``."""


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
        for number, start, _, row in self.read_numbered(position, offset, wanted):
            yield number, start, row

    def read_numbered(
        self, position: int = 0, offset: int = 0, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, int, int, Row]]:
        line_number = _lines_before(self.path, offset)
        with self.path.open("rb") as handle:
            handle.seek(offset)
            for line in handle:
                start = offset
                offset += len(line)
                line_number += 1
                if start == 0 and line.startswith(_BOM):
                    line = line[len(_BOM) :]
                text = line.strip()
                if not text:
                    continue
                if wanted is None or wanted(position):
                    yield position, start, line_number, decode_row(text)
                position += 1


def _lines_before(path: Path, offset: int) -> int:
    """How many lines end before byte ``offset``."""
    lines = 0
    with path.open("rb") as handle:
        while offset > 0:
            chunk = handle.read(min(_READ_CHUNK, offset))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            offset -= len(chunk)
    return lines


def decode_row(text: bytes) -> Row:
    """One line of JSON Lines as a row, or an :class:`InvalidRow` saying what is wrong."""
    try:
        row = decode_json(text)
    except (ValueError, RecursionError):
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

    def read_numbered(
        self, position: int = 0, offset: int = 0, wanted: Callable[[int], bool] | None = None
    ) -> Iterator[tuple[int, int, int, Row]]:
        for number, start, row in self.read(position, offset, wanted):
            yield number, start, number + 1, row

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


def check_not_same_file(
    input_path: str | os.PathLike[str], output_path: str | os.PathLike[str]
) -> None:
    """Refuse an OUTPUT that is the INPUT (by another name: ``./``, a symlink, a hard link),
    before either is touched: resuming would take the input for done rows, and starting
    over would empty it.

    Raises:
        ValueError: they are the same file.
    """
    source, output = Path(input_path), Path(output_path)
    try:
        same = output.exists() and source.exists() and os.path.samefile(source, output)
    except OSError:
        same = False
    if same or source.resolve() == output.resolve():
        raise ValueError(
            f"INPUT and OUTPUT are the same file ({source} and {output}): write the "
            "rankings to another file"
        )
