"""Cases, the runs of each case (client sync and async, both adapters), and the recordings.

A :class:`Case` is one call with one set of client settings and the outcome it must reach.
For a ranking, the expected outcome is computed from raw ``httpx`` calls to the same server
with the same body (one unsplit call where the server scores each pair on its own, one call
per batch where it does not); for an error it is written in the case. ``pending`` names the
core fix a case waits for: such a case is expected to fail today (XFAIL) and must
pass once the fix lands (XPASS is reported as a failure, like pytest's ``strict=True``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from interop.corpus import DOCUMENTS, QUERY
from interop.replay import (
    FORMAT,
    RECORDINGS_DIR,
    Outcome,
    _WarningCatcher,
    check_outcome,
)
from rerank_integrations import RerankClient, RerankError, testing
from rerank_integrations.cli import advice_for

#: Most cases send the first eight documents: under every server's per-request limit here.
DOCS = DOCUMENTS[:8]

#: Response headers left out of recordings: they change on every run and mean nothing here.
_VOLATILE_HEADERS = frozenset(
    {"date", "content-length", "transfer-encoding", "connection", "keep-alive", "vary"}
)

MODES = ("sync", "async", "langchain", "langchain-async", "llamaindex", "llamaindex-async")

#: Free ports differ on every run; recordings show each server's usual port instead, so that
#: a new run changes a recording only where the server's answer changed.
_STABLE_PORTS: dict[int, int] = {}


def stable_port(real: int, shown: int) -> None:
    """Write ``shown`` for ``real`` in every recording from now on."""
    _STABLE_PORTS[real] = shown


def _stable_text(text: str) -> str:
    for real, shown in _STABLE_PORTS.items():
        text = text.replace(f"127.0.0.1:{real}", f"127.0.0.1:{shown}")
    return text


@dataclass
class Server:
    """What a recording says about the server it came from."""

    name: str
    version: str
    notes: str = ""
    secrets: list[str] = field(default_factory=list)


@dataclass
class Case:
    """One call against one server, and the outcome it must reach."""

    name: str
    title: str
    base_url: str
    model: str | None = None
    api_key: str | None = None
    dialect: str | None = None
    max_documents_per_request: int | None = None
    max_retries: int = 0
    timeout: float = 30.0
    score_transform: str | None = None
    #: Client-level extra body fields (``RerankClient(extra_body=...)``).
    extra_body: dict[str, Any] | None = None
    query: str = QUERY
    documents: Sequence[str] = tuple(DOCS)
    top_n: int | None = None
    #: Per-call extra body fields (``client.rerank(..., **extra)``).
    extra: dict[str, Any] = field(default_factory=dict)
    #: Hand-written expectation (errors, counts, warnings); merged over the computed ranking.
    expected: dict[str, Any] = field(default_factory=dict)
    #: The full URL for the raw comparison call(s); ``None``: no raw call.
    raw_url: str | None = None
    #: ``"unsplit"``: one raw call with every document; ``"per-batch"``: one per batch.
    raw_split: str = "unsplit"
    raw_headers: dict[str, str] = field(default_factory=dict)
    #: Whether the expected ranking comes from the raw call(s).
    expect_raw_ranking: bool = True
    #: Expected usage from the raw answers (``False`` when the comparison cannot hold).
    expect_raw_usage: bool = True
    pending: str | None = None
    #: The modes the pending fix shows in (``None``: all); others are judged as usual.
    pending_in: tuple[str, ...] | None = None
    adapters: bool = True

    def client_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": bool(self.api_key),
            "model": self.model,
            "dialect": self.dialect,
            "max_retries": self.max_retries,
            "max_documents_per_request": self.max_documents_per_request,
            "score_transform": self.score_transform,
        }
        if self.extra_body is not None:
            settings["extra_body"] = self.extra_body
        return settings

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "model": self.model,
            "dialect": self.dialect,
            "max_retries": self.max_retries,
            "max_documents_per_request": self.max_documents_per_request,
            "score_transform": self.score_transform,
            "timeout": self.timeout,
        }
        if self.extra_body is not None:
            kwargs["extra_body"] = self.extra_body
        return kwargs

    def call_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.extra)
        if self.top_n is not None:
            kwargs["top_n"] = self.top_n
        return kwargs


# -- recording ----------------------------------------------------------------------------------


class Recorder:
    """Collects request/answer pairs from any number of threads and event loops."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.exchanges: list[dict[str, Any]] = []
        self._secrets = [secret for secret in secrets if secret]
        self._lock = threading.Lock()

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def add(self, request: httpx.Request, response: httpx.Response, seconds: float) -> None:
        body_text = request.content.decode("utf-8", errors="replace")
        try:
            body: Any = json.loads(body_text)
        except ValueError:
            body = body_text
        auth = request.headers.get("authorization")
        exchange = {
            "request": {
                "method": request.method,
                "path": request.url.path,
                "auth": None if auth is None else auth.split(" ", 1)[0] + " ***",
                "body": json.loads(self.scrub(json.dumps(body))),
            },
            "response": {
                "status": response.status_code,
                "headers": {
                    name: self.scrub(value)
                    for name, value in response.headers.items()
                    if name.lower() not in _VOLATILE_HEADERS
                },
                "body": self.scrub(response.content.decode("utf-8", errors="replace")),
                "seconds": round(seconds, 1),
            },
        }
        with self._lock:
            self.exchanges.append(exchange)


class RecordingTransport(httpx.BaseTransport):
    def __init__(self, recorder: Recorder) -> None:
        self._inner = httpx.HTTPTransport()
        self._recorder = recorder

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        response = self._inner.handle_request(request)
        content = response.read()
        self._recorder.add(request, response, time.monotonic() - started)
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    def close(self) -> None:
        self._inner.close()


class AsyncRecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, recorder: Recorder) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._recorder = recorder

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        self._recorder.add(request, response, time.monotonic() - started)
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- the raw comparison ---------------------------------------------------------------------------


def raw_body(case: Case, documents: Sequence[str], top_n: int | None) -> dict[str, Any]:
    """The body our ``generic`` client sends, built here by hand."""
    body: dict[str, Any] = {}
    if case.model:
        body["model"] = case.model
    body["query"] = case.query
    body["documents"] = list(documents)
    if top_n is not None:
        body["top_n"] = min(top_n, len(documents))
    body["return_documents"] = False
    body.update(case.extra_body or {})
    body.update(case.extra)
    return body


def _sigmoid(score: float) -> float:
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    exp = math.exp(score)
    return exp / (1.0 + exp)


def spec_usage(bodies: Sequence[Any]) -> dict[str, Any] | None:
    """Usage as the client reports it: tokens from ``usage`` or ``meta`` (``billed_units``,
    ``tokens``), billing units from ``meta.billed_units.search_units`` or ``usage``; summed
    over the answers; ``None`` when no answer reports any (``meta`` null among them)."""
    tokens: list[int] = []
    units: list[float] = []
    for body in bodies:
        if not isinstance(body, dict):
            continue
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        billed = meta.get("billed_units") if isinstance(meta.get("billed_units"), dict) else {}
        meta_tokens = meta.get("tokens") if isinstance(meta.get("tokens"), dict) else {}
        for value in (
            usage.get("total_tokens"),
            usage.get("prompt_tokens"),
            billed.get("total_tokens"),
            meta_tokens.get("input_tokens"),
        ):
            if isinstance(value, int) and not isinstance(value, bool):
                tokens.append(value)
                break
        for value in (usage.get("rerank_units"), billed.get("search_units")):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                units.append(value)
                break
    if not tokens and not units:
        return None
    return {
        "total_tokens": sum(tokens) if tokens else None,
        "billed_units": sum(units) if units else None,
    }


def run_raw(case: Case, recorder: Recorder) -> dict[str, Any]:
    """Make the raw call(s) and derive the expected ranking (and usage) from them."""
    assert case.raw_url is not None
    documents = list(case.documents)
    if case.raw_split == "per-batch" and case.max_documents_per_request:
        size = case.max_documents_per_request
        chunks = [
            (start, documents[start : start + size]) for start in range(0, len(documents), size)
        ]
    else:
        chunks = [(0, documents)]
    headers = {"Content-Type": "application/json", **case.raw_headers}
    if case.api_key:
        headers["Authorization"] = f"Bearer {case.api_key}"
    pairs: list[tuple[int, float]] = []
    bodies: list[Any] = []
    statuses: list[int] = []
    transport = RecordingTransport(recorder)
    with httpx.Client(transport=transport, timeout=case.timeout) as raw:
        for start, chunk in chunks:
            top_n = case.top_n if len(chunks) == 1 else None
            response = raw.post(case.raw_url, json=raw_body(case, chunk, top_n), headers=headers)
            statuses.append(response.status_code)
            try:
                body = response.json()
            except ValueError:
                body = None
            bodies.append(body)
            if response.is_success and isinstance(body, dict):
                for item in body.get("results", []):
                    pairs.append((start + int(item["index"]), float(item["relevance_score"])))
    derived: dict[str, Any] = {"raw_statuses": statuses}
    if all(200 <= status < 300 for status in statuses):
        if case.score_transform == "sigmoid":
            pairs = [(index, _sigmoid(score)) for index, score in pairs]
        pairs.sort(key=lambda pair: (-pair[1], pair[0]))
        if case.top_n is not None:
            pairs = pairs[: case.top_n]
        derived["ranking"] = [[index, score] for index, score in pairs]
        derived["usage"] = spec_usage(bodies)
    return derived


# -- one run ----------------------------------------------------------------------------------


def run_client(case: Case, recorder: Recorder, *, use_async: bool) -> Outcome:
    outcome = Outcome()
    kwargs = case.client_kwargs()
    try:
        if use_async:
            kwargs["async_http_client"] = httpx.AsyncClient(
                transport=AsyncRecordingTransport(recorder), timeout=case.timeout
            )
        else:
            kwargs["http_client"] = httpx.Client(
                transport=RecordingTransport(recorder), timeout=case.timeout
            )
        client = RerankClient(**kwargs)
    except (RerankError, TypeError, ValueError) as exc:
        outcome.error = exc
        return outcome
    # Each retry wait is recorded, not slept, so faults stay quick.
    with testing.no_waits() as waits:
        try:
            if use_async:

                async def go() -> Any:
                    async with client:
                        return await client.arerank(
                            case.query, case.documents, **case.call_kwargs()
                        )

                outcome.response = asyncio.run(go())
            else:
                with client:
                    outcome.response = client.rerank(
                        case.query, case.documents, **case.call_kwargs()
                    )
        except (RerankError, TypeError, ValueError) as exc:
            outcome.error = exc
    outcome.waits = waits
    return outcome


def _adapter_settings(case: Case) -> dict[str, Any]:
    settings = {key: value for key, value in case.client_kwargs().items() if value is not None}
    settings["top_n"] = case.top_n  # None: every document, not the adapters' default of 3
    if case.extra:
        settings["extra_body"] = {**settings.get("extra_body", {}), **case.extra}
    return settings


def run_langchain(case: Case, *, use_async: bool) -> Outcome:
    from langchain_core.documents import Document

    from rerank_integrations.langchain import RerankCompressor

    outcome = Outcome()
    documents = [
        Document(page_content=text, id=f"d{index}", metadata={"i": index})
        for index, text in enumerate(case.documents)
    ]
    try:
        compressor = RerankCompressor(**_adapter_settings(case))
        if use_async:
            ranked = asyncio.run(compressor.acompress_documents(documents, case.query))
        else:
            ranked = compressor.compress_documents(documents, case.query)
        outcome.pairs = [
            (int(document.metadata["i"]), float(document.metadata["relevance_score"]))
            for document in ranked
        ]
    except Exception as exc:  # any failure is the outcome to judge, typed or not
        outcome.error = exc
    return outcome


def run_llamaindex(case: Case, *, use_async: bool) -> Outcome:
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerank_integrations.llama_index import RerankPostprocessor

    outcome = Outcome()
    nodes = [
        NodeWithScore(node=TextNode(text=text, id_=f"n{index}"), score=None)
        for index, text in enumerate(case.documents)
    ]
    try:
        reranker = RerankPostprocessor(**_adapter_settings(case))
        if use_async:
            ranked = asyncio.run(reranker.apostprocess_nodes(nodes, query_str=case.query))
        else:
            ranked = reranker.postprocess_nodes(nodes, query_str=case.query)
        outcome.pairs = [(int(item.node.node_id[1:]), float(item.score or 0.0)) for item in ranked]
    except Exception as exc:  # any failure is the outcome to judge, typed or not
        outcome.error = exc
    return outcome


# -- a case across modes ------------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    status: str  # PASS, FAIL, XFAIL, XPASS
    detail: str


@dataclass
class CaseResult:
    server: str
    case: Case
    modes: list[ModeResult]

    @property
    def status(self) -> str:
        statuses = {mode.status for mode in self.modes}
        for status in ("FAIL", "XPASS", "XFAIL"):
            if status in statuses:
                return status
        return "PASS"


def _judge(case: Case, mode: str, problems: list[str]) -> tuple[str, str]:
    if case.pending and (case.pending_in is None or mode in case.pending_in):
        return ("XFAIL", "; ".join(problems)) if problems else ("XPASS", "passes: drop 'pending'")
    return ("FAIL", "; ".join(problems)) if problems else ("PASS", "")


def _catch_warnings(run: Callable[[], Outcome]) -> Outcome:
    catcher = _WarningCatcher()
    logger = logging.getLogger("rerank_integrations")
    logger.addHandler(catcher)
    try:
        outcome = run()
    finally:
        logger.removeHandler(catcher)
    outcome.warnings = catcher.messages
    return outcome


def run_case(server: Server, case: Case, out_dir: Path | None = RECORDINGS_DIR) -> CaseResult:
    """Run ``case`` in every mode, write its recording, and judge each mode."""
    raw_recorder = Recorder(server.secrets)
    expected: dict[str, Any] = {}
    derived: dict[str, Any] = {}
    if case.raw_url is not None:
        derived = run_raw(case, raw_recorder)
        if case.expect_raw_ranking:
            if "ranking" not in derived:
                raise RuntimeError(
                    f"{server.name}/{case.name}: the raw call failed ({derived['raw_statuses']}),"
                    f" so there is no ranking to compare with: {raw_recorder.exchanges[-1]}"
                )
            expected["ranking"] = derived["ranking"]
            if case.expect_raw_usage:
                expected["usage"] = derived["usage"]
    expected.update(case.expected)

    results: list[ModeResult] = []
    recorded: Recorder | None = None
    endpoint = None
    for mode in MODES if case.adapters else MODES[:2]:
        recorder = Recorder(server.secrets)
        if mode in ("sync", "async"):

            def run(use_async: bool = mode == "async", recorder: Recorder = recorder) -> Outcome:
                return run_client(case, recorder, use_async=use_async)

            outcome = _catch_warnings(run)
            outcome.requests = len(recorder.exchanges)
            if mode == "sync":
                recorded = recorder
        else:
            adapter = run_langchain if mode.startswith("langchain") else run_llamaindex
            is_async = mode.endswith("async")
            outcome = _catch_warnings(
                lambda adapter=adapter, is_async=is_async: adapter(case, use_async=is_async)
            )
        with_counts = mode in ("sync", "async")
        check = expected if with_counts else _without_counts(expected)
        if endpoint is None:
            try:
                endpoint = RerankClient(base_url=case.base_url, dialect=case.dialect).endpoint
            except RerankError:
                endpoint = case.base_url
        problems = check_outcome(
            check, outcome, endpoint=endpoint, check_usage=with_counts, advice=advice_for
        )
        status, detail = _judge(case, mode, problems)
        results.append(ModeResult(mode, status, detail or outcome.describe()))

    if out_dir is not None and recorded is not None:
        write_recording(out_dir, server, case, expected, recorded, raw_recorder, derived)
    return CaseResult(server.name, case, results)


def _without_counts(expected: Mapping[str, Any]) -> dict[str, Any]:
    """Adapters: the same outcome, without request counts and waits (not visible there)."""
    return {
        key: value
        for key, value in expected.items()
        if key not in ("requests", "min_first_wait", "usage")
    }


def write_recording(
    out_dir: Path,
    server: Server,
    case: Case,
    expected: Mapping[str, Any],
    recorder: Recorder,
    raw_recorder: Recorder,
    derived: Mapping[str, Any],
) -> Path:
    path = out_dir / server.name / f"{case.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    recording = {
        "format": FORMAT,
        "server": {"name": server.name, "version": server.version, "notes": server.notes},
        "recorded_on": dt.date.today().isoformat(),
        "case": case.name,
        "title": case.title,
        "pending": case.pending,
        "client": case.client_settings(),
        "call": {
            "query": case.query,
            "documents": list(case.documents),
            "top_n": case.top_n,
            "extra": case.extra,
        },
        "expected": dict(expected),
        "exchanges": sorted(recorder.exchanges, key=_exchange_order),
        "raw_exchanges": raw_recorder.exchanges,
        "raw_statuses": derived.get("raw_statuses"),
    }
    text = _stable_text(json.dumps(recording, indent=2, ensure_ascii=False))
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _exchange_order(exchange: Mapping[str, Any]) -> str:
    """Batches run concurrently; a stable order keeps recordings comparable between runs."""
    request = exchange["request"]
    return json.dumps([request["path"], request["body"]], sort_keys=True)
