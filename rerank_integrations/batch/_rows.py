"""Rows as data: what a row asks for, what its answer looks like, and how a row is known
again in an output file. Pure functions; no I/O."""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._exceptions import APIStatusError, InvalidRowError
from .._types import RerankResponse

__all__ = [
    "ON_ERROR_MODES",
    "Fields",
    "InvalidRow",
    "InvalidRowError",
    "decode_json",
    "encode_line",
    "error_json",
    "parse_row",
    "results_json",
    "row_key",
    "unicode_problem",
]

#: What a job does with a row that fails after its retries.
ON_ERROR_MODES = ("stop", "record", "skip")


@dataclass(frozen=True, slots=True)
class Fields:
    """The names of the fields a job reads and writes.

    Attributes:
        query: the row's query (a string).
        documents: the row's candidates: a list of strings or of objects with a text.
        id: the row's own id, when it has one: named in messages. Rows already in an
            output are found by their content, this id included, never by the id alone.
        text: the text of a document given as an object.
        document_id: the id of a document given as an object, copied to its result.
        results: the ranking written into each row.
        error: the error written into a row that failed (``--on-error record``).
    """

    query: str = "query"
    documents: str = "documents"
    id: str = "id"
    text: str = "text"
    document_id: str = "id"
    results: str = "results"
    error: str = "error"

    def __post_init__(self) -> None:
        for name in ("query", "documents", "id", "text", "document_id", "results", "error"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"the {name} field name must be a non-empty string")
        if self.results == self.error:
            raise ValueError("the results and error fields must have different names")
        written = {self.results, self.error}
        for name in ("query", "documents", "id"):
            if getattr(self, name) in written:
                raise ValueError(
                    f"the {name} field ({getattr(self, name)!r}) cannot also be where "
                    "results or errors are written"
                )


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A line of input that is not a row at all (not JSON, not an object).

    Attributes:
        raw: the line as read, without its line ending.
        reason: what is wrong with it.
    """

    raw: bytes
    reason: str


def parse_row(row: object, fields: Fields) -> tuple[str, list[str], list[Any] | None]:
    """The query, the document texts and the documents' ids (``None`` when none has one).

    Raises:
        InvalidRowError: the row has no usable query or documents.
    """
    if isinstance(row, InvalidRow):
        raise InvalidRowError(row.reason)
    if not isinstance(row, Mapping):
        raise InvalidRowError(f"a row must be an object, got {type(row).__name__}")
    if fields.query not in row:
        raise InvalidRowError(f"no {fields.query!r} field")
    query = row[fields.query]
    if not isinstance(query, str):
        raise InvalidRowError(f"the {fields.query!r} field is not a string")
    problem = unicode_problem(query)
    if problem is not None:
        raise InvalidRowError(f"the {fields.query!r} field {problem}")
    if fields.documents not in row:
        raise InvalidRowError(f"no {fields.documents!r} field")
    documents = row[fields.documents]
    if isinstance(documents, (str, bytes, Mapping)) or not isinstance(documents, Sequence):
        raise InvalidRowError(f"the {fields.documents!r} field is not a list")
    texts: list[str] = []
    ids: list[Any] = []
    with_ids = False
    for number, document in enumerate(documents):
        if isinstance(document, str):
            _check_unicode(document, fields, number)
            texts.append(document)
            ids.append(None)
            continue
        if isinstance(document, Mapping):
            text = document.get(fields.text)
            if isinstance(text, str):
                _check_unicode(text, fields, number)
                texts.append(text)
                identifier = document.get(fields.document_id)
                with_ids = with_ids or identifier is not None
                ids.append(identifier)
                continue
        raise InvalidRowError(
            f"{fields.documents}[{number}] is neither a string nor an object with a string "
            f"{fields.text!r}"
        )
    return query, texts, ids if with_ids else None


def _check_unicode(text: str, fields: Fields, number: int) -> None:
    problem = unicode_problem(text)
    if problem is not None:
        raise InvalidRowError(f"{fields.documents}[{number}] {problem}")


def results_json(response: RerankResponse, ids: Sequence[Any] | None) -> list[dict[str, Any]]:
    """A ranking as written into a row: best first, each with its index and score, the
    document's id when it had one, and the part that was scored when it was cut."""
    results: list[dict[str, Any]] = []
    for result in response.results:
        item: dict[str, Any] = {"index": result.index, "relevance_score": result.relevance_score}
        if ids is not None and ids[result.index] is not None:
            item["id"] = ids[result.index]
        if result.span is not None:
            item["span"] = [result.span[0], result.span[1]]
        results.append(item)
    return results


def error_json(error: BaseException) -> dict[str, Any]:
    """An error as written into a row: its type and message (and HTTP status)."""
    item: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, APIStatusError):
        item["status_code"] = error.status_code
    return item


# -- encoding and keys ------------------------------------------------------------------------


def _default(value: object) -> object:
    """What JSON cannot say by itself (Parquet's dates, decimals and bytes)."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    tolist = getattr(value, "tolist", None)  # numpy values, from Ray or pandas
    if callable(tolist):
        return tolist()
    raise TypeError(f"cannot write a value of type {type(value).__name__} as JSON")


_STDLIB_LINE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=_default)
_STDLIB_SORTED = json.JSONEncoder(
    ensure_ascii=True, separators=(",", ":"), default=_default, sort_keys=True
)

if importlib.util.find_spec("orjson") is not None:
    import orjson

    def _fast_line(row: Mapping[str, Any]) -> bytes:
        return orjson.dumps(
            row, default=_default, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
        )

    def _fast_canonical(value: object) -> bytes:
        return orjson.dumps(
            value, default=_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        )

    def _fast_loads(text: bytes) -> Any:
        return orjson.loads(text)

else:  # pragma: no cover - exercised when the ``fast`` extra is absent
    _ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)
    _SORTED = json.JSONEncoder(
        ensure_ascii=False, separators=(",", ":"), default=_default, sort_keys=True
    )

    def _fast_line(row: Mapping[str, Any]) -> bytes:
        return (_ENCODER.encode(row) + "\n").encode("utf-8")

    def _fast_canonical(value: object) -> bytes:
        return _SORTED.encode(value).encode("utf-8")

    def _fast_loads(text: bytes) -> Any:
        return json.loads(text)


def encode_line(row: Mapping[str, Any]) -> bytes:
    """``row`` as one line of JSON Lines, ending in a newline.

    Text that UTF-8 cannot hold (a lone surrogate, valid in JSON as ``"\\udcff"``) and
    integers beyond 64 bits are written as the standard library writes them, escaped, so
    that the line reads back as the row it came from."""
    try:
        return _fast_line(row)
    except (TypeError, UnicodeEncodeError):
        return (_STDLIB_LINE.encode(row) + "\n").encode("ascii")


def decode_json(text: bytes) -> Any:
    """One line of JSON text, decoded; what the fast decoder refuses but JSON allows (a
    lone surrogate escaped, an integer beyond 64 bits) is decoded by the standard library.

    Raises:
        ValueError, RecursionError: not JSON.
    """
    try:
        return _fast_loads(text)
    except (ValueError, RecursionError):
        return json.loads(text)


def _canonical(value: object) -> bytes:
    try:
        return _fast_canonical(value)
    except (TypeError, UnicodeEncodeError):
        return _STDLIB_SORTED.encode(value).encode("ascii")


def row_key(row: object, fields: Fields) -> bytes:
    """What tells a row apart from the others, the same for an input row and for the
    output row written from it: a digest of everything the row holds (its id included)
    but the fields a job writes. Two rows with the same key ask the same thing and get the
    same ranking, so either one's output line stands for the other; an id alone (shared by
    two rows, ``null`` in both, or kept while the query was edited) never matches a row.
    A line that is no row is known by its bytes."""
    if isinstance(row, InvalidRow):
        return b"l" + hashlib.blake2b(row.raw.strip(), digest_size=16).digest()
    if not isinstance(row, Mapping):
        return b"l" + hashlib.blake2b(_canonical(row), digest_size=16).digest()
    if fields.results in row or fields.error in row:
        written = (fields.results, fields.error)
        row = {key: value for key, value in row.items() if key not in written}
    return b"r" + hashlib.blake2b(_canonical(row), digest_size=16).digest()


def unicode_problem(text: str) -> str | None:
    """What keeps ``text`` from being sent as UTF-8 (a lone surrogate), or ``None``."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        char = text[error.start]
        return (
            f"is not valid Unicode: a lone surrogate U+{ord(char):04X} at character "
            f"{error.start} (often left by a broken PDF or text extraction)"
        )
    return None
