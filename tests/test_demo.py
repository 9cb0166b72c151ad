"""The demo: both pipelines against the embedded server and against a given endpoint."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rerank_integrations._text import cut_to_width, display_url
from rerank_integrations.demo import (
    DemoReport,
    hashing_embedding,
    langchain_embeddings,
    llama_index_embedding,
    load_passages,
    run_demo,
)
from rerank_integrations.demo._pipeline import _tie_ordered
from rerank_integrations.server import serve_in_thread

ENV_NAMES = ("RERANK_BASE_URL", "RERANK_API_KEY", "RERANK_MODEL", "RERANK_DIALECT")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``RERANK_*`` settings leak in from the machine running the tests."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def embedded() -> tuple[DemoReport, str]:
    """One run with the embedded server: the report and the text it printed."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ENV_NAMES:
            patch.delenv(name, raising=False)
        out = io.StringIO()
        report = run_demo(out=out)
    return report, out.getvalue()


def test_both_pipelines_are_measured(embedded: tuple[DemoReport, str]) -> None:
    report, _ = embedded

    assert report.embedded
    assert [figures.name for figures in report.pipelines] == ["LangChain", "LlamaIndex"]
    assert [figures.mode for figures in report.pipelines] == ["sync", "async"]
    assert report.passages == 172
    assert report.queries == 55
    for figures in report.pipelines:
        for stage in (figures.first_stage, figures.reranked):
            assert 0 <= stage.hit_at_1 <= stage.hit_at_3 <= 1
            assert 0 <= stage.mrr_at_10 <= 1
            assert stage.seconds > 0


def test_reranking_beats_the_first_stage(embedded: tuple[DemoReport, str]) -> None:
    report, _ = embedded

    for figures in report.pipelines:
        assert figures.reranked.mrr_at_10 > figures.first_stage.mrr_at_10
        assert figures.reranked.hit_at_3 > figures.first_stage.hit_at_3
        assert figures.reranked.hit_at_1 > figures.first_stage.hit_at_1
    assert report.moved_up > report.moved_down


def test_langchain_and_llama_index_agree(embedded: tuple[DemoReport, str]) -> None:
    report, text = embedded
    langchain, llama_index = report.pipeline("langchain"), report.pipeline("LlamaIndex")

    assert langchain.first_stage.same_scores(llama_index.first_stage)
    assert langchain.reranked.same_scores(llama_index.reranked)
    assert report.figures_agree
    assert report.differing_queries == ()
    assert "LangChain and LlamaIndex agree" in text


def test_the_text_report(embedded: tuple[DemoReport, str]) -> None:
    report, text = embedded
    lines = text.splitlines()
    example = report.example

    assert 30 <= len(lines) <= 60
    assert report.endpoint in text
    assert "embedded BM25 server" in text
    assert "Before reranking" in text
    assert "After reranking" in text
    assert f'"{example.query}"' in text
    assert len(example.before) == len(example.after) == report.top_n == 5
    # The example is the showcase: a relevant passage first after reranking.
    assert example.after[0].relevant
    assert any(line.startswith("  LangChain ") for line in lines)
    assert any(line.startswith("  LlamaIndex ") for line in lines)
    marked = [line for line in lines if " * p" in line]
    assert len(marked) == sum(row.relevant for row in example.before + example.after)
    assert f"{report.pipelines[0].reranked.mrr_at_10:.3f}" in text


def test_the_showcase_lifts_its_answer_and_stays_on_topic(embedded: tuple[DemoReport, str]) -> None:
    report, text = embedded
    example = report.example
    topics = {passage.id: passage.topic for passage in load_passages()}
    topic = topics[example.relevant[0]]

    assert example.after[0].relevant
    assert example.after[0].first_stage_rank > report.top_n  # it was not even shown before
    assert [topics[row.passage_id] for row in example.after] == [topic] * report.top_n
    assert example.chosen.startswith("the showcase: answer from #")
    assert example.chosen in text


def test_one_line_says_what_runs_while_the_queries_run(embedded: tuple[DemoReport, str]) -> None:
    report, text = embedded
    first, blank, title = text.splitlines()[:3]

    assert first.startswith(f"Reranking {report.queries} queries x {report.top_k} candidates")
    assert first.endswith(" s.")
    assert (blank, title.split(":")[0]) == ("", "Rerank demo")


def test_a_free_text_flat_tyre_query_ranks_a_bicycle_passage_first() -> None:
    topics = {passage.id: passage.topic for passage in load_passages()}

    report = run_demo(query="how do I fix a flat tyre", out=io.StringIO())

    best = report.example.after[0]
    assert topics[best.passage_id] == "bicycle", best.text
    assert "tire" in best.text
    assert best.score > 0


def test_the_example_rows_match_the_corpus(embedded: tuple[DemoReport, str]) -> None:
    report, _ = embedded
    example = report.example

    assert [row.rank for row in example.before] == [1, 2, 3, 4, 5]
    assert [row.first_stage_rank for row in example.before] == [1, 2, 3, 4, 5]
    cosines = [row.score for row in example.before]
    assert cosines == sorted(cosines, reverse=True)
    scores = [row.score for row in example.after]
    assert scores == sorted(scores, reverse=True)
    assert all(1 <= row.first_stage_rank <= report.top_k for row in example.after)
    assert all(row.relevant == (row.passage_id in example.relevant) for row in example.after)


def test_an_external_endpoint_is_used_and_json_printed() -> None:
    out = io.StringIO()
    with serve_in_thread() as server:
        report = run_demo(base_url=server.base_url, query_id="q05", top_n=3, out=out, as_json=True)
        requests, rerank_url = server.stats.requests, server.rerank_url

    assert not report.embedded
    assert report.endpoint == rerank_url
    assert requests >= 2 * report.queries  # every query, in both pipelines
    data = json.loads(out.getvalue())
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["endpoint"] == rerank_url
    assert data["embedded_server"] is False
    assert data["example"]["query_id"] == "q05"
    assert len(data["example"]["after"]) == 3


def test_the_endpoint_comes_from_the_environment_inside_an_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``RERANK_BASE_URL`` is honoured, and a notebook's running event loop is no obstacle."""

    async def in_a_notebook() -> DemoReport:
        return run_demo(query="how hot should the water be for coffee", out=io.StringIO())

    with serve_in_thread() as server:
        monkeypatch.setenv("RERANK_BASE_URL", server.base_url)
        report = asyncio.run(in_a_notebook())
        assert server.stats.requests >= 2 * report.queries
        assert report.endpoint == server.rerank_url

    assert report.example.query_id is None
    assert report.example.relevant == ()
    assert report.figures_agree


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query_id": "q999"}, "unknown query id"),
        ({"top_k": 3, "top_n": 5}, "cannot exceed"),
        ({"top_k": 0}, "top_k"),
        ({"query_id": "q01", "query": "x"}, "not both"),
        ({"query": "  "}, "empty"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_demo(out=io.StringIO(), **kwargs)  # type: ignore[arg-type]


def test_embeddings_wrap_the_hashing_embedding() -> None:
    text = "How long should I steep coffee in a French press?"
    expected = hashing_embedding(text)

    langchain = langchain_embeddings()
    assert langchain.embed_query(text) == expected
    assert langchain.embed_documents([text, "x"]) == [expected, hashing_embedding("x")]
    assert asyncio.run(langchain.aembed_query(text)) == expected

    llama_index = llama_index_embedding(dimensions=32)
    assert llama_index.get_query_embedding(text) == hashing_embedding(text, 32)
    assert llama_index.get_text_embedding_batch([text]) == [hashing_embedding(text, 32)]
    assert asyncio.run(llama_index.aget_query_embedding(text)) == hashing_embedding(text, 32)

    with pytest.raises(ValueError, match="dimensions"):
        langchain_embeddings(0)


def test_the_modules_import_without_the_frameworks() -> None:
    root = Path(__file__).resolve().parents[1]
    script = (
        "import sys\n"
        "for name in ('langchain_core', 'langchain_classic', 'llama_index'):\n"
        "    sys.modules[name] = None\n"
        "import rerank_integrations.demo as demo\n"
        "import rerank_integrations.cli\n"
        "try:\n"
        "    demo.langchain_embeddings()\n"
        "except ImportError as exc:\n"
        "    print('langchain:', exc)\n"
        "try:\n"
        "    demo.llama_index_embedding()\n"
        "except ImportError as exc:\n"
        "    print('llama_index:', exc)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }

    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert "langchain: the LangChain demo embedding needs langchain-core" in completed.stdout
    assert "llama_index: the LlamaIndex demo embedding needs llama-index-core" in completed.stdout


def test_ties_are_ordered_by_id() -> None:
    scored = [("p2", 0.5), ("p1", 0.5000000000000001), ("p3", 0.9), ("p0", 0.1)]

    assert _tie_ordered(scored) == [
        ("p3", 0.9),
        ("p1", 0.5000000000000001),
        ("p2", 0.5),
        ("p0", 0.1),
    ]


def test_display_url_hides_credentials() -> None:
    assert display_url("https://user:pw@h.example:8443/v1/rerank?key=abc") == (
        "https://h.example:8443/v1/rerank"
    )
    assert display_url("http://[::1]:8080/v1/rerank") == "http://[::1]:8080/v1/rerank"


def test_cut_to_width_counts_wide_characters_twice() -> None:
    assert cut_to_width("a  b\n c", 10) == "a b c"
    assert cut_to_width("abcdefghij", 5) == "abcd…"
    assert cut_to_width("观察月球的最佳时间", 7) == "观察月…"


def test_the_instruction_example_steers_an_ambiguous_query(
    embedded: tuple[DemoReport, str],
) -> None:
    report, text = embedded
    steered = report.instruction
    assert steered is not None and steered.refused is None
    assert steered.without is not None and steered.with_instruction is not None
    assert steered.without.passage_id == "p010"  # espresso brewing pressure
    assert steered.with_instruction.passage_id == "p029"  # a road bike's tire pressure
    assert f'best with "{steered.instruction}": p029' in text
    assert report.to_dict()["instruction"]["with"]["id"] == "p029"
