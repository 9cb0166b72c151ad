"""The score store: every (query, document) score an evaluation got, in one SQLite file that
a rerun reads instead of asking again."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

__all__ = ["ScoreStore"]


class ScoreStore:
    """An on-disk cache of (query, document) scores in one SQLite file, for a client's
    ``cache=``: ``get(key)`` and ``set(key, value)``, safe to share between threads.

    Scores are written in batches of ``batch`` (and on :meth:`flush` and :meth:`close`),
    so keeping them costs little beside the requests; a crash loses at most one batch,
    which the next run asks for again. The keys are read into memory when the file is
    opened (some 100 bytes a score), so that a score not there costs no query; scores
    another process writes to the file afterwards are not seen until it is opened again.

    Args:
        path: the file (created with its folder when missing).
        batch: scores held in memory before they are written.
    """

    def __init__(self, path: str | os.PathLike[str], batch: int = 2000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._batch = batch
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT)")
        self._known = {row[0] for row in self._db.execute("SELECT key FROM scores")}

    def __repr__(self) -> str:
        return f"ScoreStore({str(self.path)!r})"

    def get(self, key: str, default: Any = None) -> Any:
        """The value kept for ``key``, else ``default``."""
        with self._lock:
            value = self._pending.get(key)
            if value is not None:
                return value
            if key not in self._known:
                return default
            row = self._db.execute("SELECT value FROM scores WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` for ``key``."""
        with self._lock:
            self._pending[key] = str(value)
            if len(self._pending) >= self._batch:
                self._write()

    def _write(self) -> None:
        if self._pending:
            with self._db:  # one transaction
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?)", self._pending.items()
                )
            self._known.update(self._pending)
            self._pending.clear()

    def flush(self) -> None:
        """Write the scores held in memory."""
        with self._lock:
            self._write()

    def __len__(self) -> int:
        with self._lock:
            self._write()
            return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def close(self) -> None:
        """Write what is held and close the file."""
        with self._lock:
            self._write()
            self._db.close()
