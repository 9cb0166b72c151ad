"""A job's progress on stderr: one line redrawn in place on a terminal, else a plain line
every so often (for logs), both saying rows/s, documents/s, ETA, retries and failures."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
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


@dataclass(eq=False)
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

    stream: TextIO
    _: KW_ONLY
    total: int | None
    done_before: int
    live: bool
    interval: float
    prefix: str = ""
    clock: Callable[[], float] = time.monotonic
    rows: int = field(default=0, init=False)
    documents: int = field(default=0, init=False)
    retries: int = field(default=0, init=False)
    failed: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._started = self.clock()
        self._shown = self._started
        self._drawn = False

    def update(self, rows: int, documents: int, retries: int, failed: int) -> None:
        """The counts so far (this run's); a line is written when one is due."""
        self.rows, self.documents, self.retries, self.failed = rows, documents, retries, failed
        now = self.clock()
        if now - self._shown >= (_REDRAW if self.live else self.interval):
            self._shown = now
            self._write(self.status(now), final=False)

    def finish(self) -> None:
        """End the live line (a plain stream gets no more lines: a summary follows)."""
        if self.live and self._drawn:
            self._write(self.status(self.clock()), final=True)

    def status(self, now: float) -> str:
        """The line for the counts so far."""
        elapsed = max(now - self._started, 1e-9)
        done = self.done_before + self.rows
        parts: list[str] = []
        bar = ""
        if self.total:
            shown = min(done, self.total)
            share = shown / self.total
            if self.live:
                filled = int(share * _BAR)
                bar = "[" + "#" * filled + "-" * (_BAR - filled) + "] "
            parts.append(f"{shown:,}/{self.total:,} rows ({share:.1%})")
        else:
            parts.append(f"{done:,} rows")
        rate = self.rows / elapsed
        parts.append(f"{rate:,.0f} rows/s")
        parts.append(f"{self.documents / elapsed:,.0f} documents/s")
        if self.total and rate > 0:
            left = max(self.total - done, 0) / rate
            parts.append(f"ETA {format_duration(left)}")
        parts.append(f"{self.retries:,} retries")
        parts.append(f"{self.failed:,} failed")
        return self.prefix + bar + ", ".join(parts)

    def _write(self, text: str, *, final: bool) -> None:
        if self.live:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
            self._drawn = not final
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
