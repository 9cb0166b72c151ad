"""Deprecated: the dialects moved to :mod:`rerank_integrations.dialects`.

Every name this module had is still read from here, with a ``DeprecationWarning``; this
module goes away in the next release.
"""

from __future__ import annotations

import warnings
from typing import Any

from . import dialects as _dialects

__all__: list[str] = []


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        value = getattr(_dialects, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    warnings.warn(
        f"rerank_integrations._dialects is deprecated: import {name} from "
        "rerank_integrations.dialects",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
