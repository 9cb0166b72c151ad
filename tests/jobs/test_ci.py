"""CI runs every Python the package claims, and claims only what it runs: the classifiers,
the Makefile's list of Pythons and ``.ci/run`` agree, and a claimed Python that is missing
fails the run instead of being skipped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
CI_PYTHON = "3.11"  # the one that runs the whole suite, lint and types (make test)


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def make_variable(name: str) -> str:
    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.search(rf"^{name} :?= (.*)$", text, re.MULTILINE)
    assert found, f"{name} is not set in the Makefile"
    return found.group(1).strip()


def test_the_classifiers_list_exactly_the_pythons_ci_runs() -> None:
    classifiers = pyproject()["project"]["classifiers"]
    claimed = {
        line.rsplit(" :: ", 1)[1]
        for line in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", line)
    }
    others = set(make_variable("OTHER_PYTHONS").split())
    assert CI_PYTHON not in others
    assert claimed == others | {CI_PYTHON}
    lowest = min(claimed, key=lambda version: tuple(map(int, version.split("."))))
    assert pyproject()["project"]["requires-python"] == f">={lowest}"


def test_ci_runs_the_readme_test_command_and_every_other_python() -> None:
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^make test\b.*\(what CI runs: \.ci/run\)", readme, re.MULTILINE)
    # make test (the README's command) first, then every other Python, one after the other.
    test = re.search(r"^make test\b(?! *-)", run, re.MULTILINE)
    others = re.search(r"^make test-pythons\b", run, re.MULTILINE)
    assert test is not None and others is not None and test.start() < others.start()
    assert f".ci/find-python {CI_PYTHON}" in run
    assert "set -euo pipefail" in run


def test_the_reduced_suite_leaves_out_files_that_exist() -> None:
    left_out = re.findall(r"--ignore=(\S+)", make_variable("CORE_TESTS"))
    assert sorted(left_out) == [
        "tests/docs/test_docs_site.py",
        "tests/docs/test_release.py",
        "tests/jobs/test_benchmarks_smoke.py",
        "tests/jobs/test_notebooks.py",
        "tests/jobs/test_ray.py",
    ]
    assert all((ROOT / path).is_file() for path in left_out)


def test_test_core_is_the_dev_group_without_notebooks_and_ray() -> None:
    groups = pyproject()["dependency-groups"]
    dev = groups["dev"]
    assert {"include-group": "test-core"} in dev
    extra = sorted(re.split(r"[<>=\[;]", item)[0] for item in dev if isinstance(item, str))
    # coverage: `make mutation` runs each mutant's tests from coverage contexts.
    assert extra == ["coverage", "ipykernel", "nbclient", "nbformat", "ray"]
    core = [re.split(r"[<>=\[;]", item)[0] for item in groups["test-core"]]
    assert "pytest" in core and "ray" not in core and "nbclient" not in core


def test_a_missing_python_fails_instead_of_being_skipped() -> None:
    missing = subprocess.run(
        [str(ROOT / ".ci" / "find-python"), "3.99"], capture_output=True, text=True, check=False
    )
    assert missing.returncode != 0
    assert "no Python 3.99 on this machine" in missing.stderr
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = subprocess.run(
        [str(ROOT / ".ci" / "find-python"), running], capture_output=True, text=True, check=False
    )
    assert found.returncode == 0, found.stderr
    version = subprocess.run(
        [found.stdout.strip(), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == str(sys.version_info[:2])
