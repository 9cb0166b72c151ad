"""The output of a job: a file that only ever grows by whole lines, and what a rerun finds
already done in it. The input files are read by :mod:`._input` (its names are exported
here too, as before it had a module of its own)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._closing import Closing
from .._exceptions import ResumeError
from ._input import (
    INPUT_FORMATS,
    JsonLinesSource,
    ParquetSource,
    Row,
    Source,
    check_not_same_file,
    decode_row,
    open_source,
)
from ._rows import Fields, decode_json, row_key

try:  # POSIX: one job at a time per output file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "INPUT_FORMATS",
    "MAX_PENDING",
    "JsonLinesSource",
    "OutputFile",
    "ParquetSource",
    "ResumeError",
    "ResumePlan",
    "RewriteFile",
    "RewritePlan",
    "Source",
    "check_not_same_file",
    "decode_row",
    "failed_line",
    "open_source",
    "plan_resume",
    "plan_rewrite",
]

#: The most rows before an output's last one that may be missing from it (failed and
#: skipped) before a rerun gives up: past that, it was probably written from another input.
MAX_PENDING = 1_000_000


class OutputFile(Closing):
    """The output: opened for appending, locked against a second job, grown one whole line
    per ``write`` call.

    Each row is a single ``write(2)`` of its whole line with its newline, so that a killed
    job leaves whole lines (a crash of the machine can leave half of the last one, which the
    next run cuts off). A write that fails (a full disk) is cut back to the last whole line
    before the error is raised. :meth:`sync` makes what was written survive a crash too.
    """

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(self.path))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            _lock(self._fd, self.path)
            if overwrite:
                os.ftruncate(self._fd, 0)
            self._size = os.fstat(self._fd).st_size
        except BaseException:
            os.close(self._fd)
            raise

    def write(self, line: bytes) -> None:
        """Append one whole line (it ends with a newline).

        Raises:
            OSError: the write failed (the file is cut back to its last whole line first).
        """
        try:
            _write_all(self._fd, line)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise _write_failed(error, self.path) from error
        self._size += len(line)

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes (a half line left by a crash)."""
        os.ftruncate(self._fd, size)
        self._size = size

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


def _lock(fd: int, path: Path) -> None:
    if fcntl is None:  # pragma: no cover - Windows
        return  # type: ignore[unreachable]
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ResumeError(f"{path} is being written by another batch job right now") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_failed(error: OSError, path: Path) -> OSError:
    reason = error.strerror or str(error)
    return OSError(
        error.errno or errno.EIO,
        f"writing {path} failed ({reason}); it holds whole rows only, and a rerun "
        "resumes after them",
        str(path),
    )


class RewriteFile:
    """An output rewritten whole (``retry_failed``, ``redo_changed``): the old file stays
    as it is, locked, while the new one is written to a temporary file beside it that
    replaces it in one atomic rename, so the output is valid JSON Lines at every instant.

    Attributes:
        path: the output.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._old = os.open(self.path, os.O_RDONLY)
        try:
            _lock(self._old, self.path)
            fd, name = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".partial"
            )
        except BaseException:
            os.close(self._old)
            raise
        self._fd = fd
        self._temporary = Path(name)
        with contextlib.suppress(OSError):  # the output's permissions, not mkstemp's 0600
            os.chmod(self._temporary, os.stat(self.path).st_mode & 0o777)

    def old_line(self, offset: int, length: int) -> bytes:
        """A line of the old output."""
        return os.pread(self._old, length, offset)

    def write(self, line: bytes) -> None:
        """Append one whole line to the new output.

        Raises:
            OSError: the write failed (the old output stands, unchanged).
        """
        try:
            _write_all(self._fd, line)
        except OSError as error:
            raise OSError(
                error.errno or errno.EIO,
                f"writing {self.path} failed ({error.strerror or error}); it is as it was "
                "before this run, and a rerun tries again",
                str(self.path),
            ) from error

    def sync(self) -> None:
        """Make what was written durable."""
        with contextlib.suppress(OSError):
            os.fsync(self._fd)

    def commit(self) -> None:
        """Put the new output in the old one's place."""
        os.fsync(self._fd)
        os.replace(self._temporary, self.path)
        with contextlib.suppress(OSError):  # make the rename durable
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def close(self) -> None:
        """Close both files; the temporary one is removed unless committed."""
        if self._fd < 0:
            return
        try:
            os.close(self._fd)
            os.close(self._old)
        finally:
            self._fd = -1
            with contextlib.suppress(FileNotFoundError):
                self._temporary.unlink()


@dataclass
class ResumePlan:
    """What a rerun finds in its output.

    Attributes:
        done: rows of the input already in the output.
        failed: those of them written with their error.
        pending: ``(position, offset)`` of rows before ``position`` that are not in it (rows
            that failed and were skipped), in input order.
        position: the first row of the input beyond the output's last one.
        offset: where that row starts.
        good_size: the bytes of the output that are whole lines.
        partial: whether a half line follows them (cut off before writing).
    """

    done: int = 0
    failed: int = 0
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


def _output_lines(output: Path) -> Iterator[tuple[int, int, bytes, dict[str, Any] | None]]:
    """``(line number, offset, line, row)`` for each whole line of an output (``row`` is
    ``None`` for a blank line); a half line at the end (a crash) ends it.

    Raises:
        ResumeError: a line is not a JSON object.
    """
    offset = 0
    with output.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return
            start, offset = offset, offset + len(line)
            text = line.strip()
            if not text:
                yield number, start, line, None
                continue
            try:
                written = decode_json(text)
            except (ValueError, RecursionError):
                written = None
            if not isinstance(written, dict):
                raise ResumeError(
                    f"{output}, line {number}: not a JSON object, so not a row a batch job "
                    "wrote; write to a new output file, or start over (overwrite)"
                )
            yield number, start, line, written


def plan_resume(source: Source, output: Path, fields: Fields) -> ResumePlan:
    """Match the output's rows against the input's, in one pass over each.

    A job writes rows in input order, so an output is the input with some rows left out
    (rows not reached yet, rows that failed and were skipped), and a rerun appends rows it
    had left out, again in input order. Each output row is either one of those left out
    before, or the next one of the input; the memory this takes grows with the rows left
    out, never with the rows done. Rows are matched by their content (see
    :func:`~._rows.row_key`), never by their id alone.

    Raises:
        ResumeError: a line of the output is not a JSON object, is no row of the input, or
            is a row of the input as it was before it was edited.
    """
    plan = ResumePlan()
    if not output.exists():
        return plan
    rows = source.read_numbered()
    missing: dict[bytes, list[tuple[int, int]]] = {}
    missing_count = 0
    size = 0
    for number, _, line, written in _output_lines(output):
        size += len(line)
        if written is None:
            plan.good_size = size
            continue
        key = row_key(written, fields)
        earlier = missing.get(key)
        if earlier:
            earlier.pop(0)
            missing_count -= 1
            if not earlier:
                del missing[key]
        else:
            written_id = written.get(fields.id)
            changed: int | None = None
            for position, offset, row_number, row in rows:
                plan.position, plan.offset = position + 1, offset
                found = row_key(row, fields)
                if found == key:
                    break
                if changed is None and _same_id(row, written_id, fields):
                    changed = row_number
                missing.setdefault(found, []).append((position, offset))
                missing_count += 1
                if missing_count > MAX_PENDING:
                    raise ResumeError(_not_from(output, number, source))
            else:
                raise ResumeError(_not_from(output, number, source, written_id, changed))
        plan.done += 1
        plan.failed += failed_line(written, fields)
        plan.good_size = size
    plan.partial = size < output.stat().st_size
    plan.offset = _next_offset(source, plan)
    plan.pending = sorted(item for items in missing.values() for item in items)
    return plan


def failed_line(written: Mapping[str, Any], fields: Fields) -> bool:
    """Whether an output row is one written with its error."""
    return written.get(fields.results) is None and fields.error in written


def _same_id(row: Row, written_id: object, fields: Fields) -> bool:
    if written_id is None or not isinstance(row, Mapping):
        return False
    try:
        return bool(row.get(fields.id) == written_id)
    except Exception:
        return False


@dataclass
class RewritePlan:
    """What a rewrite of the output keeps from it.

    Attributes:
        lines: the input rows found in the output: their position to ``(offset, length,
            failed)`` of their line; ``failed`` for a row written with its error.
        dropped: output lines that are no row of the input as it is now (edited rows).
    """

    lines: dict[int, tuple[int, int, bool]] = field(default_factory=dict)
    dropped: int = 0


def plan_rewrite(
    source: Source, output: Path, fields: Fields, *, redo_changed: bool
) -> RewritePlan:
    """Match every line of the output to a row of the input, by content, in any order.

    Unlike :func:`plan_resume`, this takes memory for every line of the output (about a
    hundred bytes a row), to rewrite it in input order.

    Raises:
        ResumeError: a line is not a JSON object, or (unless ``redo_changed``) is no row of
            the input as it is now.
    """
    plan = RewritePlan()
    if not output.exists():
        return plan
    by_key: dict[bytes, deque[tuple[int, int, bool, int, object]]] = {}
    for number, offset, line, written in _output_lines(output):
        if written is None:
            continue
        failed = failed_line(written, fields)
        entry = (offset, len(line), failed, number, written.get(fields.id))
        by_key.setdefault(row_key(written, fields), deque()).append(entry)
    for position, _, row in source.read():
        waiting = by_key.get(row_key(row, fields))
        if waiting:
            offset, length, failed, _, _ = waiting.popleft()
            plan.lines[position] = (offset, length, failed)
    left = sorted((entry for entries in by_key.values() for entry in entries), key=lambda e: e[3])
    plan.dropped = len(left)
    if left and not redo_changed:
        _, _, _, number, written_id = left[0]
        changed = None
        if written_id is not None:
            for _, _, row_number, row in source.read_numbered():
                if _same_id(row, written_id, fields):
                    changed = row_number
                    break
        raise ResumeError(_not_from(output, number, source, written_id, changed))
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


def _not_from(
    output: Path,
    number: int,
    source: Source,
    written_id: object = None,
    changed: int | None = None,
) -> str:
    if changed is not None:
        return (
            f"{output}, line {number}: the row with id {written_id!r} is not as row "
            f"{changed} of {source.name} is now (its query, documents or other fields were "
            "edited after this output was written), so its ranking is stale; redo the "
            "changed rows (--redo-changed), or start over (overwrite)"
        )
    return (
        f"{output}, line {number}: this row is not in {source.name} (or not in its order): "
        "the output was written from another input, or its rows were edited since; write "
        "to a new output file, redo the changed rows (--redo-changed), or start over "
        "(overwrite)"
    )
