"""Recordings of real servers, served back to a client, and the check of what it made of them.

A recording is one JSON file per case (``tests/wire/recorded/<server>/<case>.json``): the
server's name and version, the date, the client's settings and the call, every request our
client sent with the answer it got (status, headers of interest, the raw body), the raw
``httpx`` calls the kit made to the same server for comparison, and the outcome the client
should reach. ``tests/wire/test_recorded.py`` and the live kit both use this module: the kit to
check a live run, the test suite to replay the bytes without the servers.

Only the standard library, ``httpx`` and ``rerank_integrations`` are needed here.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import rerank_integrations
from rerank_integrations import RerankClient, RerankError, RerankResponse, testing

FORMAT = 1
REPO_ROOT = Path(__file__).resolve().parent.parent
RECORDINGS_DIR = REPO_ROOT / "tests" / "wire" / "recorded"

#: Relative tolerance on scores: float32 noise (seen up to 3e-6) when a server pads pairs of
#: concurrent requests into one batch of its own.
SCORE_TOLERANCE = 1e-5

#: Log lines of the client that warn of scores off their scale.
_SCALE_WARNING = re.compile(r"(?i)(scale|logit|0\.\.1|probabilit)")


def canonical_body(content: bytes | str) -> str:
    """A request body as canonical JSON text (sorted keys), or as it is when not JSON."""
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


def exchange_key(path: str, body: Any) -> tuple[str, str]:
    """What identifies a request: its path and canonical body."""
    text = body if isinstance(body, str) else json.dumps(body)
    return path, canonical_body(text)


@dataclass
class Outcome:
    """What one run of a case came to: a ranking or an error, and what was seen on the way."""

    response: RerankResponse | None = None
    error: BaseException | None = None
    requests: int = 0
    waits: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Set by adapter runs: the ranking as ``(index, score)``, with no usage to compare.
    pairs: list[tuple[int, float]] | None = None

    def ranking(self) -> list[tuple[int, float]] | None:
        if self.pairs is not None:
            return self.pairs
        if self.response is None:
            return None
        return [(result.index, result.relevance_score) for result in self.response.results]

    def describe(self) -> str:
        if self.error is not None:
            return f"{type(self.error).__name__}: {self.error}"
        ranking = self.ranking() or []
        shown = ", ".join(f"{index}:{score:.4g}" for index, score in ranking[:6])
        more = "" if len(ranking) <= 6 else f", … ({len(ranking)} results)"
        return f"ranking [{shown}{more}]"


def _error_class(name: str) -> type[BaseException]:
    found = getattr(rerank_integrations, name, None) or getattr(builtins, name, None)
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    raise ValueError(f"unknown error class {name!r} in a recording")


def check_outcome(
    expected: Mapping[str, Any],
    outcome: Outcome,
    *,
    endpoint: str | None = None,
    check_usage: bool = True,
    advice: Callable[[RerankError], str] | None = None,
) -> list[str]:
    """Every way ``outcome`` differs from ``expected``; an empty list when it matches.

    ``expected`` holds either ``ranking`` (``[[index, score], ...]``, best first), with
    optional ``usage`` (``{total_tokens, billed_units}`` or ``null``) and ``scores_within``
    (``[low, high]``); or ``error``: class names from ``rerank_integrations`` that the error
    must all be instances of, with optional ``status_code``, ``message_contains``,
    ``message_head_excludes`` (absent from the message before its ``| body:`` excerpt) and
    ``message_names_url``. Either may add ``requests`` (exactly this many sent),
    ``min_first_wait`` (seconds before the first retry), ``scale_warning`` (one log warning
    about the score scale) and ``advice_contains`` (the CLI's advice on the error).
    """
    problems: list[str] = []
    if "ranking" in expected:
        ranking = outcome.ranking()
        if ranking is None:
            return [f"expected a ranking, got {outcome.describe()}"]
        want = [(int(index), float(score)) for index, score in expected["ranking"]]
        if [index for index, _ in ranking] != [index for index, _ in want]:
            problems.append(f"order {[i for i, _ in ranking]} != expected {[i for i, _ in want]}")
        else:
            for (index, score), (_, wanted) in zip(ranking, want, strict=True):
                if abs(score - wanted) > SCORE_TOLERANCE * max(1.0, abs(wanted)):
                    problems.append(f"score of {index} is {score!r}, expected {wanted!r}")
                    break
        if check_usage and "usage" in expected and outcome.response is not None:
            usage = outcome.response.usage
            got = None if usage is None else [usage.total_tokens, usage.billed_units]
            if got == [None, None]:  # a usage with nothing reported: what null recorded
                got = None
            wanted_usage = expected["usage"]
            want_usage = (
                None
                if wanted_usage is None
                else [wanted_usage.get("total_tokens"), wanted_usage.get("billed_units")]
            )
            if got != want_usage:
                problems.append(f"usage {got} != expected {want_usage} ([tokens, units])")
        if "scores_within" in expected:
            low, high = expected["scores_within"]
            outside = [score for _, score in ranking if not low <= score <= high]
            if outside:
                problems.append(f"scores {outside[:3]} outside {low}..{high}")
    elif "error" not in expected:  # only what was sent is expected (a call that must work)
        if outcome.error is not None:
            return [f"expected no error, got {outcome.describe()}"]
    else:
        error = outcome.error
        if error is None:
            return [f"expected an error {expected['error']}, got {outcome.describe()}"]
        for name in expected["error"]:
            if not isinstance(error, _error_class(name)):
                problems.append(f"{type(error).__name__} is not a {name}: {error}")
        status = expected.get("status_code")
        if status is not None and getattr(error, "status_code", None) != status:
            problems.append(f"status {getattr(error, 'status_code', None)} != {status}")
        message = str(error)
        for part in expected.get("message_contains", []):
            if part not in message:
                problems.append(f"message lacks {part!r}: {message!r}")
        head = message.split(" | body: ", 1)[0]  # the message without the body excerpt
        for part in expected.get("message_head_excludes", []):
            if part in head:
                problems.append(f"message (before its body excerpt) has {part!r}: {head!r}")
        if expected.get("message_names_url") and endpoint and endpoint not in message:
            problems.append(f"message does not name the URL {endpoint}: {message!r}")
        wanted_advice = expected.get("advice_contains")
        if wanted_advice and advice is not None and isinstance(error, RerankError):
            given = advice(error)
            if wanted_advice not in given:
                problems.append(f"advice lacks {wanted_advice!r}: {given!r}")
    if "requests" in expected and outcome.requests != expected["requests"]:
        problems.append(f"{outcome.requests} requests sent, expected {expected['requests']}")
    if "min_first_wait" in expected:
        first = outcome.waits[0] if outcome.waits else None
        if first is None or first < expected["min_first_wait"]:
            problems.append(
                f"first retry after {first}s, expected at least {expected['min_first_wait']}s"
            )
    if expected.get("scale_warning"):
        found = [text for text in outcome.warnings if _SCALE_WARNING.search(text)]
        if len(found) != 1:
            problems.append(f"expected one score-scale warning, got {found or outcome.warnings}")
    return problems


# -- serving a recording back -----------------------------------------------------------------


@dataclass(frozen=True)
class RecordedAnswer:
    status: int
    headers: Mapping[str, str]
    body: str

    def response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            self.status,
            headers=dict(self.headers),
            content=self.body.encode("utf-8"),
            request=request,
        )


class ReplayServer:
    """Answers requests with the recorded answers to the same path and body, in order.

    A request sent again (a retry) gets the next recorded answer to it, and the last one once
    they are used up. A request that was never recorded gets a 599 whose body says so, which
    makes the client fail loudly rather than pass by accident.
    """

    def __init__(self, exchanges: Iterable[Mapping[str, Any]]) -> None:
        self._answers: dict[tuple[str, str], list[RecordedAnswer]] = {}
        for exchange in exchanges:
            request, response = exchange["request"], exchange["response"]
            key = exchange_key(request["path"], request["body"])
            answer = RecordedAnswer(response["status"], response["headers"], response["body"])
            self._answers.setdefault(key, []).append(answer)
        self._served: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()  # sync batches arrive from a thread pool
        self.requests = 0
        self.unexpected: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = exchange_key(request.url.path, request.content.decode("utf-8", errors="replace"))
        with self._lock:
            self.requests += 1
            answers = self._answers.get(key)
            if not answers:
                self.unexpected.append(f"POST {request.url.path} {key[1][:200]}")
                return httpx.Response(
                    599,
                    json={"error": {"message": "no recorded answer to this request"}},
                    request=request,
                )
            served = self._served.get(key, 0)
            self._served[key] = served + 1
        return answers[min(served, len(answers) - 1)].response(request)


class _WarningCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def load_recordings(directory: Path = RECORDINGS_DIR) -> list[tuple[Path, dict[str, Any]]]:
    """Every recording under ``directory``, sorted by path."""
    return [
        (path, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(directory.glob("*/*.json"))
    ]


def client_from_recording(
    recording: Mapping[str, Any],
    *,
    transport: httpx.BaseTransport | None = None,
    async_transport: httpx.AsyncBaseTransport | None = None,
) -> RerankClient:
    """A client with the recorded settings, talking to the given transports."""
    settings = recording["client"]
    kwargs: dict[str, Any] = {
        "base_url": settings["base_url"],
        "api_key": "replay-key" if settings.get("api_key") else None,
        "model": settings.get("model"),
        "dialect": settings.get("dialect"),
        "max_retries": settings.get("max_retries", 0),
        "max_documents_per_request": settings.get("max_documents_per_request"),
        "score_transform": settings.get("score_transform"),
    }
    if "extra_body" in settings:
        kwargs["extra_body"] = settings["extra_body"]
    if transport is not None:
        kwargs["http_client"] = httpx.Client(transport=transport)
    if async_transport is not None:
        kwargs["async_http_client"] = httpx.AsyncClient(transport=async_transport)
    return RerankClient(**kwargs)


def _call_arguments(recording: Mapping[str, Any]) -> tuple[str, list[str], dict[str, Any]]:
    call = recording["call"]
    kwargs: dict[str, Any] = dict(call.get("extra", {}))
    if call.get("top_n") is not None:
        kwargs["top_n"] = call["top_n"]
    return call["query"], list(call["documents"]), kwargs


def replay(recording: Mapping[str, Any], *, use_async: bool) -> tuple[Outcome, ReplayServer]:
    """Run the recorded call against the recorded answers, sync or async."""
    import asyncio

    server = ReplayServer([*recording["exchanges"], *recording.get("raw_exchanges", [])])
    outcome = Outcome()
    catcher = _WarningCatcher()
    logger = logging.getLogger("rerank_integrations")
    logger.addHandler(catcher)
    try:
        try:
            if use_async:
                client = client_from_recording(
                    recording, async_transport=httpx.MockTransport(_async_handler(server))
                )
            else:
                client = client_from_recording(recording, transport=httpx.MockTransport(server))
        except (RerankError, TypeError, ValueError) as exc:
            outcome.error = exc
            return outcome, server
        query, documents, kwargs = _call_arguments(recording)
        with testing.no_waits() as waits:
            try:
                if use_async:
                    outcome.response = asyncio.run(_arerank(client, query, documents, kwargs))
                else:
                    with client:
                        outcome.response = client.rerank(query, documents, **kwargs)
            except (RerankError, TypeError, ValueError) as exc:
                outcome.error = exc
        outcome.waits = waits
    finally:
        logger.removeHandler(catcher)
    outcome.requests = server.requests
    outcome.warnings = catcher.messages
    return outcome, server


def _async_handler(server: ReplayServer) -> Callable[[httpx.Request], Any]:
    async def handle(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return server(request)

    return handle


async def _arerank(
    client: RerankClient, query: str, documents: Sequence[str], kwargs: Mapping[str, Any]
) -> RerankResponse:
    async with client:
        return await client.arerank(query, documents, **kwargs)
