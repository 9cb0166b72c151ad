"""Real servers' bytes, replayed: every recording of ``make interop`` through the client.

Each recording under ``tests/wire/recorded/<server>/`` holds what LiteLLM, Infinity or
Xinference really answered to our client (status, headers of interest, raw body) and the
outcome the client must reach: a ranking with these indexes and scores, or a typed error.
Here each one is served back through ``httpx.MockTransport`` to a ``RerankClient`` with the
recorded settings, on the sync and the async path, so CI checks the parser against real
servers without installing them. Recordings whose outcome waits for a core fix
are strict xfails: the marker says what the fix must change, and the test fails once the fix
lands until the marker is removed (drop ``pending=`` from the case in ``interop/_<server>.py``
and run ``make interop``, or set ``"pending": null`` in the recording).
"""

from __future__ import annotations

from typing import Any

import pytest

from interop.replay import RECORDINGS_DIR, check_outcome, load_recordings, replay
from rerank_integrations import RerankClient
from rerank_integrations.cli import advice_for

SERVERS = ("litellm", "infinity", "xinference")
RECORDINGS = load_recordings()


def _params() -> list[Any]:
    params = []
    for path, recording in RECORDINGS:
        marks = []
        if recording.get("pending"):
            marks.append(
                pytest.mark.xfail(strict=True, reason=f"pending core fix: {recording['pending']}")
            )
        name = f"{path.parent.name}/{path.stem}"
        for mode in ("sync", "async"):
            params.append(pytest.param(recording, mode, id=f"{name}-{mode}", marks=marks))
    # No recordings must fail, not skip: an empty parameter list would be skipped.
    return params or [pytest.param(None, "sync", id="no-recordings")]


def test_every_server_has_recordings() -> None:
    missing = [server for server in SERVERS if not list((RECORDINGS_DIR / server).glob("*.json"))]
    assert not missing, f"no recordings for {missing} under {RECORDINGS_DIR}: run 'make interop'"


@pytest.mark.parametrize(
    ("path", "recording"),
    [
        pytest.param(path, recording, id=f"{path.parent.name}/{path.stem}")
        for path, recording in RECORDINGS
    ],
)
def test_recording_names_its_server(path: Any, recording: dict[str, Any]) -> None:
    server = recording["server"]
    assert server["name"] == path.parent.name
    assert server["version"]
    assert recording["recorded_on"]
    pairs = [*recording["exchanges"], *recording["raw_exchanges"]]
    # A client that refuses a call before sending (an empty query) records no pair of its
    # own; the raw call with the same body holds what the server would have answered.
    refused_before_sending = recording["expected"].get("requests") == 0
    assert recording["exchanges"] or recording["pending"] or refused_before_sending, (
        "the client sent nothing"
    )
    assert pairs, "the case recorded no request/answer pair"
    for exchange in pairs:
        response = exchange["response"]
        assert isinstance(response["status"], int)
        assert isinstance(response["body"], str)
        assert exchange["request"]["auth"] in (None, "Bearer ***")


@pytest.mark.parametrize(("recording", "mode"), _params())
def test_replay(recording: dict[str, Any] | None, mode: str) -> None:
    assert recording is not None, f"no recordings under {RECORDINGS_DIR}: run 'make interop'"
    outcome, server = replay(recording, use_async=mode == "async")
    assert not server.unexpected, (
        "the client sent a request that was never recorded; re-record with 'make interop': "
        f"{server.unexpected}"
    )
    settings = recording["client"]
    endpoint = RerankClient(base_url=settings["base_url"], dialect=settings["dialect"]).endpoint
    problems = check_outcome(recording["expected"], outcome, endpoint=endpoint, advice=advice_for)
    assert not problems, f"{recording['title']}: {problems}"
