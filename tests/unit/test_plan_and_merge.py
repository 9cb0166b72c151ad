"""Planning a call into requests and merging their answers, at the edges a mutant would move:
the best ``top_n`` out of many results, the mean of a chunked document's windows, each
request's ``top_n`` against its documents, and batches packed to exactly their byte and token
limits (one byte over, or one token early, fails)."""

from __future__ import annotations

import dataclasses
import gc
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from support import MockAPI, run_mode

from rerank_integrations import RerankClient, RerankResponse
from rerank_integrations import _plan as plan_module
from rerank_integrations._budget import counter_for
from rerank_integrations._codec import BatchRanking
from rerank_integrations._documents import IMAGE_TOKENS, Image, Record
from rerank_integrations._exceptions import ResponseFormatError
from rerank_integrations._merge import joined, merge_pages, merge_rankings
from rerank_integrations._plan import (
    Budget,
    Parts,
    RerankPlan,
    document_tokens,
    plan_rerank,
    stream_plan,
)

QUERY_TEXT = "which window"


def call(mode: str, client: RerankClient, *args: Any, **kwargs: Any) -> RerankResponse:
    return run_mode(
        mode,
        lambda: client.rerank(*args, **kwargs),
        lambda: client.arerank(*args, **kwargs),
    )


def sent(mock_api: MockAPI) -> list[tuple[int, int | None]]:
    """(documents, top_n) of every request, in the order received."""
    return [(len(body["documents"]), body.get("top_n")) for body in mock_api.bodies]


def words(text: str) -> int:
    return len(text.split())


# -- merging: the best top_n, whichever path ranks them -------------------------------------


@pytest.mark.parametrize("top_n", [1, 3, 10, 24, 25, 100])
@pytest.mark.parametrize("seed", range(5))
def test_the_top_n_returned_are_the_best_by_score(top_n: int, seed: int) -> None:
    # 100 documents in batches of 7: top_n * 4 < 100 takes the heap path, larger ones sort.
    rng = random.Random(seed)
    documents = [f"document {number}" for number in range(100)]
    plan = plan_rerank("query", documents, top_n, Budget(max_documents=7))
    scores = [round(rng.random(), 2) for _ in documents]  # rounded: ties happen
    rankings = [
        BatchRanking(
            pairs=[(local, scores[batch.start + local]) for local in range(len(batch.texts))],
            model=None,
            total_tokens=None,
            billed_units=None,
        )
        for batch in plan.batches
    ]
    response = merge_rankings(plan, rankings, None)

    # Best first; ties in the caller's order.
    expected = sorted(range(100), key=lambda index: (-scores[index], index))[:top_n]
    assert [result.index for result in response.results] == expected
    assert [result.relevance_score for result in response.results] == [
        scores[index] for index in expected
    ]


def test_a_repeated_text_counts_for_each_of_its_places_on_the_heap_path() -> None:
    documents = ["alpha", "beta", "alpha", *(f"filler {n}" for n in range(20))]
    plan = plan_rerank("query", documents, 2, Budget(max_documents=5))
    scores = {"alpha": 0.9, "beta": 0.8}
    rankings = [
        BatchRanking(
            pairs=[(local, scores.get(text, 0.1)) for local, text in enumerate(batch.texts)],
            model=None,
            total_tokens=None,
            billed_units=None,
        )
        for batch in plan.batches
    ]
    response = merge_rankings(plan, rankings, None)
    assert [(r.index, r.relevance_score) for r in response.results] == [(0, 0.9), (2, 0.9)]


# -- chunk_aggregate="mean" -----------------------------------------------------------------


@pytest.mark.parametrize(("aggregate", "expected"), [("mean", 0.5), ("max", 0.9)])
def test_a_chunked_document_scores_the_mean_or_the_best_of_its_windows(
    aggregate: str, expected: float
) -> None:
    long_document = " ".join(f"word{number}" for number in range(40))
    budget = Budget(
        max_documents=100,
        max_document_tokens=14,
        long_documents="chunk",
        aggregate=aggregate,
        counter=counter_for(words),
    )
    plan = plan_rerank("query", ["short one", long_document], None, budget)
    assert plan.parts is not None and plan.windows >= 3
    # The windows score 0.9, 0.1, then 0.5 each: their mean is 0.5 only if every window
    # counts once; the short document scores 0.3.
    windows_of_long = [
        position
        for position, places in enumerate(plan.parts)
        if any(index == 1 for index, _, _ in places)
    ]
    assert len(windows_of_long) == len(plan.texts) - 1
    scores = dict.fromkeys(range(len(plan.texts)), 0.3)
    mean_parts = [0.9, 0.1] + [0.5] * (len(windows_of_long) - 2)
    for position, score in zip(windows_of_long, mean_parts, strict=True):
        scores[position] = score
    ranking = BatchRanking(
        pairs=[(local, scores[local]) for local in range(len(plan.texts))],
        model=None,
        total_tokens=None,
        billed_units=None,
    )
    response = merge_rankings(plan, [ranking], None)
    by_index = {result.index: result.relevance_score for result in response.results}
    assert by_index[1] == pytest.approx(expected)
    assert by_index[0] == pytest.approx(0.3)


def test_chunk_aggregate_mean_through_the_client(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    long_document = " ".join(["spider"] * 5 + ["filler"] * 40)
    results = {}
    for aggregate in ("max", "mean"):
        client = make_client(
            max_tokens_per_document=12,
            long_documents="chunk",
            chunk_aggregate=aggregate,
            tokenizer=words,
        )
        response = call(mode, client, "spider", ["spider web", long_document])
        results[aggregate] = {r.index: r.relevance_score for r in response.results}
        assert response.windows > 2
    # The first window holds every "spider": its best is its own; the mean is lower.
    assert results["mean"][1] < results["max"][1]
    assert results["mean"][0] == results["max"][0]


# -- each request's top_n, and batches packed to their limits --------------------------------


@pytest.mark.parametrize(
    ("settings", "top_n", "expected"),
    [
        # tokens: "document 001" is 2 words, the query 1 more per document
        ({"max_tokens_per_request": 15}, 5, [(5, 5), (5, 5), (5, 5), (5, 5), (4, 4)]),
        ({"max_tokens_per_request": 14}, 5, [(4, 4)] * 6),  # one token short of five
        ({"max_tokens_per_request": 15}, 2, [(5, 2), (5, 2), (5, 2), (5, 2), (4, 2)]),
        ({"max_tokens_per_request": 9}, 5, [(3, 3)] * 8),
        ({"max_documents_per_request": 5}, 7, [(5, 5), (5, 5), (5, 5), (5, 5), (4, 4)]),
        ({"max_request_bytes": 120}, 6, None),  # by bytes: checked below
    ],
)
def test_no_request_asks_for_more_results_than_it_sends_documents(
    mode: str,
    make_client: Callable[..., RerankClient],
    mock_api: MockAPI,
    settings: dict[str, Any],
    top_n: int,
    expected: list[tuple[int, int | None]] | None,
) -> None:
    documents = [f"document {number:03d}" for number in range(24)]
    client = make_client(tokenizer=words, **settings)
    response = call(mode, client, "query", documents, top_n=top_n)
    requests = sent(mock_api)
    if expected is not None:  # the batches go out concurrently: in any order
        assert sorted(requests) == sorted(expected)
    assert len(requests) > 1
    assert all(top <= count for count, top in requests if top is not None)
    assert len(response.results) == top_n
    if "max_request_bytes" in settings:
        assert all(len(r.content) <= settings["max_request_bytes"] for r in mock_api.requests)


@pytest.mark.parametrize(("top_n", "expected"), [(7, [5, 5, 5, 5, 4]), (3, [3, 3, 3, 3, 3])])
def test_each_batch_of_a_count_budget_asks_for_at_most_its_documents(
    top_n: int, expected: list[int]
) -> None:
    documents = [f"document {number:03d}" for number in range(24)]
    plan = plan_rerank("query", documents, top_n, Budget(max_documents=5))
    assert [batch.top_n for batch in plan.batches] == expected
    assert [len(batch.texts) for batch in plan.batches] == [5, 5, 5, 5, 4]


@pytest.mark.parametrize("limit", ["max_bytes", "max_tokens"])
def test_every_batch_holds_max_documents_when_bytes_or_tokens_also_bound(limit: str) -> None:
    """The document count starts again at each batch: with room to spare in bytes or tokens,
    every batch, not only the first, holds exactly ``max_documents``."""
    documents = [f"text {number:05d}" for number in range(10)]
    budget = Budget(max_documents=4, **{limit: 10**6}, counter=counter_for(words))
    plan = plan_rerank("query", documents, None, budget)
    assert [list(batch.texts) for batch in plan.batches] == [
        documents[0:4],
        documents[4:8],
        documents[8:10],
    ]


def _bytes_budget(limit: int) -> Budget:
    # A body of 40 bytes with no document; each document adds its text and 3 bytes.
    return Budget(max_documents=1000, max_bytes=limit, body_bytes=40, document_bytes=3)


@pytest.mark.parametrize(
    ("limit", "per_batch"),
    [
        (40 + 5 * 13, 5),  # five documents of 10 characters fill it to the byte
        (40 + 5 * 13 - 1, 4),  # one byte short of five
        (40 + 5 * 13 + 12, 5),  # one byte short of six
        (40 + 6 * 13, 6),
    ],
)
def test_batches_are_packed_to_the_byte(limit: int, per_batch: int) -> None:
    documents = [f"text {number:05d}" for number in range(30)]  # 10 characters each
    plan = plan_rerank("query", documents, 3, _bytes_budget(limit))
    sizes = [len(batch.texts) for batch in plan.batches]
    full, rest = divmod(30, per_batch)
    assert sizes == [per_batch] * full + ([rest] if rest else [])
    assert all(batch.top_n == min(3, len(batch.texts)) for batch in plan.batches)


@pytest.mark.parametrize(
    ("limit", "per_batch"),
    [
        (5 * 3, 5),  # each document 2 tokens and the query's 1: five fill it exactly
        (5 * 3 - 1, 4),  # one token short
        (5 * 3 + 2, 5),
        (6 * 3, 6),
    ],
)
def test_batches_are_packed_to_the_token(limit: int, per_batch: int) -> None:
    documents = [f"document {number:03d}" for number in range(30)]
    budget = Budget(max_documents=1000, max_tokens=limit, counter=counter_for(words))
    plan = plan_rerank("query", documents, 2, budget)
    sizes = [len(batch.texts) for batch in plan.batches]
    full, rest = divmod(30, per_batch)
    assert sizes == [per_batch] * full + ([rest] if rest else [])
    assert all(batch.top_n == 2 for batch in plan.batches)


def test_bytes_and_tokens_both_bound_a_batch() -> None:
    documents = [f"text {number:05d}" for number in range(30)]
    # Bytes allow 5, tokens 4 (2 + 1 each): tokens win; then the other way round.
    by_tokens = Budget(
        max_documents=1000,
        max_bytes=40 + 5 * 13,
        body_bytes=40,
        document_bytes=3,
        max_tokens=12,
        counter=counter_for(words),
    )
    assert {len(b.texts) for b in plan_rerank("q", documents, None, by_tokens).batches} == {4, 2}
    by_bytes = Budget(
        max_documents=1000,
        max_bytes=40 + 3 * 13,
        body_bytes=40,
        document_bytes=3,
        max_tokens=30,
        counter=counter_for(words),
    )
    assert {len(b.texts) for b in plan_rerank("q", documents, None, by_bytes).batches} == {3}


# -- both token caps: windows sized to the smaller --------------------------------------------


@pytest.mark.parametrize(
    ("per_document", "per_request"), [(12, 40), (40, 12), (12, 12), (None, 12), (12, None)]
)
def test_windows_are_sized_to_the_smaller_token_cap(
    per_document: int | None, per_request: int | None
) -> None:
    long_document = " ".join(f"word{number}" for number in range(60))
    budget = Budget(
        max_documents=100,
        max_document_tokens=per_document,
        max_tokens=per_request,
        long_documents="chunk",
        counter=counter_for(words),
    )
    plan = plan_rerank("a query", [long_document], None, budget)
    # Room for a window: the smaller cap less the query (2 words) and 3 special tokens.
    room = min(cap for cap in (per_document, per_request) if cap is not None) - 2 - 3
    counts = [words(text) for text in plan.texts if isinstance(text, str)]
    assert max(counts) == room  # as large as allowed, no larger
    assert len(counts) == -(-60 // room)


def test_windows_through_the_client_obey_the_smaller_cap(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    long_document = " ".join(f"word{number}" for number in range(60))
    client = make_client(
        max_tokens_per_document=12,
        max_tokens_per_request=40,
        long_documents="chunk",
        tokenizer=words,
    )
    call(mode, client, "a query", [long_document])
    texts = [text for body in mock_api.bodies for text in body["documents"]]
    assert max(words(text) for text in texts) == 12 - 2 - 3
    for body in mock_api.bodies:
        assert sum(words(text) + 2 for text in body["documents"]) <= 40
    assert json.dumps(mock_api.bodies)  # every body was JSON


# -- pages of one answer, halves of one batch -------------------------------------------------


def test_the_pages_of_an_answer_make_one_ranking() -> None:
    pages = [
        BatchRanking([(2, 0.9), (0, 0.5)], None, 10, None, requests=1, input_tokens=None),
        BatchRanking([(1, 0.7)], "model-a", 5, 2.0, requests=1, input_tokens=7),
        BatchRanking([(3, 0.1)], "model-b", None, 1.5, requests=2, input_tokens=3),
    ]
    merged = merge_pages(pages, 4)
    assert merged.pairs == [(2, 0.9), (0, 0.5), (1, 0.7), (3, 0.1)]
    assert merged.model == "model-a"  # the first page that names one
    assert (merged.total_tokens, merged.billed_units, merged.input_tokens) == (15, 3.5, 10)
    assert merged.requests == 4
    nothing = merge_pages([BatchRanking([(0, 0.5)], None, None, None)], 1)
    assert (nothing.model, nothing.total_tokens, nothing.billed_units) == (None, None, None)
    assert nothing.input_tokens is None


def test_an_index_on_two_pages_is_refused() -> None:
    pages = [
        BatchRanking([(0, 0.5), (1, 0.4)], None, None, None),
        BatchRanking([(1, 0.3)], None, None, None),
    ]
    with pytest.raises(ResponseFormatError, match="index 1 appears on more than one page"):
        merge_pages(pages, 3)


def test_two_halves_of_a_batch_make_its_ranking() -> None:
    first = BatchRanking([(1, 0.8), (0, 0.2)], None, 4, None, sent_bytes=90, requests=1)
    second = BatchRanking(
        [(0, 0.6), (2, 0.4)], "model-b", 6, 1.0, sent_bytes=120, requests=2, input_tokens=5
    )
    whole = joined(first, second, 2)
    assert whole.pairs == [(1, 0.8), (0, 0.2), (2, 0.6), (4, 0.4)]
    assert whole.model == "model-b"  # the first half named none
    assert (whole.total_tokens, whole.billed_units, whole.input_tokens) == (10, 1.0, 5)
    assert (whole.sent_bytes, whole.requests) == (120, 3)
    named = joined(BatchRanking([], "model-a", None, None), second, 0)
    assert named.model == "model-a"


# -- long_documents="error": refused before any request, saying what was allowed -------------


@pytest.mark.parametrize(
    ("limits", "allowed"),
    [
        # 20 tokens less the query's one and the model's three around it
        ({"max_document_tokens": 20}, "a document may have 16 tokens)"),
        ({"max_document_characters": 30}, "a document may have 30 characters)"),
        (
            {"max_document_tokens": 20, "max_document_characters": 300},
            "a document may have 16 tokens and 300 characters)",
        ),
    ],
)
def test_a_document_too_long_is_refused_with_what_was_allowed(
    limits: dict[str, int], allowed: str
) -> None:
    documents = ["short one", "word " * 40]
    budget = Budget(max_documents=10, long_documents="error", counter=counter_for(words), **limits)
    with pytest.raises(ValueError, match=r"^documents\[1\] is too long") as refused:
        plan_rerank("query", documents, None, budget)
    message = str(refused.value)
    assert message.startswith("documents[1] is too long to send (200 characters, about 40 tokens;")
    assert allowed in message
    assert message.endswith("set long_documents='chunk' or 'truncate'")


@pytest.mark.parametrize("long_documents", ["chunk", "truncate"])
def test_documents_sent_again_are_cut_as_the_first_time(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI, long_documents: str
) -> None:
    # The client keeps where it cut each text (and that a text fits): a second call reads
    # that back, and must send and rank every document as the first did.
    documents = ["a short text", " ".join(f"word{number}" for number in range(40)), "fits too"]
    client = make_client(max_tokens_per_document=12, long_documents=long_documents, tokenizer=words)
    first = call(mode, client, "a query", documents)
    sent_first = list(mock_api.bodies)
    mock_api.requests.clear()
    second = call(mode, client, "a query", documents)
    assert mock_api.bodies == sent_first
    assert sorted(result.index for result in second.results) == [0, 1, 2]
    assert [(r.index, r.relevance_score) for r in second.results] == [
        (r.index, r.relevance_score) for r in first.results
    ]


@pytest.mark.parametrize(("top_n", "expected"), [(2, [0, 1]), (None, list(range(9)))])
def test_ties_keep_the_callers_order_on_either_path(top_n: int | None, expected: list[int]) -> None:
    # Nine documents, every score the same: top_n=2 (2 * 4 < 9) takes the heap path, no
    # top_n the sort. The repeated "x" (0 and 2) is scored as one text, its copy listed next
    # to it: ties must still come in the caller's order, 0 then 1, not 0 then 2.
    documents = ["x", "y", "x", "z", "w", "v", "u", "t", "s"]
    plan = plan_rerank("query", documents, top_n, Budget(max_documents=100))
    rankings = [
        BatchRanking([(local, 0.5) for local in range(len(batch.texts))], None, None, None)
        for batch in plan.batches
    ]
    response = merge_rankings(plan, rankings, None)
    assert [result.index for result in response.results] == expected


def test_an_image_counts_its_share_of_tokens_and_a_record_its_text() -> None:
    counter = counter_for(words)
    assert document_tokens(counter, Image(url="https://h.test/cat.png")) == IMAGE_TOKENS
    record = Record.of({"title": "Pie", "text": "apple pie"}, 0)
    assert document_tokens(counter, record) == words(record.rendered(None))
    assert document_tokens(counter, "three words here") == 3


@pytest.mark.parametrize("aggregate", ["max", "mean"])
@pytest.mark.parametrize("best", [0, 1, -1])
def test_a_chunked_document_points_at_its_best_window(aggregate: str, best: int) -> None:
    long_document = " ".join(f"word{number}" for number in range(40))
    budget = Budget(
        max_documents=100,
        max_document_tokens=14,
        long_documents="chunk",
        aggregate=aggregate,
        counter=counter_for(words),
    )
    plan = plan_rerank("query", ["short one", long_document], None, budget)
    assert plan.parts is not None
    windows = [places[0][1:] for places in plan.parts if places[0][0] == 1]
    assert len(windows) >= 3
    # Every window scores 0.4 but the best one 0.8, and the last one 0.8 too: on a tie the
    # first best window is the one pointed at.
    best_window = windows[best]
    scores = [
        0.3 if places[0][0] == 0 else (0.8 if places[0][1:] in (best_window, windows[-1]) else 0.4)
        for places in plan.parts
    ]
    ranking = BatchRanking(list(enumerate(scores)), None, None, None)
    results = {r.index: r for r in merge_rankings(plan, [ranking], None).results}
    assert results[1].span == best_window  # where to look in the long document
    assert results[0].span is None  # scored whole: no span to point at


def test_the_model_is_the_first_a_batch_names() -> None:
    plan = plan_rerank("query", [f"text {number}" for number in range(4)], None, Budget(2))
    rankings = [
        BatchRanking([(0, 0.5), (1, 0.4)], "model-a", None, None),
        BatchRanking([(0, 0.3), (1, 0.2)], "model-b", None, None),
    ]
    assert merge_rankings(plan, rankings, "asked").model == "model-a"
    unnamed = [BatchRanking(ranking.pairs, None, None, None) for ranking in rankings]
    assert merge_rankings(plan, unnamed, "asked").model == "asked"


def test_parts_read_as_a_list_of_places_per_text() -> None:
    """:class:`Parts` reads as the list of each text's places: the first kept flat, further
    ones after it in order, by position (negative too) and by slice."""
    parts = Parts([[(0, 0, 5)], [(1, 2, 9), (3, 2, 9)]])
    parts.add(4, 10, 20)
    parts.extend_at(0, [(2, 0, 5)])
    parts.extend_at(0, [(5, 0, 5)])
    expected = [[(0, 0, 5), (2, 0, 5), (5, 0, 5)], [(1, 2, 9), (3, 2, 9)], [(4, 10, 20)]]
    assert len(parts) == 3
    assert list(parts) == expected
    assert parts == expected and expected == parts
    assert parts != expected[:2] and parts != [*expected[:2], [(4, 10, 21)]]
    assert parts[-1] == [(4, 10, 20)] and parts[1:] == expected[1:]
    assert repr(parts) == f"Parts({expected!r})"
    with pytest.raises(IndexError):
        parts[3]
    with pytest.raises(ValueError, match="at least one place"):
        parts.append([])


def test_parts_keep_only_further_places_apart() -> None:
    """A text of one place adds nothing beside the three columns; a negative position reads
    the further places of the text it names; anything but a sequence is simply unequal."""
    parts = Parts([[(0, 0, 5)], [(1, 0, 3)], [(2, 4, 8), (6, 4, 8)]])
    owners, starts, ends, further = parts.columns()
    assert (list(owners), list(starts), list(ends)) == ([0, 1, 2], [0, 0, 4], [5, 3, 8])
    assert further == {2: [(6, 4, 8)]}
    assert parts[-1] == [(2, 4, 8), (6, 4, 8)] and parts[-3] == [(0, 0, 5)]
    assert parts != 5 and parts != object() and parts != "abc"


@pytest.mark.parametrize("streamed", [False, True])
def test_a_chunked_plan_holds_no_object_a_window(
    streamed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The places of thousands of windows are kept in a few flat arrays, not a list and a
    tuple a window that every full pass of the garbage collector would walk (a stall of an
    event loop)."""
    texts = [" ".join(f"w{number}x{index}" for number in range(2000)) for index in range(6)]
    texts.append(texts[0])  # a copy: its places are kept beside the first's
    budget = Budget(max_documents=1000, max_document_tokens=40, long_documents="chunk")
    if streamed:
        monkeypatch.setattr(plan_module, "STREAM_CHARACTERS", 0)
        stream = stream_plan(plan_rerank(QUERY_TEXT, texts, None, 1000), budget)
        assert stream is not None
        while stream.next_batch() is not None:
            pass
        plan = stream.plan
    else:
        plan = plan_rerank(QUERY_TEXT, texts, None, budget)
    assert isinstance(plan.parts, Parts) and plan.windows > 1000
    held = [item for item in gc.get_referents(plan.parts) if not isinstance(item, type)]
    assert len(held) == 4  # three arrays and the dict of further places
    further = next(item for item in held if isinstance(item, dict))
    # Only the copy's windows have a further place.
    assert len(further) == len(plan.parts) // 6
    assert all(places == [(6, *places[0][1:])] for places in further.values())


@pytest.mark.parametrize("aggregate", ["max", "mean"])
def test_merge_reads_the_same_places_from_parts_or_lists(aggregate: str) -> None:
    """A chunked plan's places merge alike whether kept as :class:`Parts` or as lists: a
    copied document's windows count for the copy too, a piece found in two documents for
    both, and each document's best window is the span it points at."""
    shared = "A sentence both documents hold, word for word and long enough. " * 3
    texts = [
        shared + " ".join(f"one{number}" for number in range(60)),
        " ".join(f"two{number}" for number in range(60)) + ". " + shared,
    ]
    texts.append(texts[0])
    budget = Budget(
        max_documents=7, max_document_tokens=30, long_documents="chunk", aggregate=aggregate
    )
    plan = plan_rerank(QUERY_TEXT, texts, None, budget)
    assert isinstance(plan.parts, Parts) and any(len(places) > 1 for places in plan.parts)
    rng = random.Random(5)
    rankings = [
        BatchRanking([(local, rng.random()) for local in range(len(batch.texts))], None, None, None)
        for batch in plan.batches
    ]
    as_lists = dataclasses.replace(plan, parts=[list(places) for places in plan.parts])
    ours, theirs = merge_rankings(plan, rankings, None), merge_rankings(as_lists, rankings, None)
    assert [(r.index, r.relevance_score, r.span) for r in ours.results] == [
        (r.index, r.relevance_score, r.span) for r in theirs.results
    ]
    assert ours.results[0].relevance_score > 0 and {r.index for r in ours.results} == {0, 1, 2}


@pytest.mark.parametrize("tied", [False, True])
def test_a_copied_long_document_scores_and_points_as_its_first(tied: bool) -> None:
    """The copy of a cut document gets the very score and span its first holds, ties
    included: of windows scored alike, the first is the span for both."""
    first = " ".join(f"word{number}" for number in range(200))
    texts = [first, " ".join(f"other{number}" for number in range(200)), first]
    budget = Budget(max_documents=100, max_document_tokens=30, long_documents="chunk")
    plan = plan_rerank(QUERY_TEXT, texts, None, budget)
    rng = random.Random(11)
    rankings = [
        BatchRanking(
            [(local, 0.5 if tied else rng.random()) for local in range(len(batch.texts))],
            None,
            None,
            None,
        )
        for batch in plan.batches
    ]
    results = {r.index: r for r in merge_rankings(plan, rankings, None).results}
    assert results[2].relevance_score == results[0].relevance_score
    assert results[2].span == results[0].span is not None
    if tied:
        assert results[0].span == (0, plan.parts[0][0][2])  # the first window


# -- what a budget cuts, and the limits one text is held to -----------------------------------


@pytest.mark.parametrize(
    ("limits", "cuts"),
    [
        ({}, False),
        ({"max_document_tokens": 50}, True),
        ({"max_bytes": 500}, True),
        (
            {
                "max_document_tokens": 50,
                "max_document_characters": 400,
                "max_tokens": 60,
                "max_bytes": 4000,
            },
            True,
        ),
    ],
)
def test_a_budget_cuts_documents_when_it_has_any_limit(limits: dict[str, int], cuts: bool) -> None:
    budget = Budget(max_documents=10, long_documents="chunk", counter=counter_for(words), **limits)
    assert budget.cuts_documents() is cuts
    long_document = " ".join(f"word{number}" for number in range(300))
    plan = plan_rerank("q", [long_document], None, budget)
    assert (len(plan.texts) > 1) is cuts


@pytest.mark.parametrize("extra", [0, 1, 5])
def test_a_top_n_of_every_document_asks_for_every_result(extra: int) -> None:
    documents = [f"document {number}" for number in range(6)]
    plan = plan_rerank("q", documents, len(documents) + extra, 4)
    assert plan.top_n is None
    assert [batch.top_n for batch in plan.batches] == [None, None]
    fewer = plan_rerank("q", documents, len(documents) - 1, 4)
    assert fewer.top_n == len(documents) - 1


@pytest.mark.parametrize("kind", ["image", "record"])
def test_a_whole_document_may_fill_the_room_of_a_request_to_the_byte(kind: str) -> None:
    document: Image | Record = (
        Image(url="https://h.test/" + "a" * 60) if kind == "image" else Record.of({"a": "b"}, 0)
    )
    room = document.wire_size()
    budget = Budget(max_documents=10, max_bytes=40 + 3 + room, body_bytes=40, document_bytes=3)
    plan = plan_rerank("q", ["text", document], None, budget, originals=["text", document])
    assert len(plan.texts) == 2
    smaller = Budget(max_documents=10, max_bytes=40 + 3 + room - 1, body_bytes=40, document_bytes=3)
    with pytest.raises(ValueError, match=rf"documents\[1\] is an? {kind} of about {room:,} bytes"):
        plan_rerank("q", ["text", document], None, smaller, originals=["text", document])


def test_a_query_that_leaves_no_room_gets_windows_of_one_token() -> None:
    long_document = " ".join(f"word{number}" for number in range(12))
    # The query's 3 words and the 3 special tokens are more than the 4 a document may have.
    budget = Budget(
        max_documents=100, max_document_tokens=4, long_documents="chunk", counter=counter_for(words)
    )
    plan = plan_rerank("a b c", [long_document], None, budget)
    assert list(plan.texts) == long_document.split()


@pytest.mark.parametrize(("room", "characters"), [(5, 1), (6, 1), (11, 1), (12, 2), (29, 4)])
def test_a_byte_limit_alone_cuts_a_text_to_six_bytes_a_character(
    room: int, characters: int
) -> None:
    # A character may take 6 bytes as JSON (a \uXXXX escape): room // 6 of them, at least one.
    text = "abcdefghijklmnopqrstuvwxyz"
    budget = Budget(
        max_documents=100,
        max_bytes=40 + 3 + room,
        body_bytes=40,
        document_bytes=3,
        long_documents="chunk",
    )
    plan = plan_rerank("q", [text], None, budget)
    pieces = [piece for piece in plan.texts if isinstance(piece, str)]
    assert max(len(piece) for piece in pieces) == characters
    # A text no longer than that is sent whole: no window counted for it.
    assert plan_rerank("q", ["x"], None, budget).windows == 0


# -- a tokenizer that counts more than the estimate's two tokens a character ------------------


def three_a_character(text: str) -> int:
    return 3 * len(text)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_short_text_is_counted_by_a_tokenizer_of_more_tokens_than_characters(
    streamed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Room for 24 tokens (30 less the query's 3 and 3 special): 8 characters. A text of 12
    # is 24 tokens by the estimate's bound of two a character, and 36 by this tokenizer.
    documents = ["abcdefghijkl", "mnop", "qrstuvwxyzab"]
    budget = Budget(
        max_documents=100,
        max_document_tokens=30,
        long_documents="chunk",
        counter=counter_for(three_a_character),
    )
    if streamed:
        monkeypatch.setattr(plan_module, "STREAM_CHARACTERS", -1)
        stream = stream_plan(plan_rerank("q", documents, None, 100), budget)
        assert stream is not None
        while stream.next_batch() is not None:
            pass
        plan = stream.plan
    else:
        plan = plan_rerank("q", documents, None, budget)
    assert list(plan.texts) == ["abcdefgh", "ijkl", "mnop", "qrstuvwx", "yzab"]
    assert plan.windows == 4


def test_pieces_sent_fit_a_tokenizer_of_more_tokens_than_characters(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    client = make_client(
        max_tokens_per_document=30, long_documents="chunk", tokenizer=three_a_character
    )
    call(mode, client, "q", ["abcdefghijkl", "mnop"])
    texts = [text for body in mock_api.bodies for text in body["documents"]]
    assert sorted(texts) == ["abcdefgh", "ijkl", "mnop"]


def planned(
    query: str, documents: list[str], top_n: int | None, budget: Budget, streamed: bool
) -> RerankPlan:
    """The plan of ``documents`` made whole, or cut as its batches are taken (PlanStream)."""
    if not streamed:
        return plan_rerank(query, documents, top_n, budget)
    saved = plan_module.STREAM_CHARACTERS
    plan_module.STREAM_CHARACTERS = -1
    try:
        stream = stream_plan(plan_rerank(query, documents, top_n, budget.max_documents), budget)
    finally:
        plan_module.STREAM_CHARACTERS = saved
    assert stream is not None
    while stream.next_batch() is not None:
        pass
    assert stream.next_length() == 0 and stream.step()
    return stream.plan


@pytest.mark.parametrize("streamed", [False, True])
def test_a_text_of_exactly_the_character_cap_is_sent_whole(streamed: bool) -> None:
    budget = Budget(max_documents=10, max_document_characters=10, long_documents="chunk")
    plan = planned("q", ["abcdefghij", "klmnopqrstu"], None, budget, streamed)
    assert list(plan.texts) == ["abcdefghij", "klmnopqrst", "u"]
    assert plan.windows == 2


@pytest.mark.parametrize("streamed", [False, True])
def test_a_short_text_of_two_estimated_tokens_a_character_is_counted(streamed: bool) -> None:
    # Room for 10 tokens (16 less the query's 3 and 3 special); CJK counts 2 a character.
    budget = Budget(max_documents=10, max_document_tokens=16, long_documents="chunk")
    text = "漢字仮名交じり文です"  # 10 characters, 20 estimated tokens
    plan = planned("a b c", [text], None, budget, streamed)
    assert "".join(piece for piece in plan.texts if isinstance(piece, str)) == text
    assert plan.windows >= 2


def test_a_single_character_over_the_cap_is_refused() -> None:
    budget = Budget(
        max_documents=10,
        max_document_tokens=8,  # room for 2 (the query's 3 and 3 special tokens)
        long_documents="error",
        counter=counter_for(three_a_character),
    )
    with pytest.raises(ValueError, match=r"documents\[0\] is too long to send"):
        plan_rerank("q", ["a"], None, budget)


def test_a_budget_that_cuts_nothing_keeps_each_requests_top_n() -> None:
    budget = Budget(max_documents=3, max_document_tokens=500, long_documents="chunk")
    plan = plan_rerank("q", [f"document {number}" for number in range(7)], 2, budget)
    assert plan.windows == 0
    assert [batch.top_n for batch in plan.batches] == [2, 2, 1]


def test_a_streamed_plan_counts_the_query_in_each_requests_tokens() -> None:
    documents = [f"document {number:03d}" for number in range(12)]
    # Each document 2 tokens and the query's 4: three fill a request of 18.
    budget = Budget(
        max_documents=100,
        max_tokens=18,
        max_document_tokens=500,
        long_documents="chunk",
        counter=counter_for(words),
    )
    plan = planned("one two three four", documents, None, budget, streamed=True)
    assert [len(batch.texts) for batch in plan.batches] == [3, 3, 3, 3]


def test_a_step_says_when_a_batch_is_ready() -> None:
    documents = [f"document {number}" for number in range(3)]
    budget = Budget(max_documents=2, max_document_tokens=500, long_documents="chunk")
    saved = plan_module.STREAM_CHARACTERS
    plan_module.STREAM_CHARACTERS = -1
    try:
        stream = stream_plan(plan_rerank("q", documents, None, 2), budget)
    finally:
        plan_module.STREAM_CHARACTERS = saved
    assert stream is not None
    assert stream.next_length() == len("document 0")
    # Two documents fill a batch; it is ready once the third finds no room in it.
    assert [stream.step() for _ in range(3)] == [False, False, True]
    assert stream.next_length() == 0


@pytest.mark.parametrize(
    ("mode", "streamed"), [("error", False), ("truncate", False), ("truncate", True)]
)
def test_an_empty_document_is_sent_as_it_is(mode: str, streamed: bool) -> None:
    # A tokenizer that adds a model's 4 special tokens to any text, the empty one too: an
    # empty document has nothing to cut, and is never refused for them.
    budget = Budget(
        max_documents=10,
        max_document_tokens=11,  # room for 3: the query's 5 and 3 special tokens taken
        long_documents=mode,
        counter=counter_for(lambda text: words(text) + 4),
    )
    plan = planned("q", [""], None, budget, streamed)
    assert list(plan.texts) == [""]
    assert plan.windows == 0


@pytest.mark.parametrize(("limit", "per_batch"), [(40 + 5 * 13, 5), (40 + 5 * 13 - 1, 4)])
def test_a_streamed_plan_is_packed_to_the_byte(limit: int, per_batch: int) -> None:
    documents = [f"text {number:05d}" for number in range(30)]  # 10 characters each
    budget = dataclasses.replace(_bytes_budget(limit), long_documents="chunk")
    plan = planned("query", documents, None, budget, streamed=True)
    full, rest = divmod(30, per_batch)
    assert [len(b.texts) for b in plan.batches] == [per_batch] * full + ([rest] if rest else [])


@pytest.mark.parametrize(("limit", "per_batch"), [(5 * 3, 5), (5 * 3 - 1, 4)])
def test_a_streamed_plan_is_packed_to_the_token(limit: int, per_batch: int) -> None:
    documents = [f"document {number:03d}" for number in range(30)]
    budget = Budget(
        max_documents=1000, max_tokens=limit, long_documents="chunk", counter=counter_for(words)
    )
    plan = planned("query", documents, None, budget, streamed=True)
    full, rest = divmod(30, per_batch)
    assert [len(b.texts) for b in plan.batches] == [per_batch] * full + ([rest] if rest else [])


def test_a_call_is_streamed_past_its_threshold_of_characters() -> None:
    budget = Budget(max_documents=10, max_document_tokens=100, long_documents="chunk")
    half = plan_module.STREAM_CHARACTERS // 2
    at = plan_rerank("q", ["a" * half, "b" * half], None, 10)
    assert stream_plan(at, budget) is None
    past = plan_rerank("q", ["a" * half, "b" * (half + 1)], None, 10)
    assert stream_plan(past, budget) is not None


# -- cutting one text: the kept cuts, truncation, the overlap ---------------------------------


class CountingWords:
    """One token a word; remembers the texts it was asked to count."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, text: str) -> int:
        self.asked.append(text)
        return words(text)


def test_a_text_sent_again_is_neither_counted_nor_cut_again() -> None:
    tokenizer = CountingWords()
    budget = Budget(
        max_documents=10,
        max_document_tokens=10,  # room for 5 next to a 2-word query
        long_documents="chunk",
        counter=counter_for(tokenizer),
        cuts={},
    )
    long_document = " ".join(f"word{number}" for number in range(12))
    first = plan_rerank("a query", [long_document, "short one"], None, budget)
    assert set(tokenizer.asked) - {"a query"}  # the documents were counted
    tokenizer.asked.clear()
    again = plan_rerank("a query", [long_document, "short one"], None, budget)
    assert set(tokenizer.asked) <= {"a query"}  # only the query, counted for each call
    assert list(again.texts) == list(first.texts) and again.windows == first.windows == 3


def test_texts_differing_in_their_first_character_are_cut_apart() -> None:
    budget = Budget(max_documents=10, max_document_characters=1000, long_documents="chunk")
    budget = dataclasses.replace(budget, cuts={})
    tail = " ".join(f"w{number:04d}" for number in range(500))  # past a digest's step
    one, other = "x" + tail, " " + tail  # the same length, cut in other places
    assert [plan_rerank("q", [text], None, budget).texts for text in (one, other)] == [
        plan_rerank("q", [text], None, dataclasses.replace(budget, cuts={})).texts
        for text in (one, other)
    ]


def test_a_text_over_the_character_cap_is_cut_though_its_tokens_fit() -> None:
    budget = Budget(
        max_documents=10,
        max_document_characters=10,
        max_document_tokens=500,
        long_documents="chunk",
        counter=counter_for(words),
    )
    plan = plan_rerank("q", ["abcdefghijklmnopqrst"], None, budget)
    assert list(plan.texts) == ["abcdefghij", "klmnopqrst"]


def test_a_text_of_exactly_the_token_room_is_sent_whole() -> None:
    budget = Budget(
        max_documents=10, max_document_tokens=10, long_documents="chunk", counter=counter_for(words)
    )
    # Room for 5 tokens next to a 2-word query and 3 special tokens.
    plan = plan_rerank(
        "a query", ["one two three four five", "one two three four five six"], None, budget
    )
    assert plan.texts[0] == "one two three four five"
    assert plan.windows == 2


def test_truncate_keeps_the_first_tokens_that_fit() -> None:
    budget = Budget(
        max_documents=10,
        max_document_tokens=10,
        long_documents="truncate",
        counter=counter_for(words),
    )
    plan = plan_rerank("a query", ["one two three four five six seven"], None, budget)
    assert [text.split() for text in plan.texts] == [["one", "two", "three", "four", "five"]]


def test_an_overlap_is_held_to_half_a_window() -> None:
    budget = Budget(
        max_documents=100,
        max_document_tokens=11,  # room for 6 next to a 2-word query
        long_documents="chunk",
        overlap=50,
        counter=counter_for(words),
    )
    text = " ".join(f"w{number}" for number in range(12))
    plan = plan_rerank("a query", [text], None, budget)
    starts = [int(piece.split()[0][1:]) for piece in plan.texts if isinstance(piece, str)]
    assert starts[:3] == [0, 3, 6]
    assert all(words(piece) <= 6 for piece in plan.texts if isinstance(piece, str))


def test_a_call_whose_budget_refuses_long_documents_is_never_streamed() -> None:
    half = plan_module.STREAM_CHARACTERS // 2
    long_call = plan_rerank("q", ["a" * half, "b" * (half + 1)], None, 10)
    refusing = Budget(max_documents=10, max_document_tokens=100, long_documents="error")
    assert stream_plan(long_call, refusing) is None
    assert stream_plan(long_call, 10) is None
