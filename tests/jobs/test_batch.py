"""The offline job (``rerank_integrations.batch``): rows streamed in input order, failures
recorded, skipped or stopping the job, files resumed after a crash, progress off a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import make_rows, rank_body, rankings, read_jsonl, write_jsonl

from rerank_integrations import RerankClient
from rerank_integrations.batch import (
    BatchSummary,
    ResumeError,
    RowFailedError,
    arerank_rows,
    arun,
    rerank_rows,
    run,
)
from rerank_integrations.batch._files import OutputFile, open_source, plan_resume
from rerank_integrations.batch._progress import Progress, format_duration
from rerank_integrations.batch._rows import Fields
from rerank_integrations.cli import main
from rerank_integrations.server import LocalRerankServer


def answer(request: httpx.Request) -> httpx.Response:
    """A good server; a query containing "refused" gets a 400, "down" a 503."""
    body = json.loads(request.content)
    if "refused" in body["query"]:
        return httpx.Response(400, json={"error": {"message": "bad query"}})
    if "down" in body["query"]:
        return httpx.Response(503, json={"error": {"message": "overloaded"}})
    return httpx.Response(200, json=rank_body(body))


def collect(mode: str, rows: Any, client: RerankClient, **options: Any) -> list[dict[str, Any]]:
    """Every output row, through the sync generator or the async one."""
    if mode == "sync":
        return list(rerank_rows(rows, client, **options))

    async def gather() -> list[dict[str, Any]]:
        return [row async for row in arerank_rows(rows, client, **options)]

    return asyncio.run(gather())


def direct(client: RerankClient, rows: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    """Each row's ranking from one plain ``client.rerank`` call."""
    expected = {}
    for row in rows:
        texts = [d if isinstance(d, str) else d["text"] for d in row["documents"]]
        response = client.rerank(row["query"], texts, **options)
        expected[row["id"]] = [(r.index, r.relevance_score) for r in response.results]
    return expected


def test_the_core_and_the_batch_job_never_import_ray() -> None:
    code = (
        "import sys, rerank_integrations, rerank_integrations.batch, rerank_integrations.cli; "
        "print(sorted(name for name in ('ray', 'pyarrow', 'pandas') if name in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"


# -- rows ------------------------------------------------------------------------------------


def test_the_public_names() -> None:
    from rerank_integrations import batch

    assert sorted(batch.__all__) == [
        "BatchSummary",
        "DEFAULT_CONCURRENCY",
        "Fields",
        "INPUT_FORMATS",
        "InvalidRowError",
        "ON_ERROR_MODES",
        "PATIENT_RETRY",
        "ResumeError",
        "RowFailedError",
        "arerank_rows",
        "arun",
        "rerank_rows",
        "run",
    ]
    for name in batch.__all__:
        assert getattr(batch, name) is not None


def test_rows_come_back_in_input_order_even_when_answers_do_not(
    client_for: Callable[..., RerankClient], mode: str
) -> None:
    async def slow_first(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        number = int(body["query"].split()[-1])
        await asyncio.sleep(0.002 * (10 - number % 10))  # early rows answer last
        return httpx.Response(200, json=rank_body(body))

    rows = [
        {"id": n, "query": f"espresso machine {n}", "documents": ["espresso", "tea", "machine"]}
        for n in range(30)
    ]
    out = collect(mode, rows, client_for(slow_first), concurrency=10)

    assert [row["id"] for row in out] == list(range(30))
    assert all(row["results"][0]["index"] in (0, 2) for row in out)


def test_each_row_keeps_its_fields_and_gains_its_ranking(
    client_for: Callable[..., RerankClient], mode: str
) -> None:
    rows = make_rows(12, documents=5)
    rows[0]["source"] = {"run": 7}
    client = client_for(answer)
    out = collect(mode, rows, client, top_n=3)

    assert rankings(out) == direct(client, rows, top_n=3)
    for row, written in zip(rows, out, strict=True):
        assert {key: value for key, value in written.items() if key != "results"} == row
        assert written is not row and "results" not in row  # the input is not changed
        results = written["results"]
        assert len(results) == 3
        assert [r["relevance_score"] for r in results] == sorted(
            (r["relevance_score"] for r in results), reverse=True
        )
        if isinstance(row["documents"][0], dict):  # object documents: their ids come along
            assert [r["id"] for r in results] == [
                row["documents"][r["index"]]["id"] for r in results
            ]
        else:
            assert all(set(r) == {"index", "relevance_score"} for r in results)


def test_rows_stream_through_a_bounded_window(
    client_for: Callable[..., RerankClient], mode: str
) -> None:
    read: list[int] = []

    def endless() -> Iterator[dict[str, Any]]:
        for number in itertools.count():
            read.append(number)
            yield {"id": number, "query": "water filter", "documents": ["water", "filter tea"]}

    client = client_for(answer)
    ahead: list[int] = []
    if mode == "sync":
        stream = rerank_rows(endless(), client, concurrency=4)
        with contextlib.closing(stream):
            for count, row in enumerate(stream, start=1):
                assert row["id"] == count - 1
                ahead.append(len(read) - count)
                if count == 60:
                    break
    else:

        async def take() -> None:
            rows = arerank_rows(endless(), client, concurrency=4)
            async with contextlib.aclosing(rows):
                count = 0
                async for row in rows:
                    count += 1
                    assert row["id"] == count - 1
                    ahead.append(len(read) - count)
                    if count == 60:
                        break

        asyncio.run(take())

    assert len(ahead) == 60
    assert max(ahead) <= 2 * 4  # never more than the window read ahead of what was given back


def test_a_failed_row_is_recorded_with_its_error(
    client_for: Callable[..., RerankClient], mode: str
) -> None:
    rows = [
        {"id": 1, "query": "kettle", "documents": ["kettle", "cup"]},
        {"id": 2, "query": "server down", "documents": ["a"]},
        {"id": 3, "query": "refused", "documents": ["a"]},
        {"id": 4, "query": "", "documents": ["a"]},
        {"id": 5, "documents": ["a"]},
        {"id": 6, "query": "q", "documents": "not a list"},
        {"id": 7, "query": "q", "documents": [{"title": "no text"}]},
        {"id": 8, "query": "cup", "documents": ["kettle", "cup"]},
    ]
    out = collect(mode, rows, client_for(answer, max_retries=1))

    assert [row["id"] for row in out] == list(range(1, 9))
    assert out[0]["results"][0]["index"] == 0 and out[-1]["results"][0]["index"] == 1
    errors = {row["id"]: row["error"] for row in out if "error" in row}
    assert all(out[number - 1]["results"] is None for number in errors)
    assert errors[2]["type"] == "ServerError" and errors[2]["status_code"] == 503
    assert errors[3]["type"] == "BadRequestError" and "bad query" in errors[3]["message"]
    for number in (4, 5, 6, 7):
        assert errors[number]["type"] == "InvalidRowError", errors[number]
    assert "'query'" in errors[5]["message"] and "not a list" in errors[6]["message"]
    assert "documents[0]" in errors[7]["message"]


def test_skip_leaves_failed_rows_out_and_stop_raises(
    client_for: Callable[..., RerankClient], mode: str
) -> None:
    rows = [{"id": n, "query": "down" if n == 5 else "cup", "documents": ["cup"]} for n in range(9)]
    client = client_for(answer, max_retries=0)

    assert [row["id"] for row in collect(mode, rows, client, on_error="skip")] == [
        0, 1, 2, 3, 4, 6, 7, 8,
    ]  # fmt: skip
    given: list[int] = []

    def until_failure() -> None:
        if mode == "sync":
            for row in rerank_rows(rows, client, on_error="stop", concurrency=3):
                given.append(row["id"])
        else:

            async def consume() -> None:
                async for row in arerank_rows(rows, client, on_error="stop", concurrency=3):
                    given.append(row["id"])

            asyncio.run(consume())

    # The fifth row of the stream is "row 6": rows are counted from 1, as a file's lines are.
    with pytest.raises(RowFailedError, match=r"row 6 \(id 5\) failed: ServerError") as raised:
        until_failure()
    assert given == [0, 1, 2, 3, 4]
    assert raised.value.position == 5 and raised.value.error.status_code == 503  # type: ignore[attr-defined]


def test_a_refused_key_stops_the_rows_whatever_on_error_says(
    client_for: Callable[..., RerankClient], mode: str
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "invalid api key"}})

    with pytest.raises(RowFailedError, match="AuthenticationError"):
        collect(mode, make_rows(20), client_for(refuse), on_error="record")


def test_field_names_are_options(client_for: Callable[..., RerankClient], mode: str) -> None:
    rows = [
        {
            "key": "a",
            "question": "cup",
            "passages": [{"pid": 9, "body": "kettle"}, {"pid": 4, "body": "cup"}],
        }
    ]
    out = collect(
        mode,
        rows,
        client_for(answer),
        query_field="question",
        documents_field="passages",
        id_field="key",
        text_field="body",
        document_id_field="pid",
        results_field="ranking",
    )
    assert out[0]["ranking"][0] == {"index": 1, "relevance_score": pytest.approx(1.000003), "id": 4}
    with pytest.raises(ValueError, match="different names"):
        collect(mode, rows, client_for(answer), results_field="error")


def test_a_chunked_document_gets_the_span_of_its_best_window(server: LocalRerankServer) -> None:
    long = "tea " * 40 + "espresso descale machine " + "tea " * 40
    rows = [{"id": 1, "query": "descale espresso", "documents": ["short tea", long]}]
    with RerankClient(
        server.base_url, max_tokens_per_document=24, long_documents="chunk"
    ) as client:
        out = list(rerank_rows(rows, client))
    best = out[0]["results"][0]
    assert best["index"] == 1
    start, end = best["span"]
    assert "espresso" in long[start:end] and 0 < start < end < len(long)
    assert "span" not in out[0]["results"][1]


def test_the_sync_twins_work_inside_a_running_event_loop(
    server: LocalRerankServer, tmp_path: Path
) -> None:
    rows = make_rows(10)
    source = write_jsonl(tmp_path / "in.jsonl", rows)

    async def notebook_cell() -> tuple[list[dict[str, Any]], BatchSummary]:
        # What a notebook does: plain sync calls while the kernel's loop is running.
        with RerankClient(server.base_url) as client:
            streamed = list(rerank_rows(rows, client))
        summary = run(source, tmp_path / "out.jsonl", base_url=server.base_url, progress=False)
        return streamed, summary

    streamed, summary = asyncio.run(notebook_cell())
    assert [row["id"] for row in streamed] == [row["id"] for row in rows]
    assert summary.succeeded == 10 and summary.ok
    assert rankings(read_jsonl(tmp_path / "out.jsonl")) == rankings(streamed)


# -- the file job ----------------------------------------------------------------------------


def run_job(mode: str, source: Path, output: Path, **options: Any) -> BatchSummary:
    options.setdefault("progress", False)
    if mode == "sync":
        return run(source, output, **options)
    return asyncio.run(arun(source, output, **options))


def test_a_file_is_reranked_into_a_file_in_input_order(
    server: LocalRerankServer, tmp_path: Path, mode: str
) -> None:
    rows = make_rows(120)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"

    summary = run_job(mode, source, output, base_url=server.base_url, top_n=4, concurrency=8)

    written = read_jsonl(output)
    assert [row["id"] for row in written] == [row["id"] for row in rows]
    with RerankClient(server.base_url) as client:
        assert rankings(written) == direct(client, rows, top_n=4)
    assert summary.ok and summary.succeeded == summary.rows == 120
    assert summary.documents == 120 * 8 and summary.requests == 120 and summary.already_done == 0
    assert summary.pairs_per_second > 0


def test_a_rerun_skips_what_is_done_and_cuts_a_half_line(
    server: LocalRerankServer, tmp_path: Path, mode: str
) -> None:
    rows = make_rows(60)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    run_job(mode, source, output, base_url=server.base_url)
    complete = output.read_bytes()
    lines = complete.splitlines(keepends=True)
    # What a crash leaves: 25 whole rows and the start of the 26th.
    output.write_bytes(b"".join(lines[:25]) + lines[25][:40])

    summary = run_job(mode, source, output, base_url=server.base_url)

    assert summary.already_done == 25 and summary.succeeded == 35
    assert output.read_bytes() == complete  # every row once, whole, in order
    again = run_job(mode, source, output, base_url=server.base_url)
    assert again.already_done == 60 and again.rows == 0 and again.requests == 0


def test_rows_skipped_on_one_run_are_done_by_the_next(
    client_for: Callable[..., RerankClient], tmp_path: Path
) -> None:
    rows = make_rows(40)
    flaky = {"row-3", "row-17", "row-18", "row-39"}
    healthy = {"on": False}

    def sometimes(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if not healthy["on"] and body["query"] in {
            row["query"] for row in rows if row["id"] in flaky
        }:
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return httpx.Response(200, json=rank_body(body))

    client = client_for(sometimes, max_retries=0)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"

    first = run(source, output, client=client, on_error="skip", concurrency=5, progress=False)
    assert first.skipped == 4 and first.succeeded == 36 and not first.ok
    healthy["on"] = True
    second = run(source, output, client=client, on_error="skip", concurrency=5, progress=False)
    assert second.already_done == 36 and second.succeeded == 4 and second.ok
    third = run(source, output, client=client, on_error="skip", progress=False)
    assert third.already_done == 40 and third.rows == 0

    written = read_jsonl(output)
    assert sorted(row["id"] for row in written) == sorted(row["id"] for row in rows)
    assert rankings(written) == direct(client, rows)
    assert [row["id"] for row in written[-4:]] == ["row-3", "row-17", "row-18", "row-39"]


def test_stop_ends_the_job_before_the_failed_row_and_a_rerun_goes_on(
    client_for: Callable[..., RerankClient], tmp_path: Path
) -> None:
    rows = make_rows(30)
    rows[12]["query"] = "down"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    client = client_for(answer, max_retries=0)

    stopped = run(source, output, client=client, on_error="stop", concurrency=4, progress=False)

    assert stopped.stopped is not None and stopped.stopped.position == 12 and not stopped.ok
    assert [row["id"] for row in read_jsonl(output)] == [f"row-{n}" for n in range(12)]
    rows[12]["query"] = "kettle"  # the cause is fixed
    write_jsonl(source, rows)
    resumed = run(source, output, client=client, on_error="stop", progress=False)
    assert resumed.already_done == 12 and resumed.succeeded == 18 and resumed.ok


def test_max_failures_stops_a_job_that_fails_too_often(
    client_for: Callable[..., RerankClient], tmp_path: Path
) -> None:
    rows = [{"id": n, "query": "down" if n % 2 else "cup", "documents": ["cup"]} for n in range(40)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    summary = run(
        source,
        tmp_path / "out.jsonl",
        client=client_for(answer, max_retries=0),
        max_failures=3,
        concurrency=2,
        progress=False,
    )
    assert summary.failed == summary.recorded == 4 and summary.stopped is not None


def test_a_line_that_is_no_row_stops_the_job_unless_skipped(
    server: LocalRerankServer, tmp_path: Path
) -> None:
    rows: list[Any] = make_rows(10)
    rows.insert(4, "{not json")
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"

    stopped = run(source, output, base_url=server.base_url, progress=False)
    assert stopped.stopped is not None and "not valid JSON" in str(stopped.stopped)
    assert len(read_jsonl(output)) == 4

    skipped = run(source, output, base_url=server.base_url, on_error="skip", progress=False)
    assert skipped.already_done == 4 and skipped.succeeded == 6 and skipped.skipped == 1
    assert len(read_jsonl(output)) == 10


def test_an_output_of_another_input_is_refused_and_overwrite_starts_over(
    server: LocalRerankServer, tmp_path: Path
) -> None:
    output = tmp_path / "out.jsonl"
    run(
        write_jsonl(tmp_path / "a.jsonl", make_rows(5)),
        output,
        base_url=server.base_url,
        progress=False,
    )
    other = write_jsonl(tmp_path / "b.jsonl", make_rows(5, start=100))

    with pytest.raises(ResumeError, match="line 1: this row is not in"):
        run(other, output, base_url=server.base_url, progress=False)
    summary = run(other, output, base_url=server.base_url, overwrite=True, progress=False)
    assert summary.succeeded == 5
    assert [row["id"] for row in read_jsonl(output)] == [f"row-{n}" for n in range(100, 105)]

    first_line = output.read_bytes().splitlines(keepends=True)[0]
    output.write_bytes(first_line + b"not json\n")
    with pytest.raises(ResumeError, match="line 2: not a JSON object"):
        run(other, output, base_url=server.base_url, progress=False)


def test_rows_without_ids_are_known_again_by_their_content(
    server: LocalRerankServer, tmp_path: Path
) -> None:
    rows = [{"query": row["query"], "documents": row["documents"]} for row in make_rows(20)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    run(source, output, base_url=server.base_url, progress=False)
    complete = output.read_bytes()
    output.write_bytes(b"".join(complete.splitlines(keepends=True)[:7]))

    summary = run(source, output, base_url=server.base_url, progress=False)
    assert summary.already_done == 7 and output.read_bytes() == complete


def test_two_jobs_never_write_one_output(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    with OutputFile(output), pytest.raises(ResumeError, match="another batch job"):
        OutputFile(output)
    OutputFile(output).close()  # free again once the first is closed


def test_the_resume_plan_remembers_only_the_rows_left_out(tmp_path: Path) -> None:
    rows = make_rows(1000, documents=2)
    source = open_source(write_jsonl(tmp_path / "in.jsonl", rows))
    done = [row for n, row in enumerate(rows[:900]) if n not in (10, 500)]
    output = write_jsonl(tmp_path / "out.jsonl", [{**row, "results": []} for row in done])

    plan = plan_resume(source, output, Fields())

    assert plan.done == 898 and plan.position == 900
    assert [position for position, _ in plan.pending] == [10, 500]
    wanted = plan.wanted()
    todo = [n for n, _, _ in source.read(*plan.start(), wanted=wanted)]
    assert todo == [10, 500, *range(900, 1000)]


def test_parquet_rows_are_read_in_batches_and_resumed(
    server: LocalRerankServer, tmp_path: Path, mode: str
) -> None:
    pyarrow = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    rows = make_rows(50)
    objects = [row for row in rows if isinstance(row["documents"][0], dict)]
    strings = [row for row in rows if row not in objects]
    source = tmp_path / "in.parquet"
    with parquet.ParquetWriter(source, pyarrow.Table.from_pylist(strings[:1]).schema) as writer:
        for start in range(0, len(strings), 7):  # several row groups
            writer.write_table(pyarrow.Table.from_pylist(strings[start : start + 7]))
    objects_file = tmp_path / "objects.parquet"
    parquet.write_table(pyarrow.Table.from_pylist(objects), objects_file)
    output = tmp_path / "out.jsonl"

    first = run_job(mode, source, output, base_url=server.base_url)
    complete = output.read_bytes()
    output.write_bytes(b"".join(complete.splitlines(keepends=True)[:10]))
    again = run_job(mode, source, output, base_url=server.base_url)
    run_job(mode, objects_file, tmp_path / "objects.jsonl", base_url=server.base_url)

    assert first.succeeded == len(strings) and again.already_done == 10
    assert output.read_bytes() == complete
    with RerankClient(server.base_url) as client:
        assert rankings(read_jsonl(output)) == direct(client, strings)
        assert rankings(read_jsonl(tmp_path / "objects.jsonl")) == direct(client, objects)
    assert read_jsonl(tmp_path / "objects.jsonl")[0]["results"][0]["id"].startswith("d0-")


# -- progress --------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_off_a_terminal_is_plain_lines_now_and_then(
    server: LocalRerankServer, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", make_rows(40))
    stream = io.StringIO()
    run(
        source,
        tmp_path / "out.jsonl",
        base_url=server.base_url,
        progress_stream=stream,
        progress_interval=1e-6,
        concurrency=2,
    )
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 10
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    last = lines[-1]
    assert last.startswith("40/40 rows (100.0%)"), last
    for part in ("rows/s", "documents/s", "ETA 0 s", "0 retries", "0 failed"):
        assert part in last


def test_progress_on_a_terminal_is_one_line_redrawn() -> None:
    now = [0.0]
    stream = Terminal()
    meter = Progress(
        stream, total=200, done_before=50, live=True, interval=10, clock=lambda: now[0]
    )
    for rows in range(1, 101):
        now[0] = rows * 0.01
        meter.update(rows, rows * 8, retries=rows // 50, failed=rows // 40)
    meter.finish()
    text = stream.getvalue()
    frames = text.split("\r\x1b[K")[1:]
    assert 5 <= len(frames) <= 12 and text.endswith("\n")
    assert frames[-1].strip() == (
        "[###############-----] 150/200 rows (75.0%), 100 rows/s, 800 documents/s, ETA 0 s, "
        "2 retries, 2 failed"
    )


def test_durations_read_like_a_clock() -> None:
    assert [format_duration(s) for s in (0, 59.4, 61, 3600 * 2 + 65)] == [
        "0 s",
        "59 s",
        "1:01",
        "2:01:05",
    ]


def test_the_output_is_whole_lines_while_the_job_runs(
    server: LocalRerankServer, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", make_rows(200))
    output = tmp_path / "out.jsonl"
    seen: list[int] = []

    async def job_and_reader() -> None:
        job = asyncio.ensure_future(
            arun(source, output, base_url=server.base_url, concurrency=4, progress=False)
        )
        while not job.done():
            if output.exists():
                data = output.read_bytes()
                assert not data or data.endswith(b"\n")
                seen.append(len(read_jsonl(output)))
            await asyncio.sleep(0.001)
        await job

    asyncio.run(job_and_reader())
    assert seen and seen == sorted(seen) and len(read_jsonl(output)) == 200


def test_a_cancelled_job_loses_only_the_rows_in_flight(
    server: LocalRerankServer, tmp_path: Path
) -> None:
    rows = make_rows(300)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"

    async def interrupted() -> None:
        job = asyncio.ensure_future(
            arun(source, output, base_url=server.base_url, concurrency=4, progress=False)
        )
        while not output.exists() or len(output.read_bytes().splitlines()) < 40:  # noqa: ASYNC110
            await asyncio.sleep(0.001)  # the file is what is watched: no event to wait for
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job

    asyncio.run(interrupted())
    written = len(read_jsonl(output))
    assert 40 <= written < 300
    summary = run(source, output, base_url=server.base_url, progress=False)
    assert summary.already_done == written and summary.succeeded == 300 - written
    assert [row["id"] for row in read_jsonl(output)] == [row["id"] for row in rows]
    assert os.path.getsize(output) == len(output.read_bytes())


# -- the command line ------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["batch", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_batch_command_writes_the_rankings_and_says_what_it_did(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = make_rows(30)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    code, out, err = cli(
        capsys,
        str(source),
        str(output),
        "--base-url",
        server.base_url,
        "--top-n",
        "2",
        "--concurrency",
        "3",
        "--progress-interval",
        "0.000001",
    )
    assert code == 0, err
    assert out == ""
    lines = err.splitlines()
    assert any(line.startswith("30/30 rows (100.0%)") for line in lines), err
    assert lines[-1].startswith("rerank-integrations batch: 30 rows in ")
    assert "0 failed; 0 retries" in lines[-1] and str(output) in lines[-1]
    with RerankClient(server.base_url) as client:
        assert rankings(read_jsonl(output)) == direct(client, rows, top_n=2)

    code, _, err = cli(capsys, str(source), str(output), "--base-url", server.base_url)
    assert code == 0 and "0 rows in" in err and "30 already there" in err


def test_the_exit_status_says_whether_every_row_succeeded(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = make_rows(6)
    rows[2]["query"] = "   "
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    base = ("--base-url", server.base_url, "--no-progress")

    code, _, err = cli(capsys, str(source), str(output), *base)
    assert code == 1
    assert err.count("\n") == 1 and "1 failed (1 recorded, 0 skipped)" in err
    assert read_jsonl(output)[2]["error"]["type"] == "InvalidRowError"

    code, _, err = cli(capsys, str(source), str(tmp_path / "b.jsonl"), *base, "--on-error", "stop")
    assert code == 1
    assert err.splitlines()[-1].startswith(
        "rerank-integrations: error: stopped: row 3 (id 'row-2')"
    )
    assert len(read_jsonl(tmp_path / "b.jsonl")) == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.jsonl", "out.jsonl"], "no such file: missing.jsonl"),
        (["in.jsonl", "out.parquet"], "OUTPUT is written as JSON Lines"),
        (["-", "out.jsonl"], "batch reads and writes files"),
        (["in.jsonl", "out.jsonl", "--on-error", "ignore"], "invalid choice: 'ignore'"),
        (["in.jsonl", "out.jsonl", "--concurrency", "0"], "must be at least 1"),
    ],
)
def test_usage_errors_are_one_line_and_status_2(
    server: LocalRerankServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", make_rows(2))
    code, _, err = cli(capsys, *arguments, "--base-url", server.base_url)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err


def test_an_output_of_another_input_is_a_failure_with_the_fix(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = write_jsonl(tmp_path / "out.jsonl", [{"id": "elsewhere", "results": []}])
    source = write_jsonl(tmp_path / "in.jsonl", make_rows(2))
    code, _, err = cli(capsys, str(source), str(output), "--base-url", server.base_url)
    assert code == 1 and "written from another input" in err and "overwrite" in err
    code, _, _ = cli(capsys, str(source), str(output), "--base-url", server.base_url, "--overwrite")
    assert code == 0 and len(read_jsonl(output)) == 2


def test_long_document_and_rate_limit_options_reach_the_client(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = "tea " * 40 + "espresso descale machine " + "tea " * 40
    rows = [{"id": n, "query": "descale espresso", "documents": ["tea", long]} for n in range(5)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    code, _, err = cli(
        capsys,
        str(source),
        str(output),
        "--base-url",
        server.base_url,
        "--max-tokens-per-document",
        "24",
        "--long-documents",
        "chunk",
        "--rate-limit-rpm",
        "6000",
        "--rate-limit-tpm",
        "6000000",
        "--no-adaptive-concurrency",
    )
    assert code == 0, err
    for row in read_jsonl(output):
        best = row["results"][0]
        assert best["index"] == 1 and "espresso" in long[best["span"][0] : best["span"][1]]


def test_memory_stays_flat_however_long_the_file(
    client_for: Callable[..., RerankClient], tmp_path: Path
) -> None:
    import tracemalloc

    def small_answer(request: httpx.Request) -> httpx.Response:
        count = len(json.loads(request.content)["documents"])
        results = [{"index": i, "relevance_score": 1.0 - i / count} for i in range(count)]
        return httpx.Response(200, json={"results": results[:3]})

    text = " ".join(["espresso machine descale water filter"] * 8)
    source = tmp_path / "in.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for number in range(2000):
            row = {"id": number, "query": "descale", "documents": [f"{number} {text}"] * 20}
            handle.write(json.dumps(row) + "\n")
    size = source.stat().st_size
    client = client_for(small_answer)

    tracemalloc.start()
    try:
        summary = run(
            source, tmp_path / "out.jsonl", client=client, top_n=3, concurrency=8, progress=False
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert summary.succeeded == 2000
    assert size > 12_000_000
    assert peak < size / 10, f"peak {peak:,} bytes for a file of {size:,}"


# -- instructions -------------------------------------------------------------------------


def test_the_job_sends_its_instruction_from_python_and_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from support import ScriptedServer

    rows = make_rows(3, 4)
    source = tmp_path / "in.jsonl"
    write_jsonl(source, rows)
    with ScriptedServer() as server:
        summary = run(source, tmp_path / "a.jsonl", base_url=server.base_url, instruction="x")
        assert summary.ok
        code = main(
            [
                "batch",
                str(source),
                str(tmp_path / "b.jsonl"),
                "--base-url",
                server.base_url,
                "--instruction",
                "y",
                "--no-progress",
            ]
        )
        assert code == 0
        with RerankClient(server.base_url, instruction="client's") as client:
            out = list(rerank_rows(rows, client, instruction="z"))
            assert len(out) == 3
        queries = [r.asked.query for r in server.received if r.asked is not None]
    capsys.readouterr()
    expected = [row["query"] for row in rows]
    assert sorted(queries) == sorted(f"{p}\n{q}" for p in "xyz" for q in expected)
