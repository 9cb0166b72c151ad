"""The batch job's cost: in ``BatchSummary`` and the summary line; ``max_cost`` stopping the
job before a row whose estimated cost would pass it, or after the row whose actual cost did,
saying how far it got; a rerun resumes. The ``--price-*`` and ``--max-cost`` options."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import make_rows, rank_body, read_jsonl, write_jsonl

from rerank_integrations import Price, RerankClient
from rerank_integrations._exceptions import CostLimitError
from rerank_integrations.batch import BatchSummary, arun, run
from rerank_integrations.cli import main
from rerank_integrations.server import LocalRerankServer, serve_in_thread


def tokens_answer(tokens: int) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        body = rank_body(json.loads(request.content))
        body["usage"] = {"total_tokens": tokens}
        return httpx.Response(200, json=body)

    return answer


def job(mode: str, source: Path, output: Path, **options: Any) -> BatchSummary:
    options.setdefault("progress", False)
    if mode == "sync":
        return run(source, output, **options)
    return asyncio.run(arun(source, output, **options))


def test_the_summary_carries_the_cost(
    mode: str, tmp_path: Path, client_for: Callable[..., RerankClient]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", make_rows(5))
    client = client_for(
        tokens_answer(100), max_documents_per_request=4, price=Price(per_million_tokens="10")
    )
    summary = job(mode, source, tmp_path / "out.jsonl", client=client)
    assert summary.ok and summary.rows == 5
    assert summary.cost == Decimal(10 * 100 * 2 * 5) / Decimal(1_000_000)  # two requests a row
    assert summary.currency == "USD" and not summary.cost_limited
    plain = client_for(tokens_answer(100))
    again = job(mode, source, tmp_path / "plain.jsonl", client=plain)
    assert again.cost is None and again.currency is None


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_job_stops_before_a_row_would_pass_max_cost_and_a_rerun_resumes(
    mode: str, tmp_path: Path, client_for: Callable[..., RerankClient], concurrency: int
) -> None:
    rows = make_rows(10)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / "out.jsonl"
    price = Price(per_request="0.01")
    client = client_for(tokens_answer(5), max_documents_per_request=4, price=price)
    # 8 documents a row: two requests, 0.02 a row; 0.09 pays for four rows, not five.
    summary = job(mode, source, output, client=client, max_cost="0.09", concurrency=concurrency)
    assert summary.cost_limited and not summary.ok
    assert summary.stopped is not None and summary.stopped.row == 5
    limit = summary.stopped.error
    assert isinstance(limit, CostLimitError) and limit.estimate == Decimal("0.02")
    assert limit.max_cost == Decimal("0.09") and limit.spent <= Decimal("0.08")
    assert summary.rows == 4 and summary.cost == Decimal("0.08")
    assert [row["id"] for row in read_jsonl(output)] == [row["id"] for row in rows[:4]]
    assert client.stats().requests == 8  # the fifth row was never sent
    again = job(mode, source, output, client=client, max_cost=1)
    assert again.ok and again.already_done == 4 and again.rows == 6
    assert again.cost == Decimal("0.12")
    assert [row["id"] for row in read_jsonl(output)] == [row["id"] for row in rows]


def test_the_job_stops_after_a_row_whose_actual_cost_passed_max_cost(
    mode: str, tmp_path: Path, client_for: Callable[..., RerankClient]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", make_rows(6))
    output = tmp_path / "out.jsonl"
    # The server bills far more tokens than the estimate counts: a row costs 2.
    client = client_for(
        tokens_answer(1_000_000), max_documents_per_request=4, price=Price(per_million_tokens=1)
    )
    summary = job(mode, source, output, client=client, max_cost="1.5", concurrency=1)
    assert summary.cost_limited and summary.rows == 1 and summary.cost == 2
    assert summary.stopped is not None and summary.stopped.row == 1
    limit = summary.stopped.error
    assert isinstance(limit, CostLimitError) and limit.estimate is None
    assert len(read_jsonl(output)) == 1  # the row was paid for: it is kept


def test_max_cost_needs_a_price_and_a_number(
    tmp_path: Path, client_for: Callable[..., RerankClient]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", make_rows(2))
    with pytest.raises(ValueError, match="max_cost needs a price"):
        run(source, tmp_path / "out.jsonl", client=client_for(tokens_answer(1)), max_cost=1)
    priced = client_for(tokens_answer(1), price=Price(per_request=1))
    with pytest.raises(ValueError, match="max_cost"):
        run(source, tmp_path / "out.jsonl", client=priced, max_cost="-1")
    assert not (tmp_path / "out.jsonl").exists()


# -- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRerankServer]:
    with serve_in_thread() as running:
        yield running


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_batch_command_stops_at_max_cost_with_status_3_and_resumes(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", make_rows(10))
    output = tmp_path / "out.jsonl"
    common = [
        "batch",
        str(source),
        str(output),
        "--base-url",
        server.base_url,
        "--no-progress",
        "--concurrency",
        "1",
        "--price-per-request",
        "0.5",
    ]
    code, _, err = cli(capsys, *common, "--max-cost", "2.2")
    assert code == 3
    assert "stopped at --max-cost: 4 rows done, stopped at row 5" in err
    assert "cost 2.0 USD" in err and "a rerun resumes there" in err
    assert len(read_jsonl(output)) == 4
    code, _, err = cli(capsys, *common, "--max-cost", "100")
    assert code == 0 and "cost 3.0 USD" in err and "4 already there" in err
    assert len(read_jsonl(output)) == 10


def test_max_cost_without_a_price_is_a_usage_error(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", make_rows(2))
    argv = ["batch", str(source), str(tmp_path / "o.jsonl"), "--base-url", server.base_url]
    code, _, err = cli(capsys, *argv, "--max-cost", "1")
    assert code == 2 and "--max-cost needs a price" in err
    code, _, err = cli(capsys, *argv, "--price-per-request", "lots")
    assert code == 2 and "--price-per-request" in err


def test_the_rerank_command_shows_the_cost(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = tmp_path / "docs.txt"
    documents.write_text("apple pie\npear tart\nplum cake\n", encoding="utf-8")
    argv = ["rerank", "apple", str(documents), "--base-url", server.base_url, "--json"]
    code, out, _ = cli(capsys, *argv, "--price-per-million-tokens", "2", "--price-currency", "eur")
    data = json.loads(out)
    assert code == 0 and data["currency"] == "EUR"
    tokens = data["usage"]["total_tokens"]
    assert tokens > 0 and data["usage"]["requests"] == 1 and data["usage"]["documents"] == 3
    assert Decimal(data["cost"]) == Decimal(tokens) * 2 / Decimal(1_000_000)
    code, out, _ = cli(capsys, *argv)
    assert code == 0 and "cost" not in json.loads(out)
    code, _, err = cli(capsys, *argv[:-1], "--price-per-request", "0.25")
    assert code == 0 and "cost 0.25 USD" in err
