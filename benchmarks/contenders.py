"""Everything the benchmark compares: the floor, the package's own entry points and peers.

Each :class:`Contender` says how to build its input from plain texts (strings, LangChain
``Document`` objects or LlamaIndex ``NodeWithScore`` objects) and how to open a session
against a server: an object with ``call(inputs)`` (sync) or ``acall(inputs)`` (async).
Peers are optional: a contender whose modules are not installed is skipped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import importlib
import importlib.util
import json
import socket
import struct
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from .corpus import QUERY, floor_payload

__all__ = [
    "AIOHTTP_CONTENDERS",
    "CONTENDERS",
    "LIMITS",
    "SPLIT_FLOORS",
    "Contender",
    "SessionOptions",
    "get_contender",
    "prepare_inputs",
    "result_count",
    "select_contenders",
]

#: A dummy API key for peers that insist on one (the local server ignores it).
_DUMMY_KEY = "benchmark-key"
#: Model name for peers that require one (the local server echoes it back).
_DUMMY_MODEL = "benchmark-model"
#: Seconds allowed per HTTP request, the same for every contender that can set it.
_TIMEOUT = 120.0


@dataclass(frozen=True)
class SessionOptions:
    """What a scenario tells every contender it opens.

    Attributes:
        base_url: the server's root URL (``http://127.0.0.1:PORT``).
        top_n: results asked for.
        max_documents_per_request: the server's limit, given to the package's contenders
            (peers have no such setting); ``None`` keeps the client's default.
        client_settings: more settings for the package's contenders (``RerankClient``
            arguments), for scenarios of one feature.
        sink: ``host:port`` of the raw socket sink (:mod:`benchmarks.sink`), for the
            physical-limit rows.
    """

    base_url: str
    top_n: int | None
    max_documents_per_request: int | None = None
    client_settings: Mapping[str, Any] = field(default_factory=dict)
    sink: str | None = None

    @property
    def rerank_url(self) -> str:
        """The Jina-style endpoint, ``/v1/rerank``."""
        return f"{self.base_url}/v1/rerank"


class SyncSession(Protocol):
    """An opened sync contender."""

    def call(self, inputs: Any) -> Any:
        """Rerank ``inputs`` once and return what the contender returns."""

    def close(self) -> None:
        """Release connections."""


class AsyncSession(Protocol):
    """An opened async contender."""

    async def acall(self, inputs: Any) -> Any:
        """Rerank ``inputs`` once and return what the contender returns."""

    async def aclose(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class Contender:
    """One thing being measured.

    Attributes:
        key: a short unique name (used by ``--contenders`` and the memory probe).
        label: what the report calls it.
        group: ``"floor"``, ``"ours"`` or ``"peers"``.
        mode: ``"sync"`` or ``"async"``.
        family: the input it takes: ``"strings"``, ``"langchain"`` or ``"llama_index"``.
        modules: modules that must be importable for it to run.
        endpoint: how it is pointed at the local server (for the report).
        opener: builds a session from :class:`SessionOptions`.
        role: what the report says of a floor row (``"reference"`` by default).
    """

    key: str
    label: str
    group: str
    mode: str
    family: str
    modules: tuple[str, ...]
    endpoint: str
    opener: Callable[[SessionOptions], Any]
    role: str = "reference"

    def missing(self) -> str | None:
        """The first required module that is not installed, or ``None``."""
        for module in self.modules:
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                return module
        return None

    def open(self, options: SessionOptions) -> Any:
        """A session of this contender against the server in ``options``."""
        return self.opener(options)


# -- inputs -----------------------------------------------------------------------------------


def prepare_inputs(family: str, texts: Sequence[str]) -> Any:
    """The input a contender of ``family`` takes, built from plain texts.

    LangChain documents carry a small metadata dict (as retrievers return them); LlamaIndex
    nodes carry none, so that the text they send is exactly the floor's.
    """
    if family == "strings":
        return list(texts)
    if family == "langchain":
        from langchain_core.documents import Document

        return [
            Document(page_content=text, metadata={"source": f"doc-{index}"})
            for index, text in enumerate(texts)
        ]
    if family == "llama_index":
        from llama_index.core.schema import NodeWithScore, TextNode

        return [
            NodeWithScore(node=TextNode(text=text, id_=f"node-{index}"), score=1.0)
            for index, text in enumerate(texts)
        ]
    raise ValueError(f"unknown input family {family!r}")


def result_count(result: Any) -> int:
    """How many ranked items a contender's return value holds (to check it worked)."""
    if isinstance(result, dict):
        results = result.get("results")
        if not isinstance(results, list):
            raise ValueError(f"the server did not answer a ranking: {str(result)[:200]}")
        return len(results)
    results = getattr(result, "results", result)
    return len(results)


# -- the floor --------------------------------------------------------------------------------


class _FloorSync:
    """``httpx.Client.post(url, json=payload).json()``, nothing else."""

    def __init__(self, options: SessionOptions) -> None:
        import httpx

        self._url = options.rerank_url
        self._top_n = options.top_n
        self._client = httpx.Client(timeout=_TIMEOUT)

    def call(self, inputs: list[str]) -> Any:
        return self._client.post(self._url, json=floor_payload(inputs, self._top_n)).json()

    def close(self) -> None:
        self._client.close()


class _FloorAsync:
    """``await httpx.AsyncClient.post(url, json=payload)`` then ``.json()``."""

    def __init__(self, options: SessionOptions) -> None:
        import httpx

        self._url = options.rerank_url
        self._top_n = options.top_n
        self._client = httpx.AsyncClient(timeout=_TIMEOUT)

    async def acall(self, inputs: list[str]) -> Any:
        response = await self._client.post(self._url, json=floor_payload(inputs, self._top_n))
        return response.json()

    async def aclose(self) -> None:
        await self._client.aclose()


def _merged(answers: list[Any], size: int, top_n: int | None) -> dict[str, Any]:
    """The best ``top_n`` of every slice's answer, indexes made global (a minimal merge)."""
    scored = [
        (item["relevance_score"], number * size + item["index"])
        for number, answer in enumerate(answers)
        for item in answer["results"]
    ]
    best = heapq.nlargest(top_n or len(scored), scored)
    return {"results": [{"index": index, "relevance_score": score} for score, index in best]}


def _slices(inputs: list[str], size: int) -> list[list[str]]:
    return [inputs[start : start + size] for start in range(0, len(inputs), size)]


def _encoded_slices(inputs: list[str], size: int, top_n: int | None) -> list[bytes]:
    """The JSON body of every slice, encoded as ``httpx`` would encode ``json=...``."""
    return [
        json.dumps(floor_payload(part, top_n), ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )
        for part in _slices(inputs, size)
    ]


_JSON_HEADERS = {"content-type": "application/json"}


class _FloorSplitSync:
    """Bare ``httpx.Client`` posts of every slice at once, one thread per slice, with the
    bodies encoded before the timing starts (a lower bound, not a client)."""

    def __init__(self, options: SessionOptions) -> None:
        import httpx

        self._url = options.rerank_url
        self._top_n = options.top_n
        self._size = options.max_documents_per_request or 1000
        self._client = httpx.Client(timeout=_TIMEOUT)
        self._pool: ThreadPoolExecutor | None = None
        self._bodies: dict[int, list[bytes]] = {}

    def _post(self, body: bytes) -> Any:
        return self._client.post(self._url, content=body, headers=_JSON_HEADERS).json()

    def call(self, inputs: list[str]) -> Any:
        key = id(inputs)
        if key not in self._bodies:  # the first (untimed, warm-up) call encodes
            self._bodies[key] = _encoded_slices(inputs, self._size, self._top_n)
        bodies = self._bodies[key]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(bodies))
        return _merged(list(self._pool.map(self._post, bodies)), self._size, self._top_n)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        self._client.close()


class _FloorSplitAsync:
    """Bare ``httpx.AsyncClient`` posts of every slice at once with ``asyncio.gather``, with
    the bodies encoded before the timing starts (a lower bound, not a client)."""

    def __init__(self, options: SessionOptions) -> None:
        import httpx

        self._url = options.rerank_url
        self._top_n = options.top_n
        self._size = options.max_documents_per_request or 1000
        self._client = httpx.AsyncClient(timeout=_TIMEOUT)
        self._bodies: dict[int, list[bytes]] = {}

    async def _post(self, body: bytes) -> Any:
        response = await self._client.post(self._url, content=body, headers=_JSON_HEADERS)
        return response.json()

    async def acall(self, inputs: list[str]) -> Any:
        key = id(inputs)
        if key not in self._bodies:  # the first (untimed, warm-up) call encodes
            self._bodies[key] = _encoded_slices(inputs, self._size, self._top_n)
        answers = await asyncio.gather(*map(self._post, self._bodies[key]))
        return _merged(list(answers), self._size, self._top_n)

    async def aclose(self) -> None:
        await self._client.aclose()


class _FloorAiohttp(_FloorAsync):
    """The async floor on httpx-aiohttp's client: httpx's interface, aiohttp's pool."""

    def __init__(self, options: SessionOptions) -> None:
        from httpx_aiohttp import HttpxAiohttpClient

        self._url = options.rerank_url
        self._top_n = options.top_n
        self._client = HttpxAiohttpClient(timeout=_TIMEOUT)


def _limit_answer(top_n: int | None) -> dict[str, Any]:
    return {"results": [{"index": i, "relevance_score": 1.0 - i / 10} for i in range(top_n or 1)]}


def _framed(body: bytes) -> bytes:
    return struct.pack("!Q", len(body)) + body


class _LimitSync:
    """The physical limit: the body encoded with orjson, one round trip of its bytes to
    the sink on a raw socket, the small answer decoded. No HTTP, no client logic."""

    def __init__(self, options: SessionOptions) -> None:
        import orjson

        assert options.sink is not None, "the physical-limit rows need a sink"
        host, _, port = options.sink.rpartition(":")
        self._dumps, self._loads = orjson.dumps, orjson.loads
        self._top_n = options.top_n
        self._socket = socket.create_connection((host, int(port)))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.sendall(_framed(self._dumps(_limit_answer(self._top_n))))  # the answer

    def _read(self, size: int) -> bytes:
        view = bytearray(size)
        got = 0
        while got < size:
            count = self._socket.recv_into(memoryview(view)[got:])
            if not count:
                raise ConnectionError("the sink hung up")
            got += count
        return bytes(view)

    def call(self, inputs: list[str]) -> Any:
        self._socket.sendall(_framed(self._dumps(floor_payload(inputs, self._top_n))))
        (size,) = struct.unpack("!Q", self._read(8))
        return self._loads(self._read(size))

    def close(self) -> None:
        self._socket.close()


class _LimitAsync:
    """The physical limit on the event loop: ``asyncio`` streams instead of a socket."""

    def __init__(self, options: SessionOptions) -> None:
        import orjson

        assert options.sink is not None, "the physical-limit rows need a sink"
        host, _, port = options.sink.rpartition(":")
        self._address = (host, int(port))
        self._dumps, self._loads = orjson.dumps, orjson.loads
        self._top_n = options.top_n
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def acall(self, inputs: list[str]) -> Any:
        if self._streams is None:
            reader, writer = await asyncio.open_connection(*self._address)
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            writer.write(_framed(self._dumps(_limit_answer(self._top_n))))
            self._streams = (reader, writer)
        reader, writer = self._streams
        writer.write(_framed(self._dumps(floor_payload(inputs, self._top_n))))
        await writer.drain()
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
        return self._loads(await reader.readexactly(size))

    async def aclose(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            await self._streams[1].wait_closed()


# -- ours -------------------------------------------------------------------------------------


def _our_settings(options: SessionOptions) -> dict[str, Any]:
    settings: dict[str, Any] = {"base_url": options.rerank_url, "timeout": _TIMEOUT}
    if options.max_documents_per_request is not None:
        settings["max_documents_per_request"] = options.max_documents_per_request
    settings.update(options.client_settings)
    return settings


def _on_aiohttp(opener: Callable[[SessionOptions], Any]) -> Callable[[SessionOptions], Any]:
    """``opener`` with the package's ``async_transport="aiohttp"``."""

    def open_on_aiohttp(options: SessionOptions) -> Any:
        settings = {**options.client_settings, "async_transport": "aiohttp"}
        return opener(dataclasses.replace(options, client_settings=settings))

    return open_on_aiohttp


class _ClientSession:
    """``RerankClient.rerank`` / ``arerank``."""

    def __init__(self, options: SessionOptions) -> None:
        from rerank_integrations import RerankClient

        self._top_n = options.top_n
        self._client = RerankClient(**_our_settings(options))

    def call(self, inputs: list[str]) -> Any:
        return self._client.rerank(QUERY, inputs, top_n=self._top_n)

    async def acall(self, inputs: list[str]) -> Any:
        return await self._client.arerank(QUERY, inputs, top_n=self._top_n)

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        await self._client.aclose()


class _CompressorSession:
    """``RerankCompressor.compress_documents`` / ``acompress_documents``."""

    def __init__(self, options: SessionOptions) -> None:
        from rerank_integrations.langchain import RerankCompressor

        self._compressor = RerankCompressor(top_n=options.top_n, **_our_settings(options))

    def call(self, inputs: Any) -> Any:
        return self._compressor.compress_documents(inputs, QUERY)

    async def acall(self, inputs: Any) -> Any:
        return await self._compressor.acompress_documents(inputs, QUERY)

    def close(self) -> None:
        self._compressor.rerank_client.close()

    async def aclose(self) -> None:
        await self._compressor.rerank_client.aclose()


class _PostprocessorSession:
    """``RerankPostprocessor.postprocess_nodes`` / ``apostprocess_nodes``."""

    def __init__(self, options: SessionOptions) -> None:
        from rerank_integrations.llama_index import RerankPostprocessor

        self._postprocessor = RerankPostprocessor(top_n=options.top_n, **_our_settings(options))

    def call(self, inputs: Any) -> Any:
        return self._postprocessor.postprocess_nodes(inputs, query_str=QUERY)

    async def acall(self, inputs: Any) -> Any:
        return await self._postprocessor.apostprocess_nodes(inputs, query_str=QUERY)

    def close(self) -> None:
        self._postprocessor.rerank_client.close()

    async def aclose(self) -> None:
        await self._postprocessor.rerank_client.aclose()


# -- peers ------------------------------------------------------------------------------------


def _quiet_import(module: str) -> Any:
    """Import ``module`` without its deprecation chatter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(module)


class _LangChainPeer:
    """A LangChain ``BaseDocumentCompressor`` peer; its async path is LangChain's default."""

    def __init__(self, compressor: Any) -> None:
        self._compressor = compressor

    def call(self, inputs: Any) -> Any:
        return self._compressor.compress_documents(inputs, QUERY)

    async def acall(self, inputs: Any) -> Any:
        return await self._compressor.acompress_documents(inputs, QUERY)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class _LlamaIndexPeer:
    """A LlamaIndex ``BaseNodePostprocessor`` peer; its async path is LlamaIndex's default."""

    def __init__(self, postprocessor: Any) -> None:
        self._postprocessor = postprocessor

    def call(self, inputs: Any) -> Any:
        return self._postprocessor.postprocess_nodes(inputs, query_str=QUERY)

    async def acall(self, inputs: Any) -> Any:
        return await self._postprocessor.apostprocess_nodes(inputs, query_str=QUERY)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def _langchain_jina(options: SessionOptions) -> _LangChainPeer:
    module = _quiet_import("langchain_community.document_compressors.jina_rerank")
    # The endpoint is a module constant read at call time; there is no setting for it.
    module.JINA_API_URL = options.rerank_url
    return _LangChainPeer(module.JinaRerank(jina_api_key=_DUMMY_KEY, top_n=options.top_n))


def _langchain_cohere(options: SessionOptions) -> _LangChainPeer:
    module = _quiet_import("langchain_cohere")
    return _LangChainPeer(
        module.CohereRerank(
            cohere_api_key=_DUMMY_KEY,
            base_url=options.base_url,
            model=_DUMMY_MODEL,
            top_n=options.top_n,
        )
    )


def _llama_index_jina(options: SessionOptions) -> _LlamaIndexPeer:
    module = _quiet_import("llama_index.postprocessor.jinaai_rerank")
    return _LlamaIndexPeer(
        module.JinaRerank(
            top_n=options.top_n, base_url=f"{options.base_url}/v1", api_key=_DUMMY_KEY
        )
    )


def _llama_index_cohere(options: SessionOptions) -> _LlamaIndexPeer:
    module = _quiet_import("llama_index.postprocessor.cohere_rerank")
    return _LlamaIndexPeer(
        module.CohereRerank(
            top_n=options.top_n,
            model=_DUMMY_MODEL,
            api_key=_DUMMY_KEY,
            base_url=options.base_url,
        )
    )


# -- the list ---------------------------------------------------------------------------------

_LANGCHAIN = ("langchain_core", "rerank_integrations")
_LLAMA_INDEX = ("llama_index.core", "rerank_integrations")


def _pair(
    key: str,
    label: str,
    group: str,
    family: str,
    modules: tuple[str, ...],
    endpoint: str,
    opener: Callable[[SessionOptions], Any],
    *,
    sync_call: str,
    async_call: str,
) -> list[Contender]:
    return [
        Contender(
            f"{key}-sync", f"{label}.{sync_call}", group, "sync", family, modules, endpoint, opener
        ),
        Contender(
            f"{key}-async",
            f"{label}.{async_call}",
            group,
            "async",
            family,
            modules,
            endpoint,
            opener,
        ),
    ]


#: Every contender, in report order.
CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "floor-sync",
        "httpx.Client.post(json=...).json()",
        "floor",
        "sync",
        "strings",
        ("httpx",),
        "URL argument",
        _FloorSync,
    ),
    Contender(
        "floor-async",
        "httpx.AsyncClient.post(json=...).json()",
        "floor",
        "async",
        "strings",
        ("httpx",),
        "URL argument",
        _FloorAsync,
    ),
    *_pair(
        "client",
        "RerankClient",
        "ours",
        "strings",
        ("rerank_integrations",),
        "base_url=.../v1/rerank",
        _ClientSession,
        sync_call="rerank",
        async_call="arerank",
    ),
    *_pair(
        "compressor",
        "RerankCompressor",
        "ours",
        "langchain",
        _LANGCHAIN,
        "base_url=.../v1/rerank",
        _CompressorSession,
        sync_call="compress_documents",
        async_call="acompress_documents",
    ),
    *_pair(
        "postprocessor",
        "RerankPostprocessor",
        "ours",
        "llama_index",
        _LLAMA_INDEX,
        "base_url=.../v1/rerank",
        _PostprocessorSession,
        sync_call="postprocess_nodes",
        async_call="apostprocess_nodes",
    ),
    *_pair(
        "lc-jina",
        "langchain-community JinaRerank",
        "peers",
        "langchain",
        ("langchain_community.document_compressors.jina_rerank",),
        "module constant JINA_API_URL patched to .../v1/rerank",
        _langchain_jina,
        sync_call="compress_documents",
        async_call="acompress_documents",
    ),
    *_pair(
        "lc-cohere",
        "langchain-cohere CohereRerank",
        "peers",
        "langchain",
        ("langchain_cohere",),
        "constructor base_url=... (the SDK posts to /v2/rerank)",
        _langchain_cohere,
        sync_call="compress_documents",
        async_call="acompress_documents",
    ),
    *_pair(
        "li-jina",
        "llama-index JinaRerank",
        "peers",
        "llama_index",
        ("llama_index.postprocessor.jinaai_rerank",),
        "constructor base_url=.../v1 (it appends /rerank)",
        _llama_index_jina,
        sync_call="postprocess_nodes",
        async_call="apostprocess_nodes",
    ),
    *_pair(
        "li-cohere",
        "llama-index CohereRerank",
        "peers",
        "llama_index",
        ("llama_index.postprocessor.cohere_rerank",),
        "constructor base_url=... (the SDK posts to /v2/rerank)",
        _llama_index_cohere,
        sync_call="postprocess_nodes",
        async_call="apostprocess_nodes",
    ),
)

#: Scenario 3's lower bounds: bare httpx sending every slice at once, bodies encoded
#: beforehand, so that only the transport and the server are timed.
SPLIT_FLOORS: tuple[Contender, ...] = (
    Contender(
        "floor-sync-split",
        "httpx.Client, every slice at once, pre-encoded (threads)",
        "floor",
        "sync",
        "strings",
        ("httpx",),
        "URL argument",
        _FloorSplitSync,
        role="lower bound",
    ),
    Contender(
        "floor-async-split",
        "httpx.AsyncClient, every slice at once, pre-encoded (gather)",
        "floor",
        "async",
        "strings",
        ("httpx",),
        "URL argument",
        _FloorSplitAsync,
        role="lower bound",
    ),
)

#: Scenario 4's second transport: the floor and the package's async contenders on aiohttp
#: (httpx-aiohttp), measured against the httpx floor.
AIOHTTP_CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "floor-async-aiohttp",
        "httpx_aiohttp.HttpxAiohttpClient.post(json=...).json()",
        "floor",
        "async",
        "strings",
        ("httpx_aiohttp",),
        "URL argument",
        _FloorAiohttp,
        role="aiohttp floor",
    ),
    *(
        Contender(
            f"{contender.key}-aiohttp",
            f"{contender.label}, async_transport='aiohttp'",
            contender.group,
            contender.mode,
            contender.family,
            (*contender.modules, "httpx_aiohttp"),
            contender.endpoint,
            _on_aiohttp(contender.opener),
        )
        for contender in CONTENDERS
        if contender.group == "ours" and contender.mode == "async"
    ),
)

#: Scenario 2's physical limit: orjson and one raw-socket round trip, no HTTP at all.
LIMITS: tuple[Contender, ...] = (
    Contender(
        "limit-sync",
        "orjson.dumps + one raw-socket round trip",
        "floor",
        "sync",
        "strings",
        ("orjson",),
        "raw TCP to the sink",
        _LimitSync,
        role="physical limit",
    ),
    Contender(
        "limit-async",
        "orjson.dumps + one asyncio-stream round trip",
        "floor",
        "async",
        "strings",
        ("orjson",),
        "raw TCP to the sink",
        _LimitAsync,
        role="physical limit",
    ),
)

_BY_KEY = {
    contender.key: contender
    for contender in (*CONTENDERS, *SPLIT_FLOORS, *AIOHTTP_CONTENDERS, *LIMITS)
}


def select_contenders(spec: str | None) -> list[Contender]:
    """The contenders named by ``spec``: comma-separated groups (``floor``, ``ours``,
    ``peers``), keys (``client-sync``) or key prefixes (``client``); ``None``: all.

    Raises:
        ValueError: a name matches nothing.
    """
    if not spec:
        return list(CONTENDERS)
    chosen: set[str] = set()
    for name in (part.strip() for part in spec.split(",")):
        if not name:
            continue
        matched = [
            contender.key
            for contender in CONTENDERS
            if name in (contender.group, contender.key) or contender.key.startswith(f"{name}-")
        ]
        if not matched:
            known = ", ".join(["floor", "ours", "peers", *_BY_KEY])
            raise ValueError(f"no contender matches {name!r}; known: {known}")
        chosen.update(matched)
    return [contender for contender in CONTENDERS if contender.key in chosen]


def get_contender(key: str) -> Contender:
    """The contender with this key."""
    return _BY_KEY[key]
