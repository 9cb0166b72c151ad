"""A batch job against a faulty server, killed midway and run again: every row ends up in
the output exactly once, with the ranking a fault-free server gives."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from support import make_rows, rankings, read_jsonl, write_jsonl

from rerank_integrations import RerankClient
from rerank_integrations.server import serve_in_thread

ROWS = 400
KILL_AFTER = 120  # rows in the output when the first job is killed
TIME_LIMIT = 60.0  # seconds for each job, stated and checked

# The job as its own process, so that it can be killed for real; its retry waits are short
# (the server asks for 10 ms) so that the test takes seconds, and they are really waited.
JOB = """
import sys
from rerank_integrations import RerankClient, RetryPolicy, batch

source, output, base_url = sys.argv[1:4]
retry = RetryPolicy(max_retries=30, initial_delay=0.01, max_delay=0.05)
with RerankClient(base_url, retry=retry, timeout=5, adaptive_concurrency=True,
                  max_concurrency=8) as client:
    summary = batch.run(source, output, client=client, concurrency=8, top_n=5, progress=False)
sys.exit(0 if summary.ok else 1)
"""


def start_job(
    source: Path, output: Path, base_url: str, errors: int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", JOB, str(source), str(output), base_url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )


def whole_lines(output: Path) -> int:
    return output.read_bytes().count(b"\n") if output.exists() else 0


def test_a_killed_job_run_again_gives_every_row_once_with_the_fault_free_ranking(
    tmp_path: Path,
) -> None:
    rows = make_rows(ROWS, documents=10, seed=15)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    with serve_in_thread() as clean, RerankClient(clean.base_url) as reference:
        expected = {
            row["id"]: [
                (r.index, r.relevance_score)
                for r in reference.rerank(
                    row["query"],
                    [d if isinstance(d, str) else d["text"] for d in row["documents"]],
                    top_n=5,
                ).results
            ]
            for row in rows
        }

    faults = {
        "error_rate": 0.15,
        "error_status": 503,
        "rate_limit_rate": 0.05,
        "retry_after": 0.01,
        "drop_rate": 0.05,
        "latency_ms": 5,
        "seed": 15,
    }
    with serve_in_thread(**faults) as faulty:
        first = start_job(source, output, faulty.base_url, subprocess.DEVNULL)
        deadline = time.monotonic() + TIME_LIMIT
        while whole_lines(output) < KILL_AFTER and first.poll() is None:
            assert time.monotonic() < deadline, "the first job made no progress"
            time.sleep(0.002)
        first.send_signal(signal.SIGKILL)
        first.wait(TIME_LIMIT)
        assert first.returncode == -signal.SIGKILL, "the job finished before it was killed"
        at_kill = whole_lines(output)
        assert KILL_AFTER <= at_kill < ROWS

        second = start_job(source, output, faulty.base_url)
        _, errors = second.communicate(timeout=TIME_LIMIT)
        assert second.returncode == 0, errors.decode()[-2000:]
        faults_seen = faulty.stats.faults

    written = read_jsonl(output)
    assert [row["id"] for row in written] == [row["id"] for row in rows]  # each once, in order
    assert rankings(written) == expected
    assert all("error" not in row for row in written)
    assert faults_seen["error"] > 0 and faults_seen["rate_limit"] > 0 and faults_seen["drop"] > 0
