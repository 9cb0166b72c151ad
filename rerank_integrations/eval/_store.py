"""The score store: every (query, document) score an evaluation got, in one SQLite file that
a rerun reads instead of asking again.

The file holds one table of rows appended in the order they were kept, with no index: the
keys are hashes, so an index on them would put every new row on a page of its own and
rewrite most of the file at each batch. Instead the store keeps in memory where each key's
row is (its ``rowid``) and reads a value by it. A file written before this layout (format
1, a table ``scores`` keyed by its text) is carried over when it is opened.
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._constants import LOGGER_NAME
from .._exceptions import EvalInputError

__all__ = ["STORE_FORMAT", "ScoreStore"]

logger = logging.getLogger(LOGGER_NAME)

#: The layout of the file, as its ``PRAGMA user_version``: 2, rows appended, found by rowid.
#: (Format 1, version 0: a table ``scores (key TEXT PRIMARY KEY, value TEXT)``.)
STORE_FORMAT = 2

#: Values read with one query at most (SQLite's oldest limit on parameters is 999).
_CHUNK = 500


class ScoreStore:
    """An on-disk cache of (query, document) scores in one SQLite file, for a client's
    ``cache=``: ``get(key)`` and ``set(key, value)``, and ``get_many(keys)`` and
    ``set_many(mapping)`` for a whole call at once; safe to share between threads.

    Scores are written in batches of ``batch`` (and on :meth:`flush` and :meth:`close`),
    so keeping them costs little beside the requests; a crash loses at most one batch,
    which the next run asks for again. Where each key's row is is read into memory when the
    file is opened (some 170 bytes a score), so that a score not there costs no query;
    scores another process writes to the file afterwards are not seen until it is opened
    again. A file of the store's first format is carried over as it is opened.

    Args:
        path: the file (created with its folder when missing).
        batch: scores held in memory before they are written.

    Raises:
        EvalInputError: ``path`` is not a score store (another SQLite file, not SQLite),
            or one written by a newer version of this package.
    """

    def __init__(self, path: str | os.PathLike[str], batch: int = 2000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._batch = batch
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._layout()  # read only: a file that is not a store is left as it was
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._open()
            # The latest row of a key wins (another process may have kept it too).
            self._rows: dict[str, int] = {
                key: rowid
                for rowid, key in self._db.execute("SELECT rowid, key FROM entries ORDER BY rowid")
            }
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise EvalInputError(
                f"{self.path} is not a score store ({error}): give the cache another path"
            ) from error
        except BaseException:
            self._db.close()
            raise

    def _layout(self) -> str:
        """What the file holds: ``"store"`` (this format), ``"first"`` (the first format's
        table), ``"empty"``.

        Raises:
            EvalInputError: anything else.
        """
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version == STORE_FORMAT:
            return "store"
        if version > STORE_FORMAT:
            raise EvalInputError(
                f"{self.path} is a score store of format {version}, written by a newer "
                f"version of rerank-integrations (this one reads format {STORE_FORMAT}): "
                "upgrade, or give the cache another path"
            )
        tables = {
            name
            for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if version == 0 and not tables:
            return "empty"
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(scores)")]
        if version == 0 and tables == {"scores"} and columns == ["key", "value"]:
            return "first"
        found = ", ".join(sorted(tables)) or "none"
        raise EvalInputError(
            f"{self.path} is not a score store (user_version {version}, tables: {found}): "
            "give the cache another path"
        )

    def _open(self) -> None:
        """Make the file a store of this format: create it, or carry a store of the first
        format over."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # two processes opening it: one at a time
            layout = self._layout()
            if layout == "store":
                return
            self._db.execute("CREATE TABLE entries (key TEXT NOT NULL, value TEXT NOT NULL)")
            if layout == "first":
                carried = self._db.execute(
                    "INSERT INTO entries (key, value) SELECT key, value FROM scores "
                    "WHERE value IS NOT NULL ORDER BY rowid"
                ).rowcount
                self._db.execute("DROP TABLE scores")
                logger.info(
                    "rerank eval: %s carried over to score store format %d (%d scores)",
                    self.path,
                    STORE_FORMAT,
                    carried,
                )
            self._db.execute(f"PRAGMA user_version = {STORE_FORMAT}")

    def __repr__(self) -> str:
        return f"ScoreStore({str(self.path)!r})"

    def get(self, key: str, default: Any = None) -> Any:
        """The value kept for ``key``, else ``default``."""
        return self.get_many((key,)).get(key, default)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values kept for those of ``keys`` that have one, by key."""
        with self._lock:
            pending, rows = self._pending, self._rows
            keys = keys if isinstance(keys, (list, tuple)) else list(keys)
            # Set operations, so that keys the store lacks (all of them, in a first run)
            # cost no Python step each.
            found: dict[str, Any] = {key: pending[key] for key in pending.keys() & keys}
            wanted = {rows[key]: key for key in rows.keys() & keys if key not in found}
            if wanted:
                listed = list(wanted)
                for start in range(0, len(listed), _CHUNK):
                    chunk = listed[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    for rowid, value in self._db.execute(
                        f"SELECT rowid, value FROM entries WHERE rowid IN ({marks})", chunk
                    ):
                        found[wanted[rowid]] = value
        return found

    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` for ``key``."""
        self.set_many({key: value})

    def set_many(self, values: Mapping[str, Any]) -> None:
        """Keep each of ``values`` for its key."""
        with self._lock:
            pending = self._pending
            pending.update(zip(values.keys(), map(str, values.values()), strict=False))
            if len(pending) >= self._batch:
                self._write()

    def _write(self) -> None:
        if not self._pending:
            return
        pending, rows = self._pending, self._rows
        kept = rows.keys() & pending.keys()  # keys with a row already: usually none
        added = (
            {key: value for key, value in pending.items() if key not in kept} if kept else pending
        )
        with self._db:  # one transaction
            self._db.execute("BEGIN IMMEDIATE")
            # Rowids given here, after what any process has written, so that each key's
            # row is known without asking for it.
            first = 1 + int(
                self._db.execute("SELECT COALESCE(MAX(rowid), 0) FROM entries").fetchone()[0]
            )
            self._db.executemany(
                "INSERT INTO entries (rowid, key, value) VALUES (?, ?, ?)",
                zip(itertools.count(first), added.keys(), added.values()),
            )
            if kept:
                self._db.executemany(
                    "UPDATE entries SET value = ? WHERE rowid = ?",
                    [(pending[key], rows[key]) for key in kept],
                )
        rows.update(zip(added.keys(), itertools.count(first)))
        pending.clear()

    def flush(self) -> None:
        """Write the scores held in memory."""
        with self._lock:
            self._write()

    def __len__(self) -> int:
        with self._lock:
            self._write()
            return int(self._db.execute("SELECT COUNT(DISTINCT key) FROM entries").fetchone()[0])

    def close(self) -> None:
        """Write what is held and close the file."""
        with self._lock:
            self._write()
            self._db.close()
