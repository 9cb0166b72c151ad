"""The example files under ``tests/dialects/fixtures/``, read the same way by every test."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
FIXTURES = TESTS / "dialects" / "fixtures"


@dataclass(frozen=True)
class Exchange:
    """One documented request to a rerank service and the answer it gets.

    Attributes:
        name: the file name, ``<service>_<case>.json``; error examples are
            ``<service>_error_<status>.json``, named by the status the error stands for.
        service: who answers this way.
        fidelity: how far to trust the shapes (see ``tests/dialects/fixtures/README.md``).
        source: where the shapes come from.
        path: the request path.
        request: the request body.
        status: the answer's HTTP status.
        response: the answer's body (``None`` for an empty body).
        request_headers, response_headers: headers worth knowing about.
    """

    name: str
    service: str
    fidelity: str
    source: str
    path: str
    request: Any
    status: int
    response: Any
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)


def fixture_names(folder: str) -> list[str]:
    """The ``*.json`` file names in ``tests/<folder>``, sorted; none if it is missing."""
    path = TESTS / folder
    return sorted(item.name for item in path.glob("*.json")) if path.is_dir() else []


def load_fixture(folder: str, name: str) -> Exchange:
    """Read ``tests/<folder>/<name>``; a missing folder or file fails the test."""
    path = TESTS / folder
    assert path.is_dir(), f"the fixture folder {path} is missing: the tests need it"
    data = json.loads((path / name).read_text(encoding="utf-8"))
    request, response = data["request"], data["response"]
    return Exchange(
        name=name,
        service=data["service"],
        fidelity=data["fidelity"],
        source=data["source"],
        path=request["path"],
        request=request["body"],
        status=response["status"],
        response=response["body"],
        request_headers=request.get("headers", {}),
        response_headers=response.get("headers", {}),
    )
