"""The package's modules import one another without a cycle, one call never calls back up,
and no module is over :data:`MAX_MODULE_LINES` lines.

Imports are read from the source: every import a module makes at module level counts
(also inside a module-level ``try`` or ``if``, except ``if TYPE_CHECKING:``); an import
inside a function runs later, when every module is loaded, and does not. ``from .sub.mod
import x`` also imports the package ``sub``. Calls are traced while one
``RerankCompressor.compress_documents`` call runs (``sys.setprofile``, in every thread it
starts): no module may call back into a module above it, so that the call crosses each
module of :data:`CALL_PATH` once, from the adapter to the wire.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest
from langchain_core.documents import Document

import rerank_integrations
from rerank_integrations.langchain import RerankCompressor

PACKAGE = Path(rerank_integrations.__file__).parent
NAME = "rerank_integrations"


def module_name(path: Path) -> str:
    parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements run when the module is imported (not in functions or classes)."""
    statements: list[ast.stmt] = []
    for node in body:
        statements.append(node)
        if isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                statements += _module_level(node.body) + _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                statements += _module_level(block)
            for handler in node.handlers:
                statements += _module_level(handler.body)
    return statements


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports at module level."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _module_level(ast.parse(path.read_text(encoding="utf-8")).body):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                start = ".".join([*base, *([node.module] if node.module else [])])
            else:
                start = node.module or ""
            targets = [start]
            targets += [f"{start}.{alias.name}" for alias in node.names]  # submodules
        for target in targets:
            parts = target.split(".")
            # the module itself and each package on its way (they run first)
            for end in range(2, len(parts) + 1):
                candidate = ".".join(parts[:end])
                if (
                    candidate in known
                    and candidate != name
                    and not name.startswith(candidate + ".")
                ):
                    found.add(candidate)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycle_in(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges``, as the modules along it, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for following in sorted(edges.get(node, ())):
            if state.get(following) == 1:
                return [*path[path.index(following) :], following]
            if following not in state:
                found = visit(following)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_reader_finds_a_cycle_and_a_chain_has_none() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_reader_sees_relative_and_nested_imports() -> None:
    edges = graph()
    assert f"{NAME}._flow" in edges[f"{NAME}._run"]
    assert f"{NAME}._checks" in edges[f"{NAME}.langchain"]


def test_no_module_of_the_package_imports_itself_back() -> None:
    assert cycle_in(graph()) is None


#: The most lines a module of the package may have: past it, it holds more than one stage.
MAX_MODULE_LINES = 600


def test_no_module_of_the_package_is_over_600_lines() -> None:
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()
    }
    assert lengths  # the package was found
    too_long = {name: count for name, count in lengths.items() if count > MAX_MODULE_LINES}
    assert not too_long


#: The modules one compressor call passes through, from the adapter to the wire; each
#: calls only modules after it (a module left out is a leaf: types, text, constants).
CALL_PATH = [
    "langchain",
    "_adapters",
    "_client",
    "_run",
    "_fallbacks",
    "_pools",
    "_drive",
    "_flow",
    "_auth",
    "_call",
    "_checks",
    "_plan",
    "_outcome",
    "_state",
    "_codec",
    "_merge",
    "_send",
    "_transport",
]

TRACED = "rerank_integrations."


def _module(frame: FrameType) -> str | None:
    name = frame.f_globals.get("__name__", "")
    return name.removeprefix(TRACED) if name.startswith(TRACED) else None


def traced(run: Callable[[], Any]) -> dict[str, set[str]]:
    """``{caller: callees}`` among the package's modules while ``run()`` runs."""
    edges: dict[str, set[str]] = {}

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event != "call":
            return
        callee = _module(frame)
        caller_frame = frame.f_back
        while caller_frame is not None and _module(caller_frame) is None:
            caller_frame = caller_frame.f_back
        caller = None if caller_frame is None else _module(caller_frame)
        if callee is not None and caller is not None and caller != callee:
            edges.setdefault(caller, set()).add(callee)

    threading.setprofile(profile)  # type: ignore[arg-type]
    sys.setprofile(profile)  # type: ignore[arg-type]
    try:
        run()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return edges


def answer(request: httpx.Request) -> httpx.Response:
    count = len(json.loads(request.content)["documents"])
    results = [{"index": i, "relevance_score": 1.0 / (i + 1)} for i in range(count)]
    return httpx.Response(200, json={"results": results})


def compressor(**settings: Any) -> RerankCompressor:
    instance = RerankCompressor(base_url="https://rerank.test", top_n=3, **settings)
    client = instance.rerank_client
    transport = httpx.MockTransport(answer)
    client._user_http_client = httpx.Client(transport=transport)
    client._user_async_http_client = httpx.AsyncClient(transport=transport)
    return instance


DOCUMENTS = [Document(page_content=f"document {number}") for number in range(5)]


@pytest.mark.parametrize("batches", [1, 3])
def test_a_call_never_calls_back_up(mode: str, batches: int) -> None:
    instance = compressor(max_documents_per_request=2 if batches > 1 else None)
    if mode == "sync":
        edges = traced(lambda: instance.compress_documents(DOCUMENTS, "q"))
    else:
        edges = traced(lambda: asyncio.run(instance.acompress_documents(DOCUMENTS, "q")))
    assert cycle_in(edges) is None
    for caller, callees in edges.items():
        if caller in CALL_PATH:
            above = set(CALL_PATH[: CALL_PATH.index(caller)])
            assert not callees & above, (caller, callees & above)
    assert {"_client", "_run", "_drive", "_flow", "_send"} <= set(edges)  # the trace saw it


# -- what importing an adapter costs ---------------------------------------------------------

#: Modules only rarely used paths need: imported when first used, never by importing the
#: LangChain adapter (the import-time budget of ``rerank_integrations.langchain``).
LAZY_MODULES = (
    "rerank_integrations.dialects._watsonx",
    "rerank_integrations.dialects._vertex",
    "rerank_integrations.dialects._bedrock",
    "rerank_integrations.dialects._oci",
    "rerank_integrations._lc_retriever",
    "rerank_integrations._lc_middleware",
    "langchain_core.tools",
    "httpcore",
)

#: The client's settings, plan and call machinery: imported with the first ``RerankClient``
#: (its constructor or its first call), never by importing an adapter: importing them all
#: costs more than the rest of the adapter's import together.
CLIENT_MODULES = (
    "rerank_integrations._actions",
    "rerank_integrations._auth",
    "rerank_integrations._budget",
    "rerank_integrations._cache",
    "rerank_integrations._call",
    "rerank_integrations._codec",
    "rerank_integrations._config",
    "rerank_integrations._cuts",
    "rerank_integrations._drive",
    "rerank_integrations._fallbacks",
    "rerank_integrations._flow",
    "rerank_integrations._merge",
    "rerank_integrations._outcome",
    "rerank_integrations._plan",
    "rerank_integrations._pools",
    "rerank_integrations._ratelimit",
    "rerank_integrations._refusals",
    "rerank_integrations._run",
    "rerank_integrations._send",
    "rerank_integrations._state",
    "rerank_integrations._tools",
    "rerank_integrations._transport",
    "rerank_integrations.dialects",
    "httpx",  # its own import loads click, rich and pygments where they are installed
)

#: Prints the package's modules loaded by importing the adapter, then by its first client.
_IMPORT_CHECK = """
import json, sys
import rerank_integrations.langchain
after_import = sorted(sys.modules)
from rerank_integrations import _budget
compiled = _budget._PIECE._pattern is not None
from rerank_integrations.langchain import RerankCompressor
compressor = RerankCompressor(base_url="https://rerank.test")
compressor.rerank_client
after_client = sorted(sys.modules)
print(json.dumps({"import": after_import, "client": after_client, "compiled": compiled}))
"""


@functools.cache
def _import_check() -> dict[str, Any]:
    """What a new process has imported after the adapter, and after its first client."""
    import subprocess

    ran = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHECK],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen: dict[str, Any] = json.loads(ran.stdout)
    return seen


def test_importing_the_langchain_adapter_leaves_the_rare_paths_unimported() -> None:
    seen = _import_check()
    assert [name for name in LAZY_MODULES if name in seen["import"]] == []
    assert seen["compiled"] is False  # the CJK token pattern compiles at its first use


def test_importing_the_langchain_adapter_leaves_the_client_machinery_for_the_first_client() -> None:
    seen = _import_check()
    assert [name for name in CLIENT_MODULES if name in seen["import"]] == []
    # the list names real modules, which a client does load (else the check above is empty)
    needed = set(CLIENT_MODULES) - {"rerank_integrations._tools", "rerank_integrations._refusals"}
    assert sorted(needed - set(seen["client"])) == []
    assert set(CLIENT_MODULES) - {"httpx"} <= set(modules())


def test_the_lazy_public_names_are_listed_and_resolve_to_their_modules() -> None:
    import subprocess

    script = (
        "import sys, rerank_integrations as r\n"
        "assert 'rerank_integrations._config' not in sys.modules\n"
        "assert set(r.__all__) <= set(dir(r)), set(r.__all__) - set(dir(r))\n"
        "from rerank_integrations import ClientSettings, DIALECTS, RerankCache\n"
        "from rerank_integrations._config import ClientSettings as settings_class\n"
        "from rerank_integrations._cache import RerankCache as cache_class\n"
        "from rerank_integrations.dialects import DIALECTS as dialects\n"
        "assert ClientSettings is settings_class and RerankCache is cache_class\n"
        "assert DIALECTS is dialects and r.DIALECTS is dialects\n"
        "for name in r.__all__:\n"
        "    getattr(r, name)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_the_cloud_dialects_load_at_their_first_use() -> None:
    import subprocess

    script = (
        "import sys\n"
        "from rerank_integrations import DIALECTS\n"
        "from rerank_integrations.dialects import get_dialect\n"
        "assert 'rerank_integrations.dialects._vertex' not in sys.modules\n"
        "assert 'vertex' in DIALECTS\n"  # no import to answer this
        "assert 'rerank_integrations.dialects._vertex' not in sys.modules\n"
        "assert get_dialect('VERTEX').name == 'vertex'\n"
        "assert 'rerank_integrations.dialects._bedrock' not in sys.modules\n"
        "from rerank_integrations.dialects import BEDROCK, WATSONX\n"
        "names = list(DIALECTS)\n"
        "assert names.index('dashscope') + 1 == names.index('watsonx'), names\n"
        "assert names[names.index('watsonx'):][:5] == "
        "['watsonx', 'vertex', 'bedrock', 'oci', 'deepinfra'], names\n"
        "assert DIALECTS['bedrock'] is BEDROCK and DIALECTS['watsonx'] is WATSONX\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
