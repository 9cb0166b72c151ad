"""``rerank_integrations.eval`` and ``rerank-integrations eval``: ``max_cost`` over a whole
run (stopped before a query would pass it, how far each reranker got, a rerun finishing),
each reranker's instruction on the wire and in what decides its scores, the per-reranker
options of the command line and of its TOML file, and where the evaluation's errors live."""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ir_measures")
pytest.importorskip("scipy")
pytest.importorskip("uvicorn")

from support import ScriptedServer

import rerank_integrations
from rerank_integrations import Price, RerankClient
from rerank_integrations import _exceptions as exceptions
from rerank_integrations import eval as rerank_eval
from rerank_integrations._exceptions import CostLimitError
from rerank_integrations.cli import main
from rerank_integrations.eval import EvalInputError, EvalRunError, Reranker
from rerank_integrations.server import LocalRerankServer, serve_in_thread

FIXTURE = Path(__file__).parent / "fixtures" / "eval"
BEIR = FIXTURE / "beir"
RUN = FIXTURE / "first_stage.trec"
QUERIES = 13
#: One request per query (20 candidates, one request), a cent each.
CENT = Price(per_request="0.01")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRerankServer]:
    with serve_in_thread() as running:
        yield running


def inputs() -> tuple[rerank_eval.Dataset, rerank_eval.FirstStage]:
    return rerank_eval.load_beir(BEIR), rerank_eval.read_trec_run(RUN)


def evaluate(mode: str, *args: Any, **options: Any) -> rerank_eval.EvalReport:
    options.setdefault("plots", False)
    if mode == "async":
        return asyncio.run(rerank_eval.aevaluate(*inputs(), *args, **options))
    return rerank_eval.evaluate(*inputs(), *args, **options)


def priced(server: LocalRerankServer, price: Price = CENT) -> list[Reranker]:
    settings = {"price": price}
    return [
        Reranker("first", server.base_url, settings=settings),
        Reranker("second", server.base_url, settings=settings, instruction="prefer reviews"),
    ]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["eval", "--corpus", str(BEIR), "--run", str(RUN), "--no-progress", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- max_cost ---------------------------------------------------------------------------------


def test_max_cost_stops_the_run_before_a_query_would_pass_it_and_a_rerun_finishes(
    server: LocalRerankServer, tmp_path: Path, mode: str
) -> None:
    out = tmp_path / "report"
    before = server.stats.requests

    with pytest.raises(EvalRunError, match="stopped at max_cost") as stopped:
        evaluate(mode, priced(server), out, max_cost="0.20", concurrency=1)

    # One budget for the whole run: 13 cents on the first, the 7 left on the second.
    assert stopped.value.cost_limited
    assert isinstance(stopped.value.__cause__, CostLimitError)
    assert stopped.value.scored == {"first": (QUERIES, QUERIES), "second": (7, QUERIES)}
    assert "first 13 of 13, second 7 of 13" in str(stopped.value)
    assert server.stats.requests - before == QUERIES + 7
    assert not (out / "metrics.json").exists()  # no report passed off as complete

    middle = server.stats.requests
    report = evaluate(mode, priced(server), out, max_cost="0.20", concurrency=1)

    assert server.stats.requests - middle == report.requests_sent == QUERIES - 7
    assert set(json.loads((out / "metrics.json").read_text())) == {
        "first-stage",
        "first",
        "second",
    }
    assert report.usage["first"]["cost"] == pytest.approx(0.13)
    assert report.usage["second"]["cost"] == pytest.approx(0.13)  # both runs' calls


def test_max_cost_needs_a_price_for_every_reranker_before_any_request(
    server: LocalRerankServer, tmp_path: Path, mode: str
) -> None:
    before = server.stats.requests
    contenders = [*priced(server)[:1], Reranker("free", server.base_url)]
    with pytest.raises(ValueError, match="max_cost needs a price: reranker 'free' has none"):
        evaluate(mode, contenders, tmp_path / "a", max_cost=1)
    euros = [*priced(server)[:1], *priced(server, Price(per_request="0.01", currency="EUR"))[1:]]
    with pytest.raises(ValueError, match="first in USD, second in EUR"):
        evaluate(mode, euros, tmp_path / "b", max_cost=1)
    with pytest.raises(ValueError, match="max_cost"):
        evaluate(mode, priced(server), tmp_path / "c", max_cost=-1)
    assert server.stats.requests == before
    assert not (tmp_path / "a").exists()


def test_the_command_stops_at_max_cost_with_status_3_and_a_rerun_finishes(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "rerankers.toml"  # b: the same endpoint, another instruction
    config.write_text(
        f'[[reranker]]\nname = "b"\nbase_url = "{server.base_url}"\ninstruction = "reviews"\n'
    )
    argv = [
        "--reranker",
        f"a={server.base_url}",
        "--config",
        str(config),
        "--price-per-request",  # every reranker's, b's too
        "0.01",
        "--max-cost",
        "0.2",
        "--concurrency",
        "1",
        "--no-plots",
        "--out",
        str(tmp_path / "r"),
    ]
    before = server.stats.requests
    code, printed, err = cli(capsys, *argv)
    assert code == 3, err
    assert "stopped at --max-cost" in err and "a 13 of 13, b 7 of 13" in err
    assert printed == "" and not (tmp_path / "r" / "metrics.json").exists()
    assert server.stats.requests - before == QUERIES + 7

    code, printed, err = cli(capsys, *argv)
    assert code == 0, err
    assert f"{QUERIES - 7} requests sent" in err and "b" in printed


def test_the_command_refuses_max_cost_without_a_price_before_any_request(
    server: LocalRerankServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = server.stats.requests
    code, _, err = cli(
        capsys, "--reranker", f"a={server.base_url}", "--max-cost", "1", "--out", str(tmp_path)
    )
    assert code == 2
    assert "--max-cost needs a price, and a has none" in err
    assert server.stats.requests == before


# -- instructions -----------------------------------------------------------------------------


def sent_queries(server: ScriptedServer) -> list[str]:
    return [r.asked.query for r in server.received if r.asked is not None]


def test_each_reranker_sends_its_instruction_and_scores_apart(tmp_path: Path, mode: str) -> None:
    query = rerank_eval.load_beir(BEIR).queries["q01"]
    with ScriptedServer() as server:
        contenders = [
            Reranker("plain", server.base_url),
            Reranker("guides", server.base_url, instruction="prefer guides"),
            Reranker("reviews", server.base_url, instruction="prefer reviews"),
        ]
        evaluate(mode, contenders, tmp_path / "r")
        queries = sent_queries(server)
        # Three contenders on one endpoint: three times the requests, none from the
        # others' scores, each with its own instruction as the generic format carries it.
        assert len(queries) == 3 * QUERIES
        assert {q for q in queries if q.endswith(query)} == {
            query,
            f"prefer guides\n{query}",
            f"prefer reviews\n{query}",
        }

        server.reset()
        evaluate(mode, contenders, tmp_path / "r")
        assert sent_queries(server) == []  # the same instructions: every score is kept

        server.reset()
        other = [Reranker("guides", server.base_url, instruction="prefer manuals")]
        evaluate(mode, other, tmp_path / "r")
        queries = sent_queries(server)
        assert len(queries) == QUERIES  # another instruction: asked again
        assert all(q.startswith("prefer manuals\n") for q in queries)


def test_a_client_of_your_own_gets_the_reranker_instruction(tmp_path: Path, mode: str) -> None:
    with ScriptedServer() as server, RerankClient(server.base_url) as client:
        evaluate(mode, [Reranker("mine", client=client, instruction="x")], tmp_path / "r")
        queries = sent_queries(server)
        assert len(queries) == QUERIES and all(q.startswith("x\n") for q in queries)
        server.reset()
        evaluate(mode, [Reranker("mine", client=client, instruction="y")], tmp_path / "r")
        assert len(sent_queries(server)) == QUERIES


def test_an_instruction_is_given_once(tmp_path: Path) -> None:
    twice = Reranker("a", "http://127.0.0.1:9", settings={"instruction": "x"}, instruction="y")
    with pytest.raises(ValueError, match="give its instruction once"):
        rerank_eval.evaluate(*inputs(), [twice], tmp_path)


def test_the_command_sends_instructions_from_options_and_the_toml_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer() as server:
        config = tmp_path / "rerankers.toml"
        config.write_text(
            f'[[reranker]]\nname = "toml"\nbase_url = "{server.base_url}"\n'
            'instruction = "from the file"\nprice_per_request = 0.5\ntimeout = 5\n'
        )
        code, _, err = cli(
            capsys,
            "--reranker",
            f"flag={server.base_url}",
            "--instruction",
            "from the flag",
            "--config",
            str(config),
            "--no-plots",
            "--out",
            str(tmp_path / "r"),
        )
        assert code == 0, err
        queries = sent_queries(server)
    prefixes = sorted({q.split("\n")[0] for q in queries})
    assert prefixes == ["from the file", "from the flag"] and len(queries) == 2 * QUERIES
    usage = json.loads((tmp_path / "r" / "usage.json").read_text())
    assert usage["toml"]["cost"] == pytest.approx(0.5 * QUERIES)  # its own price
    assert usage["flag"]["cost"] is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("timeout = -1", "reranker 'x': timeout: must be a positive number of seconds"),
        ("price_per_request = 'free'", "price_per_request: 'free' is not a decimal number"),
        ("dialect = 'nope'", "dialect 'nope' is not one of"),
        ("instruction = 3", "instruction must be a string"),
        ("max_cost = 1", "unknown keys ['max_cost']"),
    ],
)
def test_the_toml_file_is_checked_as_the_options_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, message: str
) -> None:
    config = tmp_path / "rerankers.toml"
    config.write_text(f'[[reranker]]\nname = "x"\nbase_url = "http://127.0.0.1:9"\n{table}\n')
    code, _, err = cli(capsys, "--config", str(config), "--out", str(tmp_path / "r"))
    assert code == 2
    assert message in err, err


# -- the errors -------------------------------------------------------------------------------


def test_the_errors_live_in_the_exceptions_module_and_are_the_same_objects() -> None:
    assert EvalInputError is exceptions.EvalInputError is rerank_integrations.EvalInputError
    assert EvalRunError is exceptions.EvalRunError is rerank_integrations.EvalRunError
    assert {"EvalInputError", "EvalRunError"} <= set(exceptions.__all__)
    assert issubclass(EvalInputError, ValueError) and issubclass(EvalRunError, RuntimeError)
    error = EvalRunError("stopped", {"a": (1, 2)}, CostLimitError(Decimal("0.2"), Decimal(0)))
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == "stopped" and copy.scored == {"a": (1, 2)} and copy.cost_limited
