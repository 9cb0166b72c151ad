"""The long-document set: made deterministically from the corpus, sized and buried as stated,
and, against a server that reads only a document's first 512 tokens, hiding what it should."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from rerank_integrations import RerankClient
from rerank_integrations.demo import (
    DEPTHS,
    LongDocumentSet,
    aevaluate_long_documents,
    evaluate_long_documents,
    load_long_documents,
    load_passages,
    load_queries,
)
from rerank_integrations.demo import _long_documents as long_documents
from rerank_integrations.server import LocalRerankServer, count_tokens, serve_in_thread

LIMIT = 512  # tokens a model reads, the query included


@pytest.fixture(scope="module")
def data() -> LongDocumentSet:
    return load_long_documents()


@pytest.fixture(scope="module")
def truncating() -> Iterator[LocalRerankServer]:
    """A server that, like a model, reads only the first 512 tokens of query and document."""
    with serve_in_thread(max_tokens_per_document=LIMIT, auto_truncate=True) as server:
        yield server


def scores(server: LocalRerankServer, query: str, documents: list[str]) -> list[float]:
    body = {"query": query, "documents": documents}
    results = httpx.post(server.rerank_url, json=body, timeout=30).json()["results"]
    by_index = {item["index"]: item["relevance_score"] for item in results}
    return [by_index[index] for index in range(len(documents))]


def without_answer(document: Any) -> str:
    return document.text[: document.passage_start] + document.text[document.passage_end :]


# --------------------------------------------------------------------------- the set


def test_the_set_is_the_same_on_every_call_and_every_machine(data: LongDocumentSet) -> None:
    long_documents.load_long_documents.cache_clear()
    again = load_long_documents()
    assert again == data and again is not data
    digest = hashlib.sha256()
    for document in data.documents:
        digest.update(f"{document.id}|{document.passage_start}|{document.text}".encode())
    for labelled in data.queries:
        digest.update(f"{labelled.id}|{labelled.relevant}|{labelled.candidates}".encode())
    # Pinned: a change to the corpus or to how documents are made must be deliberate.
    assert digest.hexdigest()[:16] == EXPECTED_DIGEST


def test_at_least_forty_documents_of_two_to_six_thousand_words(data: LongDocumentSet) -> None:
    assert len(data.documents) >= 40
    assert len({document.id for document in data.documents}) == len(data.documents)
    for document in data.documents:
        assert 2000 <= document.words <= 6000, document.id
        assert document.words == len(document.text.split())
    assert max(d.words for d in data.documents) - min(d.words for d in data.documents) > 3000


def test_each_document_hides_exactly_one_answer(data: LongDocumentSet) -> None:
    passages = {passage.id: passage.text for passage in load_passages()}
    answers = {passage_id for labelled in load_queries() for passage_id in labelled.relevant}
    for document in data.documents:
        assert document.passage == passages[document.passage_id]
        for passage_id in answers:
            found = document.text.count(passages[passage_id])
            assert found == (passage_id == document.passage_id), (document.id, passage_id)


def test_the_answers_lie_at_varied_depths(data: LongDocumentSet) -> None:
    depths = Counter(document.depth for document in data.documents)
    assert set(depths) == set(DEPTHS)
    assert min(depths.values()) >= 10
    for document in data.documents:
        before = len(document.text[: document.passage_start].split()) / document.words
        tokens_before = count_tokens(document.text[: document.passage_start])
        if document.depth == "start":  # inside a 512-token model's view, query and all
            assert count_tokens(document.text[: document.passage_end]) <= LIMIT - 40
        else:  # beyond it
            assert tokens_before > LIMIT, document.id
        if document.depth == "middle":
            assert 0.40 <= before <= 0.60, document.id
        if document.depth == "deep":
            assert 0.70 <= before <= 0.85, document.id
        if document.depth == "end":
            assert document.passage_end == len(document.text)
    starts = {document.passage_start for document in data.documents if document.depth == "start"}
    assert len(starts) > 1  # not always the first paragraph


def test_the_labelled_queries_are_the_corpus_queries(data: LongDocumentSet) -> None:
    corpus = {labelled.id: labelled for labelled in load_queries()}
    assert [labelled.id for labelled in data.queries] == list(corpus)
    ids = {document.id for document in data.documents}
    for labelled in data.queries:
        answers = set(corpus[labelled.id].relevant)
        assert labelled.query == corpus[labelled.id].query
        assert labelled.relevant == tuple(
            document.id for document in data.documents if document.passage_id in answers
        )
        assert labelled.relevant
        assert len(labelled.candidates) == len(set(labelled.candidates)) == 10
        assert set(labelled.relevant) <= set(labelled.candidates) <= ids
    firsts = [labelled.candidates[0] in labelled.relevant for labelled in data.queries]
    assert sum(firsts) < len(firsts) / 3  # the answer is not simply the first candidate


# --------------------------------------------------------------------------- a model's limit


def test_a_deep_answer_is_never_seen_while_the_same_passage_alone_ranks_first(
    data: LongDocumentSet, truncating: LocalRerankServer
) -> None:
    for document in [d for d in data.documents if d.depth != "start"][:6]:
        labelled = next(q for q in data.queries if document.id in q.relevant)
        others = [data.document(i).text for i in labelled.candidates if i != document.id]

        seen = scores(truncating, labelled.query, [document.passage, document.text, *others])
        blind = scores(
            truncating, labelled.query, [document.passage, without_answer(document), *others]
        )

        # With or without its answer, every score is the same: the answer is not seen.
        assert seen == blind
        # The answer on its own beats every candidate, its own document included.
        assert seen[0] == max(seen) > seen[1], document.id


def test_an_answer_at_the_start_is_seen(
    data: LongDocumentSet, truncating: LocalRerankServer
) -> None:
    changed = 0
    for document in [d for d in data.documents if d.depth == "start"][:6]:
        labelled = next(q for q in data.queries if document.id in q.relevant)
        with_it = scores(truncating, labelled.query, [document.passage, document.text])
        blind = scores(truncating, labelled.query, [document.passage, without_answer(document)])
        changed += with_it[1] != blind[1]
    assert changed == 6


def test_chunking_finds_what_truncation_cannot(
    data: LongDocumentSet, truncating: LocalRerankServer
) -> None:
    """What the client's long-document strategies will be measured on, here with windows cut
    by the test itself: truncation sees only answers at the start, windows see them all."""
    with RerankClient(truncating.base_url, timeout=60) as client:

        def chunked(query: str, texts: list[str]) -> list[int]:
            windows, owners = [], []
            for index, text in enumerate(texts):
                words = text.split()
                for start in range(0, len(words), 250):
                    windows.append(" ".join(words[start : start + 300]))
                    owners.append(index)
            best: dict[int, float] = {}
            for result in client.rerank(query, windows).results:
                best.setdefault(owners[result.index], result.relevance_score)
            return sorted(best, key=lambda index: -best[index])

        truncated = evaluate_long_documents(client.rerank, data)
        windowed = evaluate_long_documents(chunked, data)

    assert truncated.queries == windowed.queries == len(data.queries)
    assert truncated.mrr_by_depth["start"] >= 0.8
    assert max(truncated.mrr_by_depth[depth] for depth in ("middle", "deep", "end")) < 0.6
    assert windowed.mrr_at_10 >= truncated.mrr_at_10 + 0.2
    assert windowed.hit_at_3 > truncated.hit_at_3


# --------------------------------------------------------------------------- the evaluation


def oracle(data: LongDocumentSet) -> Any:
    relevant = {labelled.query: set(labelled.relevant) for labelled in data.queries}
    candidates = {labelled.query: labelled.candidates for labelled in data.queries}

    def rank(query: str, texts: list[str]) -> list[int]:
        ids = candidates[query]
        assert texts == [data.document(i).text for i in ids]
        return sorted(range(len(ids)), key=lambda i: ids[i] not in relevant[query])

    return rank


def test_a_perfect_ranking_scores_one(data: LongDocumentSet) -> None:
    figures = evaluate_long_documents(oracle(data), data)
    assert (figures.mrr_at_10, figures.hit_at_3, figures.queries) == (1.0, 1.0, 55)
    assert figures.mrr_by_depth == dict.fromkeys(DEPTHS, 1.0)


def test_answers_may_be_responses_results_or_indexes(data: LongDocumentSet) -> None:
    perfect = oracle(data)

    def as_response(query: str, texts: list[str]) -> Any:
        results = [SimpleNamespace(index=i, relevance_score=0.5) for i in perfect(query, texts)]
        return SimpleNamespace(results=results)

    def as_results(query: str, texts: list[str]) -> Any:
        return as_response(query, texts).results

    for rerank in (as_response, as_results):
        assert evaluate_long_documents(rerank, data).mrr_at_10 == 1.0


def test_an_async_rerank_callable_works_from_sync_and_async_code(data: LongDocumentSet) -> None:
    perfect = oracle(data)
    in_flight = peak = 0

    async def arerank(query: str, texts: list[str]) -> list[int]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        return perfect(query, texts)

    assert evaluate_long_documents(arerank, data, concurrency=4).mrr_at_10 == 1.0
    assert 1 < peak <= 4
    bound = functools.partial(arerank)
    assert asyncio.run(aevaluate_long_documents(bound, data)).mrr_at_10 == 1.0

    async def from_a_running_loop() -> None:
        with pytest.raises(RuntimeError, match="aevaluate_long_documents"):
            evaluate_long_documents(arerank, data)

    asyncio.run(from_a_running_loop())


def test_a_reversed_ranking_scores_low_and_bad_answers_are_refused(
    data: LongDocumentSet,
) -> None:
    perfect = oracle(data)
    worst = evaluate_long_documents(lambda q, t: perfect(q, t)[::-1], data)
    assert worst.mrr_at_10 < 0.2
    assert worst.hit_at_3 == 0.0
    with pytest.raises(ValueError, match="distinct"):
        evaluate_long_documents(lambda q, t: [0, 0], data)
    with pytest.raises(TypeError, match="RerankResponse"):
        evaluate_long_documents(lambda q, t: None, data)


EXPECTED_DIGEST = "c0edb954cefa4d87"
