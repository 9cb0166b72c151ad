"""``with`` and ``async with`` for the objects that close: one mixin, written once."""

from __future__ import annotations

from typing import TypeVar

_Self = TypeVar("_Self", bound="Closing")
_AsyncSelf = TypeVar("_AsyncSelf", bound="AsyncClosing")


class Closing:
    """``with obj:`` returns ``obj`` and calls ``obj.close()`` on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClosing(Closing):
    """:class:`Closing`, and ``async with obj:`` awaits ``obj.aclose()`` on the way out."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _AsyncSelf) -> _AsyncSelf:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
