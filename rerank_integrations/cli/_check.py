"""``check``: send one sample request and judge the answer step by step."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .._client import RerankClient
from .._constants import ENV_MODEL
from .._exceptions import (
    APIConnectionError,
    ConfigurationError,
    RerankError,
    ResponseFormatError,
)
from .._text import display_url
from ._advice import advice_for, connect_failed, error_text, refused_key
from ._common import client_from_args

#: Seconds allowed per request unless ``--timeout`` says otherwise.
CHECK_TIMEOUT = 10.0

_SAMPLE_QUERY = "How many legs does a spider have?"
_SAMPLE_DOCUMENTS = (
    "The Eiffel Tower in Paris was finished in 1889 for the World's Fair.",
    "A spider has eight legs, while insects such as ants and bees have six.",
)
_SAMPLE_MATCH = 1  # the index of the document that answers the sample query

#: The outcomes of a check step.
OK, FAIL, SKIP = "ok", "FAIL", "skip"


@dataclass(frozen=True)
class CheckStep:
    """One line of ``check``: a step, its outcome, what was seen, and advice on failure.

    Attributes:
        name: ``reachable``, ``key accepted``, ``dialect answering``, ``sample ranking`` or
            ``round trip``.
        status: ``"ok"``, ``"FAIL"`` or ``"skip"`` (not reached, or not knowable).
        detail: what was seen.
        advice: one line on what to do, for a failed step.
    """

    name: str
    status: str
    detail: str = ""
    advice: str = ""


def command_check(args: argparse.Namespace) -> int:
    """Run ``check``: 0 only when every step passed."""
    with client_from_args(args) as client:
        settings = client.settings
        key_sent = settings.api_key is not None
        model = client.model or "server default"
        heading = (
            f"Checking {display_url(client.endpoint)} (dialect: {client.dialect}, "
            f"model: {model}, API key: {'set' if key_sent else 'not set'})"
        )
        # Printed after the check, so that a request that cannot be built (no model)
        # leaves nothing on stdout but its one error line on stderr.
        steps = run_check(client)
    print(heading)
    if client.model is None:
        print(
            "  note: no model is set, so the server picks one; gateways such as LiteLLM and "
            f"Xinference need one: --model NAME or {ENV_MODEL}"
        )
    width = max(len(step.name) for step in steps)
    for step in steps:
        print(f"  {step.status:<4}  {step.name:<{width}}  {step.detail}".rstrip())
        if step.advice:
            print(f"  {'':<4}  {'':<{width}}  advice: {step.advice}")
    failed = sum(step.status != OK for step in steps)
    if failed:
        broken = sum(step.status == FAIL for step in steps)
        print(f"{broken} check{'s' if broken != 1 else ''} failed.")
        return 1
    print(f"All {len(steps)} checks passed.")
    return 0


def run_check(client: RerankClient) -> list[CheckStep]:
    """Send the 2-document sample request with ``client`` and judge the answer step by step.

    Raises:
        ConfigurationError: the request cannot be built (e.g. the dialect needs a model).
    """
    dialect = client.dialect
    key_sent = client.settings.api_key is not None
    parts = urlsplit(client.endpoint)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    started = time.perf_counter()
    try:
        response = client.rerank(_SAMPLE_QUERY, list(_SAMPLE_DOCUMENTS))
    except ConfigurationError:
        raise
    except RerankError as exc:
        elapsed = time.perf_counter() - started
        return _failed_steps(exc, elapsed, where, dialect=dialect, key_sent=key_sent)
    elapsed = time.perf_counter() - started

    steps = [
        CheckStep("reachable", OK, f"connected to {where}"),
        CheckStep("key accepted", OK, _key_accepted(key_sent)),
        CheckStep(
            "dialect answering",
            OK,
            f"the 2-document sample came back as a valid {dialect} ranking",
        ),
    ]
    results = response.results
    scores = {result.index: result.relevance_score for result in results}
    if len(results) == 2 and results[0].index == _SAMPLE_MATCH:
        steps.append(
            CheckStep(
                "sample ranking",
                OK,
                f"the matching document came first ({scores[_SAMPLE_MATCH]:.4g} vs "
                f"{scores[1 - _SAMPLE_MATCH]:.4g})",
            )
        )
    else:
        shown = ", ".join(f"#{result.index}: {result.relevance_score:.4g}" for result in results)
        steps.append(
            CheckStep(
                "sample ranking",
                FAIL,
                f"the unrelated document came first ({shown})",
                "the endpoint answers but does not rank by relevance: is it a rerank model? "
                "check --model",
            )
        )
    steps.append(CheckStep("round trip", OK, f"{elapsed * 1000:.0f} ms for the sample request"))
    return steps


def _failed_steps(
    exc: RerankError, elapsed: float, where: str, *, dialect: str, key_sent: bool
) -> list[CheckStep]:
    advice = advice_for(exc, dialect=dialect, key_sent=key_sent)
    detail = error_text(exc, limit=200)
    if isinstance(exc, APIConnectionError):
        if connect_failed(exc):
            steps = [CheckStep("reachable", FAIL, f"cannot connect to {where}: {detail}", advice)]
            return _pad(steps)
        steps = [
            CheckStep("reachable", OK, f"connected to {where}"),
            CheckStep("key accepted", SKIP, "no answer to judge"),
            CheckStep("dialect answering", FAIL, detail, advice),
        ]
        return _pad(steps)

    answered = CheckStep("reachable", OK, f"connected to {where}; the server answered")
    # The server answered, but a failed request is no round trip to vouch for.
    round_trip = CheckStep(
        "round trip", SKIP, f"the sample request failed after {elapsed * 1000:.0f} ms"
    )
    if refused_key(exc):
        steps = [answered, CheckStep("key accepted", FAIL, detail, advice)]
        return _pad(steps, round_trip)
    key_ok = CheckStep("key accepted", OK, _key_accepted(key_sent))
    if isinstance(exc, ResponseFormatError):
        steps = [answered, key_ok, CheckStep("dialect answering", FAIL, detail, advice)]
        return _pad(steps, round_trip)
    unknown = CheckStep("key accepted", SKIP, "not known: the request failed before that")
    steps = [answered, unknown, CheckStep("dialect answering", FAIL, detail, advice)]
    return _pad(steps, round_trip)


def _key_accepted(key_sent: bool) -> str:
    return (
        "the key was accepted (no 401/403)" if key_sent else "no key sent, and none was asked for"
    )


def _pad(steps: list[CheckStep], last: CheckStep | None = None) -> list[CheckStep]:
    """``steps`` followed by the steps not reached, marked skipped, and then ``last``."""
    names = ["reachable", "key accepted", "dialect answering", "sample ranking", "round trip"]
    done = {step.name for step in steps}
    if last is not None:
        done.add(last.name)
    padded = steps + [CheckStep(name, SKIP) for name in names if name not in done]
    if last is not None:
        padded.append(last)
    return padded
