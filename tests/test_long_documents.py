"""Long documents and request budgets: no call is refused for its size, on both paths,
through the client and both adapters, against the local server's own limits."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from support import MockAPI, rank_body, run_mode

from rerank_integrations import BadRequestError, RerankClient, _budget
from rerank_integrations._budget import counter_for, estimate_tokens, windows
from rerank_integrations._constants import MAX_PLANS_AGAIN
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor
from rerank_integrations.server import count_tokens, serve_in_thread

FILLER = (
    "The harbour museum keeps old maps of the coast. Volunteers sort the letters of the "
    "lighthouse keepers by year. A small cafe sells tea and cake on weekends. "
)
NEEDLE = "To descale an espresso machine, run citric acid through the boiler and flush twice."
QUERY = "how do I descale my espresso machine"


def long_text(repeats: int, needle_at: int | None) -> str:
    """Filler text ``repeats`` sentences-groups long, the needle after group ``needle_at``."""
    parts = [FILLER] * repeats
    if needle_at is not None:
        parts.insert(needle_at, NEEDLE + " ")
    return "".join(parts)


def call(mode: str, client: RerankClient, *args: Any, **kwargs: Any) -> Any:
    return run_mode(
        mode, lambda: client.rerank(*args, **kwargs), lambda: client.arerank(*args, **kwargs)
    )


@pytest.fixture
def limited() -> Iterator[Any]:
    """A server that reads at most 64 tokens (query included) and refuses more, as TEI."""
    with serve_in_thread(max_tokens_per_document=64) as server:
        yield server


# -- long documents -------------------------------------------------------------------------


def test_server_mode_sends_as_is_and_the_refusal_says_what_to_do(mode: str, limited: Any) -> None:
    client = RerankClient(limited.base_url, max_retries=0)
    with pytest.raises(BadRequestError, match="long_documents='chunk' or 'truncate'"):
        call(mode, client, QUERY, [long_text(20, 15), "short"])
    client.close()


def test_chunking_finds_a_passage_deep_in_a_long_document(mode: str, limited: Any) -> None:
    deep = long_text(30, 25)
    documents = [long_text(30, None), deep, "Espresso tastes best fresh."]
    client = RerankClient(limited.base_url, max_tokens_per_document=64, long_documents="chunk")
    response = call(mode, client, QUERY, documents)
    assert response.results[0].index == 1
    span = response.results[0].span
    assert span is not None
    assert NEEDLE in deep[span[0] : span[1]]  # the span points at the winning passage
    assert response.results[0].document == deep  # the whole original, never a fragment
    assert response.windows > 3
    assert response.requests >= 1
    assert limited.stats.refused == {} or sum(limited.stats.refused.values()) == 0
    client.close()


def test_truncation_cuts_to_fit_and_misses_what_lies_deep(mode: str, limited: Any) -> None:
    deep = long_text(30, 25)
    documents = [deep, "Espresso tastes best fresh, ground just before brewing."]
    client = RerankClient(limited.base_url, max_tokens_per_document=64, long_documents="truncate")
    response = call(mode, client, QUERY, documents)
    by_index = {result.index: result for result in response.results}
    assert by_index[0].span is not None and by_index[0].span[0] == 0
    assert NEEDLE not in deep[: by_index[0].span[1]]
    assert by_index[1].span is None  # short enough: scored whole
    assert sum(limited.stats.refused.values()) == 0
    client.close()


def test_error_mode_refuses_before_sending(mode: str, limited: Any) -> None:
    client = RerankClient(limited.base_url, max_tokens_per_document=64, long_documents="error")
    with pytest.raises(ValueError, match=r"documents\[1\] is too long"):
        call(mode, client, QUERY, ["short", long_text(10, None)])
    assert limited.stats.requests == 0
    client.close()


def test_an_unknown_limit_is_learned_from_the_servers_refusal(mode: str, limited: Any) -> None:
    client = RerankClient(limited.base_url, long_documents="chunk")
    deep = long_text(30, 25)
    response = call(mode, client, QUERY, [long_text(30, None), deep])
    assert response.results[0].index == 1
    assert client._connection.learned.document_tokens == 64
    refused_once = sum(limited.stats.refused.values())
    call(mode, client, QUERY, [long_text(30, None), deep])
    assert sum(limited.stats.refused.values()) == refused_once  # later calls plan with it
    client.close()


def test_windows_of_every_document_are_merged_exactly(mode: str, limited: Any) -> None:
    documents = [long_text(12, i % 12 if i % 3 == 0 else None) for i in range(12)]
    documents += ["unrelated words", documents[0]]  # a copy gets the same score
    client = RerankClient(
        limited.base_url,
        max_tokens_per_document=64,
        long_documents="chunk",
        max_documents_per_request=7,
    )
    response = call(mode, client, QUERY, documents)
    assert sorted(result.index for result in response.results) == list(range(len(documents)))
    scores = {result.index: result.relevance_score for result in response.results}
    assert scores[0] == scores[13]
    with_needle = {i for i, text in enumerate(documents) if NEEDLE in text}
    assert {result.index for result in response.results[: len(with_needle)]} == with_needle
    top = response.results[0]
    assert top.span is not None and NEEDLE in documents[top.index][top.span[0] : top.span[1]]
    assert response.requests > 1
    client.close()


def test_top_n_with_chunks_keeps_the_best_documents(mode: str, limited: Any) -> None:
    documents = [long_text(20, None), long_text(20, 18), long_text(20, None)]
    client = RerankClient(limited.base_url, max_tokens_per_document=64, long_documents="chunk")
    response = call(mode, client, QUERY, documents, top_n=1)
    assert [result.index for result in response.results] == [1]
    client.close()


@pytest.mark.parametrize("adapter_class", [RerankCompressor, RerankPostprocessor])
def test_adapters_carry_the_winning_span(mode: str, limited: Any, adapter_class: Any) -> None:
    deep = long_text(30, 25)
    texts = [long_text(30, None), deep]
    adapter = adapter_class(
        base_url=limited.base_url,
        max_tokens_per_document=64,
        long_documents="chunk",
        top_n=1,
    )
    if adapter_class is RerankCompressor:
        documents = [Document(page_content=text, id=f"d{i}") for i, text in enumerate(texts)]
        out = run_mode(
            mode,
            lambda: adapter.compress_documents(documents, QUERY),
            lambda: adapter.acompress_documents(documents, QUERY),
        )
        best = out[0]
        text, metadata = best.page_content, best.metadata
        assert best.id == "d1"
    else:
        nodes = [NodeWithScore(node=TextNode(text=text)) for text in texts]
        out = run_mode(
            mode,
            lambda: adapter.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY)),
            lambda: adapter.apostprocess_nodes(nodes, query_bundle=QueryBundle(QUERY)),
        )
        text, metadata = out[0].node.get_content(), out[0].node.metadata
    assert text == deep
    start, end = metadata["relevance_span"]
    assert NEEDLE in deep[start:end]
    adapter.close()


# -- request budgets ----------------------------------------------------------------------


def many(count: int, words: int = 40) -> list[str]:
    return [f"document {i} " + " ".join(f"word{i}x{j}" for j in range(words)) for i in range(count)]


def test_a_byte_budget_is_kept(mode: str) -> None:
    with serve_in_thread(max_request_bytes=20_000) as server:
        client = RerankClient(server.base_url, max_request_bytes=20_000)
        response = call(mode, client, QUERY, many(200))
        assert len(response.results) == 200
        assert sum(server.stats.refused.values()) == 0
        assert response.requests > 1
        client.close()


def test_no_batch_is_a_byte_over_the_budget_whatever_the_top_n() -> None:
    # Batches are filled to the last byte, so the top_n field must be counted in their size.
    sizes: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sizes.append(len(request.content))
        ranked = [{"index": i, "relevance_score": 0.5} for i in range(len(body["documents"]))]
        return httpx.Response(200, json={"results": ranked[: body.get("top_n")]})

    documents = [f"document number {i:03d}" for i in range(60)]
    for limit in range(300, 400):
        for top_n in (None, 5, 59):
            pool = httpx.Client(transport=httpx.MockTransport(answer))
            client = RerankClient("http://rerank.test", max_request_bytes=limit, http_client=pool)
            sizes.clear()
            client.rerank(QUERY, documents, top_n=top_n)
            assert max(sizes) <= limit, (limit, top_n)


def test_an_unknown_byte_limit_is_learned_through_413s(mode: str) -> None:
    with serve_in_thread(max_request_bytes=20_000) as server:
        client = RerankClient(server.base_url)
        response = call(mode, client, QUERY, many(200))
        assert len(response.results) == 200
        first_refusals = sum(server.stats.refused.values())
        assert first_refusals >= 1  # nginx's 413, learned from
        assert client._connection.learned.bytes is not None
        assert client._connection.learned.bytes <= 20_000
        assert client._connection.learned.documents is None  # nginx named the body, not a count
        again = call(mode, client, QUERY, many(200))
        assert [r.index for r in again.results] == [r.index for r in response.results]
        assert sum(server.stats.refused.values()) == first_refusals  # no 413 the second time
        client.close()


def test_a_token_budget_per_request_is_kept_and_learned(mode: str) -> None:
    with serve_in_thread(max_tokens_per_request=3_000) as server:
        kept = RerankClient(server.base_url, max_tokens_per_request=3_000)
        assert len(call(mode, kept, QUERY, many(100)).results) == 100
        assert sum(server.stats.refused.values()) == 0
        learning = RerankClient(server.base_url)
        assert len(call(mode, learning, QUERY, many(100)).results) == 100
        assert sum(server.stats.refused.values()) >= 1
        kept.close()
        learning.close()


def test_one_document_over_a_budget_is_cut_to_fit(mode: str) -> None:
    with serve_in_thread(max_request_bytes=6_000) as server:
        client = RerankClient(server.base_url, max_request_bytes=6_000, long_documents="chunk")
        text = long_text(60, 50)
        response = call(mode, client, QUERY, ["short one", text])
        assert response.results[0].index == 1
        assert sum(server.stats.refused.values()) == 0
        client.close()


def test_budgets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANK_MAX_REQUEST_BYTES", "123456")
    monkeypatch.setenv("RERANK_MAX_TOKENS_PER_DOCUMENT", "512")
    monkeypatch.setenv("RERANK_LONG_DOCUMENTS", "chunk")
    settings_ = RerankClient("https://h").settings
    assert (settings_.max_request_bytes, settings_.max_tokens_per_document) == (123456, 512)
    assert settings_.long_documents == "chunk"
    monkeypatch.setenv("RERANK_MAX_REQUEST_BYTES", "lots")
    with pytest.raises(ValueError, match="RERANK_MAX_REQUEST_BYTES"):
        RerankClient("https://h")


def test_dialect_defaults_are_the_budget() -> None:
    zhipu = RerankClient("https://h", dialect="zhipu", model="m").settings
    assert (zhipu.max_documents_per_request, zhipu.max_characters_per_document) == (128, 4096)
    assert RerankClient("https://h", dialect="zeroentropy").settings.max_request_bytes == 5_000_000


def test_a_dialects_character_limit_cuts_long_documents(mode: str) -> None:
    received: list[dict[str, Any]] = []

    def handler(request: Any) -> Any:
        import httpx

        body = json.loads(request.content)
        received.append(body)
        results = [{"index": i, "relevance_score": 0.5} for i in range(len(body["documents"]))]
        return httpx.Response(200, json={"results": results})

    import httpx

    transport = httpx.MockTransport(handler)
    client = RerankClient(
        "https://h",
        dialect="zhipu",
        model="m",
        long_documents="truncate",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    call(mode, client, QUERY, ["x" * 10_000, "short"])
    assert max(len(text) for text in received[0]["documents"]) <= 4096


# -- counting tokens -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_the_estimate_never_counts_fewer_tokens_than_the_server(text: str) -> None:
    assert estimate_tokens(text) >= count_tokens(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_the_estimates_fast_paths_agree_with_the_piece_by_piece_one(text: str) -> None:
    assert estimate_tokens(text) == _budget._counted_by_piece(text)
    assert counter_for(None).ends(text) == _budget._ends_by_piece(text)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=2000), st.integers(2, 60), st.integers(0, 20))
def test_windows_fit_and_cover_the_text(text: str, room: int, overlap: int) -> None:
    counter = counter_for(None)
    cuts = windows(text, counter, room, min(overlap, room // 2))
    assert all(counter.count(text[c.start : c.end]) <= room or c.end - c.start == 1 for c in cuts)
    covered = set().union(*(range(c.start, c.end) for c in cuts))
    assert all(i in covered or char.isspace() for i, char in enumerate(text))


class _SameEstimate(_budget._Estimate):
    """The estimate, but not the shared instance: :func:`windows` walks every token end."""


#: Texts of the characters that steer the cuts: words short and long, marks, underscores,
#: sentence ends, line breaks and runs of white space of every kind.
ascii_texts = st.lists(
    st.one_of(
        st.text("ab", min_size=1, max_size=9),
        st.text("abcdefghij0123456789", min_size=10, max_size=80),
        st.sampled_from([" ", "  ", "\n", "\t", "\x1c", " \n ", ". ", "! ", "?\n", ",", "_", "-"]),
    ),
    max_size=300,
).map("".join)


def _assert_same_windows(text: str, room: int, overlap: int) -> None:
    overlap = min(overlap, room // 2)
    assert windows(text, counter_for(None), room, overlap) == windows(
        text, _SameEstimate(), room, overlap
    )


@settings(max_examples=1500, deadline=None)
@given(ascii_texts, st.integers(1, 70), st.integers(0, 40))
def test_ascii_windows_are_those_of_the_walk_over_every_token(
    text: str, room: int, overlap: int
) -> None:
    _assert_same_windows(text, room, overlap)


@pytest.mark.parametrize("room", [1, 2, 3, 4, 5, 7, 64, 509])
@pytest.mark.parametrize("overlap", [0, 1, 16, 32, 200])
def test_ascii_windows_of_long_texts_are_those_of_the_walk(room: int, overlap: int) -> None:
    rng = random.Random(room * 100 + overlap)
    words = ["".join(rng.choices("abcdefgh", k=rng.randint(1, 14))) for _ in range(500)]
    made_up = " ".join(rng.choices(words, k=3000))
    texts = [made_up, long_text(40, 7), "x" * 5000 + " end."]
    for text in texts:
        _assert_same_windows(text, room, overlap)


def test_a_tokenizer_function_counts_exactly(mode: str, limited: Any) -> None:
    counted: list[str] = []

    def by_words(text: str) -> int:
        counted.append(text)
        return count_tokens(text)  # the server's own rule: exact, not an estimate

    client = RerankClient(
        limited.base_url, max_tokens_per_document=64, long_documents="chunk", tokenizer=by_words
    )
    response = call(mode, client, QUERY, [long_text(30, None), long_text(30, 25)])
    assert response.results[0].index == 1
    assert counted
    assert sum(limited.stats.refused.values()) == 0
    with pytest.raises(TypeError, match="tokenizer"):
        RerankClient("https://h", tokenizer=42)
    client.close()


def test_a_server_that_keeps_lowering_its_limit_gets_its_refusal_raised(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    asked: list[int] = []

    def lower_each_time(request: httpx.Request) -> httpx.Response:
        asked.append(len(json.loads(request.content)["documents"]))
        if len(asked) > 50:  # an endless loop of new plans ends here, late, with an answer
            return httpx.Response(200, json=rank_body(json.loads(request.content)))
        limit = 400 - 10 * len(asked)
        error = f"Input validation error: `inputs` must have less than {limit} tokens. Given: 999"
        return httpx.Response(413, json={"error": error, "error_type": "Validation"})

    mock_api.queue(*[lower_each_time] * 60)
    client = make_client(long_documents="chunk", max_retries=0)
    with pytest.raises(BadRequestError, match="must have less than 360 tokens") as caught:
        call(mode, client, QUERY, [long_text(30, 25), "short"])
    assert len(asked) == 1 + MAX_PLANS_AGAIN
    assert f"again after {MAX_PLANS_AGAIN} new plans" in str(caught.value)
    assert client._connection.learned.document_tokens == 400 - 10 * MAX_PLANS_AGAIN
