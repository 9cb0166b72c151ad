"""The notebooks in ``notebooks/``: each one runs from top to bottom without an error, and the
copy in the repository carries outputs that are safe to publish.

The stored outputs are checked as they are; the execution tests run a temporary copy of each
notebook on the generic ``python3`` kernel and need ``nbclient``, ``nbformat`` and
``ipykernel`` (the ``dev`` dependency group).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
EXPECTED = [
    "agent_tool.ipynb",
    "agents.ipynb",
    "langchain_quickstart.ipynb",
    "llamaindex_quickstart.ipynb",
    "ray_batch.ipynb",
]
NOTEBOOKS = sorted({*EXPECTED, *(path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))})
CELL_TIMEOUT = 120  # seconds per cell

_EXECUTION_DEPENDENCIES = ("nbclient", "nbformat", "ipykernel")
_MISSING = [name for name in _EXECUTION_DEPENDENCIES if importlib.util.find_spec(name) is None]
#: Notebooks that need more than the package's extras to run, and what.
_NEEDS = {"ray_batch.ipynb": "ray", "agents.ipynb": "langchain"}
#: The Ray notebook reranks 20,000 rows as stored (about a minute here); the suite runs it on
#: 1,000, through the variable the notebook reads for its size.
_SCALED_DOWN = {"RERANK_EXAMPLE_ROWS": "1000"}

# Things that must not be published in outputs: secrets, paths of the machine that ran the
# notebook, and the port the local server happened to get.
_KEY_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"(?i)\bapi[_-]?key\b['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9._-]{6,}"),
]
_PATH_PATTERNS = [
    re.compile(r"(?<![\w.:/])/(?:home|root|tmp|Users|usr|opt|var|private|mnt|srv|work)/"),
    re.compile(r"\b[A-Za-z]:\\(?:Users|Windows|Program Files|tmp|Temp)\\"),
    re.compile(r"file://"),
]
_PORT_PATTERN = re.compile(r"\b(?:127\.0\.0\.1|localhost|\[::1\]):\d+")
# Keys the notebooks themselves use (``api_key="..."``, ``RERANK_API_KEY`` exports).
_KEY_LITERALS = [
    re.compile(r"api_key\s*=\s*[\"']([^\"']+)[\"']"),
    re.compile(r"\[[\"']RERANK_API_KEY[\"']\]\s*=\s*[\"']([^\"']+)[\"']"),
]


def load(name: str) -> dict[str, Any]:
    """The stored notebook as JSON."""
    with (NOTEBOOK_DIR / name).open(encoding="utf-8") as handle:
        notebook: dict[str, Any] = json.load(handle)
    return notebook


def text_of(value: Any) -> str:
    """A notebook string field, stored either as one string or as a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value)


def code_cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def output_texts(notebook: dict[str, Any]) -> list[str]:
    """Every piece of text in the code cells' outputs."""
    texts: list[str] = []
    for cell in code_cells(notebook):
        for output in cell.get("outputs", []):
            if "text" in output:
                texts.append(text_of(output["text"]))
            for value in output.get("data", {}).values():
                texts.append(value if isinstance(value, str) else json.dumps(value))
            if output["output_type"] == "error":
                texts.extend([output["ename"], output["evalue"], *output["traceback"]])
    return texts


@pytest.fixture(params=NOTEBOOKS)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- the stored notebooks ---------------------------------------------------------------


def test_the_notebooks_are_all_there() -> None:
    present = {path.name for path in NOTEBOOK_DIR.glob("*.ipynb")}
    assert set(EXPECTED) <= present


def test_generic_python3_kernel(name: str) -> None:
    notebook = load(name)

    assert notebook["nbformat"] == 4
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert notebook["metadata"]["kernelspec"]["language"] == "python"


def test_short_and_explained(name: str) -> None:
    notebook = load(name)
    kinds = [cell["cell_type"] for cell in notebook["cells"]]

    assert 8 <= len(kinds) <= 15
    assert kinds[0] == "markdown"
    assert kinds.count("markdown") >= 4
    assert text_of(notebook["cells"][0]["source"]).startswith("# ")


def test_every_code_cell_has_stored_outputs(name: str) -> None:
    cells = code_cells(load(name))

    assert cells
    for number, cell in enumerate(cells, start=1):
        assert cell["outputs"], f"{name}: code cell {number} has no stored output"
        assert cell["execution_count"] == number, f"{name}: cells were not run in order"


def test_stored_outputs_have_no_errors(name: str) -> None:
    for cell in code_cells(load(name)):
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"{name}: {output.get('ename')}"
            assert output.get("name") != "stderr", f"{name}: {text_of(output['text'])!r}"


def test_stored_outputs_are_safe_to_publish(name: str) -> None:
    notebook = load(name)
    outputs = "\n".join(output_texts(notebook))
    sources = "\n".join(text_of(cell["source"]) for cell in notebook["cells"])
    used_keys = {key for pattern in _KEY_LITERALS for key in pattern.findall(sources)}

    for key in used_keys:
        assert key not in outputs, f"{name}: an output shows the key {key!r}"
    for pattern in _KEY_PATTERNS:
        assert not pattern.search(outputs), f"{name}: key-like text {pattern.search(outputs)}"
    for pattern in [*_PATH_PATTERNS, _PORT_PATTERN]:
        found = pattern.search(outputs) or pattern.search(sources)
        assert found is None, f"{name}: machine-specific text {found.group()!r}"


def test_no_run_metadata_is_stored(name: str) -> None:
    notebook = load(name)

    assert "version" not in notebook["metadata"].get("language_info", {})
    for cell in notebook["cells"]:
        assert "execution" not in cell.get("metadata", {})
        assert "ExecuteTime" not in cell.get("metadata", {})


# -- running them -----------------------------------------------------------------------


@pytest.mark.skipif(
    bool(_MISSING),
    reason=f"executing notebooks needs {', '.join(_MISSING)} (the dev dependency group)",
)
def test_runs_without_errors(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needed = _NEEDS.get(name)
    if needed is not None and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{name} needs {needed} (the dev dependency group)")
    import nbformat
    from nbclient import NotebookClient

    copy = tmp_path / name
    shutil.copyfile(NOTEBOOK_DIR / name, copy)
    notebook = nbformat.read(copy, as_version=4)  # type: ignore[no-untyped-call]
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None

    # The kernel imports this checkout, whether or not the package is installed, and
    # starts from a clean rerank configuration; the environment's own kernel is preferred
    # over one a user may have registered elsewhere.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")
    for variable in ("RERANK_BASE_URL", "RERANK_API_KEY", "RERANK_MODEL", "RERANK_DIALECT"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in _SCALED_DOWN.items():
        monkeypatch.setenv(variable, value)

    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        allow_errors=False,
    )
    client.execute()

    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs, f"{name}: a code cell printed nothing: {cell.source[:60]!r}"
            assert all(output.output_type != "error" for output in cell.outputs)
