"""Credentials presented per request, the machinery every vendor's flow shares.

An :class:`Authorizer` does no I/O of its own. The batch flow calls
``yield from authorizer.authorize(send)`` before each attempt; the generator may yield
requests of its own (a token exchange, a :class:`~._actions.Send`) or blocking calls into a
credential library (a token refresh, a :class:`~._actions.Run`), and returns the request to
send with its credentials in place. When the server answers 401 the flow calls
:meth:`Authorizer.invalidate` and, if the authorizer is ``refreshable``, tries once more at
once with a fresh token.

Tokens are cached by the authorizer, shared by every thread and by both paths, behind a
lock. They are never logged, and every error message and body is scrubbed of them
(:meth:`Authorizer.secrets`).

The vendors' own flows live with their wire formats in :mod:`rerank_integrations.dialects`
(IBM Cloud IAM with watsonx, Google credentials with vertex, AWS SigV4 with bedrock, OCI
request signatures with oci); this module knows none of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from pydantic import SecretStr

from ._actions import Flow, Send
from ._secrets import HiddenHeaders

__all__ = [
    "AuthSettings",
    "Authorizer",
    "bearer_token",
    "has_authorization",
    "header_value",
    "optional_module",
    "with_headers",
]


class Authorizer:
    """Presents credentials on each request; this base class adds none.

    Attributes:
        refreshable: whether a 401 may be cured by fetching a new token, once.
    """

    refreshable = False

    def authorize(self, send: Send) -> Flow[Send]:
        """``send`` with its credentials in place; may yield requests or blocking calls."""
        yield from ()
        return send

    def invalidate(self, sent: Send) -> None:
        """Forget the token ``sent`` carried, after the server refused it with a 401."""

    def secrets(self) -> list[str]:
        """The secrets in use now, to be scrubbed from every message and body."""
        return []


class AuthSettings(Protocol):
    """The settings of a client that a dialect's authorizer reads (``ClientSettings`` has
    them all)."""

    @property
    def api_key(self) -> SecretStr | None: ...

    @property
    def headers(self) -> Mapping[str, str | SecretStr]: ...

    @property
    def auth_url(self) -> str | None: ...

    @property
    def credentials(self) -> Any: ...

    @property
    def location(self) -> str | None: ...


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in ``headers``, whatever its case; ``None`` if absent."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def bearer_token(send: Send) -> str:
    """The token ``send`` carried as ``Authorization: Bearer ...``; empty if none."""
    return (header_value(send.headers, "Authorization") or "").removeprefix("Bearer ")


def has_authorization(headers: Mapping[str, object] | None) -> bool:
    """Whether the caller's own ``headers`` set ``Authorization`` (then no flow replaces it)."""
    return any(name.lower() == "authorization" for name in headers or {})


def with_headers(send: Send, extra: Mapping[str, str]) -> Send:
    """``send`` with ``extra`` headers in place of any of the same name (in any case)."""
    replaced = {key.lower() for key in extra}
    headers = HiddenHeaders((k, v) for k, v in send.headers.items() if k.lower() not in replaced)
    headers.update(extra)
    return replace(send, headers=headers)


def optional_module(name: str) -> Any:
    """An optional package's module, imported only when a client needs it."""
    return importlib.import_module(name)
