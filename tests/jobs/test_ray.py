"""Ray Data: ``rerank_integrations.ray.Reranker`` on actor pools of a local Ray runtime
(``num_cpus=2``, one for the whole module), the rate limit a cluster shares, and the key
kept out of what Ray shows and logs."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from support import make_rows, rankings

from rerank_integrations import RateLimit, RerankClient
from rerank_integrations._ratelimit import Cost
from rerank_integrations.batch import RowFailedError
from rerank_integrations.server import LocalRerankServer, serve_in_thread

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pandas = pytest.importorskip("pandas")
pyarrow = pytest.importorskip("pyarrow")

from rerank_integrations.ray import ClusterRateLimiter, Reranker  # noqa: E402

CANARY = "sk-ray-CANARY-31337"


@pytest.fixture(scope="module")
def runtime() -> Iterator[Path]:
    """A local Ray runtime of two CPUs; its logs go to a folder of its own (the path of a
    socket in it must stay short)."""
    folder = Path(tempfile.mkdtemp(prefix="ray-"))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        _temp_dir=str(folder),
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    yield folder
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRerankServer]:
    """The BM25 server, wanting the canary key."""
    with serve_in_thread(api_key=CANARY) as running:
        yield running


def direct(base_url: str, rows: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    with RerankClient(base_url, api_key=CANARY) as client:
        return {
            row["id"]: [
                (r.index, r.relevance_score)
                for r in client.rerank(
                    row["query"],
                    [d if isinstance(d, str) else d["text"] for d in row["documents"]],
                    **options,
                ).results
            ]
            for row in rows
        }


def settings(server: LocalRerankServer, **more: Any) -> dict[str, Any]:
    return {"base_url": server.base_url, "api_key": SecretStr(CANARY), **more}


# -- on a Ray runtime ----------------------------------------------------------------------


def test_an_actor_pool_reranks_every_row_as_the_client_does(
    runtime: Path, server: LocalRerankServer
) -> None:
    rows = make_rows(300, documents=6, objects=1)  # documents with ids
    ranked = ray.data.from_items(rows).map_batches(
        Reranker,
        fn_constructor_kwargs=settings(server, top_n=3, concurrency=8),
        concurrency=2,
        batch_size=40,
    )
    out = ranked.take_all()

    assert sorted(row["id"] for row in out) == sorted(row["id"] for row in rows)
    assert rankings(out) == direct(server.base_url, rows, top_n=3)
    by_id = {row["id"]: row for row in out}
    for row in rows:
        written = by_id[row["id"]]
        assert written["query"] == row["query"] and written["documents"] == row["documents"]
        assert written["error"] is None
        assert all(r["id"].startswith(f"d{row['id'][4:]}-") for r in written["results"])


@pytest.mark.parametrize("batch_format", ["pandas", "pyarrow"])
def test_pandas_and_arrow_batches_come_back_as_they_came(
    runtime: Path, server: LocalRerankServer, batch_format: str
) -> None:
    rows = make_rows(60, documents=4, seed=4, objects=0)
    out = (
        ray.data.from_items(rows)
        .map_batches(
            Reranker,
            fn_constructor_kwargs=settings(server, top_n=2),
            concurrency=1,
            batch_format=batch_format,
            batch_size=25,
        )
        .take_all()
    )
    assert rankings(out) == direct(server.base_url, rows, top_n=2)
    assert all(
        set(result) == {"index", "relevance_score"} for row in out for result in row["results"]
    )


def test_workers_share_one_rate_limit(runtime: Path) -> None:
    # The server takes 1,200 requests a minute; each of the two workers, on its own budget
    # of 900, would send half as much again together. The quarter kept free is for the
    # loopback's jitter on a busy machine: requests spaced by the budget reach the server
    # a few milliseconds apart from how they left.
    rows = make_rows(60, documents=2, seed=6, objects=0)
    with serve_in_thread(rate_limit_rpm=1200, api_key=CANARY) as limited:
        out = (
            ray.data.from_items(rows)
            .map_batches(
                Reranker,
                fn_constructor_kwargs=settings(
                    limited,
                    rate_limit=RateLimit(requests_per_minute=900),
                    rate_limit_name="shared-test",
                    max_retries=0,
                ),
                concurrency=2,
                batch_size=15,
            )
            .take_all()
        )
        refused = limited.stats.rate_limited
        sent = limited.stats.requests
    assert all(row["error"] is None for row in out), [row["error"] for row in out if row["error"]]
    assert refused == 0 and sent == 60


def test_limiters_of_one_name_draw_from_one_budget(runtime: Path) -> None:
    first = ClusterRateLimiter(RateLimit(requests_per_minute=60), name="one-budget").start()
    second = ClusterRateLimiter(RateLimit(requests_per_minute=60), name="one-budget")
    assert first.reserve(Cost(), None) == 0.0  # the burst: one second's worth, one request
    assert second.reserve(Cost(), None) == pytest.approx(1.0, abs=0.2)
    assert second.reserve(Cost(), 0.5) is None  # no room within half a second

    copied = ray.get(ray.put(second))  # travels as its settings, finds the same budget
    assert copied.reserve(Cost(), None) == pytest.approx(2.0, abs=0.3)
    with pytest.raises(ValueError, match="already holds another budget"):
        ClusterRateLimiter(RateLimit(requests_per_minute=30), name="one-budget").start()


def test_the_key_is_in_no_repr_and_no_log(runtime: Path, server: LocalRerankServer) -> None:
    rows = make_rows(30, documents=3, seed=9, objects=0)
    # A plain string, as a user may pass it: the Reranker keeps it as a SecretStr.
    kwargs = {"base_url": server.base_url, "api_key": CANARY, "top_n": 1}
    dataset = ray.data.from_items(rows).map_batches(
        Reranker, fn_constructor_kwargs=kwargs, concurrency=1, batch_size=10
    )
    assert len(dataset.take_all()) == 30
    wrong = {"base_url": server.base_url, "api_key": CANARY[::-1]}
    failing = ray.data.from_items(rows[:3]).map_batches(
        Reranker, fn_constructor_kwargs=wrong, concurrency=1
    )
    with pytest.raises(Exception, match="AuthenticationError") as refused:
        failing.take_all()

    with Reranker(**kwargs) as reranker:
        shown = [repr(dataset), str(dataset), dataset.stats(), repr(reranker), str(refused.value)]
    for text in shown:
        assert CANARY not in text and CANARY[::-1] not in text
    assert shown[3].endswith("api_key=***)")
    logs = [path for path in runtime.rglob("*") if path.is_file() and not path.is_symlink()]
    assert any(path.name.startswith("worker-") for path in logs)  # the workers' own logs
    for path in logs:
        content = path.read_bytes()
        assert CANARY.encode() not in content, path
        assert CANARY[::-1].encode() not in content, path


# -- the callable on its own ---------------------------------------------------------------


def columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy

    batch: dict[str, Any] = {}
    for name in ("id", "query"):
        batch[name] = numpy.array([row[name] for row in rows])
    documents = numpy.empty(len(rows), dtype=object)
    for number, row in enumerate(rows):
        documents[number] = numpy.array(row["documents"], dtype=object)
    batch["documents"] = documents
    return batch


def test_one_client_serves_every_batch_of_an_actor(server: LocalRerankServer) -> None:
    reranker = Reranker(**settings(server, top_n=2))
    client = reranker.client
    try:
        first = reranker(columns(make_rows(5)))
        second = reranker(columns(make_rows(5, start=5)))
    finally:
        reranker.close()
    assert reranker.client is client
    assert client.stats().calls == 10
    assert isinstance(first["documents"], list) and isinstance(first["documents"][0], list)
    assert len(first["results"][0]) == 2 and len(second["results"]) == 5


def test_failed_rows_are_recorded_skipped_or_raised(server: LocalRerankServer) -> None:
    rows = make_rows(4, objects=0)
    rows[1]["query"] = " "
    with Reranker(**settings(server)) as reranker:
        recorded = reranker(columns(rows))
    assert recorded["results"][1] is None and recorded["error"][1]["type"] == "InvalidRowError"
    assert recorded["error"][0] is None and recorded["results"][0]

    with Reranker(**settings(server), on_error="skip") as reranker:
        skipped = reranker(columns(rows))
        frame = reranker(pandas.DataFrame(rows))
        table = reranker(pyarrow.Table.from_pylist(rows))
    assert list(skipped["id"]) == ["row-0", "row-2", "row-3"] and "error" not in skipped
    assert frame["id"].tolist() == ["row-0", "row-2", "row-3"]
    assert table.column("id").to_pylist() == ["row-0", "row-2", "row-3"]

    with (
        Reranker(**settings(server), on_error="stop") as reranker,
        pytest.raises(RowFailedError, match="row 2 failed: InvalidRowError"),  # counted from 1
    ):
        reranker(columns(rows))


def test_a_reranker_travels_as_its_settings(server: LocalRerankServer) -> None:
    import pickle

    with (
        Reranker(**settings(server, top_n=1, results_field="ranking")) as original,
        pickle.loads(pickle.dumps(original)) as copy,
    ):
        assert copy is not original and copy.client is not original.client
        out = copy(columns(make_rows(2)))
        assert "api_key=***" in repr(copy)
    assert len(out["ranking"][0]) == 1


def test_the_ray_step_names_fields_as_the_job_does_and_keeps_the_old_names(
    server: LocalRerankServer,
) -> None:
    rows = [{"question": row["query"], "passages": row["documents"]} for row in make_rows(3)]
    batch = {name: [row[name] for row in rows] for name in ("question", "passages")}
    with Reranker(
        **settings(server),
        query_field="question",
        documents_field="passages",
        results_field="ranking",
        error_field="why",
    ) as reranker:
        new = reranker(dict(batch))
    old_names = {
        "query_column": "question",
        "documents_column": "passages",
        "results_column": "ranking",
        "error_column": "why",
    }
    for name in old_names:
        with pytest.warns(DeprecationWarning, match=f"{name} is deprecated: use "):
            Reranker(**settings(server), **{name: old_names[name]}).close()
    deprecated = pytest.warns(DeprecationWarning, match="_column is deprecated")
    with deprecated, Reranker(**settings(server), **old_names) as reranker:
        old = reranker(dict(batch))
    assert old["ranking"] == new["ranking"] and old["why"] == new["why"] == [None] * 3
    deprecated = pytest.warns(DeprecationWarning, match="query_column is deprecated")
    with deprecated, pytest.raises(TypeError, match="not both"):
        Reranker(**settings(server), query_field="q", query_column="question")
