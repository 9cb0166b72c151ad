"""Smoke test of the benchmark: every registered scenario at the tiny scale, one round, the
floor and the package only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.registry import scenarios  # noqa: E402
from benchmarks.server import child_env  # noqa: E402

OURS = (
    "RerankClient.rerank",
    "RerankClient.arerank",
    "RerankCompressor.compress_documents",
    "RerankCompressor.acompress_documents",
    "RerankPostprocessor.postprocess_nodes",
    "RerankPostprocessor.apostprocess_nodes",
)


def _section(text: str, heading: str) -> list[str]:
    """The table rows under ``heading`` (up to the next heading)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        header = line.startswith(("| Contender", "| # "))
        if line.startswith("| ") and not header and "---" not in line:
            rows.append(line)
    return rows


def test_tiny_run_reports_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--scale",
            "tiny",
            "--rounds",
            "1",
            "--contenders",
            "floor,ours",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    printed = completed.stdout

    numbers = list(scenarios())
    assert numbers[:5] == [1, 2, 3, 4, 5]
    targets = _section(printed, "### Targets")
    assert {row.split("|")[1].strip() for row in targets} == {str(n) for n in numbers}

    for number in numbers:
        rows = _section(printed, f"### Scenario {number}:")
        assert rows, f"scenario {number} has no rows"
        for row in rows:
            assert "fails" not in row and "not installed" not in row, row
        if number <= 5:
            ours = [row for row in rows if any(f"| {label} |" in row for label in OURS)]
            expected = 3 if number == 4 else 6  # scenario 4 is async only
            assert len(ours) == expected, rows
        if number != 9:  # scenario 9, memory of chunked calls, has no floor row
            assert any(row.split("|")[-2].strip() == "reference" for row in rows), rows

    for kept, role in ((2, "physical limit"), (4, "aiohttp floor")):
        roles = [row.split("|")[-2].strip() for row in _section(printed, f"### Scenario {kept}:")]
        assert role in roles, roles

    # The offline job: the batch job against bare httpx, and Ray with one and two workers.
    batch = _section(printed, "### Scenario 10:")
    assert len(batch) == 3 and batch[0].split("|")[-2].strip() == "reference", batch
    for row in batch[1:]:
        assert row.startswith("| batch.") and "fails" not in row and "pairs" not in row, row
        assert row.split("|")[3].strip().replace(",", "").isdigit(), row  # pairs per second
    scaling = _section(printed, "### Scenario 11:")
    assert [row.split("|")[1].strip() for row in scaling] == [
        "Ray Data map_batches(Reranker), 1 worker",
        "Ray Data map_batches(Reranker), 2 workers",
    ]
    assert all("fails" not in row and "not installed" not in row for row in scaling), scaling
    assert "the workers' processes" in printed

    # The evaluation against the batch job on the same pairs, cold and warm.
    evaluation = _section(printed, "### Scenario 12:")
    assert [row.split("|")[1].strip().partition(",")[0] for row in evaluation] == [
        "batch.arun over the same rows (no cache)",
        "eval.aevaluate",
        "eval.aevaluate",
        "RerankClient.arerank of every row from the warm cache",
        "eval.aevaluate",
    ], evaluation
    for row in evaluation:
        assert row.split("|")[3].strip().replace(",", "").isdigit(), row  # pairs per second
    assert [row.split("|")[-2].strip() for row in evaluation][::3] == ["reference", "cache floor"]

    report = out.read_text(encoding="utf-8")
    for heading in ("## Machine", "## Packages", "## How to read the tables", "### Targets"):
        assert heading in report
    assert printed.strip() in report


def test_import_time_reports_both_imports() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.import_time", "--runs", "1"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "import langchain-core (callbacks, documents, retrievers): " in done.stdout
    assert "import rerank_integrations.langchain on top of langchain-core: " in done.stdout
    assert " ms CPU, " in done.stdout
