"""Mutation testing of the pure modules: change one thing, run the module's tests, see them fail.

Each mutant changes one spot of one module, inside a function body:

- ``cmp``: a comparison flipped (``<`` and ``<=``, ``>`` and ``>=``, ``==`` and ``!=``,
  ``in`` and ``not in``, ``is`` and ``is not``);
- ``const``: a number moved by one (``n + 1`` and ``n - 1``; booleans left alone);
- ``bool``: ``and`` and ``or`` swapped;
- ``drop``: a statement (an assignment, a call, a ``return``, a ``raise``) replaced by ``pass``.

Docstrings, ``if TYPE_CHECKING`` blocks and lines marked ``# pragma: no mutate`` are left
alone. Every mutant runs in a copy of the repository (so the working tree is never touched),
in a fresh interpreter, with only the tests that :data:`MODULE_TESTS` names for its module,
stopping at the first failure. A mutant is *killed* when a test fails or the run exceeds its
time limit, and *survives* when all pass. Survivors judged equivalent (no input can tell them
apart from the original) are listed in :data:`EQUIVALENT`, keyed by module, function, kind and
the mutated source text, each with its reason; the score is ``killed / (mutants -
equivalent)``.

    python tools/mutation.py --out MUTATION.md _retry _budget _cache _plan _merge

``make mutation`` runs this for ``MUTATION_MODULES``. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import functools
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "rerank_integrations"

#: The tests run against each module's mutants: the ones written for it, kept fast.
MODULE_TESTS: dict[str, list[str]] = {
    "_retry": ["tests/test_retry.py"],
    "_budget": ["tests/test_budget.py", "tests/test_plan_and_merge.py"],
    "_cache": ["tests/test_cache.py"],
    "_plan": ["tests/test_plan_and_merge.py", "tests/test_properties.py"],
    "_merge": ["tests/test_plan_and_merge.py", "tests/test_properties.py"],
    "_codec": ["tests/test_dialects.py"],
    "_refusals": ["tests/test_refusals.py"],
    "_outcome": ["tests/test_outcome.py"],
}

#: Survivors no test can kill, with the reason: (module, function, kind, mutated text) -> why.
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    ("_retry", "_as_tuple", "drop", "pass"): (
        "dropping `return None` at the end of the except clause returns None all the same"
    ),
}

_FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_DROPPABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return, ast.Raise)


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change: where it is, what kind, and the mutated source line."""

    module: str
    number: int  # the position among the module's mutants, stable for one source
    function: str
    line: int
    kind: str
    before: str
    after: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.module, self.function, self.kind, self.after.strip())


def _protected_lines(source: str, tree: ast.Module) -> set[int]:
    lines = {
        number
        for number, text in enumerate(source.splitlines(), start=1)
        if "pragma: no mutate" in text
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            end = node.end_lineno or node.lineno
            lines.update(range(node.lineno, end + 1))
    return lines


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{member.name}", member


def _sites(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[tuple[ast.AST, str, int]]:
    """(node, kind, variant) for every change this function's body allows."""
    for statement in function.body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Compare):
                for position, op in enumerate(node.ops):
                    if type(op) in _FLIPS:
                        yield node, "cmp", position
            elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
                yield node, "const", +1
                yield node, "const", -1
            elif isinstance(node, ast.BoolOp):
                yield node, "bool", 0
            if isinstance(node, _DROPPABLE) and not _is_docstring(node):
                yield node, "drop", 0


def _apply(node: ast.AST, kind: str, variant: int) -> ast.AST:
    """The replacement for ``node`` (a copy; the tree itself is not changed)."""
    changed = copy.copy(node)
    if kind == "cmp":
        assert isinstance(changed, ast.Compare)
        ops = list(changed.ops)
        ops[variant] = _FLIPS[type(ops[variant])]()
        changed.ops = ops
    elif kind == "const":
        assert isinstance(changed, ast.Constant)
        assert isinstance(changed.value, (int, float))
        changed.value = changed.value + variant
    elif kind == "bool":
        assert isinstance(changed, ast.BoolOp)
        changed.op = ast.Or() if isinstance(changed.op, ast.And) else ast.And()
    else:  # drop
        changed = ast.Pass()
    return ast.copy_location(changed, node)


def mutants_of(module: str) -> list[tuple[Mutant, Callable[[], str | None]]]:
    """Every mutant of ``module``, each with a function that writes out the whole mutated
    module's source (``None`` if it does not compile)."""
    path = ROOT / PACKAGE / f"{module}.py"
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    protected = _protected_lines(source, tree)
    lines = source.splitlines()
    found: list[tuple[Mutant, Callable[[], str | None]]] = []
    for name, function in _functions(tree):
        for node, kind, variant in _sites(function):
            line = getattr(node, "lineno", 0)
            if line in protected:
                continue
            replacement = _apply(node, kind, variant)
            shown = ast.unparse(replacement) if kind != "drop" else "pass"
            before = lines[line - 1].strip() if line else ""
            mutant = Mutant(module, len(found), name, line, kind, before, shown)
            found.append((mutant, functools.partial(_mutated_source, tree, node, replacement)))
    return found


def _mutated_source(tree: ast.Module, node: ast.AST, replacement: ast.AST) -> str | None:
    """The module's source with ``node`` replaced, or ``None`` if it no longer compiles."""
    try:
        text = ast.unparse(_swap(tree, node, replacement))
        compile(text, "<mutant>", "exec")
    except (SyntaxError, ValueError):
        return None
    return text


def _swap(tree: ast.Module, node: ast.AST, replacement: ast.AST) -> ast.Module:
    """A copy of ``tree`` with ``node`` (found by identity) replaced."""
    path = _path_to(tree, node)
    assert path is not None
    result = copy.deepcopy(tree)
    parent: ast.AST = result
    for field, index in path[:-1]:
        value = getattr(parent, field)
        parent = value[index] if index is not None else value
    field, index = path[-1]
    if index is None:
        setattr(parent, field, replacement)
    else:
        getattr(parent, field)[index] = replacement
    return ast.fix_missing_locations(result)


def _path_to(root: ast.AST, target: ast.AST) -> list[tuple[str, int | None]] | None:
    for field, value in ast.iter_fields(root):
        if isinstance(value, list):
            for index, item in enumerate(value):
                if item is target:
                    return [(field, index)]
                if isinstance(item, ast.AST):
                    below = _path_to(item, target)
                    if below is not None:
                        return [(field, index), *below]
        elif isinstance(value, ast.AST):
            if value is target:
                return [(field, None)]
            below = _path_to(value, target)
            if below is not None:
                return [(field, None), *below]
    return None


@dataclasses.dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed, timeout, survived
    seconds: float


def _copy_repository(into: Path) -> Path:
    copy_root = into / "repo"
    ignore = shutil.ignore_patterns(
        ".git", ".venv*", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.pyc"
    )
    shutil.copytree(ROOT, copy_root, ignore=ignore, symlinks=True)
    return copy_root


#: Imported once by the driver, before any mutant, so that each forked run starts with them
#: (never the package itself: each run imports it from the copy, mutant included).
_PRELOAD = (
    "pytest",
    "_pytest.python",
    "pytest_asyncio",
    "hypothesis",
    "httpx",
    "httpcore",
    "pydantic",
    "anyio",
    "starlette.applications",
    "uvicorn",
    "langchain_core.documents",
    "langchain_core.documents.compressor",
    "llama_index.core.schema",
    "llama_index.core.postprocessor.types",
    "orjson",
)


def _preload() -> None:
    for name in _PRELOAD:
        try:
            __import__(name)
        except ImportError:
            continue


def _run_tests(copy_root: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    """Run ``tests`` in a forked child (fresh ``rerank_integrations`` from the copy, the
    third-party packages already imported); killed past ``timeout`` seconds."""
    started = time.monotonic()
    done = 0
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            # MUTATION_OUTPUT=FILE keeps what the tests print (to see why a baseline fails).
            output = os.environ.get("MUTATION_OUTPUT", os.devnull)
            sink = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(sink, 1)
            os.dup2(sink, 2)
            os.chdir(copy_root)
            sys.path.insert(0, str(copy_root))
            sys.dont_write_bytecode = True
            import pytest

            code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]))
        finally:
            os._exit(code)
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            elapsed = time.monotonic() - started
            if done:
                break
            if elapsed > timeout:
                return "timeout", elapsed
            time.sleep(0.05)
    finally:
        if not done:  # timed out, or the driver itself is stopped: the child goes too
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return "survived", elapsed
    if code == 5:
        raise SystemExit(f"no tests collected from {tests}: fix MODULE_TESTS")
    return "killed", elapsed


def run_module(
    module: str, copy_root: Path, sample: int | None, seed: int, log: Path | None
) -> tuple[list[Outcome], int]:
    """Run the module's mutants (a seeded sample of ``sample`` when given) and return the
    outcomes and how many mutants there were in all."""
    tests = MODULE_TESTS.get(module)
    if not tests:
        raise SystemExit(f"no tests named for {module}: add it to MODULE_TESTS")
    target = copy_root / PACKAGE / f"{module}.py"
    original = target.read_text(encoding="utf-8")
    status, baseline = _run_tests(copy_root, tests, timeout=1800)
    if status != "survived":
        raise SystemExit(f"the tests of {module} fail without any mutant: {tests}")
    limit = max(10.0, 3 * baseline)
    every = mutants_of(module)
    chosen = every
    if sample is not None and sample < len(every):
        chosen = sorted(random.Random(seed).sample(every, sample), key=lambda m: m[0].number)
    outcomes: list[Outcome] = []
    try:
        for mutant, write in chosen:
            source = write()
            if source is None:  # not valid Python: no mutant at all
                continue
            target.write_text(source, encoding="utf-8")
            status, seconds = _run_tests(copy_root, tests, limit)
            outcomes.append(Outcome(mutant, status, seconds))
            if log is not None:  # one JSON line a mutant: --report-from rebuilds the report
                record = {**dataclasses.asdict(mutant), "status": status, "seconds": seconds}
                record["of"] = len(every)
                with log.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
    finally:
        target.write_text(original, encoding="utf-8")
    return outcomes, len(every)


def report(results: dict[str, tuple[list[Outcome], int]], minutes: float | None) -> str:
    """MUTATION.md: the score per module, the equivalent survivors and the others."""
    rows = []
    equivalents: list[str] = []
    survivors: list[str] = []
    for module, (outcomes, total) in results.items():
        killed = sum(outcome.status != "survived" for outcome in outcomes)
        equivalent = [
            outcome
            for outcome in outcomes
            if outcome.status == "survived" and outcome.mutant.key in EQUIVALENT
        ]
        live = [
            outcome
            for outcome in outcomes
            if outcome.status == "survived" and outcome.mutant.key not in EQUIVALENT
        ]
        counted = len(outcomes) - len(equivalent)
        score = 100.0 * killed / counted if counted else 100.0
        ran = f"{len(outcomes)}" if len(outcomes) == total else f"{len(outcomes)} of {total}"
        rows.append(
            f"| `{module}` | {ran} | {killed} | {len(equivalent)} | {len(live)} | {score:.1f} % |"
        )
        for outcome in equivalent:
            m = outcome.mutant
            equivalents.append(
                f"- `{module}` {m.function} line {m.line} ({m.kind}): `{m.before}` → "
                f"`{m.after}`: {EQUIVALENT[m.key]}"
            )
        for outcome in live:
            m = outcome.mutant
            survivors.append(
                f"- `{module}` {m.function} line {m.line} ({m.kind}): `{m.before}` → `{m.after}`"
            )
    lines = [
        "# Mutation testing of the pure modules",
        "",
        "Written by `make mutation` (`tools/mutation.py`, which says how mutants are made and",
        "which tests each module runs). Score: killed mutants over mutants not judged",
        "equivalent." + ("" if minutes is None else f" This run took {minutes:.0f} min."),
        "",
        "| module | mutants run | killed | equivalent | surviving | score |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "## Survivors judged equivalent",
        "",
        *(equivalents or ["None."]),
        "",
        "## Surviving mutants (no test notices them)",
        "",
        *(survivors or ["None."]),
        "",
    ]
    return "\n".join(lines)


def results_from_log(log: Path) -> dict[str, tuple[list[Outcome], int]]:
    """The outcomes a ``--log`` file holds, by module (a run stopped early included)."""
    results: dict[str, tuple[list[Outcome], int]] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        status, seconds, total = record.pop("status"), record.pop("seconds"), record.pop("of")
        outcome = Outcome(Mutant(**record), status, seconds)
        outcomes, _ = results.setdefault(record["module"], ([], total))
        outcomes.append(outcome)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="+", help="module names in the package, e.g. _retry")
    parser.add_argument("--out", type=Path, default=ROOT / "MUTATION.md")
    parser.add_argument("--sample", type=int, help="run a seeded sample of this many per module")
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--log", type=Path, help="append one line per mutant here")
    parser.add_argument("--list", action="store_true", help="only count the mutants")
    parser.add_argument(
        "--tests", nargs="+", help="run these tests instead of MODULE_TESTS' (every module)"
    )
    parser.add_argument("--report-from", type=Path, help="write the report of a --log file")
    args = parser.parse_args(argv)
    if args.report_from is not None:
        text = report(results_from_log(args.report_from), None)
        args.out.write_text(text, encoding="utf-8")
        print(text)
        return 0
    if args.list:
        for module in args.modules:
            print(module, len(mutants_of(module)))
        return 0
    started = time.monotonic()
    # Stopped (kill PID): the copy of the repository is removed, the running child killed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _preload()
    results: dict[str, tuple[list[Outcome], int]] = {}
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        copy_root = _copy_repository(Path(scratch))
        for module in args.modules:
            if args.tests:
                MODULE_TESTS[module] = args.tests
            results[module] = run_module(module, copy_root, args.sample, args.seed, args.log)
            # Written after each module, so that a long run shows what it has so far.
            args.out.write_text(report(results, None), encoding="utf-8")
    text = report(results, (time.monotonic() - started) / 60)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
