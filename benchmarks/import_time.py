"""What importing the LangChain adapter costs on top of langchain-core (issue: the import
must cost at most langchain-core's own import plus 100 ms).

Each run is a new process, as a user's: byte code cached (in a folder of its own, written by
one warm-up run first), whatever this environment says, and the garbage collector as it
is (``--gc off`` turns it off first, to tell the adapter's own work from a collection it
happens to set off). A run reports the CPU time (``time.process_time``) and the wall time of
``import langchain_core.callbacks, langchain_core.documents, langchain_core.retrievers``,
then of ``import rerank_integrations.langchain`` on top; the medians of the runs are
printed. A second set of runs takes as langchain-core's import only the names the adapter
module imports of it (its callback managers and ``BaseDocumentCompressor``, ``Document``:
it leaves ``langchain_core.retrievers`` to its first use), the stricter measure.

Run it with ``python -m benchmarks.import_time [--runs 7] [--gc off]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

__all__ = ["ImportTimes", "main", "measure"]

_SCRIPT = """
import gc, json, sys, time
if sys.argv[1] == "off":
    gc.disable()
cpu, wall = time.process_time(), time.perf_counter()
{core}
core = (time.process_time() - cpu, time.perf_counter() - wall)
cpu, wall = time.process_time(), time.perf_counter()
import rerank_integrations.langchain
ours = (time.process_time() - cpu, time.perf_counter() - wall)
print(json.dumps({{"core": core, "ours": ours}}))
"""

#: langchain-core's modules the adapter's features use (the retriever among them).
_CORE_MODULES = (
    "import langchain_core.callbacks, langchain_core.documents, langchain_core.retrievers"
)
#: Only the names ``rerank_integrations.langchain`` imports of langchain-core.
_CORE_NAMES = (
    "from langchain_core.callbacks import AsyncCallbackManager, BaseCallbackManager, "
    "CallbackManager, Callbacks\n"
    "from langchain_core.documents import BaseDocumentCompressor, Document"
)

#: A new process as a user's: byte code cached (here in a folder of its own).
_ENVIRONMENT = {
    **{name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": os.path.join(tempfile.gettempdir(), "rerank-import-pycache"),
}


@dataclass(frozen=True)
class ImportTimes:
    """Medians over the runs, in seconds.

    Attributes:
        runs: how many processes were measured.
        core_cpu: CPU time of langchain-core's import.
        core_wall: its wall time.
        ours_cpu: CPU time of ``import rerank_integrations.langchain`` after it.
        ours_wall: its wall time.
    """

    runs: int
    core_cpu: float
    core_wall: float
    ours_cpu: float
    ours_wall: float


def _run(core: str, gc: str) -> dict[str, list[float]]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(core=core), gc],
        env=_ENVIRONMENT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(runs: int = 7, core: str = _CORE_MODULES, gc: str = "on") -> ImportTimes:
    """Import times, the medians of ``runs`` new processes after one that writes the
    byte code; ``core`` is langchain-core's import, ``gc`` ``"on"`` or ``"off"``."""
    _run(core, gc)
    samples = [_run(core, gc) for _ in range(runs)]
    return ImportTimes(
        runs=runs,
        core_cpu=median(sample["core"][0] for sample in samples),
        core_wall=median(sample["core"][1] for sample in samples),
        ours_cpu=median(sample["ours"][0] for sample in samples),
        ours_wall=median(sample["ours"][1] for sample in samples),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the medians and the check against the budget (langchain-core plus 100 ms)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_time")
    parser.add_argument("--runs", type=int, default=7, help="processes measured (default: 7)")
    parser.add_argument(
        "--gc", choices=("on", "off"), default="on", help="the garbage collector (default: on)"
    )
    arguments = parser.parse_args(argv)
    runs = max(1, arguments.runs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median of {runs} new processes, byte code cached, GC {arguments.gc} (load {load:.2f})")
    for label, core in (
        ("callbacks, documents, retrievers", _CORE_MODULES),
        ("only the names the adapter imports", _CORE_NAMES),
    ):
        times = measure(runs, core, arguments.gc)
        print(
            f"import langchain-core ({label}): "
            f"{times.core_cpu * 1e3:.0f} ms CPU, {times.core_wall * 1e3:.0f} ms wall"
        )
        print(
            f"import rerank_integrations.langchain on top of langchain-core: "
            f"{times.ours_cpu * 1e3:.0f} ms CPU, {times.ours_wall * 1e3:.0f} ms wall "
            f"(budget: 100 ms: {'met' if times.ours_cpu <= 0.1 else 'missed'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
