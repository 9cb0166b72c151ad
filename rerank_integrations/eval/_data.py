"""What an evaluation reads: queries, a corpus, relevance judgements (qrels) and a first-stage
run, in the formats IR people already have, each checked before any request is sent.

- a BEIR folder: ``corpus.jsonl`` (``{"_id", "title"?, "text"}``), ``queries.jsonl``
  (``{"_id", "text"}``) and ``qrels/<split>.tsv`` (``query-id corpus-id score``, a header);
- a first-stage run in TREC format: ``qid Q0 docid rank score tag``;
- or a candidates file as the batch job reads it (``{"id", "query", "documents": [{"id",
  "text", "score"?}]}``, best first) with qrels in TREC (``qid 0 docid rel``) or JSON Lines
  (``{"query_id", "doc_id", "relevance"}``) format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import EvalInputError
from .._text import json_object_line

__all__ = [
    "Dataset",
    "FirstStage",
    "check_inputs",
    "load_beir",
    "load_candidates",
    "read_qrels",
    "read_trec_run",
]

#: How many offending ids an error message shows.
_SHOWN = 5


@dataclass(frozen=True)
class Dataset:
    """Queries, documents and judgements.

    Attributes:
        queries: query id to query text.
        corpus: document id to document text.
        qrels: query id to ``{document id: relevance}`` (graded; 0 or less: not relevant).
        name: where it came from, for the report.
    """

    queries: Mapping[str, str]
    corpus: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]
    name: str = "dataset"


@dataclass(frozen=True)
class FirstStage:
    """The first stage's candidates: query id to ``[(document id, score), ...]``, best first
    (score descending, ties by document id descending, as trec_eval orders them).

    Attributes:
        candidates: the ranked candidates of each query.
        name: where it came from, for the report.
    """

    candidates: Mapping[str, Sequence[tuple[str, float]]]
    name: str = "first-stage"
    notes: tuple[str, ...] = field(default=())

    @property
    def depth(self) -> int:
        """The most candidates of any query."""
        return max((len(ranked) for ranked in self.candidates.values()), default=0)


def _shown(ids: Iterable[str]) -> str:
    ordered = sorted(ids)
    more = f" and {len(ordered) - _SHOWN} more" if len(ordered) > _SHOWN else ""
    return ", ".join(repr(item) for item in ordered[:_SHOWN]) + more


def _ranked(scored: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Score descending, then document id descending: trec_eval's order."""
    return sorted(scored, key=lambda item: (item[1], item[0]), reverse=True)


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, where, line in _lines(path):
        try:
            yield number, json_object_line(line, where)
        except ValueError as exc:
            raise EvalInputError(str(exc)) from None


def _whitespace_lines(path: Path) -> Iterator[tuple[str, int, list[str]]]:
    """Each line of ``path`` that is not blank: where it is, its number, its words."""
    for number, where, line in _lines(path):
        yield where, number, line.split()


def _lines(path: Path) -> Iterator[tuple[int, str, str]]:
    """Each line of ``path`` that is not blank: its number, where it is (for errors), it."""
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, f"{path}, line {number}", line


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise EvalInputError(f"{where}: no string {key!r}")
    return value


def _identifier(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise EvalInputError(f"{where}: no id in {key!r}")
    return str(value)


def _keyed(path: Path, pairs: Iterable[tuple[str, str]], what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    duplicates: set[str] = set()
    for key, value in pairs:
        if key in found:
            duplicates.add(key)
        found[key] = value
    if duplicates:
        raise EvalInputError(f"{path}: duplicate {what} ids: {_shown(duplicates)}")
    return found


def _read_corpus(path: Path) -> dict[str, str]:
    def documents() -> Iterator[tuple[str, str]]:
        for number, record in _jsonl(path):
            where = f"{path}, line {number}"
            title = record.get("title")
            text = _text(record, "text", where)
            if isinstance(title, str) and title.strip():
                text = f"{title.strip()}\n{text}"
            yield _identifier(record, "_id", where), text

    return _keyed(path, documents(), "document")


def _read_queries(path: Path) -> dict[str, str]:
    return _keyed(
        path,
        (
            (_identifier(record, "_id", f"{path}, line {n}"), _text(record, "text", f"line {n}"))
            for n, record in _jsonl(path)
        ),
        "query",
    )


def _relevance(value: object, where: str) -> int:
    try:
        number = float(str(value))
    except ValueError:
        raise EvalInputError(f"{where}: relevance {value!r} is not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise EvalInputError(f"{where}: relevance {value!r} is not a whole number")
    return int(number)


def _add_judgement(
    qrels: dict[str, dict[str, int]], query: str, document: str, relevance: int, where: str
) -> None:
    judged = qrels.setdefault(query, {})
    if document in judged:
        raise EvalInputError(f"{where}: duplicate judgement of ({query!r}, {document!r})")
    judged[document] = relevance


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Judgements from a BEIR ``.tsv`` (``query-id corpus-id score`` with a header), a TREC
    qrels file (``qid 0 docid rel``) or JSON Lines (``{"query_id", "doc_id",
    "relevance"}``), by the file's name and first line.

    Raises:
        EvalInputError: a malformed line or a pair judged twice.
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    if path.suffix in {".jsonl", ".json"}:
        for number, record in _jsonl(path):
            where = f"{path}, line {number}"
            _add_judgement(
                qrels,
                _identifier(record, "query_id", where),
                _identifier(record, "doc_id", where),
                _relevance(record.get("relevance"), where),
                where,
            )
        return qrels
    for where, number, parts in _whitespace_lines(path):
        if number == 1 and parts[0].lower() in {"query-id", "query_id", "qid"}:
            continue  # BEIR's header
        if len(parts) == 3:
            query, document, grade = parts
        elif len(parts) == 4:
            query, _, document, grade = parts
        else:
            raise EvalInputError(
                f"{where}: expected 'query-id corpus-id score' or 'qid 0 docid rel'"
            )
        _add_judgement(qrels, query, document, _relevance(grade, where), where)
    return qrels


def load_beir(folder: str | Path, split: str = "test") -> Dataset:
    """A BEIR-format dataset: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``
    (a title, when a document has one, is put before its text).

    Raises:
        EvalInputError: a file is missing or malformed, ids repeat, the split is empty, or
            the qrels name queries that ``queries.jsonl`` lacks.
    """
    root = Path(folder)
    if not root.is_dir():
        raise EvalInputError(f"{root}: no such BEIR folder")
    missing = [
        name
        for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv")
        if not (root / name).is_file()
    ]
    if missing:
        splits = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        known = f" (splits there: {', '.join(splits)})" if splits else ""
        raise EvalInputError(f"{root}: no {', no '.join(missing)}{known}")
    dataset = Dataset(
        queries=_read_queries(root / "queries.jsonl"),
        corpus=_read_corpus(root / "corpus.jsonl"),
        qrels=read_qrels(root / "qrels" / f"{split}.tsv"),
        name=f"{root.name} ({split})",
    )
    _check_dataset(dataset, f"{root}/qrels/{split}.tsv", "queries.jsonl")
    return dataset


def read_trec_run(path: str | Path, name: str | None = None) -> FirstStage:
    """A run in TREC format (``qid Q0 docid rank score tag``); the rank column is ignored,
    as trec_eval ignores it.

    Raises:
        EvalInputError: a malformed line, or a document listed twice for one query.
    """
    path = Path(path)
    scored: dict[str, dict[str, float]] = {}
    for where, _number, parts in _whitespace_lines(path):
        if len(parts) != 6:
            raise EvalInputError(f"{where}: expected 'qid Q0 docid rank score tag'")
        query, _, document, _, score, _ = parts
        try:
            value = float(score)
        except ValueError:
            raise EvalInputError(f"{where}: score {score!r} is not a number") from None
        ranked = scored.setdefault(query, {})
        if document in ranked:
            raise EvalInputError(f"{where}: duplicate document {document!r} for {query!r}")
        ranked[document] = value
    return FirstStage(
        {query: _ranked(ranked.items()) for query, ranked in scored.items()},
        name=name or path.name,
    )


def load_candidates(
    path: str | Path,
    qrels: str | Path | Mapping[str, Mapping[str, int]],
    *,
    query_field: str = "query",
    documents_field: str = "documents",
    id_field: str = "id",
    text_field: str = "text",
    document_id_field: str = "id",
    score_field: str = "score",
) -> tuple[Dataset, FirstStage]:
    """A candidates file as the batch job reads it, and its judgements: the dataset and the
    first stage it holds. Documents are in first-stage order, best first; a document's
    ``score`` is kept when every document has one, else the order gives the scores.

    Raises:
        EvalInputError: rows without ids, ids that repeat, one document id with two texts,
            qrels that name queries the file lacks, or no judged query at all.
    """
    path = Path(path)
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    candidates: dict[str, list[tuple[str, float]]] = {}
    for number, row in _jsonl(path):
        where = f"{path}, line {number}"
        query_id = _identifier(row, id_field, where)
        if query_id in queries:
            raise EvalInputError(f"{path}: duplicate query ids: {query_id!r}")
        queries[query_id] = _text(row, query_field, where)
        documents = row.get(documents_field)
        if not isinstance(documents, list):
            raise EvalInputError(f"{where}: no list {documents_field!r}")
        ranked: list[tuple[str, float | None]] = []
        for place, document in enumerate(documents):
            at = f"{where}, {documents_field}[{place}]"
            if not isinstance(document, Mapping):
                raise EvalInputError(f"{at}: a document needs an id: give objects with ids")
            document_id = _identifier(document, document_id_field, at)
            text = _text(document, text_field, at)
            if corpus.setdefault(document_id, text) != text:
                raise EvalInputError(f"{at}: document {document_id!r} has two different texts")
            if any(document_id == seen for seen, _ in ranked):
                raise EvalInputError(f"{at}: duplicate document {document_id!r}")
            score = document.get(score_field)
            good = isinstance(score, (int, float)) and not isinstance(score, bool)
            ranked.append((document_id, float(score) if good and score is not None else None))
        if ranked and all(score is not None for _, score in ranked):
            candidates[query_id] = _ranked((d, s) for d, s in ranked if s is not None)
        else:
            candidates[query_id] = [(d, float(len(ranked) - i)) for i, (d, _) in enumerate(ranked)]
    judged = qrels if isinstance(qrels, Mapping) else read_qrels(qrels)
    qrels_name = "qrels" if isinstance(qrels, Mapping) else str(qrels)
    dataset = Dataset(queries, corpus, judged, name=path.name)
    _check_dataset(dataset, qrels_name, str(path))
    return dataset, FirstStage(candidates, name=path.name)


def _check_dataset(dataset: Dataset, qrels_name: str, queries_name: str) -> None:
    if not dataset.qrels:
        raise EvalInputError(f"{qrels_name}: the split is empty (no judgements)")
    if not dataset.queries:
        raise EvalInputError(f"{queries_name}: no queries")
    unknown = set(dataset.qrels) - set(dataset.queries)
    if unknown:
        raise EvalInputError(
            f"{qrels_name} judges {len(dataset.qrels)} queries, {len(unknown)} of them not in "
            f"{queries_name} ({len(dataset.queries)} queries): {_shown(unknown)}"
        )


def check_inputs(dataset: Dataset, first_stage: FirstStage) -> FirstStage:
    """The first stage cut to the judged queries, once it is checked against the dataset.

    Raises:
        EvalInputError: the run names documents the corpus lacks, or no judged query has a
            candidate.
    """
    _check_dataset(dataset, "qrels", "queries")
    unknown = {
        document
        for ranked in first_stage.candidates.values()
        for document, _ in ranked
        if document not in dataset.corpus
    }
    if unknown:
        raise EvalInputError(
            f"{first_stage.name} names {len(unknown)} documents the corpus "
            f"({len(dataset.corpus)} documents) lacks: {_shown(unknown)}"
        )
    kept = {
        query: list(ranked)
        for query, ranked in first_stage.candidates.items()
        if query in dataset.qrels and ranked
    }
    if not kept:
        raise EvalInputError(
            f"{first_stage.name} has no candidates for any of the {len(dataset.qrels)} judged "
            "queries (do the query ids match?)"
        )
    notes = list(first_stage.notes)
    others = set(first_stage.candidates) - set(dataset.qrels)
    if others:
        notes.append(f"{len(others)} queries of the run have no judgements and are left out")
    without = set(dataset.qrels) - set(kept)
    if without:
        notes.append(
            f"{len(without)} judged queries have no candidates; they count as 0 in every mean"
        )
    return FirstStage(kept, name=first_stage.name, notes=tuple(notes))
