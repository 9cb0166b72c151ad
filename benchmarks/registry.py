"""The scenarios the benchmark knows, by number.

A scenario is three functions: ``run`` measures and returns a
:class:`~benchmarks.scenarios.ScenarioResult`, ``evaluate`` gives each of the package's
contenders a verdict and the scenario its :class:`Check` rows, ``table`` writes its markdown
table. A module of scenarios registers each one with :func:`register` when it is imported;
:data:`MODULES` lists those modules, in report order. Adding a scenario module is writing
it and adding its name there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .contenders import Contender
    from .scenarios import Scale, ScenarioResult

__all__ = ["MODULES", "Check", "Context", "Scenario", "register", "scenario", "scenarios"]

#: The modules that register scenarios, imported in this order on first use.
MODULES: tuple[str, ...] = (
    "benchmarks.report",
    "benchmarks.features",
    "benchmarks.offline",
    "benchmarks.evaluation",
    "benchmarks.paths",
    "benchmarks.plots",
)


@dataclass
class Check:
    """One target of one scenario.

    Attributes:
        scenario: the scenario's number.
        target: what is asked, in words.
        measured: the worst of the package's contenders (or why there is nothing).
        met: whether every contender of the package meets it; ``None``: nothing measured.
        informational: a reading shown for context, not one of the issue's targets.
    """

    scenario: int
    target: str
    measured: str
    met: bool | None
    informational: bool = False


@dataclass(frozen=True)
class Context:
    """What every scenario is run with.

    Attributes:
        scale: the sizes (``full`` or ``tiny``); a scenario module may keep sizes of its own
            by ``scale.name``.
        contenders: the contenders chosen on the command line.
        rounds: timed rounds.
        memory_workers: memory probes run at once.
    """

    scale: Scale
    contenders: Sequence[Contender]
    rounds: int
    memory_workers: int = 2


Verdicts = tuple[dict[str, str], list[Check]]


@dataclass(frozen=True)
class Scenario:
    """One scenario: its number, a short name, how to run, judge and show it, and what a
    reader needs to know of its method (one bullet of "How to read the tables")."""

    number: int
    name: str
    run: Callable[[Context], ScenarioResult]
    evaluate: Callable[[ScenarioResult], Verdicts]
    table: Callable[[ScenarioResult, dict[str, str]], list[str]]
    reading: str = ""


_REGISTERED: dict[int, Scenario] = {}


def register(entry: Scenario) -> Scenario:
    """Add ``entry``; a number may be taken only once."""
    known = _REGISTERED.get(entry.number)
    if known is not None and known.name != entry.name:
        raise ValueError(f"scenario {entry.number} is already {known.name!r}")
    _REGISTERED[entry.number] = entry
    return entry


def scenarios() -> dict[int, Scenario]:
    """Every registered scenario, by number, in number order."""
    for module in MODULES:
        importlib.import_module(module)
    return dict(sorted(_REGISTERED.items()))


def scenario(number: int) -> Scenario:
    """The scenario with this number."""
    return scenarios()[number]
