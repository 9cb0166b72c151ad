"""Rows for the offline jobs (``batch``, Ray): made up, written, read back and compared."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_SENTENCE = (
    "espresso descale machine water filter grinder milk steam boiler pump valve scale coffee "
    "bean roast brew kettle tea leaf cup heat clean vinegar citric acid manual"
)
_WORDS = _SENTENCE.split()


def make_rows(
    count: int, documents: int = 8, *, seed: int = 1, start: int = 0, objects: int = 3
) -> list[dict[str, Any]]:
    """``count`` rows ``{"id", "query", "documents"}``, the same for the same arguments; every
    ``objects``-th row gives its documents as ``{"id", "text"}`` objects (``1``: all of
    them, ``0``: none: a column of one type, as Arrow wants)."""
    rng = random.Random(seed)
    rows = []
    for number in range(start, start + count):
        query = " ".join(rng.sample(_WORDS, 3))
        texts = [" ".join(rng.choices(_WORDS, k=rng.randint(4, 12))) for _ in range(documents)]
        docs: list[Any] = texts
        if objects and number % objects == 0:
            docs = [{"id": f"d{number}-{k}", "text": text} for k, text in enumerate(texts)]
        rows.append({"id": f"row-{number}", "query": query, "documents": docs})
    return rows


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Write ``rows`` as JSON Lines (strings are written as they are, as raw lines)."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row if isinstance(row, str) else json.dumps(row))
            handle.write("\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON Lines file, decoded; a half line fails the test."""
    text = path.read_text(encoding="utf-8")
    assert not text or text.endswith("\n"), "the output ends with half a line"
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def rankings(rows: Iterable[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Each row's ranking by row id: ``[(index, score), ...]``, best first."""
    return {
        row["id"]: [(item["index"], item["relevance_score"]) for item in row["results"]]
        for row in rows
    }
