"""What the batch job guarantees about rows: none lost, none written twice, none given
another row's ranking, whatever the ids, the edits, the faults, the disk or the user does."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import make_rows, rank_body, rankings, read_jsonl, write_jsonl

from rerank_integrations import RerankClient, batch
from rerank_integrations._exceptions import InvalidRowError, ResumeError, RowFailedError
from rerank_integrations.batch import BatchSummary, arun, run
from rerank_integrations.cli import main
from rerank_integrations.server import LocalRerankServer, serve_in_thread


class Flaky:
    """A server whose queries in ``failing`` get a 503 until it is healed."""

    def __init__(self, *failing: str) -> None:
        self.failing = set(failing)
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body["query"])
        if body["query"] in self.failing:
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return httpx.Response(200, json=rank_body(body))


def run_job(mode: str, source: Path, output: Path, **options: Any) -> BatchSummary:
    options.setdefault("progress", False)
    if mode == "sync":
        return run(source, output, **options)
    return asyncio.run(arun(source, output, **options))


def expected_rankings(client: RerankClient, rows: list[dict[str, Any]]) -> list[Any]:
    """Each row's fault-free ranking, in input order."""
    found = []
    for row in rows:
        texts = [d if isinstance(d, str) else d["text"] for d in row["documents"]]
        response = client.rerank(row["query"], texts)
        found.append([(r.index, r.relevance_score) for r in response.results])
    return found


def content(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in ("results", "error")}


def ranked(row: dict[str, Any]) -> list[tuple[int, float]]:
    return [(item["index"], item["relevance_score"]) for item in row["results"]]


# -- the errors live with the others ---------------------------------------------------------


def test_the_job_errors_live_in_the_exceptions_module_and_its_tree() -> None:
    from rerank_integrations import _exceptions
    from rerank_integrations.batch import _engine, _files, _rows

    for name in ("RowFailedError", "InvalidRowError", "ResumeError"):
        assert name in _exceptions.__all__
        assert name in (_exceptions.__doc__ or "")
        assert getattr(batch, name) is getattr(_exceptions, name)
    assert _engine.RowFailedError is RowFailedError  # where they were, still importable
    assert _rows.InvalidRowError is InvalidRowError and _files.ResumeError is ResumeError
    assert issubclass(InvalidRowError, ValueError)
    error = RowFailedError(4, "a", ValueError("bad"), row=7)
    assert str(error) == "row 7 (id 'a') failed: ValueError: bad" and error.position == 4
    import pickle

    copy = pickle.loads(pickle.dumps(error))
    assert (copy.position, copy.row, str(copy)) == (4, 7, str(error))


# -- ids shared, null or missing: rows are known by their content ----------------------------


def test_rows_sharing_an_id_or_a_null_id_are_each_written_once_on_resume(
    client_for: Callable[..., RerankClient], tmp_path: Path, mode: str
) -> None:
    rows: list[dict[str, Any]] = [
        {"id": "a", "query": "espresso first", "documents": ["espresso", "tea"]},
        {"id": "a", "query": "tea second", "documents": ["espresso", "tea"]},
        {"id": None, "query": "milk third", "documents": ["milk", "tea"]},
        {"id": None, "query": "cup fourth", "documents": ["cup", "tea"]},
        {"query": "kettle fifth", "documents": ["kettle", "tea"]},
        {"query": "kettle fifth", "documents": ["kettle", "tea"]},  # repeated content
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    flaky = Flaky("espresso first", "milk third")
    client = client_for(flaky, max_retries=0)

    first = run_job(mode, source, output, client=client, on_error="skip")
    assert first.skipped == 2 and first.succeeded == 4
    flaky.failing.clear()
    second = run_job(mode, source, output, client=client, on_error="skip")

    assert second.already_done == 4 and second.succeeded == 2 and second.ok
    written = read_jsonl(output)
    assert sorted(json.dumps(content(row), sort_keys=True) for row in written) == sorted(
        json.dumps(row, sort_keys=True) for row in rows
    )  # every row once: none lost, none twice
    expected = dict(
        zip((row["query"] for row in rows), expected_rankings(client, rows), strict=True)
    )
    assert all(ranked(row) == expected[row["query"]] for row in written)
    third = run_job(mode, source, output, client=client)
    assert third.already_done == 6 and third.rows == 0


# -- an output of another input, or of edited rows --------------------------------------------


def test_an_output_of_edited_rows_with_the_same_ids_is_refused_or_redone(
    server: LocalRerankServer, tmp_path: Path, mode: str
) -> None:
    rows = make_rows(8, documents=4)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    run_job(mode, source, output, base_url=server.base_url)
    rows[5]["query"] = "citric acid descale"  # edited since: same id, another question
    rows[2]["documents"] = rows[2]["documents"][:2]
    write_jsonl(source, rows)
    before = output.read_bytes()

    with pytest.raises(ResumeError, match=r"line 3: the row with id 'row-2' is not as row 3"):
        run_job(mode, source, output, base_url=server.base_url)
    assert output.read_bytes() == before
    other = write_jsonl(tmp_path / "other.jsonl", [{**row, "query": "tea"} for row in rows])
    with pytest.raises(ResumeError, match="edited"):
        run_job(mode, other, output, base_url=server.base_url, retry_failed=True)
    assert output.read_bytes() == before

    summary = run_job(mode, source, output, base_url=server.base_url, redo_changed=True)

    assert summary.already_done == 6 and summary.succeeded == 2 and summary.ok
    written = read_jsonl(output)
    assert [content(row) for row in written] == rows  # in input order, each once
    with RerankClient(server.base_url) as client:
        assert [ranked(row) for row in written] == expected_rankings(client, rows)


# -- INPUT and OUTPUT the same file -----------------------------------------------------------


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_input_and_output_the_same_file_is_a_usage_error_that_touches_nothing(
    server: LocalRerankServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    spelling: str,
    overwrite: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "runs.jsonl", make_rows(3))
    before = (tmp_path / "runs.jsonl").read_bytes()
    output = {"same": "runs.jsonl", "dot": "./runs.jsonl", "symlink": "link.jsonl"}[spelling]
    if spelling == "symlink":
        (tmp_path / "link.jsonl").symlink_to(tmp_path / "runs.jsonl")
    extra = ["--overwrite"] if overwrite else []

    code = main(["batch", "runs.jsonl", output, "--base-url", server.base_url, *extra])

    err = capsys.readouterr().err
    assert code == 2 and "INPUT and OUTPUT are the same file" in err and err.count("\n") == 1
    assert (tmp_path / "runs.jsonl").read_bytes() == before
    for job in (lambda: run("runs.jsonl", output, base_url=server.base_url, overwrite=overwrite),):
        with pytest.raises(ValueError, match="the same file"):
            job()
    with pytest.raises(ValueError, match="the same file"):
        asyncio.run(arun("runs.jsonl", output, base_url=server.base_url, overwrite=overwrite))
    assert (tmp_path / "runs.jsonl").read_bytes() == before


# -- a lone surrogate is the row's failure ----------------------------------------------------


SURROGATE_ROWS = (
    '{"id": 1, "query": "espresso", "documents": ["espresso machine", "tea"]}\n'
    '{"id": 2, "query": "espresso", "documents": ["fine", "broken \\udcff text"]}\n'
    '{"id": 3, "query": "tea", "documents": ["espresso machine", "tea"]}\n'
)


def test_a_lone_surrogate_is_recorded_as_its_rows_failure_and_the_job_goes_on(
    server: LocalRerankServer, tmp_path: Path, mode: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(SURROGATE_ROWS, encoding="utf-8")
    output = tmp_path / "out.jsonl"

    summary = run_job(mode, source, output, base_url=server.base_url)

    assert summary.succeeded == 2 and summary.recorded == 1 and summary.stopped is None
    written = read_jsonl(output)
    assert [row["id"] for row in written] == [1, 2, 3]
    error = written[1]["error"]
    assert error["type"] == "InvalidRowError" and "documents[1]" in error["message"]
    assert "surrogate" in error["message"] and written[1]["results"] is None
    assert written[1]["documents"][1] == "broken \udcff text"  # written back as it was read
    again = run_job(mode, source, output, base_url=server.base_url)
    assert again.already_done == 3 and again.rows == 0


def test_a_lone_surrogate_in_a_streamed_row_names_the_document(
    client_for: Callable[..., RerankClient], mode: str
) -> None:
    rows = [
        {"id": 1, "query": "tea", "documents": ["tea", {"id": "x", "text": "bad \udcff"}]},
        {"id": 2, "query": "tea \ud800", "documents": ["tea"]},
        {"id": 3, "query": "tea", "documents": ["tea"]},
    ]
    flaky = Flaky()
    client = client_for(flaky)
    if mode == "sync":
        out = list(batch.rerank_rows(rows, client))
    else:

        async def gather() -> list[dict[str, Any]]:
            return [row async for row in batch.arerank_rows(rows, client)]

        out = asyncio.run(gather())
    assert "documents[1]" in out[0]["error"]["message"]
    assert "'query'" in out[1]["error"]["message"] and out[2]["results"]
    assert flaky.requests == ["tea"]  # nothing of the broken rows was sent


@pytest.mark.parametrize("fast_json", [True, False], ids=["orjson", "stdlib-json"])
def test_a_lone_surrogate_row_with_and_without_orjson(
    server: LocalRerankServer, tmp_path: Path, fast_json: bool
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(SURROGATE_ROWS, encoding="utf-8")
    output = tmp_path / "out.jsonl"
    block = "" if fast_json else "import sys; sys.modules['orjson'] = None\n"
    code = (
        block
        + "import sys\n"
        + "from rerank_integrations.cli import main\n"
        + "from rerank_integrations.batch import _rows\n"
        + f"assert (_rows.importlib.util.find_spec('orjson') is not None) == {fast_json}\n"
        + f"sys.exit(main(['batch', {str(source)!r}, {str(output)!r}, '--base-url', "
        + f"{server.base_url!r}, '--no-progress']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr  # one row failed; the job went on
    assert "2 rows in" not in done.stderr and "1 failed (1 recorded" in done.stderr
    written = read_jsonl(output)
    assert [row["id"] for row in written] == [1, 2, 3]
    assert "documents[1]" in written[1]["error"]["message"]


# -- --retry-failed ---------------------------------------------------------------------------


def test_retry_failed_redoes_exactly_the_failures_and_writes_every_row_in_order(
    client_for: Callable[..., RerankClient], tmp_path: Path, mode: str
) -> None:
    rows = make_rows(30, documents=3)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    failing = {rows[n]["query"] for n in (2, 9, 10)}
    skipped = {rows[n]["query"] for n in (4, 20)}
    flaky = Flaky(*failing, *skipped)
    client = client_for(flaky, max_retries=0)
    first = run_job(mode, source, output, client=client, concurrency=4)
    assert first.recorded == 5
    # Two of them skipped instead: left out, as another run with --on-error skip leaves them.
    kept = [line for line in output.read_bytes().splitlines(keepends=True) if b"row-4\"" not in line
            and b"row-20\"" not in line]  # fmt: skip
    output.write_bytes(b"".join(kept))
    again = run_job(mode, source, output, client=client)  # a plain rerun: failures stand
    assert again.already_done == 28 and again.failed == 2 and again.recorded == 2
    assert again.failed_before == 3 and not again.ok  # the failures already there count
    flaky.failing.clear()
    flaky.requests.clear()
    untouched = {
        row["id"]: line
        for line, row in zip(
            output.read_bytes().splitlines(keepends=True), read_jsonl(output), strict=True
        )
        if "error" not in row
    }

    summary = run_job(mode, source, output, client=client, retry_failed=True, concurrency=4)

    assert summary.already_done == 25 and summary.succeeded == 5 and summary.ok
    assert sorted(flaky.requests) == sorted(failing | skipped)  # exactly the failures
    written = read_jsonl(output)
    assert [row["id"] for row in written] == [row["id"] for row in rows]
    assert all("error" not in row for row in written)
    assert rankings(written) == rankings(
        [{**row, "results": [{"index": i, "relevance_score": s} for i, s in r]}
         for row, r in zip(rows, expected_rankings(client, rows), strict=True)]
    )  # fmt: skip
    ids = [row["id"] for row in written]
    lines = dict(zip(ids, output.read_bytes().splitlines(keepends=True), strict=True))
    assert all(lines[row_id] == line for row_id, line in untouched.items())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_retry_failed_keeps_the_output_whole_at_every_instant_and_when_interrupted(
    server: LocalRerankServer, client_for: Callable[..., RerankClient], tmp_path: Path
) -> None:
    rows = make_rows(200, documents=3)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    failing = {row["query"] for row in rows[::3]}
    run(source, output, client=client_for(Flaky(*failing), max_retries=0), progress=False)
    before = read_jsonl(output)
    assert sum("error" in row for row in before) == len(rows[::3])
    seen: list[int] = []

    async def job_and_reader(stop_after: int | None) -> None:
        job = asyncio.ensure_future(
            arun(
                source,
                output,
                base_url=server.base_url,
                concurrency=2,
                retry_failed=True,
                progress=False,
            )
        )
        polls = 0
        while not job.done():
            data = output.read_bytes()
            assert data.endswith(b"\n")
            seen.append(len(read_jsonl(output)))  # never fewer rows, never half of one
            polls += 1
            if stop_after is not None and polls == stop_after:
                job.cancel()
            await asyncio.sleep(0.001)
        with contextlib.suppress(asyncio.CancelledError):
            await job

    asyncio.run(job_and_reader(stop_after=20))
    middle = read_jsonl(output)
    assert [row["id"] for row in middle] == [row["id"] for row in rows]
    redone = sum("error" not in row for row in middle) - sum("error" not in row for row in before)
    assert 0 < redone < len(rows[::3])  # what was redone before the interrupt is kept
    asyncio.run(job_and_reader(stop_after=None))
    written = read_jsonl(output)
    assert [row["id"] for row in written] == [row["id"] for row in rows]
    assert all("error" not in row for row in written)
    assert seen and min(seen) == 200


# -- patient defaults -------------------------------------------------------------------------


def test_the_default_retries_of_a_job_outlast_a_server_failing_15_percent(
    tmp_path: Path, mode: str, sleeps: list[float]
) -> None:
    rows = make_rows(2000, documents=3, objects=0)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    with serve_in_thread(error_rate=0.15, error_status=503, seed=21) as faulty:
        summary = run_job(mode, source, output, base_url=faulty.base_url, concurrency=16)
        faults = faulty.stats.faults
    assert faults["error"] > 200  # the server did fail about 15 % of the requests
    assert summary.failed == 0 and summary.ok, summary
    assert summary.retries >= faults["error"] and len(read_jsonl(output)) == 2000
    assert sleeps and max(sleeps) <= batch.PATIENT_RETRY.max_delay  # none really slept


def test_the_patient_policy_is_the_commands_default_and_honours_retry_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sleeps: list[float]
) -> None:
    assert batch.PATIENT_RETRY.max_retries >= 8 and batch.PATIENT_RETRY.max_delay >= 60
    assert batch.PATIENT_RETRY.max_retry_after >= 300
    rows = make_rows(400, documents=3, objects=0)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    faults = {"error_rate": 0.3, "rate_limit_rate": 0.05, "retry_after": 90.0, "seed": 3}
    with serve_in_thread(**faults) as faulty:
        code = main(
            ["batch", str(source), str(tmp_path / "out.jsonl"), "--base-url", faulty.base_url,
             "--no-progress"]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "0 failed" in err and len(read_jsonl(tmp_path / "out.jsonl")) == 400
    assert 90.0 in sleeps  # a Retry-After longer than an interactive call's cap, honoured


# -- a failed write ---------------------------------------------------------------------------


def full_disk_after(monkeypatch: pytest.MonkeyPatch, output: Path, rows: int) -> None:
    """``os.write`` to ``output`` writes half of its data then fails, from the ``rows``-th
    write on, as a disk that fills up does."""
    real = os.write
    count = [0]

    def write(fd: int, data: Any) -> int:
        try:
            ours = os.path.samestat(os.fstat(fd), os.stat(output))
        except OSError:
            ours = False
        if ours:
            count[0] += 1
            if count[0] > rows:
                real(fd, bytes(data)[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)


def test_a_full_disk_leaves_whole_lines_and_a_rerun_finishes(
    server: LocalRerankServer, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = make_rows(50, documents=3)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    output.touch()
    with monkeypatch.context() as patch:
        full_disk_after(patch, output, 20)
        with pytest.raises(OSError, match="No space left on device") as raised:
            run_job(mode, source, output, base_url=server.base_url, concurrency=4)
    data = output.read_bytes()
    assert data.endswith(b"\n") and len(read_jsonl(output)) == 20  # no half row left
    assert str(output) in str(raised.value) and "whole rows" in str(raised.value)

    summary = run_job(mode, source, output, base_url=server.base_url)
    assert summary.already_done == 20 and summary.ok
    assert [row["id"] for row in read_jsonl(output)] == [row["id"] for row in rows]


def test_a_full_disk_is_one_line_from_the_command_and_a_rewrite_leaves_the_old_output(
    server: LocalRerankServer,
    client_for: Callable[..., RerankClient],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = make_rows(30, documents=3)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    output.touch()
    with monkeypatch.context() as patch:
        full_disk_after(patch, output, 5)
        code = main(["batch", str(source), str(output), "--base-url", server.base_url])
    err = capsys.readouterr().err
    assert code == 1 and err.splitlines()[-1].startswith("rerank-integrations: error: writing")
    assert "No space left on device" in err and len(read_jsonl(output)) == 5

    failing = {row["query"] for row in rows[::2]}
    output.unlink()
    run(source, output, client=client_for(Flaky(*failing), max_retries=0), progress=False)
    before = output.read_bytes()
    real_mkstemp = __import__("tempfile").mkstemp
    made: list[str] = []

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real_mkstemp(*args, **kwargs)
        made.append(name)
        return fd, name

    with monkeypatch.context() as patch:
        patch.setattr("tempfile.mkstemp", mkstemp)
        real = os.write

        writes = [0]

        def write(fd: int, data: Any) -> int:
            # The third line of the new output fails half written; the disk then has room
            # again: what follows must not be appended to half a line and put in place.
            ours = made and os.path.exists(made[0])
            if ours and os.path.samestat(os.fstat(fd), os.stat(made[0])):
                writes[0] += 1
                if writes[0] == 3:
                    real(fd, bytes(data)[: len(data) // 2])
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, data)

        patch.setattr(os, "write", write)
        with pytest.raises(OSError, match="No space left") as raised:
            run(source, output, base_url=server.base_url, retry_failed=True, progress=False)
    assert output.read_bytes() == before and made and not os.path.exists(made[0])
    assert "it is as it was before this run" in str(raised.value)


# -- rows counted as the file counts them -----------------------------------------------------


def test_a_message_names_the_row_by_its_line_in_the_file(
    client_for: Callable[..., RerankClient], tmp_path: Path, mode: str
) -> None:
    rows: list[Any] = make_rows(12, documents=2)
    rows[9]["query"] = "down"
    lines = [*rows[:4], "", *rows[4:]]  # a blank line: row-9 is on line 11
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    output = tmp_path / "out.jsonl"
    client = client_for(Flaky("down"), max_retries=0)
    first = run_job(mode, source, output, client=client, on_error="stop")
    assert first.stopped is not None
    assert str(first.stopped).startswith("row 11 (id 'row-9') failed: ServerError")
    stopped = run_job(mode, source, output, client=client, on_error="stop")  # resumed mid-file
    assert stopped.stopped is not None
    assert str(stopped.stopped).startswith("row 11 (id 'row-9') failed: ServerError")
    assert stopped.stopped.position == 9 and stopped.stopped.row == 11
    assert (source.read_text().splitlines()[10]).count('"row-9"') == 1


# -- Ctrl-C -----------------------------------------------------------------------------------


def test_ctrl_c_says_how_many_rows_are_written_and_that_a_rerun_resumes(tmp_path: Path) -> None:
    rows = make_rows(400, documents=3)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    with serve_in_thread(latency_ms=20) as slow:
        command = [
            sys.executable, "-m", "rerank_integrations", "batch", str(source), str(output),
            "--base-url", slow.base_url, "--concurrency", "2", "--no-progress",
        ]  # fmt: skip
        job = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not output.exists() or output.read_bytes().count(b"\n") < 20:
            assert time.monotonic() < deadline and job.poll() is None
            time.sleep(0.01)
        job.send_signal(signal.SIGINT)
        _, err = job.communicate(timeout=60)
        assert job.returncode == 130, err
        written = len(read_jsonl(output))
        assert 20 <= written < 400
        assert err.splitlines()[-1] == (
            f"rerank-integrations: error: interrupted: {written} rows are in {output}, each "
            "whole; run the same command again to resume (rows already there are skipped)"
        )
        again = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert f"{written} already there" in again.stderr
    assert [row["id"] for row in read_jsonl(output)] == [row["id"] for row in rows]


def test_the_command_retries_failed_rows_and_redoes_changed_ones(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = make_rows(12, documents=3)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    with serve_in_thread(error_rate=1.0, error_status=503) as down:
        code = main(["batch", str(source), str(output), "--base-url", down.base_url,
                     "--max-retries", "0", "--no-progress"])  # fmt: skip
    assert code == 1 and all(row["results"] is None for row in read_jsonl(output))
    base = ["--base-url", server.base_url, "--no-progress"]
    code = main(["batch", str(source), str(output), *base])
    err = capsys.readouterr().err
    assert code == 1 and "12 already there (12 failed: --retry-failed tries them again)" in err

    code = main(["batch", str(source), str(output), *base, "--retry-failed"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "12 rows in" in err and "0 failed" in err
    written = read_jsonl(output)
    assert [row["id"] for row in written] == [row["id"] for row in rows]
    assert all(row["results"] and "error" not in row for row in written)

    rows[4]["query"] = "kettle scale"
    write_jsonl(source, rows)
    code = main(["batch", str(source), str(output), *base])
    err = capsys.readouterr().err
    assert code == 1 and "line 5: the row with id 'row-4' is not as row 5" in err
    assert "--redo-changed" in err
    code = main(["batch", str(source), str(output), *base, "--redo-changed"])
    err = capsys.readouterr().err
    assert code == 0 and "1 rows in" in err and "11 already there" in err
    assert [content(row) for row in read_jsonl(output)] == rows
    code = main(["batch", str(source), str(output), *base, "--retry-failed", "--overwrite"])
    assert code == 2 and "--overwrite starts over" in capsys.readouterr().err
