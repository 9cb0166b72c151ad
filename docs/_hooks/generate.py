"""MkDocs hook: the reference pages' tables, generated from the code at every build.

A page asks for a table with a marker comment on a line of its own,
``<!-- generated: NAME -->``, where NAME is one of :data:`GENERATORS`: the environment
variables (from the settings' declaration and a list of the others), the command line
(from the argparse parser) and the error classes (from ``_exceptions``). The settings table
itself is written into its page by ``python -m rerank_integrations._settings_table`` and
checked by ``tests/test_settings_declaration.py``, so it reads the same in the repository.
A marker with an unknown name fails the build, so a page cannot silently lose its table.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
from collections.abc import Callable
from typing import Any

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)

#: Variables that are not settings of a client, with what they do.
OTHER_VARIABLES = (
    (
        "RERANK_SERVER_API_KEY",
        "`rerank-integrations serve`: the key the local server requires (`--api-key`); empty: none",
    ),
    (
        "RERANK_EXAMPLE_ROWS",
        "`examples/ray_rerank.py` and `notebooks/ray_batch.ipynb`: rows in the generated "
        "dataset (20,000)",
    ),
    ("RAY_ADDRESS", "the Ray cluster the Ray example joins; unset, a local Ray runtime"),
    (
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
        "OpenTelemetry's own: attributes a span keeps (128); results are set first",
    ),
)


def _cell(text: str) -> str:
    """Docstring text as one Markdown table cell: reST literals as code, pipes escaped."""
    text = " ".join(text.split()).replace("``", "`")
    text = re.sub(r":(?:class|func|data|attr|meth):`~?([^`]+)`", r"`\1`", text)
    return text.replace("|", "\\|")


def environment() -> str:
    """Every environment variable the package reads, the settings' first (from their
    declaration, ``rerank_integrations._settings``)."""
    from rerank_integrations._settings import SETTINGS

    rows = ["| variable | read for |", "|---|---|"]
    pairs = [(setting.env, setting.name) for setting in SETTINGS.values() if setting.env]
    for env, name in pairs:
        rows.append(
            f"| `{env}` | the [`{name}`](settings.md) setting, when the argument is left out |"
        )
    for env, text in OTHER_VARIABLES:
        rows.append(f"| `{env}` | {text} |")
    return "\n".join(rows) + "\n"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_line() -> str:
    """Each command's help, as ``rerank-integrations COMMAND --help`` prints it."""
    from rerank_integrations.cli._parser import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parser = build_parser()
        parts = ["```text", parser.format_help().rstrip(), "```"]
        for name, sub in _subcommands(parser).items():
            parts += ["", f"## `{name}`", "", "```text", sub.format_help().rstrip(), "```"]
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(parts) + "\n"


def errors() -> str:
    """The class tree from ``_exceptions``' docstring and each class's first line."""
    from rerank_integrations import _exceptions

    doc = inspect.getdoc(_exceptions) or ""
    tree = doc.split("Class tree::", 1)[1].split("\n\n", 2)[1]
    rows = ["```text", inspect.cleandoc(tree), "```", "", "| class | bases | what it means |"]
    rows.append("|---|---|---|")
    for name in sorted(_exceptions.__all__):
        cls = getattr(_exceptions, name)
        bases = ", ".join(f"`{base.__name__}`" for base in cls.__bases__)
        first = (inspect.getdoc(cls) or "").split("\n\n")[0]
        rows.append(f"| `{name}` | {bases} | {_cell(first)} |")
    return "\n".join(rows) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "environment": environment,
    "cli": command_line,
    "errors": errors,
}


def generate(markdown: str) -> str:
    """``markdown`` with every marker replaced by its table."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise KeyError(f"unknown generated table {name!r}; known: {sorted(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs: fill the page's generated tables."""
    return generate(markdown)


def on_files(files: Any, config: Any) -> Any:
    """MkDocs: the benchmark's pictures, which the included ``BENCHMARKS.md`` links to as
    ``benchmarks/plots/*.png`` from the repository's root, served at that path."""
    from pathlib import Path

    from mkdocs.structure.files import File

    root = Path(config["config_file_path"]).resolve().parent
    for picture in sorted((root / "benchmarks" / "plots").glob("*.png")):
        files.append(
            File(
                f"benchmarks/plots/{picture.name}",
                str(root),
                config["site_dir"],
                config["use_directory_urls"],
            )
        )
    return files
