"""A read-only attribute that shows a private one, so classes need not write each property out."""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar, overload

__all__ = ["ReadOnly"]

_T = TypeVar("_T")


class ReadOnly(Generic[_T]):
    """A read-only attribute ``name`` returning the instance's ``_name``.

    ``locked=True`` reads it under the instance's ``_lock`` and returns a copy of a dict, so a
    reader on another thread never sees it change under it.
    """

    def __init__(self, doc: str, *, locked: bool = False) -> None:
        self.__doc__ = doc
        self._locked = locked
        self._attr = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = f"_{name}"

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> ReadOnly[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> ReadOnly[_T] | _T:
        if instance is None:
            return self
        if not self._locked:
            value: _T = getattr(instance, self._attr)
            return value
        owner_instance: Any = instance
        lock: threading.Lock = owner_instance._lock
        with lock:
            value = getattr(instance, self._attr)
            return dict(value) if isinstance(value, dict) else value  # type: ignore[return-value]

    def __set__(self, instance: object, value: object) -> None:
        raise AttributeError(
            f"property {self._attr[1:]!r} of {type(instance).__name__!r} object has no setter"
        )
