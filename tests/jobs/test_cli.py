"""The ``rerank-integrations`` command, run through ``main(argv)`` against real local servers."""

from __future__ import annotations

import gc
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import ScriptedServer, json_reply

from rerank_integrations import __version__
from rerank_integrations.cli import CommandError, main, read_documents
from rerank_integrations.server import LocalRerankServer, serve_in_thread

SECRET = "sk-cli-SECRET-4242"
WRONG_KEY = "sk-wrong-KEY-0007"
QUERY = "how many legs does a spider have"
DOCUMENTS = [
    "The Eiffel Tower in Paris was finished in 1889.",
    "A spider has eight legs; insects such as ants have six.",
    "Bees live in hives and make honey.",
    "Octopuses have eight arms and three hearts.",
]
MATCH = 1
ENV_NAMES = (
    "RERANK_BASE_URL",
    "RERANK_API_KEY",
    "RERANK_MODEL",
    "RERANK_DIALECT",
    "RERANK_SERVER_API_KEY",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``RERANK_*`` settings leak in from the machine running the tests."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def locked_server() -> Iterator[LocalRerankServer]:
    """A BM25 rerank server that wants ``SECRET``."""
    with serve_in_thread(api_key=SECRET) as running:
        yield running


@pytest.fixture
def fixed_answer(
    start_server: Callable[..., ScriptedServer],
) -> Callable[..., ScriptedServer]:
    """Start servers that answer every request with one fixed JSON body (and status)."""

    def start(body: dict[str, Any], status: int = 200) -> ScriptedServer:
        return start_server(always=json_reply(status, body))

    return start


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` and what it printed."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *fragments: str) -> None:
    """``err`` is exactly one ``rerank-integrations: error:`` line holding the fragments."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rerank-integrations: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def docs_file(tmp_path: Path) -> Path:
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(DOCUMENTS[:2]) + "\n\n" + "\n".join(DOCUMENTS[2:]) + "\n")
    return path


# -- rerank -----------------------------------------------------------------------------------


def test_rerank_prints_a_ranked_table(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, docs_file: Path
) -> None:
    code, out, err = run(capsys, "rerank", QUERY, str(docs_file), "--base-url", server.base_url)

    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["rank", "score", "index", "text"]
    assert len(rows) == len(DOCUMENTS)  # the blank line is skipped
    first = rows[0].split(maxsplit=3)
    assert first[0] == "1"
    assert int(first[2]) == MATCH
    assert first[3] == DOCUMENTS[MATCH]
    scores = [float(row.split()[1]) for row in rows]
    assert scores == sorted(scores, reverse=True)


def test_rerank_json(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, docs_file: Path
) -> None:
    code, out, _ = run(
        capsys, "rerank", QUERY, str(docs_file), "--base-url", server.base_url, "--json"
    )

    assert code == 0
    data = json.loads(out)
    assert set(data) == {"model", "usage", "results"}
    assert data["model"] == "bm25"
    assert data["usage"]["total_tokens"] > 0
    results = data["results"]
    assert [set(item) for item in results] == [{"index", "relevance_score", "document"}] * 4
    assert results[0]["index"] == MATCH
    assert all(item["document"] == DOCUMENTS[item["index"]] for item in results)
    assert sorted(item["index"] for item in results) == [0, 1, 2, 3]


def test_rerank_top_n(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, docs_file: Path
) -> None:
    code, out, _ = run(
        capsys, "rerank", QUERY, str(docs_file), "--base-url", server.base_url, "--top-n", "2"
    )

    assert code == 0
    rows = out.splitlines()[1:]
    assert len(rows) == 2
    assert int(rows[0].split()[2]) == MATCH


def test_rerank_jsonl_with_a_named_field(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, tmp_path: Path
) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "".join(json.dumps({"id": i, "body": d}) + "\n" for i, d in enumerate(DOCUMENTS))
    )

    code, out, _ = run(
        capsys,
        "rerank",
        QUERY,
        str(path),
        "--field",
        "body",
        "--base-url",
        server.base_url,
        "--json",
    )

    assert code == 0
    results = json.loads(out)["results"]
    assert results[0] == {
        "index": MATCH,
        "relevance_score": results[0]["relevance_score"],
        "document": DOCUMENTS[MATCH],
    }


def test_rerank_jsonl_text_field_is_found_without_field_option(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, tmp_path: Path
) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d, "n": 1}) + "\n" for d in DOCUMENTS))

    code, out, _ = run(capsys, "rerank", QUERY, str(path), "--base-url", server.base_url, "--json")

    assert code == 0
    assert json.loads(out)["results"][0]["document"] == DOCUMENTS[MATCH]


@pytest.mark.parametrize("file_args", [[], ["-"]], ids=["no-file", "dash"])
def test_rerank_reads_stdin(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: LocalRerankServer,
    file_args: list[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(DOCUMENTS) + "\n"))

    code, out, _ = run(capsys, "rerank", QUERY, *file_args, "--base-url", server.base_url, "--json")

    assert code == 0
    assert json.loads(out)["results"][0]["index"] == MATCH


def test_rerank_base_url_from_the_environment(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: LocalRerankServer,
    docs_file: Path,
) -> None:
    monkeypatch.setenv("RERANK_BASE_URL", server.base_url)

    code, out, _ = run(capsys, "rerank", QUERY, str(docs_file), "--top-n", "1")

    assert code == 0
    assert len(out.splitlines()) == 2


def test_rerank_cuts_text_to_the_terminal_width(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: LocalRerankServer,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    path = tmp_path / "long.txt"
    path.write_text("spider " + "legs and more words " * 20 + "\nshort one\n")

    code, out, _ = run(capsys, "rerank", "spider legs", str(path), "--base-url", server.base_url)

    assert code == 0
    assert all(len(line) <= 60 for line in out.splitlines())
    assert out.splitlines()[1].endswith("…")


def test_rerank_progress_on_request(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, docs_file: Path
) -> None:
    code, out, err = run(
        capsys,
        "rerank",
        QUERY,
        str(docs_file),
        "--base-url",
        server.base_url,
        "--progress",
        "--max-documents-per-request",
        "2",
    )

    assert code == 0
    assert "reranking 4 documents in 2 requests" in err
    assert "2/2 requests answered" in err
    assert int(out.splitlines()[1].split()[2]) == MATCH


def test_no_progress_for_small_inputs_by_default(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, docs_file: Path
) -> None:
    code, _, err = run(capsys, "rerank", QUERY, str(docs_file), "--base-url", server.base_url)

    assert (code, err) == (0, "")


def test_missing_base_url_is_one_line(capsys: pytest.CaptureFixture[str], docs_file: Path) -> None:
    code, out, err = run(capsys, "rerank", QUERY, str(docs_file))

    assert code == 2
    assert out == ""
    assert_one_error_line(err, "no base URL", "--base-url", "RERANK_BASE_URL")


def test_missing_file_is_one_line(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.txt"

    code, out, err = run(capsys, "rerank", QUERY, str(missing), "--base-url", server.base_url)

    assert code == 2
    assert out == ""
    assert_one_error_line(err, "no such file", str(missing))


def test_jsonl_without_the_field_is_one_line(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, tmp_path: Path
) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"body": "a"}\n')

    code, _, err = run(capsys, "rerank", QUERY, str(path), "--base-url", server.base_url)

    assert code == 1
    assert_one_error_line(err, "line 1", "'text'", "--field")


def test_wrong_key_exits_1_with_advice_and_no_key(
    capsys: pytest.CaptureFixture[str], locked_server: LocalRerankServer, docs_file: Path
) -> None:
    code, out, err = run(
        capsys,
        "rerank",
        QUERY,
        str(docs_file),
        "--base-url",
        locked_server.base_url,
        "--api-key",
        WRONG_KEY,
    )

    assert code == 1
    assert out == ""
    assert_one_error_line(err, "401", "check RERANK_API_KEY / --api-key")
    assert WRONG_KEY not in out + err
    assert SECRET not in out + err


def test_wrong_key_from_the_environment_is_not_shown(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    locked_server: LocalRerankServer,
    docs_file: Path,
) -> None:
    monkeypatch.setenv("RERANK_API_KEY", WRONG_KEY)
    monkeypatch.setenv("RERANK_BASE_URL", locked_server.base_url)

    code, out, err = run(capsys, "rerank", QUERY, str(docs_file))

    assert code == 1
    assert_one_error_line(err, "RERANK_API_KEY")
    assert WRONG_KEY not in out + err


def test_right_key_works(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    locked_server: LocalRerankServer,
    docs_file: Path,
) -> None:
    monkeypatch.setenv("RERANK_API_KEY", SECRET)

    code, out, _ = run(
        capsys, "rerank", QUERY, str(docs_file), "--base-url", locked_server.base_url, "--json"
    )

    assert code == 0
    assert SECRET not in out


def test_server_error_exits_1_with_advice(
    capsys: pytest.CaptureFixture[str], docs_file: Path
) -> None:
    with serve_in_thread(error_rate=1.0, error_status=503) as failing:
        code, _, err = run(
            capsys,
            "rerank",
            QUERY,
            str(docs_file),
            "--base-url",
            failing.base_url,
            "--max-retries",
            "0",
        )

    assert code == 1
    assert_one_error_line(err, "503", "check its logs")


def test_connection_refused_exits_1_with_advice(
    capsys: pytest.CaptureFixture[str], docs_file: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"

    code, _, err = run(
        capsys, "rerank", QUERY, str(docs_file), "--base-url", url, "--max-retries", "0"
    )

    assert code == 1
    assert_one_error_line(err, "is the server running? is the base URL right?")


def test_credentials_in_the_base_url_are_not_shown(
    capsys: pytest.CaptureFixture[str], docs_file: Path
) -> None:
    url = f"http://user:{SECRET}@127.0.0.1:{closed_port()}"

    code, out, err = run(capsys, "check", "--base-url", url)

    assert code == 1
    assert SECRET not in out + err


# -- check ------------------------------------------------------------------------------------


def check_lines(out: str) -> dict[str, str]:
    """``{step name: status}`` from the output of ``check``."""
    steps: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("ok", "FAIL", "skip"):
            for name in ("reachable", "key accepted", "dialect answering", "sample ranking"):
                if line[8:].startswith(name):
                    steps[name] = parts[0]
            if line[8:].startswith("round trip"):
                steps["round trip"] = parts[0]
    return steps


def test_check_passes_against_the_local_server(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer
) -> None:
    code, out, err = run(capsys, "check", "--base-url", server.base_url)

    assert (code, err) == (0, "")
    assert check_lines(out) == dict.fromkeys(
        ["reachable", "key accepted", "dialect answering", "sample ranking", "round trip"], "ok"
    )
    assert server.rerank_url in out
    assert " ms " in out
    assert out.rstrip().endswith("All 5 checks passed.")


def test_check_with_the_right_key(
    capsys: pytest.CaptureFixture[str], locked_server: LocalRerankServer
) -> None:
    code, out, _ = run(capsys, "check", "--base-url", locked_server.base_url, "--api-key", SECRET)

    assert code == 0
    assert "the key was accepted" in out
    assert SECRET not in out


def test_check_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--base-url", f"http://127.0.0.1:{closed_port()}")

    assert code == 1
    steps = check_lines(out)
    assert steps["reachable"] == "FAIL"
    assert set(steps.values()) == {"FAIL", "skip"}
    assert "advice: is the server running? is the base URL right?" in out
    assert "1 check failed." in out


def test_check_wrong_key(
    capsys: pytest.CaptureFixture[str], locked_server: LocalRerankServer
) -> None:
    code, out, err = run(
        capsys, "check", "--base-url", locked_server.base_url, "--api-key", WRONG_KEY
    )

    assert code == 1
    steps = check_lines(out)
    assert steps["reachable"] == "ok"
    assert steps["key accepted"] == "FAIL"
    assert "401" in out
    assert "advice: check RERANK_API_KEY / --api-key" in out
    assert WRONG_KEY not in out + err


def test_check_missing_key(
    capsys: pytest.CaptureFixture[str], locked_server: LocalRerankServer
) -> None:
    code, out, _ = run(capsys, "check", "--base-url", locked_server.base_url)

    assert code == 1
    assert check_lines(out)["key accepted"] == "FAIL"
    assert "the server wants an API key: set RERANK_API_KEY or pass --api-key" in out


def test_check_wrong_path(capsys: pytest.CaptureFixture[str], server: LocalRerankServer) -> None:
    code, out, _ = run(capsys, "check", "--base-url", f"{server.base_url}/api/v9/nothing/rerank")

    assert code == 1
    steps = check_lines(out)
    assert steps["reachable"] == "ok"
    assert steps["dialect answering"] == "FAIL"
    assert "404" in out
    assert "advice: check the base URL path or --dialect" in out


def test_check_a_server_answering_in_another_format(
    capsys: pytest.CaptureFixture[str], fixed_answer: Callable[..., ScriptedServer]
) -> None:
    other = fixed_answer({"foo": 1})

    code, out, _ = run(capsys, "check", "--base-url", other.base_url)

    assert code == 1
    steps = check_lines(out)
    assert steps["reachable"] == steps["key accepted"] == "ok"
    assert steps["dialect answering"] == "FAIL"
    assert steps["sample ranking"] == "skip"
    assert "advice: the server answered in another format: try --dialect" in out
    assert '{"foo": 1}' in out


def test_check_a_ranking_that_makes_no_sense(
    capsys: pytest.CaptureFixture[str], fixed_answer: Callable[..., ScriptedServer]
) -> None:
    backwards = fixed_answer(
        {"results": [{"index": 0, "relevance_score": 0.9}, {"index": 1, "relevance_score": 0.1}]}
    )

    code, out, _ = run(capsys, "check", "--base-url", backwards.base_url)

    assert code == 1
    steps = check_lines(out)
    assert steps["dialect answering"] == "ok"
    assert steps["sample ranking"] == "FAIL"
    assert "is it a rerank model?" in out


def test_check_a_server_that_does_not_answer(capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(stall_rate=1.0, stall_seconds=5) as stalling:
        code, out, _ = run(capsys, "check", "--base-url", stalling.base_url, "--timeout", "0.3")

    assert code == 1
    steps = check_lines(out)
    assert steps["reachable"] == "ok"
    assert steps["dialect answering"] == "FAIL"
    assert "no answer in time" in out
    assert "advice: the server took too long to answer: raise --timeout" in out


def test_check_dialect_that_needs_a_model(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer
) -> None:
    code, out, err = run(capsys, "check", "--base-url", server.base_url, "--dialect", "voyage")

    assert (code, out) == (2, "")
    assert_one_error_line(err, "--model")


# -- usage, help, version ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["rerank", "--help"], ["check", "--help"], ["demo", "--help"]],
    ids=["main", "rerank", "check", "demo"],
)
def test_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)

    assert (code, err) == (0, "")
    assert out.startswith("usage: rerank-integrations")


def test_serve_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "serve", "--help")

    assert code == 0
    assert out.startswith("usage: rerank-integrations serve")
    assert "--port" in out
    assert "--latency-ms" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")

    assert (code, out) == (0, f"rerank-integrations {__version__}\n")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "choose a command"),
        (["bogus"], "invalid choice"),
        (["rerank"], "required: QUERY"),
        (["rerank", "q", "--top-n", "0"], "--top-n"),
        (["rerank", "q", "--timeout", "soon"], "--timeout"),
        (["demo", "--query-id", "q01", "--query", "x"], "not allowed with"),
        (["demo", "--query-id", "q999"], "unknown query id"),
        (["demo", "--top-k", "3", "--top-n", "5"], "cannot exceed"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, out, err = run(capsys, *argv)

    assert code == 2
    assert out == ""
    assert_one_error_line(err, fragment)


def test_module_entry_point() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }

    completed = subprocess.run(
        [sys.executable, "-m", "rerank_integrations", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: rerank-integrations")
    for command in ("rerank", "check", "demo", "serve"):
        assert command in completed.stdout


# -- demo -------------------------------------------------------------------------------------


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--json", "--query-id", "q03")

    assert code == 0
    data = json.loads(out)
    assert data["embedded_server"] is True
    assert data["example"]["query_id"] == "q03"
    assert [p["name"] for p in data["pipelines"]] == ["LangChain", "LlamaIndex"]
    for pipeline in data["pipelines"]:
        assert pipeline["reranked"]["mrr_at_10"] > pipeline["first_stage"]["mrr_at_10"]
    assert data["figures_agree"] is True


# -- reading documents ------------------------------------------------------------------------


def test_read_documents_lines_and_jsonl() -> None:
    assert read_documents(["a\n", "\n", "  \n", "b\r\n", "{not json\n"]) == ["a", "b", "{not json"]
    assert read_documents(['{"text": "a"}\n', "\n", '{"text": "b"}\n']) == ["a", "b"]
    assert read_documents(['{"t": "a"}\n'], "t") == ["a"]
    assert read_documents(["\ufeffa\n"]) == ["a"]


def test_read_documents_errors() -> None:
    with pytest.raises(CommandError, match=r"line 2: not valid JSON"):
        read_documents(['{"text": "a"}\n', "{oops\n"])
    with pytest.raises(CommandError, match=r"line 1: no string field 'body'"):
        read_documents(['{"text": "a"}\n'], "body")
    with pytest.raises(CommandError, match=r"line 1: expected a JSON object"):
        read_documents(["[1, 2]\n"], "text")


# -- what a new user tripped on ---------------------------------------------------------------


def test_check_cohere_without_a_model_names_the_option(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer
) -> None:
    code, out, err = run(capsys, "check", "--base-url", server.base_url, "--dialect", "cohere")

    assert (code, out) == (2, "")
    assert_one_error_line(err, "needs a model", "--model NAME", "RERANK_MODEL")
    assert "model=" not in err


def test_rerank_without_a_model_names_the_option(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, docs_file: Path
) -> None:
    code, out, err = run(
        capsys, "rerank", QUERY, str(docs_file), "--base-url", server.base_url, "--dialect", "nim"
    )

    assert (code, out) == (2, "")
    assert_one_error_line(err, "needs a model", "--model NAME")
    assert "model=" not in err


def test_a_bad_base_url_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "--base-url", "ftp://example.com")

    assert (code, out) == (2, "")
    assert_one_error_line(err, "not an http(s) URL", "--base-url", "RERANK_BASE_URL")


class UnreadableStdin(io.StringIO):
    """A stdin that fails the test if anything reads it."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("stdin was read")

    def read(self, size: int | None = -1) -> str:
        raise AssertionError("stdin was read")

    def readline(self, size: int | None = -1) -> str:
        raise AssertionError("stdin was read")

    def isatty(self) -> bool:
        return False


def test_a_missing_base_url_is_reported_before_stdin_is_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", UnreadableStdin())

    code, _, err = run(capsys, "rerank", QUERY)

    assert code == 2
    assert_one_error_line(err, "no base URL", "--base-url URL", "RERANK_BASE_URL")


@pytest.mark.parametrize("command", ["rerank", "check"])
def test_help_lists_each_dialect_from_its_description(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    from rerank_integrations.dialects import DIALECTS

    code, out, _ = run(capsys, command, "--help")

    assert code == 0
    listed = {line.split()[0]: line for line in out.split("dialects:\n")[1].splitlines()}
    for name, dialect in DIALECTS.items():
        assert dialect.description.split()[0].rstrip(":;,.") in listed[name]
        assert len(listed[name]) <= 88


def test_serve_without_the_server_extra_gives_the_install_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if uvicorn were not installed: the serve front end is imported afresh and fails.
    import rerank_integrations.server

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    monkeypatch.delitem(sys.modules, "rerank_integrations.server._cli", raising=False)
    monkeypatch.delattr(rerank_integrations.server, "_cli", raising=False)

    code, out, err = run(capsys, "serve", "--port", "0")

    assert (code, out) == (1, "")
    assert_one_error_line(
        err, "uvicorn is not installed", 'pip install "rerank-integrations[server]"'
    )
    assert "unrecognized arguments" not in err


def test_unknown_options_are_still_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--base-url", "http://127.0.0.1:1", "--bogus")

    assert code == 2
    assert_one_error_line(err, "unrecognized arguments: --bogus")


def test_a_connection_error_names_the_url_without_credentials(
    capsys: pytest.CaptureFixture[str], docs_file: Path
) -> None:
    port = closed_port()
    url = f"http://someone:{SECRET}@127.0.0.1:{port}/v1?token={WRONG_KEY}"

    code, _, err = run(
        capsys, "rerank", QUERY, str(docs_file), "--base-url", url, "--max-retries", "0"
    )

    assert code == 1
    assert_one_error_line(err, f"http://127.0.0.1:{port}/v1/rerank", "is the server running?")
    assert "someone" not in err
    assert SECRET not in err
    assert WRONG_KEY not in err


def test_a_connection_error_in_the_demo_names_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()

    code, _, err = run(capsys, "demo", "--base-url", f"http://127.0.0.1:{port}")

    assert code == 1
    assert_one_error_line(err, f"http://127.0.0.1:{port}/v1/rerank", "is the server running?")


@pytest.mark.parametrize(
    ("lines", "options", "fragment"),
    [
        (['{"body": "a"}'], [], "line 1: no string field 'text'"),
        (['{"text": "a"}', '{"text": "b"}', '{"body": "c"}'], [], "line 3: no string field"),
        (['{"text": "a"}', '{"body": "b"}'], ["--field", "text"], "line 2: no string field"),
        (['{"text": "a"}', "{oops"], [], "line 2: not valid JSON"),
        (["[1]"], ["--field", "text"], "line 1: expected a JSON object"),
    ],
    ids=["first-line", "later-line", "with-field", "bad-json", "not-an-object"],
)
def test_bad_input_data_always_exits_1(
    capsys: pytest.CaptureFixture[str],
    server: LocalRerankServer,
    tmp_path: Path,
    lines: list[str],
    options: list[str],
    fragment: str,
) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n")

    code, out, err = run(
        capsys, "rerank", QUERY, str(path), *options, "--base-url", server.base_url
    )

    assert (code, out) == (1, "")
    assert_one_error_line(err, str(path), fragment)


def test_undecodable_file_names_the_file_and_the_line(
    capsys: pytest.CaptureFixture[str], server: LocalRerankServer, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("one\ntwo\ncafé\n".encode("latin-1"))

    code, out, err = run(capsys, "rerank", QUERY, str(path), "--base-url", server.base_url)

    assert (code, out) == (1, "")
    assert_one_error_line(err, f"{path}, line 3: not UTF-8 text (byte 0xe9 at character 4)")


def test_undecodable_stdin_names_stdin_and_the_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, server: LocalRerankServer
) -> None:
    # Like a real stdin: text over a byte buffer, in a locale that is not UTF-8.
    stdin = io.TextIOWrapper(io.BytesIO(b"one\n\xff\xfe two\n"), encoding="ascii")
    monkeypatch.setattr(sys, "stdin", stdin)

    code, out, err = run(capsys, "rerank", QUERY, "--base-url", server.base_url)

    assert (code, out) == (1, "")
    assert_one_error_line(err, "stdin, line 2: not UTF-8 text (byte 0xff at character 1)")
    assert not stdin.closed


def test_stdin_is_read_as_utf8(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, server: LocalRerankServer
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO("café crème\r\nspider legs\n".encode()), encoding="ascii")
    monkeypatch.setattr(sys, "stdin", stdin)

    code, out, _ = run(capsys, "rerank", "spider", "--base-url", server.base_url, "--json")

    assert code == 0
    assert sorted(item["document"] for item in json.loads(out)["results"]) == [
        "café crème",
        "spider legs",
    ]


def test_stdin_from_a_real_file_keeps_its_lines_and_stays_open(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: LocalRerankServer,
    tmp_path: Path,
) -> None:
    # A byte-order mark, CRLF, a lone CR (read as a line end, as files are) and no final end.
    path = tmp_path / "stdin"
    path.write_bytes("\ufeffcafé crème\r\nspider legs\rweb silk".encode())
    with path.open(encoding="ascii") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        code, out, _ = run(capsys, "rerank", "spider", "--base-url", server.base_url, "--json")
        assert not stdin.closed

    assert code == 0
    assert sorted(item["document"] for item in json.loads(out)["results"]) == [
        "café crème",
        "spider legs",
        "web silk",
    ]


class PseudoStdin(io.TextIOBase):
    """Like pytest's stand-in for stdin: its ``buffer`` is itself, reading raises and so does
    ``flush`` (which a ``TextIOWrapper`` calls to detach and to close)."""

    @property
    def buffer(self) -> PseudoStdin:
        return self

    def read(self, size: int | None = -1) -> str:
        raise OSError("this stdin cannot be read")

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        raise OSError("this stdin cannot be read")

    def __next__(self) -> str:
        return self.readline()

    def flush(self) -> None:
        raise io.UnsupportedOperation("this stdin has no flush()")

    def isatty(self) -> bool:
        return False


def test_a_stdin_that_cannot_be_read_is_reported_and_leaves_nothing_behind(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, server: LocalRerankServer
) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(sys, "stdin", PseudoStdin())

    code, out, err = run(capsys, "rerank", QUERY, "--base-url", server.base_url)
    gc.collect()

    # The read's own failure, not a wrapper's failing to detach (which, collected later,
    # Python 3.13 reports as an unraisable exception).
    assert (code, out) == (1, "")
    assert_one_error_line(err, "this stdin cannot be read")
    assert unraisable == []


def test_read_documents_names_a_line_that_is_not_utf8() -> None:
    with pytest.raises(CommandError, match=r"^docs, line 2: not UTF-8 text \(byte 0xff"):
        read_documents(["fine\n", "bad \udcff\n"], name="docs")
    with pytest.raises(CommandError, match=r"line 1: not UTF-8 text \(a lone surrogate"):
        read_documents(['{"text": "\ud800"}\n'])
    with pytest.raises(CommandError, match=r"line 1: .*lone surrogate at character 2 of field 't'"):
        read_documents(['{"t": "a\\ud800"}\n'], "t")


@pytest.mark.parametrize("progress", [[], ["--progress"]], ids=["plain", "progress"])
def test_the_plain_http_key_warning_is_one_clean_line(
    capsys: pytest.CaptureFixture[str], docs_file: Path, progress: list[str]
) -> None:
    # No model for nim: the request cannot be built, so nothing goes to example.com.
    code, _, err = run(
        capsys,
        "rerank",
        QUERY,
        str(docs_file),
        "--base-url",
        "http://example.com",
        "--api-key",
        SECRET,
        "--dialect",
        "nim",
        *progress,
    )

    assert code == 2
    warnings = [line for line in err.splitlines() if "warning" in line.lower()]
    assert warnings == [
        "rerank-integrations: warning: the API key will be sent unencrypted over http:// "
        "to example.com; use an https:// base URL"
    ]
    assert err.splitlines()[-1].startswith("rerank-integrations: error: ")
    assert "UserWarning" not in err
    assert SECRET not in err


def test_check_a_failed_request_is_no_round_trip(
    capsys: pytest.CaptureFixture[str],
    server: LocalRerankServer,
    locked_server: LocalRerankServer,
    fixed_answer: Callable[..., ScriptedServer],
) -> None:
    failing = [
        f"{server.base_url}/api/v9/nothing/rerank",  # 404
        locked_server.base_url,  # 401
        fixed_answer({"foo": 1}).base_url,  # an answer in another format
    ]
    for url in failing:
        code, out, _ = run(capsys, "check", "--base-url", url)

        assert code == 1
        assert check_lines(out)["round trip"] == "skip", out
        assert "the sample request failed after" in out


# -- instructions -------------------------------------------------------------------------


def test_rerank_sends_the_instruction(
    capsys: pytest.CaptureFixture[str], docs_file: Path, scripted_server: ScriptedServer
) -> None:
    argv = ["rerank", QUERY, str(docs_file), "--base-url", scripted_server.base_url]
    code, _, err = run(capsys, *argv, "--instruction", "prefer field guides")
    assert (code, err) == (0, "")
    asked = [r.asked for r in scripted_server.received if r.asked is not None]
    assert [a.query for a in asked] == [f"prefer field guides\n{QUERY}"]


def test_rerank_takes_the_instruction_from_the_environment(
    capsys: pytest.CaptureFixture[str],
    docs_file: Path,
    scripted_server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RERANK_INSTRUCTION", "from the environment")
    code, _, _ = run(
        capsys, "rerank", QUERY, str(docs_file), "--base-url", scripted_server.base_url
    )
    assert code == 0
    assert scripted_server.received[0].asked is not None
    assert scripted_server.received[0].asked.query == f"from the environment\n{QUERY}"


def test_an_instruction_a_dialect_cannot_carry_is_one_line(
    capsys: pytest.CaptureFixture[str], docs_file: Path, scripted_server: ScriptedServer
) -> None:
    argv = ["rerank", QUERY, str(docs_file), "--base-url", scripted_server.base_url]
    code, out, err = run(capsys, *argv, "--dialect", "nim", "--instruction", "x")
    assert code == 2 and out == ""
    assert_one_error_line(err, "nim dialect cannot carry an instruction", "--instruction")
    assert scripted_server.received == []
