"""The dialects by name: a read-only view (:data:`DIALECTS`), :func:`register_dialect` to
add one, :func:`get_dialect` to look one up, and what a client's dialect decides when the
client is built (which cloud settings it takes, which authorizer it runs)."""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

from .._auth import Authorizer
from .._exceptions import ConfigurationError
from ._base import (
    AUTH_SCHEMES,
    CLOUD_SETTINGS,
    IMAGE_FORMATS,
    LIMIT_NAMES,
    BillingRule,
    ClientCredentials,
    Dialect,
)
from ._instructions import INSTRUCTION_STYLES

__all__ = [
    "DIALECTS",
    "authorizer_for",
    "check_cloud_settings",
    "defer_dialect",
    "dialects_using",
    "get_dialect",
    "register_dialect",
    "split_provider",
]

_REGISTERED: dict[str, Dialect] = {}
_LOCK = threading.RLock()
#: Dialects whose module is imported when one of them is first needed (the clouds'):
#: name -> (module, attribute), see :func:`defer_dialect`.
_DEFERRED: dict[str, tuple[str, str]] = {}
#: Every name, registered or deferred, in the order given (the order of DIALECTS).
_ORDER: list[str] = []


class _Dialects(Mapping[str, Dialect]):
    """:data:`DIALECTS`: a read-only view of the registry that imports the deferred
    dialects' modules at its first use."""

    def __getitem__(self, name: str) -> Dialect:
        return _everything()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_everything())

    def __len__(self) -> int:
        return len(_everything())

    def __contains__(self, name: object) -> bool:
        return name in _REGISTERED or name in _DEFERRED

    def __repr__(self) -> str:
        return repr(_everything())


#: Every dialect by name, read-only: :func:`register_dialect` adds one.
DIALECTS: Mapping[str, Dialect] = _Dialects()


def defer_dialect(name: str, module: str, attribute: str) -> None:
    """Register the dialect ``name`` as ``attribute`` of ``module`` (relative to this
    package), imported and checked when a dialect is first looked up by that name or the
    whole registry is read. The cloud dialects are registered so: their credential flows
    cost an import that most programs never need."""
    with _LOCK:
        _DEFERRED[name] = (module, attribute)
        _ORDER.append(name)


def _everything() -> MappingProxyType[str, Dialect]:
    """The registry with every deferred dialect imported, in the order given."""
    if _DEFERRED:
        with _LOCK:
            while _DEFERRED:
                _load(next(iter(_DEFERRED)))
    return MappingProxyType(_REGISTERED)


def _load(name: str) -> None:
    """Import the deferred dialect ``name`` and register it (under the lock)."""
    module, attribute = _DEFERRED[name]
    dialect = getattr(importlib.import_module(module, __package__), attribute)
    _check(dialect)
    _REGISTERED[name] = dialect
    del _DEFERRED[name]
    ordered = {name: _REGISTERED[name] for name in _ORDER if name in _REGISTERED}
    _REGISTERED.clear()
    _REGISTERED.update(ordered)


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
        if dialect.name in _DEFERRED:
            _load(dialect.name)
        if dialect.name not in _ORDER:
            _ORDER.append(dialect.name)
        if dialect.name in _REGISTERED and not replace:
            raise ValueError(
                f"a dialect named {dialect.name!r} is already registered; pass replace=True "
                "to replace it"
            )
        _REGISTERED[dialect.name] = dialect
    return dialect


def get_dialect(name: str) -> Dialect:
    """Look a dialect up by name; an unknown name raises a ``ValueError`` listing the known ones."""
    key = name.strip().lower()
    if key in _DEFERRED:
        with _LOCK:
            if key in _DEFERRED:
                _load(key)
    try:
        return _REGISTERED[key]
    except KeyError:
        known = ", ".join(sorted(_everything()))
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
    if not rest or name not in DIALECTS:
        return None, model
    if dialect is not None:
        return None, rest if name == dialect.strip().lower() else model
    return name, rest


def dialects_using(setting: str) -> list[Dialect]:
    """The registered dialects that read the cloud setting ``setting``."""
    return [dialect for dialect in _everything().values() if setting in dialect.cloud_settings]


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
    billing = dialect.billing
    is_rule = billing is None or isinstance(billing, BillingRule)
    _require(dialect, "billing", is_rule, "a BillingRule")
    if billing is not None:
        per = billing.tokens_per_document
        valid = billing.documents_per_unit >= 1 and (per is None or per >= 1)
        _require(dialect, "billing", valid, "counts of at least 1", ValueError)


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
