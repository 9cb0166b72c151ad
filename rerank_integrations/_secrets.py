"""Secrets kept out of sight: which values are secret, and scrubbing them from what we show.

A secret is the API key, the value of every header that looks like it carries credentials
(``Authorization``, ``Api-Key``, ``X-Api-Key``, anything naming a key, token, secret or
password, cookies) or that the dialect uses for its key, and a password or query string in
the base URL. They are held in objects whose ``repr`` hides them, so that tracebacks with
local variables, loggers and tracing tools that capture objects never see them as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from pydantic import SecretStr

__all__ = [
    "HiddenHeaders",
    "Scrubber",
    "as_secret",
    "is_secret_header",
    "redact_url",
    "secret_values",
]

#: Secrets shorter than this are scrubbed only where they stand as a whole word, so that a
#: one-letter test key does not turn every "k" of a message into "***".
_WHOLE_WORD_BELOW = 8
_MASK = "***"
_SECRET_HEADER = re.compile(
    r"auth|key|token|secret|passw|cookie|credential|signature|^sig$|^code$", re.I
)
_SCHEME = re.compile(r"^(?:bearer|basic|token|apikey|api-key|key)\s+", re.I)
#: How deep :meth:`Scrubber.value` walks nested lists and objects.
_MAX_DEPTH = 32


def is_secret_header(name: str) -> bool:
    """Whether a header of this name may carry credentials."""
    return _SECRET_HEADER.search(name) is not None


def as_secret(value: str | SecretStr | None) -> SecretStr | None:
    """``value`` as a ``SecretStr`` (``None`` stays ``None``; other types pass through to be
    refused later with a clear error)."""
    return SecretStr(value) if isinstance(value, str) else value


def secret_values(
    api_key: SecretStr | None, headers: Mapping[str, Any], url: str | None = None
) -> list[str]:
    """Every secret string a client holds: the key, secret header values (with and without
    their ``Bearer`` scheme) and a password or query values in ``url``."""
    found: list[str] = []
    if api_key is not None:
        found.append(api_key.get_secret_value())
    for name, value in headers.items():
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(plain, str) and (isinstance(value, SecretStr) or is_secret_header(name)):
            found.append(plain)
            found.append(_SCHEME.sub("", plain))
    if url:
        parts = urlsplit(url)
        found.append(parts.password or "")
        found.extend(value for name, value in parse_qsl(parts.query) if is_secret_header(name))
    return [value for value in dict.fromkeys(found) if value.strip()]


def redact_url(url: str | None) -> str | None:
    """``url`` with its password and the values of query parameters that look secret
    (``key``, ``token``, ``sig``, ...) replaced by ``***``; ``api-version`` and the like stay."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    netloc = parts.netloc
    if password:
        netloc = netloc.replace(f":{password}@", ":***@", 1)
    query = "&".join(
        f"{name}=***" if is_secret_header(name) else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Scrubber:
    """Replaces every secret with ``***`` in text, bytes and decoded JSON.

    Each secret is also looked for as JSON escapes it (``\\/``, ``\\u003d``) and as a URL
    quotes it. Secrets of at least 8 characters are replaced wherever they occur; shorter
    ones only where they stand as a whole word.
    """

    __slots__ = ("_bytes", "_secrets", "_text")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(secrets)
        forms: set[str] = set()
        for secret in self._secrets:
            forms.update(_forms(secret))
        longest_first = sorted(forms, key=len, reverse=True)
        parts = [
            re.escape(form)
            if len(form) >= _WHOLE_WORD_BELOW
            else rf"(?<!\w){re.escape(form)}(?!\w)"
            for form in longest_first
        ]
        self._text = re.compile("|".join(parts)) if parts else None
        self._bytes = re.compile("|".join(parts).encode()) if parts else None

    def __bool__(self) -> bool:
        return self._text is not None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets this scrubber removes (for one that removes these and more)."""
        return self._secrets

    def __repr__(self) -> str:
        return "Scrubber(***)" if self else "Scrubber()"

    def text(self, text: str) -> str:
        """``text`` with every secret replaced."""
        return text if self._text is None else self._text.sub(_MASK, text)

    def bytes(self, content: bytes) -> bytes:
        """``content`` with every secret replaced, before anything is decoded from it."""
        return content if self._bytes is None else self._bytes.sub(_MASK.encode(), content)

    def value(self, value: Any, depth: int = 0) -> Any:
        """A decoded JSON value with every string in it (keys too) scrubbed."""
        if self._text is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if depth >= _MAX_DEPTH:
            return value if isinstance(value, (int, float, bool)) or value is None else _MASK
        if isinstance(value, list):
            return [self.value(item, depth + 1) for item in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v, depth + 1) for k, v in value.items()}
        return value


def _pattern(form: str) -> str:
    escaped = re.escape(form)
    return escaped if len(form) >= _WHOLE_WORD_BELOW else rf"(?<!\w){escaped}(?!\w)"


def _forms(secret: str) -> Iterator[str]:
    """The ways a server may echo ``secret``: as is, JSON-escaped, URL-quoted."""
    yield secret
    escaped = json.dumps(secret)[1:-1]
    yield escaped
    yield escaped.replace("/", "\\/")
    yield "".join(f"\\u{ord(char):04x}" if not char.isalnum() else char for char in secret)
    yield quote(secret, safe="")


class HiddenHeaders(dict[str, str]):
    """Request headers whose ``repr`` hides the values that carry credentials."""

    def __repr__(self) -> str:
        shown = {name: "***" if is_secret_header(name) else value for name, value in self.items()}
        return f"HiddenHeaders({shown!r})"
