"""The result cache: one score per (query, document), only the missing ones sent, merged
exactly; on both paths, with a dict, ``RerankCache`` and ``diskcache``; every key tagged
with its document's kind and scoped by a keyed hash of the credentials (never the
credentials themselves) unless the cache is shared."""

from __future__ import annotations

import gc
import json
import logging
import pickle
import subprocess
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
from support import API_KEY, MockAPI, oci_test_key, rank_body, run_mode

from rerank_integrations import Image, RerankCache, RerankClient, RerankResponse, SharedCache
from rerank_integrations._cache import credential_scope, endpoint_key, score_cache_for
from rerank_integrations._observe import Counters
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor
from rerank_integrations.server import serve_in_thread

QUERY = "apple pie recipe"
DOCUMENTS = [
    "apple pie with cinnamon",
    "pear tart",
    "a recipe for apple pie",
    "banana bread",
    "apple",
    "pie crust recipe",
]


def call(client: RerankClient, mode: str, *args: Any, **kwargs: Any) -> RerankResponse:
    return run_mode(
        mode, lambda: client.rerank(*args, **kwargs), lambda: client.arerank(*args, **kwargs)
    )


def ranked(response: RerankResponse) -> list[tuple[int, float]]:
    return [(result.index, result.relevance_score) for result in response.results]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- RerankCache ------------------------------------------------------------------------------


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = RerankCache(max_entries=2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.set("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    cache = RerankCache(ttl=10, clock=clock)
    cache.set("a", 1)
    clock.now = 9.9
    assert cache.get("a") == 1
    clock.now = 10.0
    assert cache.get("a", "gone") == "gone"
    assert len(cache) == 0


def test_a_key_set_again_becomes_the_most_recently_used() -> None:
    cache = RerankCache(max_entries=2)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("a", 10)  # "b" is now the least recently used
    cache.set("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (10, None, 3)


def test_a_missing_key_answers_the_default() -> None:
    cache = RerankCache()
    assert cache.get("nothing") is None
    assert cache.get("nothing", "default") == "default"
    cache.set("none", None)  # a value of None is a value, not a miss
    assert cache.get("none", "default") is None


def test_one_entry_is_kept_with_max_entries_1() -> None:
    cache = RerankCache(max_entries=1)
    cache.set("a", 1)
    assert (cache.get("a"), len(cache)) == (1, 1)
    cache.set("b", 2)
    assert (cache.get("a"), cache.get("b"), len(cache)) == (None, 2, 1)


def test_half_a_second_of_ttl_is_half_a_second() -> None:
    clock = Clock()
    cache = RerankCache(ttl=0.5, clock=clock)
    cache.set("a", 1)
    clock.now = 0.49
    assert cache.get("a") == 1
    cache.set("b", 2)  # set at 0.49: lives until 0.99
    clock.now = 0.5
    assert (cache.get("a", "gone"), cache.get("b")) == ("gone", 2)
    clock.now = 0.99
    assert cache.get("b", "gone") == "gone"
    assert len(cache) == 0


def test_clear_forgets_every_entry() -> None:
    cache = RerankCache()
    for key in "abc":
        cache.set(key, key)
    cache.clear()
    assert len(cache) == 0
    assert [cache.get(key) for key in "abc"] == [None, None, None]
    cache.set("a", 1)  # still works after
    assert cache.get("a") == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_entries": 0}, "max_entries"),
        ({"max_entries": True}, "max_entries"),
        ({"max_entries": 1.5}, "max_entries"),
        ({"ttl": 0}, "ttl must be a positive"),
        ({"ttl": -1}, "ttl"),
        ({"ttl": float("nan")}, "ttl"),
        ({"ttl": float("inf")}, "ttl"),
    ],
)
def test_a_cache_that_cannot_work_is_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RerankCache(**arguments)


def test_a_cache_travels_empty_with_its_settings() -> None:
    cache = RerankCache(max_entries=5, ttl=60)
    cache.set("a", 1)
    copy = pickle.loads(pickle.dumps(cache))
    assert (copy.max_entries, copy.ttl, len(copy)) == (5, 60, 0)
    copy.set("b", 2)
    assert copy.get("b") == 2
    assert repr(copy) == "RerankCache(max_entries=5, ttl=60, entries=1)"
    shared = pickle.loads(pickle.dumps(RerankCache(shared=True)))
    assert shared.shared is True
    assert repr(shared) == "RerankCache(max_entries=100000, ttl=None, shared=True, entries=0)"


@pytest.mark.parametrize("shared", ["yes", 1, None])
def test_shared_must_be_true_or_false(shared: object) -> None:
    with pytest.raises(TypeError, match=f"shared must be True or False, got {shared!r}"):
        RerankCache(shared=shared)  # type: ignore[arg-type]


def test_a_url_that_cannot_be_split_is_hashed_whole() -> None:
    url = "https://user:SECRET-123@[not-an-address/rerank"
    shown = endpoint_key(url)
    assert "SECRET-123" not in shown and len(shown) == 64
    assert shown == endpoint_key(url)
    assert shown != endpoint_key(url.replace("SECRET-123", "SECRET-124"))


class ReadOnly(Mapping[str, Any]):
    """A mapping that can be read and never written."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class GetOnly:
    def get(self, key: str) -> Any:
        return None


class SetOnly:
    def set(self, key: str, value: Any) -> None:
        pass


@pytest.mark.parametrize(
    "cache",
    [[], frozenset(), types.MappingProxyType({}), ReadOnly(), GetOnly(), SetOnly()],
    ids=["list", "frozenset", "mappingproxy", "read-only-mapping", "get-only", "set-only"],
)
def test_something_that_cannot_hold_scores_is_refused(cache: object) -> None:
    with pytest.raises(TypeError, match="cache must have get"):
        RerankClient("https://h", cache=cache)
    with pytest.raises(TypeError, match="cache must have get"):
        SharedCache(cache)


class WithSet(dict[str, Any]):
    """A store with a ``set`` method (as ``diskcache.Cache`` and Redis clients have)."""

    def set(self, key: str, value: Any) -> None:
        self[key] = ("through set", value)


@pytest.mark.parametrize(
    ("store", "kept"),
    [({}, 1), (WithSet(), ("through set", 1))],
    ids=["item-assignment", "set-method"],
)
def test_a_shared_cache_reads_and_writes_its_store(store: dict[str, Any], kept: Any) -> None:
    shared = SharedCache(store)
    assert shared.store is store
    assert shared.get("k") is None
    shared.set("k", 1)
    assert store == {"k": kept}
    assert shared.get("k") == kept
    assert repr(shared) == f"SharedCache({type(store).__name__})"


# -- the client -------------------------------------------------------------------------------


def test_a_repeated_call_sends_nothing_and_ranks_the_same(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    plain = make_client()
    expected = call(plain, mode, QUERY, DOCUMENTS, top_n=3)
    mock_api.requests.clear()
    cached = make_client(cache=RerankCache())
    first = call(cached, mode, QUERY, DOCUMENTS, top_n=3)
    assert ranked(first) == ranked(expected)
    # Asked for every document's score, not only the top 3: each one is a later hit.
    assert [body.get("top_n") for body in mock_api.bodies] == [None]
    again = call(cached, mode, QUERY, DOCUMENTS, top_n=3)
    assert len(mock_api.requests) == 1
    assert ranked(again) == ranked(expected)
    assert again.usage is None or again.usage.requests == 0
    stats = cached.stats()
    assert (stats.cache_hits, stats.cache_misses, stats.requests) == (6, 6, 1)


def test_a_call_partly_cached_sends_only_the_missing_documents(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    cached = make_client(cache={})
    call(cached, mode, QUERY, DOCUMENTS[:3])
    mock_api.requests.clear()
    more = ["crumble", *DOCUMENTS, "apple pie recipe book"]
    response = call(cached, mode, QUERY, more, top_n=4)
    assert mock_api.bodies[0]["documents"] == [
        "crumble",
        *DOCUMENTS[3:],
        "apple pie recipe book",
    ]
    plain = make_client()
    assert ranked(response) == ranked(call(plain, mode, QUERY, more, top_n=4))
    assert [result.document for result in response.results] == [
        more[result.index] for result in response.results
    ]


def test_repeated_texts_and_batches_merge_exactly(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    documents = [*DOCUMENTS, DOCUMENTS[0], "apple tart", DOCUMENTS[2]]
    plain = make_client(max_documents_per_request=2)
    expected = ranked(call(plain, mode, QUERY, documents, top_n=5))
    cached = make_client(cache=RerankCache(), max_documents_per_request=2)
    call(cached, mode, QUERY, documents[::2])
    mock_api.requests.clear()
    assert ranked(call(cached, mode, QUERY, documents, top_n=5)) == expected
    sent = [text for body in mock_api.bodies for text in body["documents"]]
    assert sorted(sent) == sorted({*documents} - {*documents[::2]})
    assert all(len(body["documents"]) <= 2 for body in mock_api.bodies)


def test_long_documents_are_cached_by_window(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    long = " ".join(["filler words here"] * 60) + " apple pie recipe " + "tail " * 80
    documents = [long, "apple pie", "pear"]
    options = {"max_tokens_per_document": 64, "long_documents": "chunk", "chunk_overlap": 8}
    expected = call(make_client(**options), mode, QUERY, documents)
    mock_api.requests.clear()
    cached = make_client(cache=RerankCache(), **options)
    first = call(cached, mode, QUERY, documents)
    windows = len(mock_api.bodies[0]["documents"])
    assert windows > 3
    again = call(cached, mode, QUERY, documents)
    assert len(mock_api.requests) == 1
    for response in (first, again):
        assert ranked(response) == ranked(expected)
        assert [r.span for r in response.results] == [r.span for r in expected.results]
    assert cached.stats().cache_hits == windows


def test_raw_scores_are_kept_and_the_transform_applied_on_the_way_out(
    mode: str, make_client: Callable[..., RerankClient]
) -> None:
    store: dict[str, Any] = {}
    plain = make_client(cache=store)
    sigmoid = make_client(cache=store, score_transform="sigmoid")
    raw = call(plain, mode, QUERY, DOCUMENTS)
    squashed = call(sigmoid, mode, QUERY, DOCUMENTS)
    assert sigmoid.stats().cache_hits == len(DOCUMENTS)
    assert [r.index for r in squashed.results] == [r.index for r in raw.results]
    assert all(0.5 < r.relevance_score < 1 for r in squashed.results)
    assert {json.loads(value)["score"] for value in store.values()} == {
        r.relevance_score for r in raw.results
    }


def test_keys_name_what_decides_a_score_and_never_a_credential(
    mode: str, make_client: Callable[..., RerankClient]
) -> None:
    store: dict[str, Any] = {}
    first = make_client(cache=store, headers={"X-Tenant-Token": "tenant-secret-1234"})
    call(first, mode, QUERY, DOCUMENTS[:2])
    assert len(store) == 2
    # The same credentials and other plain headers: the same scores.
    same = make_client(cache=store, headers={"X-Tenant-Token": "tenant-secret-1234", "X-A": "b"})
    call(same, mode, QUERY, DOCUMENTS[:2])
    assert same.stats().cache_hits == 2
    # Anything that changes a score is another key.
    for changed in (
        {"model": "other-model"},
        {"extra_body": {"truncate": "END"}},
        {"base_url": "https://elsewhere.test/v1"},
        {"dialect": "cohere"},
    ):
        client = make_client(
            cache=store, headers={"X-Tenant-Token": "tenant-secret-1234"}, **changed
        )
        call(client, mode, QUERY, DOCUMENTS[:2])
        assert client.stats().cache_hits == 0, changed
    misses = make_client(cache=store, headers={"X-Tenant-Token": "tenant-secret-1234"})
    call(misses, mode, "another query", DOCUMENTS[:2])
    assert misses.stats().cache_hits == 0
    other_key = make_client(cache=store, api_key="sk-other-key-5678")
    call(other_key, mode, QUERY, DOCUMENTS[:2])
    text = json.dumps(store) + repr(store)
    for secret in (API_KEY, "sk-other-key-5678", "tenant-secret-1234"):
        assert secret not in text
    assert all(key.startswith("rerank:") and len(key) == 39 for key in store)
    entry = json.loads(next(iter(store.values())))
    assert set(entry) == {"score", "batch"}
    assert entry["batch"]["size"] == 2 and len(entry["batch"]["digest"]) == 16


@pytest.mark.parametrize(
    ("owner", "other"),
    [
        ({}, {"api_key": "sk-other-key-5678"}),
        ({"headers": {"X-Tenant-Token": "a-tenant"}}, {"headers": {"X-Tenant-Token": "another"}}),
        ({}, {"headers": {"Authorization": "Bearer another-token"}}),
        (
            {"api_key": None, "base_url": "https://rerank.test/v1/rerank?api_key=url-secret-1"},
            {"api_key": None, "base_url": "https://rerank.test/v1/rerank?api_key=url-secret-2"},
        ),
    ],
    ids=["api-key", "secret-header", "authorization", "url-key"],
)
def test_other_credentials_are_never_answered_from_the_cache(
    mode: str,
    make_client: Callable[..., RerankClient],
    mock_api: MockAPI,
    owner: dict[str, Any],
    other: dict[str, Any],
) -> None:
    store = RerankCache()
    call(make_client(cache=store, **owner), mode, QUERY, DOCUMENTS)
    mock_api.requests.clear()
    # A key the server would refuse gets no ranking without asking the server.
    mock_api.queue(httpx.Response(401, json={"error": {"message": "invalid api key"}}))
    intruder = make_client(cache=store, max_retries=0, **other)
    with pytest.raises(Exception, match="invalid api key"):
        call(intruder, mode, QUERY, DOCUMENTS)
    assert len(mock_api.requests) == 1
    assert intruder.stats().cache_hits == 0


@pytest.mark.parametrize("shared", ["RerankCache(shared=True)", "SharedCache(dict)"])
def test_a_shared_cache_answers_every_credential(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI, shared: str
) -> None:
    store = RerankCache(shared=True) if shared.startswith("RerankCache") else SharedCache({})
    expected = ranked(call(make_client(cache=store), mode, QUERY, DOCUMENTS, top_n=3))
    mock_api.requests.clear()
    other = make_client(cache=store, api_key="sk-other-key-5678", headers={"X-Tok": "t-1"})
    assert ranked(call(other, mode, QUERY, DOCUMENTS, top_n=3)) == expected
    assert mock_api.requests == []
    assert other.stats().cache_hits == len(DOCUMENTS)
    # Shared or scoped are separate entries: a cache opened again either way never mixes.
    scoped = make_client(cache=RerankCache())
    call(scoped, mode, QUERY, DOCUMENTS)
    assert scoped.stats().cache_hits == 0


def test_the_scope_is_a_keyed_hash_the_same_in_every_process() -> None:
    scope = credential_scope(["sk-one", "Bearer sk-one"])
    assert scope == credential_scope(["Bearer sk-one", "sk-one", "sk-one"])  # order, repeats
    assert scope != credential_scope(["sk-two"])
    assert scope != credential_scope([])
    assert "sk-one" not in scope
    import hashlib

    for plain in (b"sk-one", b'["Bearer sk-one","sk-one"]'):
        assert scope != hashlib.sha256(plain).hexdigest()  # keyed: no plain digest of a key
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from rerank_integrations._cache import credential_scope;"
            "print(credential_scope(['sk-one', 'Bearer sk-one']))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == scope  # a diskcache shared by processes keeps its hits


def test_credentials_of_different_kinds_naming_no_one_scope_apart() -> None:
    """Two kinds of cloud credentials that carry no identity the scope reads (a signer, a
    token provider) still keep their entries apart: the kind is part of the scope."""

    class Signer:
        pass

    class TokenProvider:
        pass

    assert credential_scope([], Signer()) == credential_scope([], Signer())
    assert credential_scope([], Signer()) != credential_scope([], TokenProvider())
    assert credential_scope([], Signer()) != credential_scope([])


def test_the_endpoint_key_follows_the_url_it_is_asked_for() -> None:
    """The key of the last endpoint is kept, but a different URL gets its own key, and no
    key is the URL itself (whose password and secret parameters it hides)."""
    scores = score_cache_for(RerankCache(), Counters(), "scope")
    assert scores is not None
    first = "https://user:pass-word-9@one.test/rerank?api_key=SECRET-1"
    second = "https://user:pass-word-9@two.test/rerank?api_key=SECRET-2"
    assert scores.endpoint_key(first) == endpoint_key(first) != first
    assert scores.endpoint_key(second) == endpoint_key(second) != endpoint_key(first)
    assert scores.endpoint_key(first) == endpoint_key(first)


def test_cloud_credentials_scope_by_who_they_name() -> None:
    botocore = pytest.importorskip("botocore.credentials")
    one = botocore.Credentials("AKIAONE", "secret-one")
    assert credential_scope([], one) == credential_scope([], botocore.Credentials("AKIAONE", "x"))
    assert credential_scope([], one) != credential_scope([], botocore.Credentials("AKIATWO", "x"))
    assert credential_scope([], one) != credential_scope([])


def test_oci_signers_scope_by_the_key_they_sign_with() -> None:
    signer = pytest.importorskip("oci.signer")

    def sign_as(name: str) -> Any:
        config = oci_test_key(name).config
        return signer.Signer(
            config["tenancy"],
            config["user"],
            config["fingerprint"],
            None,
            private_key_content=config["key_content"],
        )

    one = credential_scope([], sign_as("one"))
    assert one == credential_scope([], sign_as("one"))
    assert one != credential_scope([], sign_as("two"))
    assert oci_test_key("one").fingerprint not in one


def test_secret_looking_url_values_are_hashed_not_masked(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    store = RerankCache()
    small = make_client(cache=store, base_url="https://rerank.test/v1/rerank?max_tokens=4")
    call(small, mode, QUERY, DOCUMENTS)
    large = make_client(cache=store, base_url="https://rerank.test/v1/rerank?max_tokens=4096")
    call(large, mode, QUERY, DOCUMENTS)
    assert large.stats().cache_hits == 0
    again = make_client(cache=store, base_url="https://rerank.test/v1/rerank?max_tokens=4096")
    call(again, mode, QUERY, DOCUMENTS)
    assert again.stats().cache_hits == len(DOCUMENTS)
    url = "https://user:pass-word-9@h.test/rerank?api_key=SECRET-123&max_tokens=4&version=2"
    shown = endpoint_key(url)
    for secret in ("pass-word-9", "SECRET-123", "max_tokens=4&"):
        assert secret not in shown
    assert "version=2" in shown and shown.startswith("https://user:#")
    assert shown != endpoint_key(url.replace("SECRET-123", "SECRET-124"))
    assert shown != endpoint_key(url.replace("pass-word-9", "pass-word-8"))
    assert shown == endpoint_key(url)


def test_a_text_never_answers_for_an_image_or_a_record(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    url = "https://h.test/cat.png"
    store = RerankCache(shared=True)
    jina = make_client(cache=store, dialect="jina", model="m")
    call(jina, mode, QUERY, [f"image:url:{url}", "plain"])  # attacker-written text
    mock_api.requests.clear()
    call(jina, mode, QUERY, [Image(url=url), "plain"])
    assert [len(body["documents"]) for body in mock_api.bodies] == [1]  # the image was sent
    assert jina.stats().cache_hits == 1  # "plain" alone
    record = {"text": "apple pie", "title": "Pie"}
    together = make_client(cache=store, dialect="together", model="m")
    call(together, mode, QUERY, ['record:{"text":"apple pie","title":"Pie"}'])
    mock_api.requests.clear()
    call(together, mode, QUERY, [record])
    assert len(mock_api.requests) == 1
    # And the other way: an image or a record first, then a text that reads like their key.
    call(jina, mode, QUERY, [Image(url="https://h.test/dog.png")])
    mock_api.requests.clear()
    call(jina, mode, QUERY, ["image:url:https://h.test/dog.png"])
    assert len(mock_api.requests) == 1
    # Nor a text that spells the image's tag too, NUL bytes and all.
    mock_api.requests.clear()
    call(jina, mode, QUERY, ["\x00image\x00image:url:https://h.test/dog.png"])
    assert len(mock_api.requests) == 1


def test_two_images_or_two_records_never_share_an_entry(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    store = RerankCache(shared=True)
    jina = make_client(cache=store, dialect="jina", model="m")
    call(jina, mode, QUERY, [Image(url="https://h.test/cat.png")])
    mock_api.requests.clear()
    call(jina, mode, QUERY, [Image(url="https://h.test/dog.png")])
    assert len(mock_api.requests) == 1
    together = make_client(cache=store, dialect="together", model="m")
    call(together, mode, QUERY, [{"text": "apple pie", "title": "Pie"}])
    mock_api.requests.clear()
    call(together, mode, QUERY, [{"text": "pear tart", "title": "Tart"}])
    assert len(mock_api.requests) == 1


# -- stores read and written a call at a time ---------------------------------------------------


class Bulk(dict[str, Any]):
    """A store with ``get_many`` (a mapping of the keys it holds, as Django's caches and
    pymemcache answer) and ``set_many``, counting how it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.append("get")
        return super().get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.asked.append("set")
        self[key] = value

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        self.asked.append(f"get_many {len(keys)}")
        return {key: self[key] for key in keys if key in self}

    def set_many(self, values: Mapping[str, Any]) -> list[str]:
        self.asked.append(f"set_many {len(values)}")
        self.update(values)
        return []  # the keys it failed to keep, as Django's and pymemcache's answer


class ListingGetMany(Bulk):
    """``get_many`` of another protocol (cachelib's answers a list): read key by key."""

    def get_many(self, keys: list[str]) -> Any:  # type: ignore[override]
        self.asked.append("get_many")
        return [None] * len(keys)


def test_a_store_with_get_many_and_set_many_is_asked_once_a_call_and_once_a_batch(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    store = Bulk()
    cached = make_client(cache=store, max_documents_per_request=4)
    first = call(cached, mode, QUERY, DOCUMENTS, top_n=3)
    assert store.asked[0] == "get_many 6" and len(store) == 6
    assert sorted(store.asked[1:]) == ["set_many 2", "set_many 4"]  # batches of 4 and 2
    store.asked.clear()
    mock_api.requests.clear()

    again = call(cached, mode, QUERY, [*DOCUMENTS, "crumble"], top_n=3)

    assert store.asked == ["get_many 7", "set_many 1"]
    assert [body["documents"] for body in mock_api.bodies] == [["crumble"]]
    assert ranked(again)[:2] == ranked(first)[:2]
    assert (cached.stats().cache_hits, cached.stats().cache_misses) == (6, 7)


def test_a_get_many_that_answers_no_mapping_is_left_for_get(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    store = ListingGetMany()
    cached = make_client(cache=store)
    call(cached, mode, QUERY, DOCUMENTS)
    assert store.asked == ["get_many", *["get"] * 6, "set_many 6"]
    store.asked.clear()
    call(cached, mode, QUERY, DOCUMENTS)
    assert store.asked == ["get"] * 6 and len(mock_api.requests) == 1


def test_a_failing_get_many_is_a_miss_and_a_failing_set_many_is_logged(
    mode: str,
    make_client: Callable[..., RerankClient],
    mock_api: MockAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(Bulk):
        def get_many(self, keys: list[str]) -> dict[str, Any]:
            raise ConnectionError("store down")

        def set_many(self, values: Mapping[str, Any]) -> list[str]:
            raise ConnectionError("store down")

    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        response = call(make_client(cache=Failing()), mode, QUERY, DOCUMENTS)
    assert len(response.results) == len(DOCUMENTS) and len(mock_api.requests) == 1
    logged = [record.getMessage() for record in caplog.records]
    assert any("lookup failed" in message for message in logged)


# -- caches that answer with coroutines ---------------------------------------------------------


class AsyncStore:
    """A cache whose get/set are coroutine functions (aiocache, a hand-written one)."""

    def __init__(self) -> None:
        self.stored: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self.stored.get(key)

    async def set(self, key: str, value: Any) -> None:
        self.stored[key] = value


class RedisAsyncLike:
    """Like ``redis.asyncio.Redis``: plain command methods that return coroutines, made by
    an ``async def execute_command``."""

    def __init__(self) -> None:
        self.stored: dict[str, Any] = {}

    async def execute_command(self, *args: Any) -> Any:
        if args[0] == "GET":
            return self.stored.get(args[1])
        self.stored[args[1]] = args[2]
        return True

    def get(self, key: str) -> Any:
        return self.execute_command("GET", key)

    def set(self, key: str, value: Any) -> Any:
        return self.execute_command("SET", key, value)


class HiddenCoroutines:
    """Plain methods returning coroutines, with nothing to tell them apart beforehand."""

    def __init__(self) -> None:
        self.stored: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        async def get() -> Any:
            return self.stored.get(key)

        return get()

    def set(self, key: str, value: Any) -> Any:
        async def set_() -> None:
            self.stored[key] = value

        return set_()


class AsyncBulk(dict[str, Any]):
    """A mapping whose ``get_many`` is a coroutine function."""

    async def get_many(self, keys: list[str]) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize("store_class", [AsyncStore, RedisAsyncLike, AsyncBulk])
def test_a_cache_of_coroutines_is_refused_when_the_client_is_built(store_class: type) -> None:
    for build in (
        lambda: RerankClient("https://h", cache=store_class()),
        lambda: SharedCache(store_class()),
        lambda: RerankCompressor(base_url="https://h", cache=store_class()).rerank_client,
        lambda: RerankPostprocessor(base_url="https://h", cache=store_class()).rerank_client,
    ):
        with pytest.raises(TypeError, match=r"coroutines .* not supported.*redis\.Redis"):
            build()


def test_a_cache_that_answers_with_a_coroutine_is_refused_before_sending(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    client = make_client(cache=HiddenCoroutines())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError, match=r"coroutines .* not supported"):
            call(client, mode, QUERY, DOCUMENTS)
        gc.collect()
    assert mock_api.requests == []
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_a_set_that_answers_with_a_coroutine_is_logged_not_left_pending(
    mode: str,
    make_client: Callable[..., RerankClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    class SyncGetAsyncSet(HiddenCoroutines):
        def get(self, key: str) -> Any:
            return self.stored.get(key)

    client = make_client(cache=SyncGetAsyncSet())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
            assert len(call(client, mode, QUERY, DOCUMENTS).results) == len(DOCUMENTS)
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert any("not supported" in record.getMessage() for record in caplog.records)


def test_a_diskcache_works_as_it_is(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI, tmp_path: Any
) -> None:
    diskcache = pytest.importorskip("diskcache")
    with diskcache.Cache(str(tmp_path)) as disk:
        call(make_client(cache=disk), mode, QUERY, DOCUMENTS)
    mock_api.requests.clear()
    with diskcache.Cache(str(tmp_path)) as disk:  # opened again, as a later process would
        client = make_client(cache=disk)
        response = call(client, mode, QUERY, DOCUMENTS, top_n=2)
    assert mock_api.requests == []
    assert ranked(response) == ranked(call(make_client(), mode, QUERY, DOCUMENTS, top_n=2))


class Broken:
    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.stored: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        if self.failing == "get":
            raise ConnectionError("cache host down")
        return self.stored.get(key)

    def set(self, key: str, value: Any) -> None:
        if self.failing == "set":
            raise ConnectionError("cache host down")
        self.stored[key] = value


@pytest.mark.parametrize("failing", ["get", "set"])
def test_a_failing_cache_never_fails_a_call(
    mode: str,
    make_client: Callable[..., RerankClient],
    failing: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client(cache=Broken(failing))
    expected = ranked(call(make_client(), mode, QUERY, DOCUMENTS, top_n=2))
    with caplog.at_level(logging.DEBUG, logger="rerank_integrations"):
        for _ in range(2):
            assert ranked(call(client, mode, QUERY, DOCUMENTS, top_n=2)) == expected
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "cache" in r.getMessage()
    ]
    assert len(warnings) == 1  # once per client, then quietly
    assert "cache host down" in warnings[0].getMessage()


def test_entries_are_never_corrupted_into_scores(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    store: dict[str, Any] = {}
    filler = make_client(cache=store)
    for document in DOCUMENTS[:3]:
        call(filler, mode, QUERY, [document])  # one at a time: the keys in document order
    keys = list(store)
    store[keys[0]] = "not json"
    store[keys[1]] = json.dumps({"score": "high"})
    store[keys[2]] = b'{"score": 0.25, "batch": {"size": 3, "digest": "x"}}'  # bytes: Redis
    mock_api.requests.clear()
    client = make_client(cache=store)
    response = call(client, mode, QUERY, DOCUMENTS[:3])
    assert mock_api.bodies[0]["documents"] == DOCUMENTS[:2]  # the unreadable two, again
    assert dict(ranked(response))[2] == 0.25


def test_scores_of_batches_that_arrived_are_kept_when_another_fails(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    store: dict[str, Any] = {}
    client = make_client(cache=store, max_documents_per_request=3, max_retries=0, max_concurrency=1)

    def fail_second(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "bad document"}})

    def good(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=rank_body(json.loads(request.content)))

    mock_api.queue(good, fail_second)
    with pytest.raises(Exception, match="bad document"):
        call(client, mode, QUERY, DOCUMENTS)
    assert len(store) == 3


def test_a_listwise_model_is_warned_of_once(
    mode: str, make_client: Callable[..., RerankClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(cache=RerankCache(), model="jina-reranker-v3")
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        call(client, mode, QUERY, DOCUMENTS)
        call(client, mode, QUERY, DOCUMENTS)
    listwise = [r for r in caplog.records if "listwise" in r.getMessage()]
    assert len(listwise) == 1


def test_copies_share_the_cache(make_client: Callable[..., RerankClient]) -> None:
    import copy

    client = make_client(cache=RerankCache())
    client.rerank(QUERY, DOCUMENTS)
    twin = copy.copy(client)
    twin.rerank(QUERY, DOCUMENTS)
    assert twin.stats().cache_hits == len(DOCUMENTS)


# -- the adapters and a real server -----------------------------------------------------------


@pytest.mark.parametrize("adapter_class", [RerankCompressor, RerankPostprocessor])
def test_the_adapters_take_a_cache_and_never_serialize_it(adapter_class: Any) -> None:
    store: dict[str, Any] = {}
    adapter = adapter_class(base_url="https://h", cache=store)
    client = adapter.rerank_client
    assert client._connection.scores is not None and client._connection.scores.store is store
    store["rerank:x"] = "grows"  # a cache that fills up is the same setting
    assert adapter.rerank_client is client
    assert "cache" not in adapter.model_dump()
    assert "grows" not in repr(adapter)
    adapter.cache = RerankCache()
    assert adapter.rerank_client is not client


def test_against_the_local_server_only_new_pairs_are_sent(mode: str) -> None:
    with serve_in_thread() as server:
        store = RerankCache()
        client = RerankClient(server.base_url, cache=store, max_documents_per_request=4)
        first = dict(ranked(call(client, mode, QUERY, DOCUMENTS)))
        assert server.stats.requests == 2
        more = [*DOCUMENTS, "apple pie recipe card"]
        again = call(client, mode, QUERY, more, top_n=3)
        assert server.stats.requests == 3  # the new document alone
        assert len(store) == len(more)
        everything = dict(ranked(call(client, mode, QUERY, more)))
        assert server.stats.requests == 3
        assert {index: everything[index] for index in first} == first
        assert ranked(again) == sorted(everything.items(), key=lambda p: (-p[1], p[0]))[:3]
        client.close()
