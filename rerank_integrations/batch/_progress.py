"""A job's progress on stderr: one line redrawn in place on a terminal, else a plain line
every so often (for logs), both saying rows/s, documents/s, ETA, retries and failures."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_duration"]

#: Seconds between redraws of the live line.
_REDRAW = 0.1
_BAR = 20


def format_duration(seconds: float) -> str:
    """``1:02:03``, ``4:05`` or ``6 s``."""
    whole = round(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    if minutes:
        return f"{minutes}:{secs:02d}"
    return f"{secs} s"


class Progress:
    """Where a job stands.

    Args:
        stream: where lines go (stderr).
        total: rows in the input, when known.
        done_before: rows already in the output when the job started.
        live: redraw one line in place (a terminal), else write a line each ``interval``.
        interval: seconds between plain lines.
        prefix: what each line starts with.
        clock: the time in seconds (tests pass a fake one).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        total: int | None,
        done_before: int,
        live: bool,
        interval: float,
        prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._total = total
        self._done_before = done_before
        self._live = live
        self._interval = interval
        self._prefix = prefix
        self._clock = clock
        self._started = clock()
        self._shown = self._started
        self._drawn = False
        self.rows = 0
        self.documents = 0
        self.retries = 0
        self.failed = 0

    def update(self, rows: int, documents: int, retries: int, failed: int) -> None:
        """The counts so far (this run's); a line is written when one is due."""
        self.rows, self.documents, self.retries, self.failed = rows, documents, retries, failed
        now = self._clock()
        if now - self._shown >= (_REDRAW if self._live else self._interval):
            self._shown = now
            self._write(self.status(now), final=False)

    def finish(self) -> None:
        """End the live line (a plain stream gets no more lines: a summary follows)."""
        if self._live and self._drawn:
            self._write(self.status(self._clock()), final=True)

    def status(self, now: float) -> str:
        """The line for the counts so far."""
        elapsed = max(now - self._started, 1e-9)
        done = self._done_before + self.rows
        parts: list[str] = []
        bar = ""
        if self._total:
            shown = min(done, self._total)
            share = shown / self._total
            if self._live:
                filled = int(share * _BAR)
                bar = "[" + "#" * filled + "-" * (_BAR - filled) + "] "
            parts.append(f"{shown:,}/{self._total:,} rows ({share:.1%})")
        else:
            parts.append(f"{done:,} rows")
        rate = self.rows / elapsed
        parts.append(f"{rate:,.0f} rows/s")
        parts.append(f"{self.documents / elapsed:,.0f} documents/s")
        if self._total and rate > 0:
            left = max(self._total - done, 0) / rate
            parts.append(f"ETA {format_duration(left)}")
        parts.append(f"{self.retries:,} retries")
        parts.append(f"{self.failed:,} failed")
        return self._prefix + bar + ", ".join(parts)

    def _write(self, text: str, *, final: bool) -> None:
        if self._live:
            self._stream.write("\r\x1b[K" + text + ("\n" if final else ""))
            self._drawn = not final
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
