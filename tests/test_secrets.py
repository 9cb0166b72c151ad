"""One key, every place it could leak: reprs, errors, DEBUG logs, dumps, demo and CLI output."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rerank_integrations import RerankClient, RerankError
from rerank_integrations.cli import main
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor
from rerank_integrations.server import serve_in_thread

KEY = "sk-live-7f3a9c1e5b-DO-NOT-LEAK"


def scan(texts: list[str]) -> None:
    leaked = [text for text in texts if KEY in text or KEY[8:20] in text]
    assert leaked == []


def test_the_key_never_leaks(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    seen: list[str] = []
    with serve_in_thread(api_key=KEY) as good, serve_in_thread(api_key="another-key") as bad:
        client = RerankClient(good.base_url, api_key=KEY)
        compressor = RerankCompressor(base_url=good.base_url, api_key=KEY, headers={"X-Key": KEY})
        postprocessor = RerankPostprocessor(base_url=good.base_url, api_key=KEY)
        objects: list[Any] = [client, client.settings, compressor, postprocessor]
        seen += [repr(o) for o in objects] + [str(o) for o in objects]
        seen += [
            str(compressor.model_dump()),
            compressor.model_dump_json(),
            str(postprocessor.model_dump()),
            postprocessor.model_dump_json(),
            str(postprocessor.to_dict()),
            postprocessor.to_json(),
        ]
        # successful calls, sync and async, with DEBUG logging on
        client.rerank("apple", ["apple", "pear"])
        asyncio.run(client.arerank("apple", ["apple", "pear"]))
        compressor.compress_documents([], "q")
        node = NodeWithScore(node=TextNode(text="apple"), score=0.1)
        postprocessor.postprocess_nodes([node], query_bundle=QueryBundle("apple"))

        # failures: wrong key, and a server that echoes the key in its error
        wrong = RerankClient(bad.base_url, api_key=KEY)
        for call in (
            lambda: wrong.rerank("q", ["a"]),
            lambda: asyncio.run(wrong.arerank("q", ["a"])),
        ):
            with pytest.raises(RerankError) as info:
                call()
            seen += [str(info.value), repr(info.value), str(info.value.args)]

        def echo(request: httpx.Request) -> httpx.Response:
            return httpx.Response(401, json={"error": {"message": f"bad key {KEY}"}})

        echoing = RerankClient(
            "https://h", api_key=KEY, http_client=httpx.Client(transport=httpx.MockTransport(echo))
        )
        with pytest.raises(RerankError) as info:
            echoing.rerank("q", ["a"])
        seen += [str(info.value), repr(info.value), str(getattr(info.value, "body", ""))]

        # validation errors of the adapters carry no inputs
        with pytest.raises(ValueError) as invalid:  # noqa: PT011 - the message is checked below
            RerankCompressor(base_url=good.base_url, api_key=KEY, top_k=1)
        seen.append(str(invalid.value))

        # the command line and the demo, with the key in the environment
        monkeypatch.setenv("RERANK_BASE_URL", good.base_url)
        monkeypatch.setenv("RERANK_API_KEY", KEY)
        capsys.readouterr()
        assert main(["check"]) == 0
        assert main(["demo", "--top-k", "10"]) == 0
        monkeypatch.setenv("RERANK_BASE_URL", bad.base_url)
        # a real stdin (pytest's own cannot be read): empty, then a document the bad server
        # refuses with 401
        for lines in (b"", b"a document\n"):
            stdin_file = tmp_path / "stdin"
            stdin_file.write_bytes(lines)
            with stdin_file.open(encoding="utf-8") as stdin:
                monkeypatch.setattr(sys, "stdin", stdin)
                assert main(["rerank", "q", "-"]) == 1
            output = capsys.readouterr()
            assert ("401" in output.err) == bool(lines)
            seen += [output.out, output.err]
        client.close()

    seen += [record.getMessage() for record in caplog.records]
    seen += [str(record.args) for record in caplog.records]
    assert len(caplog.records) > 5  # DEBUG logging really was captured
    scan(seen)
