"""Documents that are not plain text: images for the dialects that take them, refused by the
others before sending; structured documents as objects with rank_fields, or as field: value
text; through the client and both adapters, sync and async, over loopback servers."""

from __future__ import annotations

import base64
import json
import pickle
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode
from support import MockAPI, ScriptedServer, run_mode, served_score

from rerank_integrations import Image, RerankCache, RerankClient, RerankResponse, _json
from rerank_integrations.langchain import IMAGE_KEY, RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

KEY = "sk-documents-SECRET"
QUERY = "espresso machine descaling"


def png(width: int = 1) -> bytes:
    """A valid PNG of ``width`` x 1 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\x10\x20\x30" * width)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def call(client: RerankClient, mode: str, documents: list[Any], **kwargs: Any) -> RerankResponse:
    return run_mode(
        mode,
        lambda: client.rerank(QUERY, documents, **kwargs),
        lambda: client.arerank(QUERY, documents, **kwargs),
    )


# -- the Image value ---------------------------------------------------------------------------


def test_an_image_is_a_url_or_bytes_and_says_which() -> None:
    assert Image(url="https://h/cat.jpg").data_uri == "https://h/cat.jpg"
    image = Image(data=png())
    assert image.mime_type == "image/png"  # read from the bytes
    assert image.data_uri.startswith("data:image/png;base64,iVBOR")
    assert base64.b64decode(image.base64) == png()
    assert repr(image) == f"Image(data=<{len(png())} bytes>, mime_type='image/png')"
    assert Image(data=png()) == image and hash(Image(data=png())) == hash(image)
    assert Image(data=png()).key != Image(data=png(2)).key
    assert pickle.loads(pickle.dumps(image)) == image


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ({}, ValueError, "exactly one"),
        ({"url": "https://h/a.png", "data": b"x"}, ValueError, "exactly one"),
        ({"url": "ftp://h/a.png"}, ValueError, "http"),
        ({"data": b""}, TypeError, "non-empty bytes"),
        ({"data": b"plain text, not an image"}, ValueError, "mime_type"),
        ({"data": b"x", "mime_type": "text/plain"}, ValueError, "image/"),
    ],
)
def test_an_image_that_cannot_be_sent_is_refused(
    arguments: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        Image(**arguments)


# -- images through the client -----------------------------------------------------------------


def test_images_go_in_the_dialects_own_form(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    data = Image(data=png())
    documents = ["descaling the espresso machine", Image(url="https://h/descale.jpg"), data]
    response = call(make_client(dialect="jina", model="jina-reranker-m0"), mode, documents)
    assert mock_api.bodies[0]["documents"] == [
        {"text": "descaling the espresso machine"},
        {"image": "https://h/descale.jpg"},
        {"image": data.base64},
    ]
    assert {result.index: result.document for result in response.results} == dict(
        enumerate(documents)
    )
    mock_api.requests.clear()
    call(make_client(dialect="vllm"), mode, documents)
    assert mock_api.bodies[0]["documents"] == [
        "descaling the espresso machine",
        {"content": [{"type": "image_url", "image_url": {"url": "https://h/descale.jpg"}}]},
        {"content": [{"type": "image_url", "image_url": {"url": data.data_uri}}]},
    ]


def test_a_batch_of_text_alone_is_sent_as_text(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    documents = ["one", "two", Image(url="https://h/a.jpg")]
    call(make_client(dialect="jina", max_documents_per_request=2), mode, documents)
    assert [body["documents"] for body in mock_api.bodies] == [
        ["one", "two"],
        [{"image": "https://h/a.jpg"}],
    ]


@pytest.mark.parametrize("dialect", ["generic", "tei", "cohere", "voyage", "together", "nim"])
def test_a_dialect_without_images_refuses_them_before_sending(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI, dialect: str
) -> None:
    client = make_client(dialect=dialect, model="m")
    with pytest.raises(ValueError, match=rf"documents\[1\] is an image, and the {dialect} dialect"):
        call(client, mode, ["text", Image(url="https://h/a.jpg")])
    assert mock_api.requests == []


def test_images_are_deduplicated_batched_sized_and_cached(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    big = Image(data=png(3000))  # about 12 KB of base64
    documents = [big, Image(url="https://h/a.jpg"), Image(data=png(3000)), "text", big]
    cache = RerankCache()
    client = make_client(dialect="jina", max_request_bytes=16_000, cache=cache)
    response = call(client, mode, documents)
    sent = [document for body in mock_api.bodies for document in body["documents"]]
    assert len(sent) == 3  # the three copies of one image went once
    assert all(len(request.content) <= 16_000 for request in mock_api.requests)
    scores = {result.index: result.relevance_score for result in response.results}
    assert scores[0] == scores[2] == scores[4]
    mock_api.requests.clear()
    again = call(client, mode, documents)
    assert mock_api.requests == []
    assert {r.index: r.relevance_score for r in again.results} == scores


def test_an_image_no_request_can_hold_is_refused_before_sending(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    client = make_client(dialect="jina", max_request_bytes=16_000)
    huge = Image(data=bytes(range(256)) * 80, mime_type="image/png")  # 27 KB of base64
    with pytest.raises(ValueError, match=r"documents\[2\] is an image of about") as caught:
        call(client, mode, ["text", Image(url="https://h/a.jpg"), huge, huge])
    assert "at most 16,000 bytes (max_request_bytes" in str(caught.value)
    assert mock_api.requests == []
    record = {"title": "scan", "text": "x" * 20_000}
    cohere = make_client(
        dialect="cohere", model="m", base_url="https://h/v1", max_request_bytes=16_000
    )
    with pytest.raises(ValueError, match=r"documents\[1\] is a record of about"):
        call(cohere, mode, ["text", record])
    assert mock_api.requests == []


def test_images_pass_whole_through_chunking(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    long = "descaling " * 600
    client = make_client(
        dialect="dashscope",
        model="qwen3-vl-rerank",
        max_tokens_per_document=128,
        long_documents="chunk",
    )
    response = call(client, mode, [long, Image(url="https://h/a.jpg")])
    documents = mock_api.bodies[0]["input"]["documents"]
    assert {"image": "https://h/a.jpg"} in documents
    assert len(documents) > 2 and all(set(d) in ({"text"}, {"image"}) for d in documents)
    assert {r.index for r in response.results} == {0, 1}
    assert next(r for r in response.results if r.index == 1).span is None


# -- structured documents through the client ---------------------------------------------------

ANIMALS = [
    {"title": "Llama", "text": "A domesticated camelid of the Andes.", "year": 1800},
    {"title": "Panda", "text": "A bear endemic to China."},
    {"title": "Guanaco", "text": "A wild camelid of South America."},
]


def test_objects_go_as_objects_with_rank_fields(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    client = make_client(dialect="together", model="m")
    response = call(client, mode, ANIMALS, rank_fields=["title", "text"], top_n=2)
    body = mock_api.bodies[0]
    assert body["rank_fields"] == ["title", "text"]
    assert body["documents"][0] == {
        "title": "Llama",
        "text": "A domesticated camelid of the Andes.",
        "year": "1800",  # object dialects take string values
    }
    assert all(result.document is ANIMALS[result.index] for result in response.results)


def test_other_dialects_get_field_lines(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    call(make_client(), mode, ANIMALS, rank_fields=["text", "title"])
    assert mock_api.bodies[0]["documents"][0] == (
        "text: A domesticated camelid of the Andes.\ntitle: Llama"
    )
    assert "rank_fields" not in mock_api.bodies[0]
    mock_api.requests.clear()
    call(make_client(), mode, [ANIMALS[0], "plain text"])
    assert mock_api.bodies[0]["documents"] == [
        "title: Llama\ntext: A domesticated camelid of the Andes.\nyear: 1800",
        "plain text",
    ]


def test_cohere_takes_objects_on_v1_only(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    call(make_client(dialect="cohere", base_url="https://h/v1"), mode, ANIMALS[:2])
    assert mock_api.bodies[0]["documents"][1] == {
        "title": "Panda",
        "text": "A bear endemic to China.",
    }
    mock_api.requests.clear()
    call(
        make_client(dialect="cohere", base_url="https://h", model="rerank-v3.5"), mode, ANIMALS[:2]
    )
    assert mock_api.bodies[0]["documents"][1] == "title: Panda\ntext: A bear endemic to China."


@pytest.mark.parametrize(
    ("documents", "rank_fields", "error", "words"),
    [
        ([{"name": "x"}], ["title"], ValueError, r"documents\[0\] has none of the rank_fields"),
        ([{1: "x"}], None, TypeError, "field names must be non-empty strings"),
        ([{"a": object()}], None, TypeError, r"documents\[0\] cannot be sent as JSON"),
        (["a"], "title", TypeError, "rank_fields must be a list"),
        (["a"], [""], ValueError, "non-empty field names"),
        ([3], None, TypeError, r"documents\[0\] must be a string, an Image or a mapping"),
    ],
)
def test_bad_structured_input_is_refused_before_sending(
    mode: str,
    make_client: Callable[..., RerankClient],
    mock_api: MockAPI,
    documents: list[Any],
    rank_fields: Any,
    error: type[Exception],
    words: str,
) -> None:
    with pytest.raises(error, match=words):
        call(make_client(dialect="together", model="m"), mode, documents, rank_fields=rank_fields)
    assert mock_api.requests == []


def test_records_are_deduplicated_and_cached_by_their_fields(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    store: dict[str, Any] = {}
    client = make_client(dialect="mixedbread", cache=store)
    same = {"text": "A bear endemic to China.", "title": "Panda"}  # another order, same record
    response = call(client, mode, [ANIMALS[1], same, ANIMALS[0]], rank_fields=["title"])
    assert len(mock_api.bodies[0]["input"]) == 2
    scores = {r.index: r.relevance_score for r in response.results}
    assert scores[0] == scores[1]
    assert len(store) == 2


# -- text that cannot be sent ----------------------------------------------------------------

#: How the package encodes JSON: orjson (when installed) and the standard library.
ENCODERS = ["stdlib", *(["orjson"] if hasattr(_json, "orjson_dumps") else [])]


@pytest.fixture(params=ENCODERS)
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with each JSON encoder the package may use."""
    name = str(request.param)
    monkeypatch.setattr(_json, "dumps", getattr(_json, f"{name}_dumps"))
    monkeypatch.setattr(_json, "loads", getattr(_json, f"{name}_loads"))
    return name


@pytest.mark.parametrize(
    ("documents", "dialect", "named"),
    [
        (["fine", "caf\u00e9 cr\u00e8me", "broken \udcff pdf"], "generic", r"documents\[2\]"),
        (["\ud83c alone", "fine"], "generic", r"documents\[0\]"),
        (["fine", {"text": "bad \udcff", "title": "t"}], "together", r"documents\[1\]"),
        (["fine", {"text": "bad \udcff", "title": "t"}], "generic", r"documents\[1\]"),
        ([{"title": ["nested \udcff"]}], "together", r"documents\[0\]"),
        (["fine", Image(url="https://h/\udcff.png")], "jina", r"documents\[1\] \(its url\)"),
    ],
)
def test_a_lone_surrogate_is_refused_before_anything_is_sent(
    mode: str,
    encoder: str,
    make_client: Callable[..., RerankClient],
    mock_api: MockAPI,
    documents: list[Any],
    dialect: str,
    named: str,
) -> None:
    # One document a request: before the check, the batches ahead of the bad one were sent.
    client = make_client(dialect=dialect, model="m", max_documents_per_request=1)
    with pytest.raises(ValueError, match=named + " holds a lone surrogate") as raised:
        call(client, mode, documents)
    assert type(raised.value) is ValueError  # neither orjson's TypeError nor UnicodeEncodeError
    assert mock_api.requests == []


def test_a_query_with_a_lone_surrogate_is_refused_before_sending(
    mode: str, encoder: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    client = make_client()
    with pytest.raises(ValueError, match=r"query holds a lone surrogate \('\\udcff' at") as raised:
        run_mode(
            mode,
            lambda: client.rerank("caf\u00e9 \udcff", ["a", "b"]),
            lambda: client.arerank("caf\u00e9 \udcff", ["a", "b"]),
        )
    assert type(raised.value) is ValueError
    assert mock_api.requests == []


def test_text_beyond_ascii_is_sent_as_it_is(
    mode: str, encoder: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    documents = ["cr\u00e8me br\u00fbl\u00e9e", "\u82f9\u679c\u6d3e", "apple \U0001f34e", "plain"]
    response = call(make_client(), mode, documents)
    assert len(response.results) == 4
    assert mock_api.bodies[0]["documents"] == documents


# -- the adapters over loopback servers --------------------------------------------------------


@pytest.fixture
def serve() -> Any:
    started: list[ScriptedServer] = []

    def start(dialect: str) -> ScriptedServer:
        server = ScriptedServer(dialect, api_key=KEY)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def image_documents(tmp_path: Path) -> list[Document]:
    return [
        Document(page_content="A guide to descaling", id="t", metadata={"n": 0}),
        Document(page_content="", id="u", metadata={IMAGE_KEY: "https://h/espresso-descaling.jpg"}),
        Document(page_content="", id="b", metadata={IMAGE_KEY: Image(data=png())}),
        Document(page_content="Bicycles", id="x"),
    ]


@pytest.mark.parametrize("dialect", ["jina", "vllm", "dashscope"])
def test_langchain_images_over_the_wire(
    mode: str, dialect: str, serve: Any, tmp_path: Path
) -> None:
    server = serve(dialect)
    compressor = RerankCompressor(
        base_url=server.base_url,
        api_key=KEY,
        dialect=dialect,
        model="vl-reranker",
        top_n=None,
        max_documents_per_request=2,
    )
    documents = image_documents(tmp_path)
    ranked = run_mode(
        mode,
        lambda: compressor.compress_documents(documents, QUERY),
        lambda: compressor.acompress_documents(documents, QUERY),
    )
    assert len(server.bodies) == 2  # at the limit of two a request
    assert ranked[0].id == "u"  # its URL holds the query's words
    assert [d.metadata.get(IMAGE_KEY) for d in ranked if d.id == "b"] == [Image(data=png())]
    assert documents[0].metadata == {"n": 0}  # inputs untouched
    compressor.close()


def test_llama_index_image_nodes_over_the_wire(mode: str, serve: Any, tmp_path: Path) -> None:
    server = serve("vllm")
    picture = tmp_path / "descaling.png"
    picture.write_bytes(png())
    nodes = [
        NodeWithScore(node=TextNode(text="Bicycles and trains", id_="t"), score=0.9),
        NodeWithScore(
            node=ImageNode(image_url="https://h/espresso-descaling.jpg", id_="u"), score=0.8
        ),
        NodeWithScore(node=ImageNode(image=base64.b64encode(png()).decode(), id_="b"), score=0.7),
        NodeWithScore(node=ImageNode(image_path=str(picture), id_="p"), score=0.6),
    ]
    postprocessor = RerankPostprocessor(
        base_url=server.base_url,
        api_key=KEY,
        dialect="vllm",
        top_n=4,
        max_documents_per_request=2,
    )
    bundle = QueryBundle(QUERY)
    ranked = run_mode(
        mode,
        lambda: postprocessor.postprocess_nodes(nodes, query_bundle=bundle),
        lambda: postprocessor.apostprocess_nodes(nodes, query_bundle=bundle),
    )
    sent = [d for body in server.bodies for d in body["documents"]]  # batches in any order
    assert "Bicycles and trains" in sent
    urls = sorted(d["content"][0]["image_url"]["url"] for d in sent if isinstance(d, dict))
    # The same image from base64 and from a file is one document, sent once.
    assert urls == [Image(data=png()).data_uri, "https://h/espresso-descaling.jpg"]
    assert ranked[0].node.node_id == "u"
    scores = {n.node.node_id: n.score for n in ranked}
    assert set(scores) == {"t", "u", "b", "p"} and scores["b"] == scores["p"]
    postprocessor.close()


def test_an_image_node_for_a_text_dialect_is_refused(serve: Any) -> None:
    server = serve("tei")
    postprocessor = RerankPostprocessor(base_url=server.base_url, api_key=KEY, dialect="tei")
    nodes = [NodeWithScore(node=ImageNode(image_url="https://h/a.jpg"), score=0.5)]
    with pytest.raises(ValueError, match="tei dialect takes text only"):
        postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    assert server.bodies == []
    postprocessor.close()


@pytest.mark.parametrize("dialect", ["together", "mixedbread", "pinecone", "generic"])
def test_langchain_documents_as_records_over_the_wire(mode: str, dialect: str, serve: Any) -> None:
    server = serve(dialect)
    compressor = RerankCompressor(
        base_url=server.base_url,
        api_key=KEY,
        dialect=dialect,
        model="m",
        top_n=2,
        rank_fields=["title"],
        max_documents_per_request=2,
    )
    documents = [
        Document(page_content="Camelids of the Andes.", id="a", metadata={"title": "Llama"}),
        Document(page_content="Espresso machine descaling.", id="b", metadata={"title": "Guide"}),
        Document(page_content="Bears of China.", id="c", metadata={"title": "Panda", "x": 1}),
    ]
    ranked = run_mode(
        mode,
        lambda: compressor.compress_documents(documents, QUERY),
        lambda: compressor.acompress_documents(documents, QUERY),
    )
    assert ranked[0].id == "b"
    field = {"mixedbread": "input"}.get(dialect, "documents")
    assert len(server.bodies) == 2
    # Both batches may arrive in either order (async): the first is the one of two.
    first_batch = next(body for body in server.bodies if len(body[field]) == 2)
    bodies = [first_batch]
    first = first_batch[field][0]
    if dialect == "generic":
        assert first == "title: Llama\ntext: Camelids of the Andes."
    else:
        assert first == {"title": "Llama", "text": "Camelids of the Andes."}
        assert bodies[0]["rank_fields"] == ["title", "text"]
    compressor.close()


def test_langchain_rerank_takes_mappings(mode: str, serve: Any) -> None:
    server = serve("together")
    compressor = RerankCompressor(
        base_url=server.base_url, api_key=KEY, dialect="together", model="m"
    )
    rows = [
        {"title": "Bears", "text": "Pandas"},
        {"title": "Espresso", "text": "machine descaling"},
    ]
    ranked = run_mode(
        mode,
        lambda: compressor.rerank(rows, QUERY, top_n=1, rank_fields=["text"]),
        lambda: compressor.arerank(rows, QUERY, top_n=1, rank_fields=["text"]),
    )
    assert ranked == [
        {"index": 1, "relevance_score": served_score("together", QUERY, "machine descaling")}
    ]
    assert server.bodies[0]["rank_fields"] == ["text"]
    compressor.close()


def test_llama_index_nodes_as_records(mode: str, serve: Any) -> None:
    server = serve("mixedbread")
    postprocessor = RerankPostprocessor(
        base_url=server.base_url,
        api_key=KEY,
        dialect="mixedbread",
        rank_fields=["title"],
        top_n=1,
    )
    nodes = [
        NodeWithScore(node=TextNode(text="Pandas", metadata={"title": "Bears"}), score=0.5),
        NodeWithScore(
            node=TextNode(text="machine", metadata={"title": "Espresso descaling"}), score=0.4
        ),
    ]
    bundle = QueryBundle(QUERY)
    ranked = run_mode(
        mode,
        lambda: postprocessor.postprocess_nodes(nodes, query_bundle=bundle),
        lambda: postprocessor.apostprocess_nodes(nodes, query_bundle=bundle),
    )
    assert ranked[0].node.metadata["title"] == "Espresso descaling"
    assert server.bodies[0]["input"][0] == {"title": "Bears", "text": "Pandas"}
    assert json.dumps(server.bodies[0]).count("rank_fields") == 1
    postprocessor.close()
