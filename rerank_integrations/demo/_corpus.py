"""The demo's labelled corpus: short passages on a few everyday topics, and queries with judgements.

The data ship inside the package (``rerank_integrations/demo/data``) as JSON Lines
and are read with :mod:`importlib.resources`, so they load the same way from a
source checkout, an installed wheel or a zip archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from .._text import json_object_line

__all__ = [
    "LabelledQuery",
    "Passage",
    "load_passages",
    "load_queries",
]

_PACKAGE = "rerank_integrations.demo"
_DATA_DIR = "data"
_PASSAGES_FILE = "passages.jsonl"
_QUERIES_FILE = "queries.jsonl"


@dataclass(frozen=True)
class Passage:
    """One retrievable passage of the demo corpus.

    Attributes:
        id: Unique identifier such as ``"p017"``.
        topic: Coarse subject label such as ``"coffee"``; several passages share one.
        text: The passage itself, one to four sentences.
    """

    id: str
    topic: str
    text: str


@dataclass(frozen=True)
class LabelledQuery:
    """A search query with the ids of the passages that answer it.

    Attributes:
        id: Unique identifier such as ``"q05"``.
        query: The question as a user would type it.
        relevant: Ids of the passages judged relevant (at least one), in no
            particular order.
    """

    id: str
    query: str
    relevant: tuple[str, ...]


def _read_jsonl(filename: str) -> list[dict[str, Any]]:
    """Parse one JSON Lines file from the package's data directory, skipping blank lines."""
    resource = resources.files(_PACKAGE) / _DATA_DIR / filename
    records: list[dict[str, Any]] = []
    with resource.open("r", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            records.append(json_object_line(line, f"{filename}, line {line_number}"))
    return records


def _text_field(record: dict[str, Any], key: str, where: str) -> str:
    """Return ``record[key]`` if it is a non-blank string, else raise ValueError."""
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: field {key!r} must be a non-empty string")
    return value


def _check_unique(ids: list[str], filename: str) -> None:
    """Raise ValueError naming every id that occurs more than once."""
    seen: set[str] = set()
    duplicates: list[str] = []
    for item_id in ids:
        if item_id in seen and item_id not in duplicates:
            duplicates.append(item_id)
        seen.add(item_id)
    if duplicates:
        raise ValueError(f"{filename}: duplicate ids: {', '.join(duplicates)}")


def load_passages() -> list[Passage]:
    """Load and validate the demo passages, in file order.

    Raises:
        ValueError: if a line is not a JSON object, a field is missing or
            blank, or two passages share an id.
    """
    passages: list[Passage] = []
    for index, record in enumerate(_read_jsonl(_PASSAGES_FILE), start=1):
        where = f"{_PASSAGES_FILE}, record {index}"
        passages.append(
            Passage(
                id=_text_field(record, "id", where),
                topic=_text_field(record, "topic", where),
                text=_text_field(record, "text", where),
            )
        )
    _check_unique([passage.id for passage in passages], _PASSAGES_FILE)
    return passages


def load_queries() -> list[LabelledQuery]:
    """Load and validate the labelled queries, in file order.

    Every relevant id is checked against :func:`load_passages`.

    Raises:
        ValueError: if a line is not a JSON object, a field is missing or
            malformed, a query has no relevant ids, two queries share an id,
            or a relevant id names no passage.
    """
    passage_ids = {passage.id for passage in load_passages()}
    queries: list[LabelledQuery] = []
    for index, record in enumerate(_read_jsonl(_QUERIES_FILE), start=1):
        where = f"{_QUERIES_FILE}, record {index}"
        query_id = _text_field(record, "id", where)
        relevant = record.get("relevant")
        if (
            not isinstance(relevant, list)
            or not relevant
            or not all(isinstance(item, str) for item in relevant)
        ):
            raise ValueError(
                f"{where} ({query_id}): 'relevant' must be a non-empty list of passage ids"
            )
        unknown = [item for item in relevant if item not in passage_ids]
        if unknown:
            raise ValueError(
                f"{where} ({query_id}): unknown relevant passage ids: {', '.join(unknown)}"
            )
        queries.append(
            LabelledQuery(
                id=query_id,
                query=_text_field(record, "query", where),
                relevant=tuple(dict.fromkeys(relevant)),
            )
        )
    _check_unique([query.id for query in queries], _QUERIES_FILE)
    return queries
