"""Tests for the demo corpus, the hashing first stage and the ranking metrics.

The last group checks the point of the demo: a cheap first stage followed by a
lexical reranker (Okapi BM25 over the candidate set) ranks clearly better than
the first stage alone.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from rerank_integrations.demo import (
    LabelledQuery,
    Passage,
    _corpus,
    cosine,
    hashing_embedding,
    hashing_tokens,
    hit_at_k,
    hit_rate_at_k,
    load_passages,
    load_queries,
    mrr_at_k,
    reciprocal_rank,
)

CANDIDATES = 20
DIMENSIONS = 64

# --------------------------------------------------------------------------- corpus


def test_passages_load_and_are_well_formed() -> None:
    passages = load_passages()
    assert len(passages) >= 150
    assert all(isinstance(passage, Passage) for passage in passages)
    ids = [passage.id for passage in passages]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"p\d{3}", passage_id) for passage_id in ids)
    assert all(passage.text.strip() and passage.topic.strip() for passage in passages)


def test_corpus_covers_several_topics_and_languages() -> None:
    passages = load_passages()
    topics = Counter(passage.topic for passage in passages)
    assert len(topics) >= 5
    assert min(topics.values()) >= 20
    cjk = [p for p in passages if re.search(r"[\u4e00-\u9fff]", p.text)]
    spanish = [p for p in passages if re.search(r"[áéíóúñ¿]", p.text)]
    assert len(cjk) >= 3
    assert len(spanish) >= 3


def test_queries_load_and_labels_resolve() -> None:
    passage_ids = {passage.id for passage in load_passages()}
    queries = load_queries()
    assert len(queries) >= 25
    assert all(isinstance(query, LabelledQuery) for query in queries)
    ids = [query.id for query in queries]
    assert len(ids) == len(set(ids))
    for query in queries:
        assert query.query.strip()
        assert 1 <= len(query.relevant) <= 3
        assert set(query.relevant) <= passage_ids


def test_passage_and_query_are_frozen() -> None:
    passage = load_passages()[0]
    with pytest.raises(AttributeError):
        passage.text = "changed"  # type: ignore[misc]
    query = load_queries()[0]
    with pytest.raises(AttributeError):
        query.relevant = ()  # type: ignore[misc]


def _fake_files(
    monkeypatch: pytest.MonkeyPatch,
    passages: list[dict[str, object]],
    queries: list[dict[str, object]],
) -> None:
    files = {"passages.jsonl": passages, "queries.jsonl": queries}
    monkeypatch.setattr(_corpus, "_read_jsonl", lambda filename: files[filename])


_GOOD_PASSAGES: list[dict[str, object]] = [
    {"id": "p001", "topic": "coffee", "text": "Grind just before brewing."},
    {"id": "p002", "topic": "bicycle", "text": "Lube the chain after rain."},
]


def test_duplicate_passage_ids_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_files(monkeypatch, [*_GOOD_PASSAGES, {**_GOOD_PASSAGES[0], "text": "x"}], [])
    with pytest.raises(ValueError, match=r"duplicate ids: p001"):
        load_passages()


def test_unknown_relevant_id_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    queries: list[dict[str, object]] = [{"id": "q01", "query": "chain?", "relevant": ["p009"]}]
    _fake_files(monkeypatch, _GOOD_PASSAGES, queries)
    with pytest.raises(ValueError, match=r"q01.*unknown relevant passage ids: p009"):
        load_queries()


def test_duplicate_query_ids_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    query: dict[str, object] = {"id": "q01", "query": "chain?", "relevant": ["p002"]}
    _fake_files(monkeypatch, _GOOD_PASSAGES, [query, query])
    with pytest.raises(ValueError, match=r"duplicate ids: q01"):
        load_queries()


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"id": "q01", "query": "chain?", "relevant": []}, "'relevant'"),
        ({"id": "q01", "query": "chain?", "relevant": "p002"}, "'relevant'"),
        ({"id": "q01", "query": "  ", "relevant": ["p002"]}, "'query'"),
        ({"query": "chain?", "relevant": ["p002"]}, "'id'"),
    ],
)
def test_malformed_queries_are_rejected(
    monkeypatch: pytest.MonkeyPatch, record: dict[str, object], problem: str
) -> None:
    _fake_files(monkeypatch, _GOOD_PASSAGES, [record])
    with pytest.raises(ValueError, match=problem):
        load_queries()


def test_valid_fake_files_load(monkeypatch: pytest.MonkeyPatch) -> None:
    queries: list[dict[str, object]] = [
        {"id": "q01", "query": "chain?", "relevant": ["p002", "p002"]}
    ]
    _fake_files(monkeypatch, _GOOD_PASSAGES, queries)
    assert load_passages()[1] == Passage("p002", "bicycle", "Lube the chain after rain.")
    assert load_queries() == [LabelledQuery("q01", "chain?", ("p002",))]


# --------------------------------------------------------------------------- metrics


def test_reciprocal_rank_uses_first_relevant_position() -> None:
    ranking = ["a", "b", "c", "d"]
    assert reciprocal_rank(ranking, {"a"}) == 1.0
    assert reciprocal_rank(ranking, {"c"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranking, {"d", "b"}) == pytest.approx(1 / 2)


def test_reciprocal_rank_is_zero_without_hit_or_beyond_k() -> None:
    ranking = ["a", "b", "c", "d"]
    assert reciprocal_rank(ranking, {"z"}) == 0.0
    assert reciprocal_rank(ranking, set()) == 0.0
    assert reciprocal_rank([], {"a"}) == 0.0
    assert reciprocal_rank(ranking, {"d"}, k=3) == 0.0
    assert reciprocal_rank(ranking, {"c"}, k=3) == pytest.approx(1 / 3)


def test_mrr_at_k_averages_over_queries() -> None:
    runs = [
        (["a", "b", "c"], {"a"}),  # 1
        (["a", "b", "c"], {"b"}),  # 1/2
        (["a", "b", "c"], {"z"}),  # 0
        (["a", "b", "c", "d"], {"d"}),  # 1/4
    ]
    assert mrr_at_k(runs) == pytest.approx((1 + 0.5 + 0 + 0.25) / 4)
    assert mrr_at_k(runs, k=2) == pytest.approx((1 + 0.5) / 4)


def test_hit_at_k_and_hit_rate() -> None:
    ranking = ["a", "b", "c", "d"]
    assert hit_at_k(ranking, {"c"}) == 1.0
    assert hit_at_k(ranking, {"d"}) == 0.0
    assert hit_at_k(ranking, {"d"}, k=4) == 1.0
    assert hit_at_k(ranking, set()) == 0.0
    runs = [(ranking, {"a"}), (ranking, {"d"}), (ranking, {"x"}), (ranking, {"b", "x"})]
    assert hit_rate_at_k(runs) == pytest.approx(2 / 4)
    assert hit_rate_at_k(runs, k=1) == pytest.approx(1 / 4)
    assert hit_rate_at_k(runs, k=10) == pytest.approx(3 / 4)


@pytest.mark.parametrize(
    "metric",
    [
        lambda: reciprocal_rank(["a"], {"a"}, k=0),
        lambda: hit_at_k(["a"], {"a"}, k=0),
        lambda: mrr_at_k([]),
        lambda: hit_rate_at_k([]),
    ],
)
def test_metrics_reject_bad_input(metric: Callable[[], float]) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        metric()


# --------------------------------------------------------------------------- embedding


def test_embedding_is_deterministic_normalized_and_sized() -> None:
    text = "Grind the coffee beans just before brewing."
    first = hashing_embedding(text)
    assert first == hashing_embedding(text)
    assert len(first) == 64
    assert math.sqrt(sum(x * x for x in first)) == pytest.approx(1.0)
    assert len(hashing_embedding(text, dimensions=16)) == 16
    assert len(hashing_embedding(text, dimensions=1)) == 1


def test_embedding_is_case_insensitive_and_stable_across_runs() -> None:
    assert hashing_embedding("French Press") == hashing_embedding("french press")
    # CRC-32 based, so the vector does not depend on PYTHONHASHSEED; pin one value.
    vector = hashing_embedding("coffee", dimensions=8)
    assert sum(1 for x in vector if x != 0.0) == 1
    assert max(abs(x) for x in vector) == pytest.approx(1.0)


def test_embedding_of_empty_text_is_zero_and_bad_dimensions_fail() -> None:
    assert hashing_embedding("  ...  ", dimensions=4) == [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="dimensions"):
        hashing_embedding("text", dimensions=0)


def test_hashing_tokens_split_words_and_cjk_characters() -> None:
    assert hashing_tokens("Hello, World!") == ["hello", "world"]
    assert hashing_tokens("手冲咖啡 V60") == ["手", "冲", "咖", "啡", "v60"]


def test_cosine() -> None:
    assert cosine([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert cosine([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    assert cosine([0.0, 0.0], [1.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="length"):
        cosine([1.0], [1.0, 2.0])
    related = cosine(hashing_embedding("coffee beans"), hashing_embedding("coffee beans"))
    assert related == pytest.approx(1.0)


# --------------------------------------------------------------------------- reranking

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def _bm25_tokens(text: str) -> list[str]:
    """NFKC + casefold; ``\\w+`` words, with CJK runs split into character bigrams."""
    tokens: list[str] = []
    for word in re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()):
        position = 0
        for match in _CJK_RUN.finditer(word):
            if match.start() > position:
                tokens.append(word[position : match.start()])
            run = match.group()
            if len(run) == 1:
                tokens.append(run)
            else:
                tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
            position = match.end()
        if position < len(word):
            tokens.append(word[position:])
    return tokens


def _lexicon() -> tuple[frozenset[str], dict[str, str]]:
    """The package's stop words and spelling variants; none where they cannot be imported."""
    try:
        from rerank_integrations.server._lexicon import SPELLING_VARIANTS, STOP_WORDS
    except ImportError:
        return frozenset(), {}
    return STOP_WORDS, SPELLING_VARIANTS


def _bm25_terms(text: str) -> list[str]:
    """The tokens without stop words, British spellings folded into American ones."""
    stop_words, variants = _lexicon()
    return [variants.get(token, token) for token in _bm25_tokens(text) if token not in stop_words]


def _reference_bm25(
    query: str, documents: Sequence[str], k1: float = 1.2, b: float = 0.75
) -> list[float]:
    """Okapi BM25 of ``query`` against each document, statistics taken over ``documents``."""
    docs = [Counter(_bm25_terms(document)) for document in documents]
    lengths = [sum(doc.values()) for doc in docs]
    count = len(docs)
    average = sum(lengths) / count if count else 0.0
    document_frequency: Counter[str] = Counter()
    for doc in docs:
        document_frequency.update(doc.keys())
    scores = []
    for doc, length in zip(docs, lengths, strict=True):
        score = 0.0
        for term in set(_bm25_terms(query)):
            frequency = doc.get(term, 0)
            if not frequency:
                continue
            df = document_frequency[term]
            idf = math.log(1.0 + (count - df + 0.5) / (df + 0.5))
            norm = 1.0 - b + b * (length / average if average else 0.0)
            score += idf * frequency * (k1 + 1.0) / (frequency + k1 * norm)
        scores.append(score)
    return scores


def _package_bm25() -> Callable[[str, Sequence[str]], list[float]] | None:
    """Return the package's own BM25 scorer, or None where it cannot be imported."""
    try:
        from rerank_integrations.server._bm25 import bm25_scores
    except ImportError:
        return None
    return bm25_scores


def _scorer(name: str) -> Callable[[str, Sequence[str]], list[float]]:
    if name == "reference":
        return _reference_bm25
    scorer = _package_bm25()
    if scorer is None:
        pytest.skip("rerank_integrations.server._bm25 is not importable")
    return scorer


def test_reference_bm25_prefers_rare_matching_terms() -> None:
    documents = ["the coffee is hot", "the bike chain", "the chain and the coffee chain"]
    scores = _reference_bm25("chain", documents)
    assert scores[0] == 0.0
    assert scores[1] > 0.0
    assert scores[2] > 0.0
    assert _bm25_tokens("手冲咖啡 Café") == ["手冲", "冲咖", "咖啡", "café"]


def _first_stage_and_reranked(
    bm25: Callable[[str, Sequence[str]], list[float]],
) -> tuple[list[tuple[list[str], set[str]]], list[tuple[list[str], set[str]]]]:
    passages = load_passages()
    vectors = [hashing_embedding(passage.text, DIMENSIONS) for passage in passages]
    before: list[tuple[list[str], set[str]]] = []
    after: list[tuple[list[str], set[str]]] = []
    for query in load_queries():
        query_vector = hashing_embedding(query.query, DIMENSIONS)
        similarities = [cosine(query_vector, vector) for vector in vectors]
        order = sorted(range(len(passages)), key=lambda i: (-similarities[i], i))[:CANDIDATES]
        candidates = [passages[i] for i in order]
        scores = bm25(query.query, [candidate.text for candidate in candidates])
        reranked = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
        relevant = set(query.relevant)
        before.append(([candidate.id for candidate in candidates], relevant))
        after.append(([candidates[i].id for i in reranked], relevant))
    return before, after


def test_package_bm25_matches_the_reference() -> None:
    scorer = _scorer("package")
    documents = [passage.text for passage in load_passages()]
    for query in load_queries()[:10]:
        expected = _reference_bm25(query.query, documents)
        assert scorer(query.query, documents) == pytest.approx(expected)


@pytest.mark.parametrize("scorer_name", ["reference", "package"])
def test_reranking_clearly_improves_the_cheap_first_stage(scorer_name: str) -> None:
    before, after = _first_stage_and_reranked(_scorer(scorer_name))
    recall = hit_rate_at_k(before, k=CANDIDATES)
    mrr_before, mrr_after = mrr_at_k(before, k=10), mrr_at_k(after, k=10)
    hit_before, hit_after = hit_rate_at_k(before, k=3), hit_rate_at_k(after, k=3)
    assert recall >= 0.9
    assert 0.25 <= mrr_before <= 0.65
    assert mrr_after >= 0.75
    assert mrr_after - mrr_before >= 0.2
    assert hit_after - hit_before >= 0.2
