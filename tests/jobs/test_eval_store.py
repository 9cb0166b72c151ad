"""The evaluation's score store (``eval.ScoreStore``): scores kept on disk and read back by
key, one call's keys at once, between processes and runs; a store of its first format
carried over (and reused by a rerun that then sends nothing); files that are not a store,
or a store of a newer format, refused with the path named before any request."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ir_measures")
pytest.importorskip("scipy")
pytest.importorskip("uvicorn")

from rerank_integrations import eval as rerank_eval
from rerank_integrations.eval import EvalInputError, Reranker, ScoreStore
from rerank_integrations.eval._demo import demo_dataset
from rerank_integrations.eval._store import STORE_FORMAT
from rerank_integrations.server import LocalRerankServer, serve_in_thread


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRerankServer]:
    with serve_in_thread() as running:
        yield running


def evaluate(mode: str, *args: Any, **options: Any) -> rerank_eval.EvalReport:
    options.setdefault("plots", False)
    if mode == "async":
        return asyncio.run(rerank_eval.aevaluate(*args, **options))
    return rerank_eval.evaluate(*args, **options)


def as_first_format(path: Path) -> int:
    """Rewrite a store as its first format wrote it (a table ``scores`` keyed by its text,
    ``user_version`` 0), as a store made before this one would be; the scores it holds."""
    db = sqlite3.connect(path, isolation_level=None)
    rows = db.execute("SELECT key, value FROM entries ORDER BY rowid").fetchall()
    db.execute("BEGIN")
    db.execute("DROP TABLE entries")
    db.execute("CREATE TABLE scores (key TEXT PRIMARY KEY, value TEXT)")
    db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?)", rows)
    db.execute("PRAGMA user_version = 0")
    db.execute("COMMIT")
    db.close()
    return len(rows)


def test_scores_are_read_back_by_key_one_by_one_and_many_at_once(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "scores.sqlite"
    store = ScoreStore(path, batch=3)
    store.set("a", '{"score":1.0}')
    store.set_many({"b": "2", "c": 3})  # the third: written
    store.set("d", "4")  # held
    assert store.get("a") == '{"score":1.0}' and store.get("c") == "3" and store.get("d") == "4"
    assert store.get("missing") is None and store.get("missing", "else") == "else"
    assert store.get_many(["d", "missing", "a", "a"]) == {"d": "4", "a": '{"score":1.0}'}
    assert len(store) == 4
    store.close()

    again = ScoreStore(path)
    assert again.get_many(["a", "b", "c", "d"]) == {
        "a": '{"score":1.0}',
        "b": "2",
        "c": "3",
        "d": "4",
    }
    again.set("a", "changed")  # kept again: its row is rewritten, not doubled
    again.close()
    last = ScoreStore(path)
    assert last.get("a") == "changed" and len(last) == 4
    last.close()


def test_keys_are_read_from_any_iterable_and_a_held_value_wins_over_a_written_one(
    tmp_path: Path,
) -> None:
    store = ScoreStore(tmp_path / "s.sqlite", batch=2)
    store.set_many({"a": "1", "b": "2"})  # written
    store.set("a", "new")  # held, over the written row
    keys = (key for key in ["b", "a", "missing", "b"])
    assert store.get_many(keys) == {"a": "new", "b": "2"}
    assert store.get_many(iter(())) == {} and store.get_many({"b": None}) == {"b": "2"}
    store.close()
    reopened = ScoreStore(tmp_path / "s.sqlite")
    assert reopened.get_many(["a", "b"]) == {"a": "new", "b": "2"} and len(reopened) == 2
    reopened.close()


def test_many_keys_are_read_in_chunks(tmp_path: Path) -> None:
    store = ScoreStore(tmp_path / "s.sqlite")
    store.set_many({f"k{n}": str(n) for n in range(1500)})
    store.close()
    store = ScoreStore(tmp_path / "s.sqlite")
    found = store.get_many([f"k{n}" for n in range(-5, 1500)])
    assert found == {f"k{n}": str(n) for n in range(1500)}
    store.close()


def test_two_stores_on_one_file_keep_each_others_scores(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first, second = ScoreStore(path), ScoreStore(path)
    first.set_many({"a": "1", "shared": "first"})
    first.flush()
    second.set_many({"b": "2", "shared": "second"})  # a row after the first's rows
    second.flush()
    assert second.get("a") is None  # written after it was opened: not seen until reopened
    first.close()
    second.close()
    store = ScoreStore(path)
    assert store.get_many(["a", "b", "shared"]) == {"a": "1", "b": "2", "shared": "second"}
    assert len(store) == 3
    store.close()


def test_a_store_of_the_first_format_is_carried_over_with_its_scores(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE scores (key TEXT PRIMARY KEY, value TEXT)")
    db.executemany("INSERT INTO scores VALUES (?, ?)", [("a", "1"), ("b", "2")])
    db.commit()
    db.close()

    store = ScoreStore(path)
    assert store.get_many(["a", "b"]) == {"a": "1", "b": "2"} and len(store) == 2
    store.set("c", "3")
    store.close()

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == STORE_FORMAT
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "scores" not in tables
    store = ScoreStore(path)
    assert store.get_many(["a", "b", "c"]) == {"a": "1", "b": "2", "c": "3"}
    store.close()


def test_a_rerun_over_a_store_of_the_first_format_sends_nothing(
    tmp_path: Path, server: LocalRerankServer, mode: str
) -> None:
    dataset, first_stage = demo_dataset(depth=10)
    reranker = [Reranker("bm25", server.base_url)]
    cache = tmp_path / "scores.sqlite"
    before = server.stats.requests
    report = evaluate(mode, dataset, first_stage, reranker, tmp_path / "a", cache=cache)
    assert server.stats.requests - before == report.requests_sent > 0
    assert as_first_format(cache) == len(dataset.qrels) * 10

    sent = server.stats.requests
    again = evaluate(mode, dataset, first_stage, reranker, tmp_path / "b", cache=cache)

    assert server.stats.requests == sent and again.requests_sent == 0
    assert list(again.metrics) == list(report.metrics)
    for name, values in report.metrics.items():
        assert again.metrics[name] == pytest.approx(values)


def _not_a_store(path: Path, kind: str) -> None:
    if kind == "text":
        path.write_text("qid Q0 doc 1 0.5 run\n" * 50)
        return
    db = sqlite3.connect(path)
    if kind == "other table":
        db.execute("CREATE TABLE runs (qid TEXT, doc TEXT)")
    elif kind == "other columns":
        db.execute("CREATE TABLE scores (query TEXT, document TEXT, score REAL)")
    else:
        db.execute(f"PRAGMA user_version = {STORE_FORMAT + 1}")
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "is not a score store"),
        ("other table", "is not a score store (user_version 0, tables: runs)"),
        ("other columns", "is not a score store (user_version 0, tables: scores)"),
        ("newer", f"score store of format {STORE_FORMAT + 1}, written by a newer version"),
    ],
)
def test_what_is_not_a_store_of_this_format_is_refused_before_any_request(
    tmp_path: Path, server: LocalRerankServer, mode: str, kind: str, message: str
) -> None:
    path = tmp_path / "scores.sqlite"
    _not_a_store(path, kind)
    kept = path.read_bytes()
    dataset, first_stage = demo_dataset(depth=5)
    before = server.stats.requests

    with pytest.raises(EvalInputError, match="give the cache another path") as raised:
        evaluate(
            mode,
            dataset,
            first_stage,
            [Reranker("bm25", server.base_url)],
            tmp_path / "r",
            cache=path,
        )

    assert str(path) in str(raised.value) and message in str(raised.value)
    assert server.stats.requests == before
    assert path.read_bytes() == kept  # left as it was
