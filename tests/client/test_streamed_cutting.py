"""Long documents cut as the batches are sent: the first request leaves before the last
document is cut, the merge is the one a whole plan gives, and the deadline covers the cutting;
on both paths."""

from __future__ import annotations

import json
import random
import re
import threading
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import rank_body, run_mode

import rerank_integrations._call as call_module
import rerank_integrations._plan as plan_module
from rerank_integrations import APITimeoutError, RerankClient
from rerank_integrations._plan import STREAM_CHARACTERS, Budget, plan_rerank, stream_plan

QUERY = "how do I descale my espresso machine"
SENTENCE = "The harbour museum keeps old maps of the coast and letters of the keepers. "
NEEDLE = "To descale an espresso machine, run citric acid through the boiler and flush. "
TAG = re.compile(r"doc(\d{4})")


def documents(count: int, sentences: int = 60) -> list[str]:
    """``count`` long documents, each opening with its own tag word, a needle in some."""
    made = []
    for number in range(count):
        body = [SENTENCE] * sentences
        if number % 7 == 3:
            body.insert((number * 13) % sentences, NEEDLE)
        made.append(f"doc{number:04d} " + "".join(body))
    return made


class CountingTokenizer:
    """One token a word; notes each document whose tag word it has been asked to count, so
    that a test knows how many documents had been cut at any moment."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, text: str) -> int:
        tag = TAG.match(text)
        if tag:
            with self.lock:
                self.seen.add(tag.group(1))
        return len(text.split())

    def cut(self) -> int:
        with self.lock:
            return len(self.seen)


class Recorder:
    """A MockTransport handler that answers like a server and records, for each request,
    how many documents the tokenizer had been asked about when it arrived."""

    def __init__(self, tokenizer: CountingTokenizer) -> None:
        self.tokenizer = tokenizer
        self.cut_when_sent: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.cut_when_sent.append(self.tokenizer.cut())
        return httpx.Response(200, json=rank_body(json.loads(request.content)))


def client_for(handler: Any, tokenizer: Any, **settings: Any) -> RerankClient:
    transport = httpx.MockTransport(handler)
    return RerankClient(
        "https://rerank.test",
        max_tokens_per_document=128,
        long_documents="chunk",
        max_documents_per_request=40,
        tokenizer=tokenizer,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        max_retries=0,
        **settings,
    )


def call(mode: str, client: RerankClient, *args: Any, **kwargs: Any) -> Any:
    return run_mode(
        mode, lambda: client.rerank(*args, **kwargs), lambda: client.arerank(*args, **kwargs)
    )


def test_documents_are_long_enough_to_stream() -> None:
    assert sum(map(len, documents(80))) > STREAM_CHARACTERS


def test_the_first_request_leaves_before_the_last_document_is_cut(mode: str) -> None:
    tokenizer = CountingTokenizer()
    recorder = Recorder(tokenizer)
    texts = documents(80)
    client = client_for(recorder, tokenizer)
    response = call(mode, client, QUERY, texts, top_n=5)
    assert len(recorder.cut_when_sent) > 2
    assert recorder.cut_when_sent[0] < len(texts)
    assert tokenizer.cut() == len(texts)  # every document was cut in the end
    assert response.windows > len(texts)
    assert [result.index % 7 for result in response.results] == [3] * 5


@pytest.mark.parametrize("aggregate", ["max", "mean"])
@pytest.mark.parametrize("top_n", [None, 3])
def test_the_merge_is_the_one_a_whole_plan_gives(mode: str, aggregate: str, top_n: Any) -> None:
    texts = documents(60)
    texts[10] = texts[4]  # a document twice: both copies get its score
    texts[20] = texts[4][:900]  # a piece shared with another document is sent once

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=rank_body(json.loads(request.content)))

    streamed = client_for(answer, None, chunk_aggregate=aggregate)
    got = call(mode, streamed, QUERY, texts, top_n=top_n)
    # The same call planned whole (the documents cut before the first request): the same
    # results, scores and spans.
    whole = client_for(answer, None, chunk_aggregate=aggregate)
    plan_whole = _whole_response(mode, whole, texts, top_n)
    assert [(r.index, r.relevance_score, r.span) for r in got.results] == [
        (r.index, r.relevance_score, r.span) for r in plan_whole.results
    ]
    assert got.windows == plan_whole.windows
    assert got.requests == plan_whole.requests


def _whole_response(mode: str, client: RerankClient, texts: list[str], top_n: Any) -> Any:
    """The call with streaming turned off (the threshold raised past the documents)."""
    saved = plan_module.STREAM_CHARACTERS
    plan_module.STREAM_CHARACTERS = 1 << 62
    try:
        return call(mode, client, QUERY, texts, top_n=top_n)
    finally:
        plan_module.STREAM_CHARACTERS = saved


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 4000), min_size=1, max_size=40),
    repeats=st.lists(st.integers(0, 39), max_size=5),
    max_documents=st.integers(1, 30),
    max_tokens=st.sampled_from([None, 400, 2000]),
    max_bytes=st.sampled_from([None, 6000, 50_000]),
    overlap=st.integers(0, 20),
    mode=st.sampled_from(["chunk", "truncate"]),
)
def test_a_streamed_plan_is_the_whole_plan(
    lengths: list[int],
    repeats: list[int],
    max_documents: int,
    max_tokens: int | None,
    max_bytes: int | None,
    overlap: int,
    mode: str,
) -> None:
    words = SENTENCE.split() + NEEDLE.split()
    rng = random.Random(sum(lengths))
    texts = [" ".join(rng.choice(words) for _ in range(length // 6)) for length in lengths]
    for repeat in repeats:
        texts.append(texts[repeat % len(texts)])
    budget = Budget(
        max_documents=max_documents,
        max_bytes=max_bytes,
        max_tokens=max_tokens,
        max_document_tokens=100,
        long_documents=mode,
        overlap=overlap,
        body_bytes=60,
        document_bytes=3,
    )
    whole = plan_rerank(QUERY, texts, None, budget)
    uncut = plan_rerank(QUERY, texts, None, max_documents)
    saved = plan_module.STREAM_CHARACTERS
    plan_module.STREAM_CHARACTERS = -1
    try:
        stream = stream_plan(uncut, budget)
    finally:
        plan_module.STREAM_CHARACTERS = saved
    assert stream is not None
    batches = []
    while (batch := stream.next_batch()) is not None:
        batches.append(batch)
    streamed = stream.plan
    assert stream.done and streamed.batches == batches
    assert list(streamed.texts) == list(whole.texts)
    assert [(b.start, list(b.texts)) for b in streamed.batches] == [
        (b.start, list(b.texts)) for b in whole.batches
    ]
    assert streamed.windows == whole.windows
    # Where each piece stands: the same places (a whole plan keeps first/copies instead when
    # nothing was cut).
    if whole.parts is not None:
        assert streamed.parts == whole.parts
    else:
        first = whole.first_index or list(range(len(whole.texts)))
        assert streamed.parts is not None
        for position, places in enumerate(streamed.parts):
            owners = sorted(index for index, _, _ in places)
            assert owners == sorted([first[position], *whole.copies.get(position, [])])


class FakeTime:
    """The call's clock, moved on by the tokenizer rather than by real time passing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_the_deadline_covers_the_cutting(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A call whose deadline runs out while it is still cutting stops with the deadline's
    error and cuts no further."""
    tokenizer = CountingTokenizer()
    recorder = Recorder(tokenizer)
    texts = documents(80)
    clock = FakeTime()

    def slow_tokenizer(text: str) -> int:
        clock.now += 0.001  # each count costs a millisecond of the call's clock
        return tokenizer(text)

    monkeypatch.setattr(call_module, "time", clock)
    client = client_for(recorder, slow_tokenizer, deadline=5.0)
    with pytest.raises(APITimeoutError, match="deadline"):
        call(mode, client, QUERY, texts)
    assert tokenizer.cut() < len(texts)


def test_short_calls_are_planned_whole(mode: str) -> None:
    """Below the threshold every document is cut before the first request, as before."""
    tokenizer = CountingTokenizer()
    recorder = Recorder(tokenizer)
    texts = documents(5)
    client = client_for(recorder, tokenizer)
    response = call(mode, client, QUERY, texts, top_n=1)
    assert recorder.cut_when_sent == [len(texts)]
    assert {result.index for result in response.results} == {3}


class ThreadNotingTokenizer(CountingTokenizer):
    """:class:`CountingTokenizer` that also notes the threads it counted documents in."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def __call__(self, text: str) -> int:
        if TAG.match(text):
            with self.lock:
                self.threads.add(threading.get_ident())
        return super().__call__(text)


def test_the_async_path_cuts_on_its_loop_in_steps() -> None:
    """Documents of ordinary length are cut on the loop's own thread, between the other
    tasks' turns (no thread hop per batch), and the other tasks do run meanwhile."""
    import asyncio

    tokenizer = ThreadNotingTokenizer()
    recorder = Recorder(tokenizer)
    texts = documents(80)
    client = client_for(recorder, tokenizer)

    async def main() -> tuple[int, Any]:
        turns = 0
        done = False

        async def other_task() -> None:
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        other = asyncio.ensure_future(other_task())
        await asyncio.sleep(0)
        try:
            response = await client.arerank(QUERY, texts, top_n=5)
        finally:
            done = True
            await other
        return turns, response

    turns, response = asyncio.run(main())
    assert tokenizer.threads == {threading.get_ident()}
    assert tokenizer.cut() == len(texts)
    assert len(recorder.cut_when_sent) > 2 and recorder.cut_when_sent[0] < len(texts)
    assert turns > len(recorder.cut_when_sent)
    assert [result.index % 7 for result in response.results] == [3] * 5


def test_a_document_too_long_to_cut_on_the_loop_is_cut_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    import rerank_integrations._run as run_module

    monkeypatch.setattr(run_module, "_CUT_ON_LOOP", len(documents(1)[0]) - 1)
    tokenizer = ThreadNotingTokenizer()
    client = client_for(Recorder(tokenizer), tokenizer)
    response = asyncio.run(client.arerank(QUERY, documents(80), top_n=5))
    assert threading.get_ident() not in tokenizer.threads
    assert [result.index % 7 for result in response.results] == [3] * 5
