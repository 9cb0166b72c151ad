"""``rerank_integrations.eval`` and ``rerank-integrations eval``: trec_eval's numbers on a
fixture run, hand-checked cases, bad input refused before any request, and whole runs
against local BM25 servers (CLI and Python, sync and async), rerun for free and resumed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ir_measures")
pytest.importorskip("scipy")
pytest.importorskip("matplotlib")
pytest.importorskip("uvicorn")

from rerank_integrations import RerankCache, RerankClient
from rerank_integrations import eval as rerank_eval
from rerank_integrations.cli import main
from rerank_integrations.eval import (
    Dataset,
    EvalInputError,
    EvalRunError,
    FirstStage,
    Reranker,
)
from rerank_integrations.eval import _run as eval_run
from rerank_integrations.eval._demo import demo_dataset
from rerank_integrations.eval._measures import (
    compare,
    holm,
    parse_measures,
    per_query,
    suggest_threshold,
    threshold_curve,
)
from rerank_integrations.server import LocalRerankServer, serve_in_thread

FIXTURE = Path(__file__).parent / "fixtures" / "eval"
BEIR = FIXTURE / "beir"
RUN = FIXTURE / "first_stage.trec"
TREC_EVAL = json.loads((FIXTURE / "trec_eval.json").read_text())
QUERIES = 13


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[LocalRerankServer, LocalRerankServer]]:
    """Two rerankers: BM25 over whole passages, and over their first 12 tokens."""
    with (
        serve_in_thread() as whole,
        serve_in_thread(max_tokens_per_document=12, auto_truncate=True) as short,
    ):
        yield whole, short


def requests(servers: tuple[LocalRerankServer, ...]) -> int:
    return sum(server.stats.requests for server in servers)


def rerankers(servers: tuple[LocalRerankServer, LocalRerankServer]) -> list[Reranker]:
    whole, short = servers
    return [Reranker("bm25", whole.base_url), Reranker("short", short.base_url)]


def evaluate(mode: str, *args: Any, **options: Any) -> rerank_eval.EvalReport:
    if mode == "async":
        return asyncio.run(rerank_eval.aevaluate(*args, **options))
    return rerank_eval.evaluate(*args, **options)


# -- the measures are trec_eval's -------------------------------------------------------------


def test_the_fixture_run_scores_as_trec_eval_scores_it() -> None:
    dataset = rerank_eval.load_beir(BEIR, "test")
    first_stage = rerank_eval.read_trec_run(RUN)
    names = list(TREC_EVAL["mean"])
    run = {query: dict(ranked) for query, ranked in first_stage.candidates.items()}

    values = per_query(parse_measures(names), dataset.qrels, run)

    assert len(values) == QUERIES
    for query, found in values.items():
        assert found == pytest.approx(TREC_EVAL[query], abs=1e-12), query
    for name in names:
        mean = math.fsum(found[name] for found in values.values()) / QUERIES
        assert mean == pytest.approx(TREC_EVAL["mean"][name], abs=1e-12), name


def test_the_report_of_the_first_stage_alone_holds_trec_eval_means(tmp_path: Path) -> None:
    names = list(TREC_EVAL["mean"])
    report = rerank_eval.evaluate(
        rerank_eval.load_beir(BEIR),
        rerank_eval.read_trec_run(RUN),
        [],
        tmp_path / "report",
        measures=names,
        depths=(20,),
        plots=False,
    )
    written = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert list(written) == ["first-stage"] and report.requests_sent == 0
    assert written["first-stage"] == pytest.approx(TREC_EVAL["mean"], abs=1e-12)
    trec = (tmp_path / "report" / "runs" / "first-stage.trec").read_text().splitlines()
    assert len(trec) == QUERIES * 20 and trec[0].split()[1] == "Q0"


def measured(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, Any]:
    return per_query(parse_measures(["nDCG@10", "RR@10", "R@10", "P@1", "AP"]), qrels, run)


def test_a_query_without_relevant_documents_scores_zero_and_counts_in_the_mean() -> None:
    values = measured(
        {"a": {"d1": 1}, "none": {"d1": 0, "d2": 0}},
        {"a": {"d1": 1.0}, "none": {"d1": 2.0, "d2": 1.0}},
    )
    assert values["none"] == dict.fromkeys(values["none"], 0.0)
    assert values["a"]["RR@10"] == 1.0
    assert rerank_eval._measures.means(values)["RR@10"] == 0.5


def test_ties_are_broken_as_trec_eval_breaks_them_by_document_id_descending() -> None:
    values = measured({"q": {"a": 1}}, {"q": {"a": 1.0, "b": 1.0}})
    assert values["q"]["RR@10"] == 0.5  # "b" sorts first among equal scores
    assert values["q"]["P@1"] == 0.0


def test_graded_relevance_is_the_gain_of_ndcg() -> None:
    values = measured({"q": {"a": 2, "b": 1}}, {"q": {"a": 1.0, "b": 2.0}})
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert values["q"]["nDCG@10"] == pytest.approx((1 / math.log2(2) + 2 / math.log2(3)) / ideal)
    assert values["q"]["RR@10"] == 1.0  # grade 1 is relevant for RR


def test_a_judged_query_missing_from_the_run_scores_zero() -> None:
    values = measured({"a": {"d1": 1}, "b": {"d2": 1}}, {"a": {"d1": 1.0}})
    assert values["b"] == dict.fromkeys(values["b"], 0.0)


def test_unknown_measures_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown measure 'nDCG@@10'"):
        parse_measures(["nDCG@@10"])


def test_holm_bonferroni_adjusts_in_order_and_stays_monotone() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def test_comparisons_pair_each_reranker_with_the_first_stage_and_each_other() -> None:
    values = {
        "first-stage": {str(q): {"m": 0.1 * (q % 3)} for q in range(20)},
        "good": {str(q): {"m": 0.1 * (q % 3) + 0.5 + 0.01 * (q % 2)} for q in range(20)},
        "same": {str(q): {"m": 0.1 * (q % 3)} for q in range(20)},
    }
    found = {(c.a, c.b): c for c in compare(values, ["m"], baseline="first-stage")}
    assert set(found) == {("first-stage", "good"), ("first-stage", "same"), ("good", "same")}
    assert found[("first-stage", "good")].significant
    assert found[("first-stage", "same")].p_value == 1.0
    assert not found[("first-stage", "same")].significant
    assert found[("good", "same")].difference == pytest.approx(-0.505)
    assert all(c.p_holm >= c.p_value for c in found.values())


def test_a_threshold_is_suggested_for_a_target_precision_or_recall() -> None:
    scored = [(0.9, True), (0.8, True), (0.7, False), (0.6, True), (0.1, False)]
    curve = threshold_curve(scored, queries=1, points=10)
    assert [p.threshold for p in curve] == [0.9, 0.8, 0.7, 0.6, 0.1]
    assert curve[3].precision == 0.75 and curve[3].recall == 1.0
    assert suggest_threshold(curve, precision=1.0).threshold == 0.8  # type: ignore[union-attr]
    assert suggest_threshold(curve, recall=1.0).threshold == 0.6  # type: ignore[union-attr]
    assert suggest_threshold(curve, precision=1.01) is None


# -- bad input, before any request ------------------------------------------------------------


def copy_beir(tmp_path: Path) -> Path:
    folder = tmp_path / "beir"
    shutil.copytree(BEIR, folder)
    return folder


def run_against(
    servers: tuple[LocalRerankServer, LocalRerankServer],
    tmp_path: Path,
    beir: Path = BEIR,
    run: Path = RUN,
    split: str = "test",
) -> None:
    rerank_eval.evaluate(
        rerank_eval.load_beir(beir, split),
        rerank_eval.read_trec_run(run),
        rerankers(servers),
        tmp_path / "report",
    )


def test_qrels_naming_queries_the_queries_file_lacks_are_refused_with_counts(
    servers: tuple[LocalRerankServer, LocalRerankServer], tmp_path: Path
) -> None:
    beir = copy_beir(tmp_path)
    lines = (beir / "queries.jsonl").read_text().splitlines()
    (beir / "queries.jsonl").write_text("\n".join(lines[2:]) + "\n")
    before = requests(servers)
    with pytest.raises(
        EvalInputError, match=r"judges 13 queries, 2 of them not in queries.jsonl \(11 queries\)"
    ):
        run_against(servers, tmp_path, beir)
    assert requests(servers) == before


def test_a_run_naming_documents_the_corpus_lacks_is_refused(
    servers: tuple[LocalRerankServer, LocalRerankServer], tmp_path: Path
) -> None:
    run = tmp_path / "run.trec"
    run.write_text(RUN.read_text() + "q01 Q0 p999 21 0.0 x\nq02 Q0 nope 21 0.0 x\n")
    before = requests(servers)
    with pytest.raises(EvalInputError, match=r"names 2 documents the corpus \(\d+ documents\)"):
        run_against(servers, tmp_path, run=run)
    assert requests(servers) == before
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("where", "extra", "message"),
    [
        ("corpus.jsonl", '{"_id": "p001", "text": "again"}\n', "duplicate document ids: 'p001'"),
        ("queries.jsonl", '{"_id": "q01", "text": "again"}\n', "duplicate query ids: 'q01'"),
        ("qrels/test.tsv", "q01\tp002\t1\n", r"duplicate judgement of \('q01', 'p002'\)"),
    ],
)
def test_duplicate_ids_are_refused(tmp_path: Path, where: str, extra: str, message: str) -> None:
    beir = copy_beir(tmp_path)
    with (beir / where).open("a") as handle:
        handle.write(extra)
    with pytest.raises(EvalInputError, match=message):
        rerank_eval.load_beir(beir)


def test_a_document_twice_in_the_run_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run.trec"
    run.write_text(RUN.read_text() + "q01 Q0 p002 21 0.0 x\n")
    with pytest.raises(EvalInputError, match=r"line 261: duplicate document 'p002' for 'q01'"):
        rerank_eval.read_trec_run(run)


def test_an_empty_or_missing_split_is_refused(tmp_path: Path) -> None:
    beir = copy_beir(tmp_path)
    (beir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(EvalInputError, match="the split is empty"):
        rerank_eval.load_beir(beir, "dev")
    with pytest.raises(EvalInputError, match=r"no qrels/train.tsv \(splits there: dev, test\)"):
        rerank_eval.load_beir(beir, "train")


def test_reranker_names_must_be_unique_and_not_the_first_stage(tmp_path: Path) -> None:
    dataset, first_stage = rerank_eval.load_beir(BEIR), rerank_eval.read_trec_run(RUN)
    with pytest.raises(ValueError, match="two rerankers are named 'a'"):
        rerank_eval.evaluate(dataset, first_stage, [Reranker("a"), Reranker("a")], tmp_path)
    with pytest.raises(ValueError, match="not 'first-stage'"):
        rerank_eval.evaluate(dataset, first_stage, [Reranker("first-stage")], tmp_path)


def test_a_candidates_file_with_qrels_is_read_and_checked(tmp_path: Path) -> None:
    rows = tmp_path / "candidates.jsonl"
    rows.write_text(
        json.dumps(
            {
                "id": "q1",
                "query": "coffee",
                "documents": [{"id": "a", "text": "tea"}, {"id": "b", "text": "coffee"}],
            }
        )
        + "\n"
    )
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 b 1\n")
    dataset, first_stage = rerank_eval.load_candidates(rows, qrels)
    assert dataset.corpus == {"a": "tea", "b": "coffee"}
    assert list(first_stage.candidates["q1"]) == [("a", 2.0), ("b", 1.0)]
    qrels.write_text("q1 0 b 1\nq2 0 b 1\n")
    with pytest.raises(EvalInputError, match=r"judges 2 queries, 1 of them not in"):
        rerank_eval.load_candidates(rows, qrels)


# -- whole runs against the local servers -----------------------------------------------------


def test_two_rerankers_and_the_first_stage_are_reported_and_a_rerun_is_free(
    servers: tuple[LocalRerankServer, LocalRerankServer], tmp_path: Path, mode: str
) -> None:
    dataset, first_stage = rerank_eval.load_beir(BEIR), rerank_eval.read_trec_run(RUN)
    out = tmp_path / "report"
    before = requests(servers)

    report = evaluate(mode, dataset, first_stage, rerankers(servers), out, depths=(5, 10, 20))

    assert requests(servers) - before == 2 * QUERIES == report.requests_sent
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["first-stage", "bm25", "short"]
    for name in ("nDCG@10", "RR@10", "R@100", "P@5", "AP"):
        assert all(name in values for values in metrics.values())
    assert metrics["first-stage"]["nDCG@10"] == pytest.approx(TREC_EVAL["mean"]["nDCG@10"])
    assert metrics["bm25"]["nDCG@10"] > metrics["first-stage"]["nDCG@10"]
    for name in metrics:
        lines = (out / "runs" / f"{name}.trec").read_text().splitlines()
        assert len(lines) == QUERIES * 20 and all(line.endswith(name) for line in lines)
    for name in ("report.md", "per_query.jsonl", "sweeps.json", "significance.json"):
        assert (out / name).stat().st_size > 0
    for name in ("depth.png", "latency.png", "scores.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    sweeps = json.loads((out / "sweeps.json").read_text())
    assert list(sweeps["depth"]["bm25"]) == ["5", "10", "20"]
    assert sweeps["depth"]["bm25"]["20"] == pytest.approx(metrics["bm25"])
    usage = json.loads((out / "usage.json").read_text())
    assert usage["bm25"]["requests"] == QUERIES and usage["bm25"]["queries"] == QUERIES
    assert usage["bm25"]["documents"] == QUERIES * 20 and usage["bm25"]["cost"] is None
    assert usage["bm25"]["latency_p50_ms"] > 0
    significance = json.loads((out / "significance.json").read_text())
    assert significance["correction"].startswith("Holm-Bonferroni")
    assert len(significance["comparisons"]) == 3 * len(metrics["bm25"])

    middle = requests(servers)
    again = evaluate(mode, dataset, first_stage, rerankers(servers), out, depths=(5, 10, 20))
    assert requests(servers) == middle and again.requests_sent == 0
    for name, values in report.metrics.items():
        assert again.metrics[name] == pytest.approx(values)
    assert again.usage["bm25"]["latency_p50_ms"] == report.usage["bm25"]["latency_p50_ms"]

    # Another report over the same pairs, sharing the scores' file: no request either.
    elsewhere = evaluate(
        mode,
        dataset,
        first_stage,
        rerankers(servers),
        tmp_path / "other",
        depths=(10,),
        cache=out / "scores.sqlite",
    )
    assert requests(servers) == middle and elsewhere.requests_sent == 0
    assert elsewhere.depth_sweep["bm25"][10] == pytest.approx(report.depth_sweep["bm25"][10])


def test_any_get_set_cache_keeps_the_scores(
    servers: tuple[LocalRerankServer, LocalRerankServer], tmp_path: Path, mode: str
) -> None:
    dataset, first_stage = rerank_eval.load_beir(BEIR), rerank_eval.read_trec_run(RUN)
    cache = RerankCache()
    evaluate(mode, dataset, first_stage, rerankers(servers), tmp_path / "a", cache=cache)
    assert len(cache) > 0
    before = requests(servers)
    evaluate(mode, dataset, first_stage, rerankers(servers), tmp_path / "b", cache=cache)
    assert requests(servers) == before


def test_an_interrupted_run_carries_on_where_it_stopped(tmp_path: Path) -> None:
    dataset, first_stage = demo_dataset(depth=10)
    out = tmp_path / "report"
    with serve_in_thread() as server:
        reranker = [Reranker("bm25", server.base_url)]

        async def interrupted() -> None:
            job = asyncio.ensure_future(
                rerank_eval.aevaluate(dataset, first_stage, reranker, out, concurrency=1)
            )
            work = out / "work"
            while not any(  # noqa: ASYNC110 - the file is what is watched
                path.name.startswith("bm25-")
                and not path.name.endswith(".calls.jsonl")
                and len(path.read_bytes().splitlines()) >= 5
                for path in (work.glob("*.jsonl") if work.exists() else [])
            ):
                await asyncio.sleep(0.001)
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job

        asyncio.run(interrupted())
        first = server.stats.requests
        assert 5 <= first < len(dataset.qrels)
        assert not (out / "metrics.json").exists()

        report = rerank_eval.evaluate(dataset, first_stage, reranker, out, concurrency=1)

        assert server.stats.requests - first == report.requests_sent
        assert report.requests_sent <= len(dataset.qrels) - 5
        assert report.usage["bm25"]["queries"] == len(dataset.qrels)
        trec = (out / "runs" / "bm25.trec").read_text().splitlines()
        assert len({line.split()[0] for line in trec}) == len(dataset.qrels)


def old_candidates(
    path: Path, dataset: Any, first_stage: Any, depth: int
) -> dict[tuple[str, tuple[str, ...]], list[str]]:
    """The candidates file as it was written before its documents were texts alone: each
    document ``{"id", "text"}``."""
    keys: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    with path.open("w", encoding="utf-8") as handle:
        for query_id, ranked in first_stage.candidates.items():
            query, ids = dataset.queries[query_id], [doc for doc, _ in ranked[:depth]]
            keys.setdefault((query, tuple(dataset.corpus[d] for d in ids)), []).append(query_id)
            documents = [{"id": doc, "text": dataset.corpus[doc]} for doc in ids]
            row = {"id": query_id, "query": query, "documents": documents}
            handle.write(json.dumps(row) + "\n")
    return keys


def test_a_run_stopped_before_candidates_were_texts_alone_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, first_stage = demo_dataset(depth=10)
    out = tmp_path / "report"
    work = out / "work"

    def scored() -> int:
        return sum(
            len(path.read_bytes().splitlines())
            for path in (work.glob("bm25-*.jsonl") if work.exists() else [])
            if not path.name.endswith(".calls.jsonl")
        )

    with serve_in_thread() as server:
        reranker = [Reranker("bm25", server.base_url)]

        async def interrupted() -> None:
            job = asyncio.ensure_future(
                rerank_eval.aevaluate(dataset, first_stage, reranker, out, concurrency=1)
            )
            while scored() < 5:  # noqa: ASYNC110 - the file is what is watched
                await asyncio.sleep(0.001)
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job

        monkeypatch.setattr(eval_run, "_write_candidates", old_candidates)
        asyncio.run(interrupted())
        monkeypatch.undo()
        (candidates,) = work.glob("candidates-*.jsonl")
        assert '"text"' in candidates.read_text()  # as it was written before
        done = scored()

        report = rerank_eval.evaluate(dataset, first_stage, reranker, out, plots=False)
        fresh = rerank_eval.evaluate(dataset, first_stage, reranker, tmp_path / "new", plots=False)

    assert 5 <= done < len(dataset.qrels)
    assert report.requests_sent == len(dataset.qrels) - done
    for name, values in fresh.metrics.items():
        assert report.metrics[name] == pytest.approx(values)
    assert '"text"' in candidates.read_text()  # read as it is, not written again
    (new_candidates,) = (tmp_path / "new" / "work").glob("candidates-*.jsonl")
    assert '"text"' not in new_candidates.read_text()  # documents as texts alone now


def test_a_reranker_that_fails_stops_the_run_with_what_to_do(
    tmp_path: Path, servers: tuple[LocalRerankServer, LocalRerankServer], mode: str
) -> None:
    dataset, first_stage = rerank_eval.load_beir(BEIR), rerank_eval.read_trec_run(RUN)
    with serve_in_thread(error_rate=1.0, error_status=503) as broken:
        contenders = [
            Reranker("bm25", servers[0].base_url),
            Reranker("broken", broken.base_url, settings={"max_retries": 0}),
        ]
        with pytest.raises(EvalRunError, match=r"reranker 'broken' stopped: .*run the evaluation"):
            evaluate(mode, dataset, first_stage, contenders, tmp_path / "report")
    assert not (tmp_path / "report" / "metrics.json").exists()


def test_a_langchain_retriever_is_a_first_stage(mode: str) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    from rerank_integrations.demo._embedding import langchain_embeddings

    store = InMemoryVectorStore(langchain_embeddings())
    texts = {"p1": "espresso needs fine grounds", "p2": "tea steeps for minutes"}
    store.add_documents([Document(text, id=pid) for pid, text in texts.items()])
    retriever = store.as_retriever(search_kwargs={"k": 2})
    queries = {"q1": "espresso grounds"}
    if mode == "async":
        found, corpus = asyncio.run(rerank_eval.afirst_stage_from_retriever(retriever, queries))
    else:
        found, corpus = rerank_eval.first_stage_from_retriever(retriever, queries)
    assert corpus == texts
    assert [doc for doc, _ in found.candidates["q1"]] == ["p1", "p2"]


def test_a_llama_index_retriever_is_a_first_stage(mode: str) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    from rerank_integrations.demo._embedding import llama_index_embedding

    texts = {"p1": "espresso needs fine grounds", "p2": "tea steeps for minutes"}
    nodes = [TextNode(text=text, id_=pid) for pid, text in texts.items()]
    retriever = VectorStoreIndex(nodes, embed_model=llama_index_embedding()).as_retriever(
        similarity_top_k=2
    )
    queries = {"q1": "espresso grounds"}
    if mode == "async":
        found, corpus = asyncio.run(rerank_eval.afirst_stage_from_retriever(retriever, queries))
    else:
        found, corpus = rerank_eval.first_stage_from_retriever(retriever, queries)
    assert corpus == texts
    assert found.candidates["q1"][0][0] == "p1"


def test_a_dataset_built_in_python_is_checked_like_files(tmp_path: Path) -> None:
    dataset = Dataset({"q": "x"}, {"d": "text"}, {"q": {"d": 1}})
    with pytest.raises(EvalInputError, match="no candidates for any of the 1 judged queries"):
        rerank_eval.evaluate(dataset, FirstStage({"other": [("d", 1.0)]}), [], tmp_path)


# -- the command line -------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["eval", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_writes_the_report_and_a_second_run_sends_nothing(
    servers: tuple[LocalRerankServer, LocalRerankServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    whole, short = servers
    out = tmp_path / "report"
    argv = [
        "--corpus",
        str(BEIR),
        "--split",
        "test",
        "--run",
        str(RUN),
        "--reranker",
        f"bm25={whole.base_url}",
        "--reranker",
        f"short={short.base_url}",
        "--out",
        str(out),
        "--depth",
        "10,20",
        "--no-progress",
    ]
    before = requests(servers)
    code, printed, err = cli(capsys, *argv)
    assert code == 0, err
    assert requests(servers) - before == 2 * QUERIES
    assert [line.split()[0] for line in printed.splitlines()] == [
        "contender",
        "first-stage",
        "bm25",
        "short",
    ]
    assert f"{2 * QUERIES} requests sent" in err
    assert set(json.loads((out / "metrics.json").read_text())) == {"first-stage", "bm25", "short"}
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "bm25.trec",
        "first-stage.trec",
        "short.trec",
    ]

    middle = requests(servers)
    code, again, err = cli(capsys, *argv)
    assert code == 0 and requests(servers) == middle and "0 requests sent" in err
    assert again == printed


def test_the_command_reads_rerankers_from_a_toml_file(
    servers: tuple[LocalRerankServer, LocalRerankServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "rerankers.toml"
    config.write_text(
        f'[[reranker]]\nname = "bm25"\nbase_url = "{servers[0].base_url}"\n'
        "[reranker.settings]\nmax_documents_per_request = 5\n"
    )
    before = requests(servers)
    code, printed, err = cli(
        capsys,
        "--corpus",
        str(BEIR),
        "--run",
        str(RUN),
        "--config",
        str(config),
        "--out",
        str(tmp_path / "r"),
        "--no-plots",
    )
    assert code == 0, err
    # The batch job's progress, per reranker (after any warning a library of the Python
    # in use prints as it loads: ast.Num's deprecation on 3.12 and 3.13).
    progress = [line for line in err.splitlines() if ": warning: " not in line]
    assert progress[0] == "bm25:"
    assert requests(servers) - before == QUERIES * 4  # 20 candidates, 5 a request
    assert "bm25" in printed and not (tmp_path / "r" / "depth.png").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--run", "x.trec"], "give --corpus BEIR_DIR and --run FILE.trec"),
        (["--corpus", "nowhere", "--run", "x"], "nowhere: no such BEIR folder"),
        (["--corpus", str(BEIR), "--run", str(RUN), "--reranker", "bare"], "NAME=BASE_URL"),
        (["--corpus", str(BEIR), "--run", str(RUN), "--depth", "0"], "at least 1"),
        (["--corpus", str(BEIR), "--run", str(RUN), "--measure", "nope"], "unknown measure"),
    ],
)
def test_the_command_refuses_bad_input_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    extra = [] if any(a.startswith("--reranker") for a in argv) else ["--reranker", "a=http://x"]
    code, _, err = cli(capsys, *argv, *extra, "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 2
    assert message in err, err


def test_demo_eval_reports_two_local_rerankers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RERANK_BASE_URL", raising=False)
    code = main(["demo", "--eval", str(tmp_path / "demo")])
    printed = capsys.readouterr().out
    assert code == 0
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert list(metrics) == ["first-stage", "bm25", "bm25-first-24-tokens"]
    assert metrics["bm25"]["nDCG@10"] > metrics["first-stage"]["nDCG@10"]
    assert "bm25-first-24-tokens" in printed
    # The documentation quotes this run's table: a difference is a page gone stale.
    page = (Path(__file__).resolve().parents[2] / "docs" / "measuring" / "eval.md").read_text()
    lines = page[page.index("contender ") :].split("```")[0].splitlines()
    measures = lines[0].split()[1:]
    quoted = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.strip()}
    assert list(quoted) == list(metrics)
    for contender, values in quoted.items():
        assert values == [f"{metrics[contender][measure]:.4f}" for measure in measures]


def test_a_client_of_your_own_is_used_and_left_open(
    servers: tuple[LocalRerankServer, LocalRerankServer], tmp_path: Path, mode: str
) -> None:
    dataset, first_stage = rerank_eval.load_beir(BEIR), rerank_eval.read_trec_run(RUN)
    before = requests(servers)
    with RerankClient(servers[0].base_url) as client:
        report = evaluate(
            mode, dataset, first_stage, [Reranker("mine", client=client)], tmp_path / "r"
        )
        assert client.rerank("coffee", ["tea", "coffee"]).results[0].index == 1  # still open
    assert report.usage["mine"]["requests"] == QUERIES
    assert requests(servers) - before == QUERIES + 1


async def test_the_sync_evaluation_runs_where_a_loop_is_running(tmp_path: Path) -> None:
    report = rerank_eval.evaluate(
        rerank_eval.load_beir(BEIR), rerank_eval.read_trec_run(RUN), [], tmp_path, plots=False
    )
    assert set(report.metrics) == {"first-stage"}


def test_the_public_names_are_pinned() -> None:
    assert rerank_eval.__all__ == [
        "DEFAULT_DEPTHS",
        "DEFAULT_MEASURES",
        "DEFAULT_TOP_NS",
        "FIRST_STAGE",
        "Comparison",
        "Dataset",
        "EvalInputError",
        "EvalReport",
        "EvalRunError",
        "FirstStage",
        "Reranker",
        "ScoreStore",
        "ThresholdPoint",
        "aevaluate",
        "afirst_stage_from_retriever",
        "evaluate",
        "first_stage_from_retriever",
        "holm",
        "load_beir",
        "load_candidates",
        "read_qrels",
        "read_trec_run",
    ]
