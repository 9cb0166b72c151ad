"""Where each text a plan sends stands in the caller's documents, kept flat: a call of
tens of thousands of windows holds a handful of objects for them, not a list and a tuple
each that every full pass of the garbage collector would walk."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

__all__ = ["Parts", "Place"]


#: One place a sent text stands for: ``(document index, start, end)``.
Place = tuple[int, int, int]


class Parts(Sequence[list[Place]]):
    """For each distinct text of a plan, the places it stands for (:data:`Place`), in order.

    The first place of each text is kept in three flat arrays of machine integers, further
    ones (copies of a repeated document, a piece found twice) by position in a dict: a call
    of tens of thousands of windows then makes a handful of objects, not a list and a tuple
    a window that the garbage collector would walk (its full passes, which stall an event
    loop, grow with them). Reading a position gives a new list of its places.
    """

    __slots__ = ("_ends", "_more", "_owners", "_starts")

    def __init__(self, places: Iterable[Sequence[Place]] = ()) -> None:
        self._owners = array("q")
        self._starts = array("q")
        self._ends = array("q")
        self._more: dict[int, list[Place]] = {}
        for each in places:
            self.append(each)

    def add(self, index: int, start: int, end: int) -> None:
        """A new text standing for ``text[start:end]`` of document ``index``."""
        self._owners.append(index)
        self._starts.append(start)
        self._ends.append(end)

    def append(self, places: Sequence[Place]) -> None:
        """A new text standing for ``places`` (at least one)."""
        if not places:
            raise ValueError("a text stands for at least one place")
        self.add(*places[0])
        if len(places) > 1:
            self._more[len(self._owners) - 1] = list(places[1:])

    def extend_at(self, position: int, places: Iterable[Place]) -> None:
        """More places for the text at ``position``, after those it has."""
        self._more.setdefault(position, []).extend(places)

    def columns(self) -> tuple[array[int], array[int], array[int], dict[int, list[Place]]]:
        """The first place of every text as three columns (document indexes, starts, ends),
        and the further places by position: read without a list made per text."""
        return self._owners, self._starts, self._ends, self._more

    def __len__(self) -> int:
        return len(self._owners)

    @overload
    def __getitem__(self, position: int) -> list[Place]: ...

    @overload
    def __getitem__(self, position: slice) -> list[list[Place]]: ...

    def __getitem__(self, position: int | slice) -> list[Place] | list[list[Place]]:
        if isinstance(position, slice):
            return [self[each] for each in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self._owners)
        first = (self._owners[position], self._starts[position], self._ends[position])
        more = self._more.get(position)
        return [first, *more] if more else [first]

    def __iter__(self) -> Iterator[list[Place]]:
        return map(self.__getitem__, range(len(self._owners)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(
            mine == list(theirs) for mine, theirs in zip(self, other, strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Parts({list(self)!r})"
