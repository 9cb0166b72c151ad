"""on_error="passthrough": a failed rerank hands the inputs back in order, marked unranked."""

from __future__ import annotations

import copy
import logging
from typing import Any

import httpx
import pytest
from langchain_core.documents import Document
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from support import MockAPI, run_mode

from rerank_integrations import AuthenticationError, ServerError
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor
from rerank_integrations.server import serve_in_thread

TEXTS = ["pear tart", "apple pie", "plum cake", "apple crumble"]


def documents() -> list[Document]:
    return [Document(page_content=t, id=f"d{i}", metadata={"n": i}) for i, t in enumerate(TEXTS)]


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}", metadata={"n": i}), score=1.0 - i / 10)
        for i, t in enumerate(TEXTS)
    ]


def compress(mode: str, compressor: RerankCompressor, docs: list[Document]) -> list[Document]:
    return list(
        run_mode(
            mode,
            lambda: compressor.compress_documents(docs, "apple"),
            lambda: compressor.acompress_documents(docs, "apple"),
        )
    )


def postprocess(
    mode: str, postprocessor: RerankPostprocessor, items: list[NodeWithScore]
) -> list[NodeWithScore]:
    bundle = QueryBundle("apple")
    return run_mode(
        mode,
        lambda: postprocessor.postprocess_nodes(items, query_bundle=bundle),
        lambda: postprocessor.apostprocess_nodes(items, query_bundle=bundle),
    )


@pytest.fixture
def failing(make_client: Any, mock_api: MockAPI) -> Any:
    mock_api.queue(*[httpx.Response(503, json={"error": {"message": "overloaded"}})] * 3)
    return make_client(max_retries=2)


def test_langchain_passthrough(mode: str, failing: Any, caplog: pytest.LogCaptureFixture) -> None:
    docs = documents()
    before = copy.deepcopy(docs)
    compressor = RerankCompressor(client=failing, top_n=3, on_error="passthrough")
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        result = compress(mode, compressor, docs)
    assert [d.id for d in result] == ["d0", "d1", "d2"]
    assert all(d.metadata["reranked"] is False for d in result)
    assert all("relevance_score" not in d.metadata for d in result)
    assert [d.metadata["n"] for d in result] == [0, 1, 2]
    assert docs == before
    passthrough = [r for r in caplog.records if "original order" in r.getMessage()]
    assert len(passthrough) == 1 and "overloaded" in passthrough[0].getMessage()


def test_llama_index_passthrough(mode: str, failing: Any, caplog: pytest.LogCaptureFixture) -> None:
    items = nodes()
    before = copy.deepcopy(items)
    postprocessor = RerankPostprocessor(client=failing, top_n=None, on_error="passthrough")
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        result = postprocess(mode, postprocessor, items)
    assert [n.node.node_id for n in result] == ["n0", "n1", "n2", "n3"]
    assert [n.score for n in result] == [n.score for n in before]  # retrieval scores kept
    assert all(n.node.metadata["reranked"] is False for n in result)
    assert "reranked" not in result[0].node.get_content(metadata_mode=MetadataMode.LLM)
    assert [n.node.metadata for n in items] == [n.node.metadata for n in before]
    assert len([r for r in caplog.records if "original order" in r.getMessage()]) == 1


def test_raise_is_the_default(mode: str, failing: Any) -> None:
    with pytest.raises(ServerError):
        compress(mode, RerankCompressor(client=failing), documents())


def test_raise_for_llama_index_by_default(mode: str, failing: Any) -> None:
    with pytest.raises(ServerError):
        postprocess(mode, RerankPostprocessor(client=failing), nodes())


def test_bad_input_still_raises_under_passthrough(mode: str, make_client: Any) -> None:
    compressor = RerankCompressor(client=make_client(), on_error="passthrough")
    with pytest.raises(TypeError, match="query"):
        run_mode(
            mode,
            lambda: compressor.compress_documents(documents(), 42),  # type: ignore[arg-type]
            lambda: compressor.acompress_documents(documents(), 42),  # type: ignore[arg-type]
        )


def test_passthrough_over_the_wire(mode: str) -> None:
    with serve_in_thread(api_key="right-key") as server:
        compressor = RerankCompressor(
            base_url=server.base_url, api_key="wrong-key", on_error="passthrough", top_n=2
        )
        assert [d.id for d in compress(mode, compressor, documents())] == ["d0", "d1"]
        postprocessor = RerankPostprocessor(
            base_url=server.base_url, api_key="wrong-key", on_error="passthrough", top_n=2
        )
        assert [n.node.node_id for n in postprocess(mode, postprocessor, nodes())] == ["n0", "n1"]
        strict = RerankCompressor(base_url=server.base_url, api_key="wrong-key")
        with pytest.raises(AuthenticationError):
            compress(mode, strict, documents())
