"""Checks of what a caller passes, each made once, at the edge, before anything is planned.

Every function returns the value checked (or its normal form) or raises a ``TypeError`` or
``ValueError`` naming the argument; what is checked here is trusted further down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from . import _json
from ._documents import check_unicode
from ._types import NOT_GIVEN

__all__ = [
    "SCORE_TRANSFORMS",
    "check_extra_body",
    "check_extra_fields",
    "check_model",
    "check_query",
    "check_score_transform",
    "check_top_n",
    "sigmoid",
]


def check_query(query: object) -> str:
    """The query, if it is a string with some text; otherwise an error naming it."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ValueError(f"query must not be empty or only white space, got {query!r}")
    check_unicode(query, "query")
    return query


def check_instruction(instruction: object) -> str | None:
    """The instruction, if it is ``None`` or a string (an empty or blank one means none);
    otherwise an error naming it."""
    if instruction is None:
        return None
    if not isinstance(instruction, str):
        raise TypeError(f"instruction must be a string or None, got {type(instruction).__name__}")
    if not instruction.strip():
        return None
    check_unicode(instruction, "instruction")
    return instruction


def check_top_n(top_n: object) -> int | None:
    """``top_n`` if it is ``None`` or a positive integer; otherwise an error naming it."""
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int):
        raise TypeError(f"top_n must be a positive integer or None, got {top_n!r}")
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    return top_n


def check_extra_body(extra_body: object, name: str = "extra_body") -> Mapping[str, Any]:
    """``extra_body`` if it is ``None`` (none) or a JSON-encodable mapping with string keys;
    otherwise a ``TypeError`` naming it."""
    if extra_body is None:
        return {}
    if not isinstance(extra_body, Mapping) or not all(isinstance(k, str) for k in extra_body):
        raise TypeError(f"{name} must be a dict with string keys, got {extra_body!r}")
    try:
        _json.dumps(extra_body)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be encodable as JSON: {exc}") from None
    return extra_body


#: Arguments of ``rerank()`` that a misspelt extra body field is checked against.
_KNOWN_ARGUMENTS = ("top_n", "model", "query", "documents", "deadline", "rank_fields")
#: Spellings of known arguments used by other APIs, refused for the same reason.
_ALIASES = {"top_k": "top_n", "topn": "top_n", "topk": "top_n", "k": "top_n", "n": "top_n"}


def check_extra_fields(fields: Mapping[str, Any]) -> None:
    """Refuse extra body fields that look like a misspelt argument (``toop_n``, ``top_k``).

    Raises:
        TypeError: naming the field and the argument it was probably meant to be.
    """
    for name in fields:
        import difflib  # here, not at import: only calls with extra fields need it

        meant = _ALIASES.get(name.lower()) or next(
            iter(difflib.get_close_matches(name, _KNOWN_ARGUMENTS, n=1, cutoff=0.75)), None
        )
        if meant is not None:
            raise TypeError(
                f"unexpected argument {name!r}: did you mean {meant}=? (extra body fields that "
                f"look like an argument are refused; send them with extra_body={{{name!r}: ...}})"
            )


def check_model(model: object, default: str | None) -> str | None:
    """The model of a call: ``default`` when none is given, else ``model`` if it is a
    string; ``None`` (or ``""``) lets the server decide."""
    if model is NOT_GIVEN or model is None:
        return default or None
    if not isinstance(model, str):
        raise TypeError(f"model must be a string or None, got {type(model).__name__}")
    return model or None


def sigmoid(score: float) -> float:
    """The logistic function, without overflow for large logits of either sign."""
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    exp = math.exp(score)
    return exp / (1.0 + exp)


#: Maps a name users pass as ``score_transform`` to a function of a score.
SCORE_TRANSFORMS: dict[str, Callable[[float], float] | None] = {
    "none": None,
    "sigmoid": sigmoid,
}


def check_score_transform(name: object) -> Callable[[float], float] | None:
    """The transform called ``name`` (``None`` means ``"none"``); else an error naming it."""
    if name is None:
        return None
    if not isinstance(name, str) or name not in SCORE_TRANSFORMS:
        known = ", ".join(repr(key) for key in SCORE_TRANSFORMS)
        raise ValueError(f"score_transform must be one of {known} or None, got {name!r}")
    return SCORE_TRANSFORMS[name]
