"""MkDocs hook: the reference pages' tables, generated from the code at every build.

A page asks for a table with a marker comment on a line of its own,
``<!-- generated: NAME -->``, where NAME is one of :data:`GENERATORS`: the settings (from
their declaration), the environment variables they read, the command line (from the
argparse parser) and the error classes (from ``_exceptions``). A marker with an unknown
name fails the build, so a page cannot silently lose its table.
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


def _client_args() -> dict[str, str]:
    """``RerankClient``'s ``Args`` entries: name to description."""
    from rerank_integrations import RerankClient

    doc = inspect.getdoc(RerankClient) or ""
    section = doc.split("Args:", 1)[1]
    args: dict[str, str] = {}
    name = ""
    for line in section.splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            name = match.group(1)
            args[name] = match.group(2)
        elif line.startswith("        ") and name:
            args[name] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return args


def _environment_of(name: str) -> str | None:
    """The variable a client setting falls back to (read in ``_config``)."""
    from rerank_integrations import _config, _constants

    named = {
        "base_url": _constants.ENV_BASE_URL,
        "api_key": _constants.ENV_API_KEY,
        "model": _constants.ENV_MODEL,
        "dialect": _config.ENV_DIALECT,
        "long_documents": _config.ENV_LONG_DOCUMENTS,
    }
    if name in named:
        return named[name]
    if name.startswith("max_") and name != "max_response_bytes":
        source = inspect.getsource(_config.resolve_settings)
        if f'_limit("{name}"' in source or f'_limit(\n            "{name}"' in source:
            return "RERANK_" + name.upper()
    return None


def _declared_settings() -> Any:
    """The settings' declaration, where it exists (``rerank_integrations._settings``)."""
    try:
        from rerank_integrations import _settings
    except ImportError:
        return None
    return _settings


def settings() -> str:
    """The settings table: from the declaration, else from the client's signature and docs."""
    declared = _declared_settings()
    if declared is not None:
        return str(declared.markdown_table())
    from rerank_integrations import RerankClient

    described = _client_args()
    rows = [
        "| argument | environment | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, parameter in inspect.signature(RerankClient).parameters.items():
        default = parameter.default
        shown = "" if default is None or default is inspect.Parameter.empty else f"`{default!r}`"
        env = _environment_of(name)
        rows.append(
            f"| `{name}` | {f'`{env}`' if env else ''} | {shown} "
            f"| {_cell(described.get(name, ''))} |"
        )
    for name, (default, where, description) in _adapter_only().items():
        rows.append(f"| `{name}` | | {default} | {where}: {_cell(description)} |")
    return "\n".join(rows) + "\n"


def _adapter_only() -> dict[str, tuple[str, str, str]]:
    """The adapters' own settings: name to (default, which adapters, description), the
    descriptions read from the attribute docstrings under each field."""
    import griffe

    from rerank_integrations import RerankClient

    client_names = set(inspect.signature(RerankClient).parameters)
    sources = (
        ("rerank_integrations._adapters", "RerankSettings", "adapters"),
        ("rerank_integrations.llama_index", "RerankPostprocessor", "LlamaIndex"),
    )
    found: dict[str, tuple[str, str, str]] = {}
    for module, cls, where in sources:
        loaded = griffe.load(module, search_paths=["."])
        for name, member in loaded[cls].members.items():
            if name.startswith("_") or name in client_names or not member.is_attribute:
                continue
            if "property" in member.labels:
                continue
            if member.docstring is None or name in found:
                continue
            value = member.value
            default = "" if value is None else f"`{value}`"
            default = re.sub(r"`Field\(default=([^,)]+).*`", r"`\1`", default)
            found[name] = (default, where, member.docstring.value)
    return found


def environment() -> str:
    """Every environment variable the package reads, the settings' first."""
    rows = ["| variable | read for |", "|---|---|"]
    declared = _declared_settings()
    if declared is not None:
        pairs = [(s.env, s.name) for s in declared.SETTINGS.values() if s.env]
    else:
        from rerank_integrations import RerankClient

        names = inspect.signature(RerankClient).parameters
        pairs = [(env, name) for name in names if (env := _environment_of(name))]
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
    "settings": settings,
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
