"""The dialects by name: a read-only view (:data:`DIALECTS`), :func:`register_dialect` to
add one, :func:`get_dialect` to look one up, and what a client's dialect decides when the
client is built (which cloud settings it takes, which authorizer it runs)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType

from .._auth import Authorizer
from .._exceptions import ConfigurationError
from ._base import (
    AUTH_SCHEMES,
    CLOUD_SETTINGS,
    IMAGE_FORMATS,
    LIMIT_NAMES,
    ClientCredentials,
    Dialect,
)
from ._instructions import INSTRUCTION_STYLES

__all__ = [
    "DIALECTS",
    "authorizer_for",
    "check_cloud_settings",
    "dialects_using",
    "get_dialect",
    "register_dialect",
    "split_provider",
]

_REGISTERED: dict[str, Dialect] = {}
_LOCK = threading.Lock()

#: Every dialect by name, read-only: :func:`register_dialect` adds one.
DIALECTS: Mapping[str, Dialect] = MappingProxyType(_REGISTERED)

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_PATH_SETTINGS = frozenset({"model", "project", "location"})


def register_dialect(dialect: Dialect, *, replace: bool = False) -> Dialect:
    """Add ``dialect`` to :data:`DIALECTS`, so that clients take ``dialect="<its name>"``.

    The entry is checked first (its name, path, limits, functions and credential flow).
    Clients already built keep the dialect they were built with.

    Args:
        dialect: the entry to add.
        replace: replace a dialect registered under the same name; without it, a name
            already taken is refused.

    Returns:
        ``dialect``.

    Raises:
        TypeError: ``dialect`` is not a :class:`Dialect`, or one of its fields has the
            wrong type.
        ValueError: a field holds a value no client could use, or the name is taken.
    """
    _check(dialect)
    with _LOCK:
        if dialect.name in _REGISTERED and not replace:
            raise ValueError(
                f"a dialect named {dialect.name!r} is already registered; pass replace=True "
                "to replace it"
            )
        _REGISTERED[dialect.name] = dialect
    return dialect


def get_dialect(name: str) -> Dialect:
    """Look a dialect up by name; an unknown name raises a ``ValueError`` listing the known ones."""
    try:
        return _REGISTERED[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(_REGISTERED))
        raise ValueError(f"unknown dialect {name!r}; known dialects: {known}") from None


def split_provider(model: str | None, dialect: str | None) -> tuple[str | None, str | None]:
    """``(dialect named, model to send)`` for a provider string, ``"<dialect>:<model>"``.

    Only a prefix that is exactly a registered dialect's name counts (any case), followed by
    a model: ``"cohere:rerank-v3.5"`` names ``cohere`` and sends ``rerank-v3.5``. With an
    explicit ``dialect``, the prefix is dropped only when it names that same dialect, and
    nothing is named. Anything else is a model name that may hold colons (a Bedrock ARN
    ``arn:aws:...``, an Ollama tag ``qwen3-reranker:0.6b``, ``amazon.rerank-v1:0``) and is
    sent as it is.
    """
    if not model or ":" not in model:
        return None, model
    prefix, rest = model.split(":", 1)
    name = prefix.strip().lower()
    if not rest or name not in _REGISTERED:
        return None, model
    if dialect is not None:
        return None, rest if name == dialect.strip().lower() else model
    return name, rest


def dialects_using(setting: str) -> list[Dialect]:
    """The registered dialects that read the cloud setting ``setting``."""
    return [dialect for dialect in _REGISTERED.values() if setting in dialect.cloud_settings]


def check_cloud_settings(dialect: Dialect, **given: object) -> None:
    """Refuse a cloud setting (``auth_url``, ``credentials``, ``project``, ``location``)
    given to a dialect that would ignore it.

    Raises:
        ConfigurationError: naming the setting and the dialects that read it.
    """
    for name, value in given.items():
        if value is not None and name not in dialect.cloud_settings:
            users = sorted(other.name for other in dialects_using(name))
            raise ConfigurationError(
                f"{name}= is not used by the {dialect.name} dialect (only by {', '.join(users)})",
                setting=name,
            )


def authorizer_for(settings: ClientCredentials, user_agent: str) -> Authorizer | None:
    """The authorizer a client with ``settings`` needs; ``None`` when the key (or a header
    the caller set) goes in a plain header.

    Raises:
        ConfigurationError: the dialect needs a key and has none.
    """
    make = settings.dialect.authorizer
    return None if make is None else make(settings, user_agent)


# -- checking an entry ------------------------------------------------------------------------


def _check(dialect: object) -> None:
    if not isinstance(dialect, Dialect):
        raise TypeError(f"register_dialect takes a Dialect, got {type(dialect).__name__}")
    name = dialect.name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"a dialect's name must be lower-case letters, digits, '-', '_' or '.', got {name!r}"
        )
    _require(dialect, "description", isinstance(dialect.description, str), "a string")
    _require(dialect, "description", bool(dialect.description.strip()), "not empty", ValueError)
    path = dialect.default_path
    _require(dialect, "default_path", isinstance(path, str), "a string")
    _require(dialect, "default_path", path.startswith("/"), "a path starting with '/'", ValueError)
    unknown = dialect.path_settings() - _PATH_SETTINGS
    _require(dialect, "default_path", not unknown, "free of unknown {settings}", ValueError)
    base_url = dialect.base_url
    _require(dialect, "base_url", base_url is None or isinstance(base_url, str), "a string")
    _require(
        dialect,
        "base_url",
        base_url is None or base_url.startswith(("http://", "https://")),
        "an http(s) URL",
        ValueError,
    )
    for limit in LIMIT_NAMES:
        value = getattr(dialect, limit)
        allowed = value is None and limit != "max_documents_per_request"
        is_int = isinstance(value, int) and not isinstance(value, bool)
        _require(dialect, limit, allowed or is_int, "a whole number")
        _require(dialect, limit, allowed or value >= 1, "at least 1", ValueError)
    _one_of(dialect, "score_scale", ("probability", "logit"))
    _one_of(dialect, "auth", AUTH_SCHEMES)
    _one_of(dialect, "image_format", (None, *IMAGE_FORMATS))
    _one_of(dialect, "instruction", INSTRUCTION_STYLES)
    _require(dialect, "prompt_templates", isinstance(dialect.prompt_templates, bool), "a flag")
    for function in ("build_body", "parse_body", "error_message", "auth_headers"):
        _require(dialect, function, callable(getattr(dialect, function)), "callable")
    for flag in ("model_required", "takes_objects"):
        value = getattr(dialect, flag)
        _require(dialect, flag, isinstance(value, bool) or callable(value), "a flag or callable")
    for hook in ("setup", "authorizer"):
        value = getattr(dialect, hook)
        _require(dialect, hook, value is None or callable(value), "callable or None")
    settings = dialect.cloud_settings
    _require(dialect, "cloud_settings", isinstance(settings, frozenset), "a frozenset")
    unknown = settings - frozenset(CLOUD_SETTINGS)
    _require(dialect, "cloud_settings", not unknown, f"among {CLOUD_SETTINGS}", ValueError)
    unread = dialect.path_settings() - {"model"} - settings
    _require(dialect, "cloud_settings", not unread, "naming what the path names", ValueError)
    needs_flow = dialect.auth != "api_key"
    _require(
        dialect,
        "authorizer",
        not needs_flow or dialect.authorizer is not None,
        f"set for auth={dialect.auth!r}",
        ValueError,
    )


def _require(
    dialect: Dialect,
    field: str,
    holds: bool,
    wanted: str,
    error: Callable[[str], Exception] = TypeError,
) -> None:
    if not holds:
        value = getattr(dialect, field)
        raise error(f"dialect {dialect.name!r}: {field} must be {wanted}, got {value!r}")


def _one_of(dialect: Dialect, field: str, allowed: tuple[object, ...]) -> None:
    choices = ", ".join(repr(choice) for choice in allowed)
    _require(dialect, field, getattr(dialect, field) in allowed, f"one of {choices}", ValueError)
