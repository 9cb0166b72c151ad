"""Text for people: URLs shown without credentials, lines cut to a terminal's width, and
JSON Lines read with errors that say where."""

from __future__ import annotations

import functools
import json
import unicodedata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["cut_to_width", "display_url", "json_object_line"]


@functools.lru_cache(maxsize=256)
def display_url(url: str) -> str:
    """``url`` without a user name, password or query string, which may hold credentials
    (kept for the few URLs a client uses: every attempt shows its URL)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def json_object_line(line: str, where: str) -> dict[str, Any]:
    """The JSON object on ``line``; a ``ValueError`` starting with ``where`` (``"docs.jsonl,
    line 3"``) when it is not JSON or not an object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object")
    return record


def cut_to_width(text: str, width: int) -> str:
    """``text`` on one line (runs of whitespace become one space), cut with ``…`` so that it
    takes at most ``width`` terminal columns; wide (East Asian) characters count as two."""
    flat = " ".join(text.split())
    if _columns(flat) <= width:
        return flat
    kept: list[str] = []
    used = 0
    for char in flat:
        size = _columns(char)
        if used + size > width - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept).rstrip() + "…"


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
