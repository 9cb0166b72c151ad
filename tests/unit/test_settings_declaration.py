"""Every place a setting appears agrees with its one declaration in
``_settings_declared.py``: the client's signature and docstring, ``ClientSettings``, both
adapters' fields, the environment variables read and the settings table of the docs."""

from __future__ import annotations

import dataclasses
import inspect
import os
import pydoc
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rerank_integrations import RerankClient, _settings_table
from rerank_integrations._adapters import RerankSettings
from rerank_integrations._config import ClientSettings
from rerank_integrations._settings import (
    CLIENT,
    CLIENT_SETTINGS,
    COMPRESSOR,
    POSTPROCESSOR,
    RESOLVED_ONLY,
    SETTINGS,
    docstring_args,
    entry,
    markdown_table,
    suggestion,
    taken_by,
    with_args,
    with_table,
)
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

# The settings table lives on the settings page of the documentation.
README = Path(__file__).resolve().parents[2] / "docs" / "reference" / "settings.md"
ADAPTERS = {COMPRESSOR: RerankCompressor, POSTPROCESSOR: RerankPostprocessor}
#: Fields the frameworks' base classes bring, not settings of ours.
FRAMEWORK_FIELDS = {"callback_manager"}


def _annotations(cls: type) -> dict[str, str]:
    """The field annotations as written (the modules use ``from __future__ import
    annotations``), the class's own over its bases'."""
    found: dict[str, str] = {}
    for owner in reversed(cls.__mro__):
        found.update(vars(owner).get("__annotations__", {}))
    return found


# -- the client ---------------------------------------------------------------------------


def test_client_signature_follows_the_declaration() -> None:
    parameters = list(inspect.signature(RerankClient.__init__).parameters.values())[1:]
    declared = taken_by(CLIENT)
    assert [p.name for p in parameters] == [s.name for s in declared]
    for parameter, setting in zip(parameters, declared, strict=True):
        assert parameter.default == setting.default, setting.name
        assert type(parameter.default) is type(setting.default), setting.name
        assert parameter.annotation == setting.type, setting.name


def test_client_settings_fields_follow_the_declaration() -> None:
    fields = {field.name: field for field in dataclasses.fields(ClientSettings)}
    kept = {setting.name for setting in taken_by(CLIENT) if setting.kept}
    assert set(fields) == kept | set(RESOLVED_ONLY)
    for name, field in fields.items():
        if field.default is not dataclasses.MISSING and name not in RESOLVED_ONLY:
            assert field.default == SETTINGS[name].resolved_default, name


def test_a_client_left_to_defaults_holds_the_declared_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for setting in SETTINGS.values():
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)
    settings = RerankClient("https://h").settings
    for setting in taken_by(CLIENT):
        value = setting.resolved_default
        # headers gain the user agent and the dialect's own; default_text marks the rest
        # whose value depends on the dialect
        if setting.kept and setting.default_text is None and setting.name != "headers":
            assert getattr(settings, setting.name) == value, setting.name


def _docstring_entries(doc: str) -> dict[str, str]:
    """The ``Args:`` entries of a Google-style docstring, each on one line."""
    args = inspect.cleandoc(doc).split("\nArgs:\n", 1)[1].split("\n\n", 1)[0]
    entries: dict[str, str] = {}
    name = ""
    for line in args.splitlines():
        found = re.match(r"^    (\w+): (.*)$", line)
        if found:
            name = found.group(1)
            entries[name] = found.group(2)
        else:
            entries[name] += " " + line.strip()
    return entries


def test_client_docstring_args_follow_the_declaration() -> None:
    # Python 3.13 strips a docstring's common indentation when it compiles it; older ones keep it.
    doc = inspect.cleandoc(RerankClient.__doc__ or "")
    assert doc
    entries = _docstring_entries(doc)
    assert list(entries) == [s.name for s in taken_by(CLIENT)]
    for setting in taken_by(CLIENT):
        assert entries[setting.name] == " ".join(entry(setting).split())
    assert doc.count("\nArgs:\n") == 1
    # wrapped as the generator wraps it, at the indentation the cleaned docstring has
    assert textwrap.indent(textwrap.dedent(docstring_args()), "    ") in doc


def test_client_docstring_names_every_environment_variable() -> None:
    doc = " ".join((RerankClient.__doc__ or "").split())
    for setting in SETTINGS.values():
        if setting.env:
            assert f"``{setting.env}``" in doc, setting.env


# -- the adapters -------------------------------------------------------------------------


@pytest.mark.parametrize("taker", [COMPRESSOR, POSTPROCESSOR])
def test_adapter_fields_follow_the_declaration(taker: str) -> None:
    adapter = ADAPTERS[taker]
    fields = adapter.model_fields
    annotations = _annotations(adapter)
    declared = taken_by(taker)
    assert set(fields) - FRAMEWORK_FIELDS == {s.name for s in declared}
    for setting in declared:
        field = fields[setting.name]
        assert field.description == setting.description, setting.name
        assert field.default == setting.default, setting.name
        assert type(field.default) is type(setting.default) or setting.name == "metadata_mode"
        assert annotations[setting.name] == setting.adapter_type, setting.name
        hidden = field.exclude is True and field.repr is False
        assert hidden == setting.hidden, setting.name


def test_adapters_pass_on_every_setting_the_client_takes_too() -> None:
    assert set(CLIENT_SETTINGS) == {s.name for s in taken_by(CLIENT)} & set(
        RerankSettings.model_fields
    )
    assert "http_client" not in CLIENT_SETTINGS
    assert "top_n" not in CLIENT_SETTINGS


@pytest.mark.parametrize("adapter", [RerankCompressor, RerankPostprocessor])
def test_adapter_descriptions_reach_the_schema_and_help(adapter: Any) -> None:
    top_n = SETTINGS["top_n"].description
    assert adapter.model_fields["top_n"].description == top_n
    schema = adapter.model_json_schema()
    assert schema["properties"]["top_n"]["description"] == top_n
    assert schema["properties"]["timeout"]["description"] == SETTINGS["timeout"].description
    assert "api_key" in schema["properties"]  # a secret is described, never serialized
    shown = " ".join(pydoc.render_doc(adapter, renderer=pydoc.plaintext).split())
    shown = shown.replace(" | ", " ")
    for name in ("top_n", "max_tokens_per_document", "on_error"):
        assert f"{name}: {' '.join(entry(SETTINGS[name]).split())}" in shown


# -- the environment ----------------------------------------------------------------------

#: A value for each variable, and what the client makes of it.
ENVIRONMENT: dict[str, tuple[str, Any]] = {
    "base_url": ("https://env.example/v1", "https://env.example/v1/rerank"),
    "api_key": ("sk-from-env", "sk-from-env"),
    "model": ("env-model", "env-model"),
    "dialect": ("cohere", "cohere"),
    "max_documents_per_request": ("7", 7),
    "max_request_bytes": ("9_000", 9000),
    "max_tokens_per_request": ("800", 800),
    "max_tokens_per_document": ("400", 400),
    "long_documents": ("chunk", "chunk"),
    "instruction": ("prefer maintenance guides", "prefer maintenance guides"),
}


#: An argument for each, which wins over the variable.
ARGUMENTS: dict[str, Any] = {
    "api_key": "sk-argument",
    "model": "argument-model",
    "dialect": "generic",
    "max_documents_per_request": 3,
    "max_request_bytes": 5000,
    "max_tokens_per_request": 300,
    "max_tokens_per_document": 200,
    "long_documents": "error",
    "instruction": "prefer recipes",
}


def _seen(client: RerankClient, name: str) -> Any:
    settings = client.settings
    if name == "base_url":
        return settings.endpoint
    if name == "api_key":
        return settings.api_key.get_secret_value() if settings.api_key else None
    if name == "dialect":
        return settings.dialect.name
    return getattr(settings, name)


def test_every_declared_variable_has_a_case_here() -> None:
    assert set(ENVIRONMENT) == {s.name for s in SETTINGS.values() if s.env}


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_each_environment_variable_is_read(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in SETTINGS.values():
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)
    raw, expected = ENVIRONMENT[name]
    variable = SETTINGS[name].env
    assert variable is not None
    monkeypatch.setenv(variable, raw)
    base = None if name == "base_url" else "https://h/v1"
    assert _seen(RerankClient(base), name) == expected
    if name != "base_url":  # an argument wins over the variable
        argument = ARGUMENTS[name]
        assert _seen(RerankClient(base, **{name: argument}), name) == argument


class _Recording(dict[str, str]):
    """``os.environ`` that notes the names asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)


def test_the_variables_read_are_exactly_the_declared_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recording = _Recording({k: v for k, v in os.environ.items() if not k.startswith("RERANK_")})
    monkeypatch.setattr(os, "environ", recording)
    monkeypatch.setitem(recording, "RERANK_BASE_URL", "https://h")
    RerankClient()
    RerankCompressor()
    RerankPostprocessor()
    read = {name for name in recording.asked if name.startswith("RERANK_")}
    assert read == {s.env for s in SETTINGS.values() if s.env}


def test_a_count_variable_that_is_not_a_number_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rerank_integrations import ConfigurationError

    monkeypatch.setenv("RERANK_MAX_DOCUMENTS_PER_REQUEST", "many")
    with pytest.raises(ConfigurationError, match="RERANK_MAX_DOCUMENTS_PER_REQUEST") as info:
        RerankClient("https://h")
    assert info.value.setting == "max_documents_per_request"


# -- the settings table ---------------------------------------------------------------------------


def test_readme_settings_table_is_generated_from_the_declaration() -> None:
    readme = README.read_text(encoding="utf-8")
    assert with_table(readme) == readme, (
        "the settings table is stale: "
        "python -m rerank_integrations._settings_table --write docs/reference/settings.md"
    )
    table = markdown_table()
    for setting in SETTINGS.values():
        assert f"| `{setting.name}` |" in table
        if setting.env:
            assert f"`{setting.env}`" in table


def test_the_generator_writes_the_table_and_the_client_args(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = README.read_text(encoding="utf-8")
    stale = re.sub(r"\| `top_n` \|[^\n]*\n", "| `top_n` | | 5 | | stale |\n", readme)
    assert stale != readme
    copy = tmp_path / "README.md"
    copy.write_text(stale, encoding="utf-8")
    source = _settings_table.client_module().read_text(encoding="utf-8")
    stale_source = source.replace(
        "        max_concurrency: batches", "        max_concurrency: old"
    )
    assert stale_source != source
    client = tmp_path / "_client.py"
    client.write_text(stale_source, encoding="utf-8")
    monkeypatch.setattr(_settings_table, "client_module", lambda: client)
    assert _settings_table.main(["--write", str(copy)]) == 0
    assert copy.read_text(encoding="utf-8") == readme
    assert client.read_text(encoding="utf-8") == source
    assert _settings_table.main(["--nonsense"]) == 2


def test_with_table_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        with_table("# no table here\n")
    with pytest.raises(ValueError, match="Args"):
        with_args("class RerankClient:\n    pass\n")


# -- near misses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("topn", "top_n"),
        ("top_k", "top_n"),
        ("toop_n", "top_n"),
        ("api_base", "base_url"),
        ("url", "base_url"),
        ("model_name", "model"),
        ("modle", "model"),
        ("max_retry", "max_retries"),
        ("unrelated", None),
    ],
)
def test_suggestion(given: str, meant: str | None) -> None:
    assert suggestion(given, RerankCompressor.model_fields) == meant


def test_a_suggestion_is_only_a_known_name() -> None:
    assert suggestion("url", ["top_n"]) is None
