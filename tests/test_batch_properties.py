"""The batch job under Hypothesis: random rows (ids shared, null or missing, content
repeated, rows that cannot be sent), random faults, random kills and torn tails, random
modes, then ``retry_failed``: every input row is in the output exactly once, in input order,
each with the ranking a fault-free server gives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import rank_body, read_jsonl, write_jsonl

from rerank_integrations import RerankClient
from rerank_integrations.batch import arun, run

_WORDS = ["espresso", "descale", "kettle", "filter", "milk", "tea", "grinder", "boiler"]

texts = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=2).map(" ".join)
ids = st.sampled_from(
    [
        {"id": None},  # a nullable id column
        {"id": None},
        {},  # no id at all
        {"id": "a"},  # shared by many rows
        {"id": "a"},
        {"id": "b"},
        {"id": 1},
        {"id": 2},
    ]
)
good_rows = st.builds(
    lambda row_id, query, documents: {**row_id, "query": query, "documents": documents},
    ids,
    texts,
    st.lists(texts, min_size=1, max_size=4),
)
bad_rows = st.sampled_from(
    [
        {"id": "bad", "documents": ["tea"]},  # no query
        {"query": "tea", "documents": "tea"},  # documents not a list
        {"id": None, "query": "tea", "documents": ["tea", "broken \udcff"]},  # lone surrogate
    ]
)
input_rows = st.lists(
    st.one_of(good_rows, good_rows, good_rows, bad_rows), min_size=2, max_size=14
).flatmap(
    # repeated content: some rows again, as they were
    lambda rows: st.lists(st.sampled_from(rows), max_size=3).map(lambda again: rows + again)
)
a_run = st.fixed_dictionaries(
    {
        "on_error": st.sampled_from(["record", "skip", "skip", "stop"]),
        "retry_failed": st.booleans(),
        "failure_rate": st.sampled_from([0.0, 0.3, 0.5]),
        "kill_after": st.one_of(st.none(), st.integers(1, 12)),  # requests before the kill
        "torn_tail": st.booleans(),  # half a line left at the end, as a crash leaves it
        "sync": st.booleans(),
        "seed": st.integers(0, 2**16),
    }
)


class Server:
    """A rerank API that fails a share of requests and can kill the job it serves."""

    def __init__(self, failure_rate: float, seed: int, kill_after: int | None) -> None:
        self.random = random.Random(seed)
        self.failure_rate = failure_rate
        self.kill_after = kill_after
        self.requests = 0
        self.job: asyncio.Task[Any] | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.kill_after is not None and self.requests >= self.kill_after and self.job:
            self.job.cancel()  # the job is killed with this request in flight
        if self.random.random() < self.failure_rate:
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return httpx.Response(200, json=rank_body(json.loads(request.content)))


def client_for(server: Server) -> RerankClient:
    return RerankClient(
        "https://rerank.test/v1",
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
        max_retries=0,
    )


def one_run(source: Path, output: Path, plan: dict[str, Any]) -> None:
    """One run of the job as ``plan`` says, killed or not."""
    server = Server(plan["failure_rate"], plan["seed"], plan["kill_after"])
    client = client_for(server)
    options = {
        "client": client,
        "on_error": plan["on_error"],
        "retry_failed": plan["retry_failed"],
        "concurrency": 3,
        "progress": False,
    }
    try:
        if plan["sync"] and plan["kill_after"] is None:
            run(source, output, **options)
            return

        async def killable() -> None:
            server.job = asyncio.ensure_future(arun(source, output, **options))
            with contextlib.suppress(asyncio.CancelledError):
                await server.job

        asyncio.run(killable())
    finally:
        client.close()
    if plan["torn_tail"] and output.exists():
        lines = output.read_bytes().splitlines(keepends=True)
        if lines:
            with output.open("ab") as handle:
                handle.write(lines[-1][: len(lines[-1]) // 2])


def fault_free(row: dict[str, Any]) -> dict[str, Any] | str:
    """The ranking a fault-free server gives a row, or the type of error it is recorded with."""
    documents = row.get("documents")
    if (
        not isinstance(row.get("query"), str)
        or not isinstance(documents, list)
        or any("\udcff" in text for text in documents)
    ):
        return "InvalidRowError"
    answer = rank_body({"query": row["query"], "documents": documents})["results"]
    return {"ranking": [(item["index"], item["relevance_score"]) for item in answer]}


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rows=input_rows, runs=st.lists(a_run, min_size=1, max_size=3))
def test_any_rows_any_faults_any_kills_then_retry_failed_give_every_row_once_in_order(
    rows: list[dict[str, Any]], runs: list[dict[str, Any]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source = write_jsonl(Path(folder) / "in.jsonl", rows)
        output = Path(folder) / "out.jsonl"
        for plan in runs:
            one_run(source, output, plan)
        final = Server(0.0, 0, None)
        with client_for(final) as client:
            summary = run(source, output, client=client, retry_failed=True, progress=False)
        written = read_jsonl(output)

    assert summary.stopped is None
    assert len(written) == len(rows)
    for row, line in zip(rows, written, strict=True):
        assert {k: v for k, v in line.items() if k not in ("results", "error")} == row
        expected = fault_free(row)
        if expected == "InvalidRowError":
            assert line["results"] is None and line["error"]["type"] == "InvalidRowError"
        else:
            assert "error" not in line, line
            got = [(item["index"], item["relevance_score"]) for item in line["results"]]
            assert got == expected["ranking"]  # type: ignore[index]
