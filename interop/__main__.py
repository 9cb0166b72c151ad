"""``python -m interop``: run the conformance kit against LiteLLM, Infinity and Xinference.

``make interop`` builds the three server environments and then runs this. Each server is
started on 127.0.0.1, every case is run through the client (sync and async) and both
adapters (sync and async), each case's request/answer pairs are written to
``tests/wire/recorded/<server>/<case>.json``, and every server started is stopped,
whatever happens. Logs, the tiny model and Xinference's home are under ``.interop/``.

Exit status: 0 when every case passes or fails only as its pending core fix says (XFAIL);
1 when a case fails otherwise, passes although marked pending (XPASS), or a server cannot
be started.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from interop import _infinity, _litellm, _xinference
from interop._harness import Case, CaseResult, Server, run_case
from interop._processes import Processes, ServerFailed, stop_on_sigterm
from interop.replay import RECORDINGS_DIR, REPO_ROOT

SERVERS = ("infinity", "litellm", "xinference")
VENVS = {name: REPO_ROOT / f".venv-interop-{name}" for name in SERVERS}
PACKAGES = {"infinity": "infinity-emb", "litellm": "litellm", "xinference": "xinference"}


def installed_version(server: str) -> str:
    python = VENVS[server] / "bin" / "python"
    answer = subprocess.run(
        [
            str(python),
            "-c",
            f"import importlib.metadata as m; print(m.version({PACKAGES[server]!r}))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    return answer.stdout.strip()


def build_tiny_model(work: Path) -> Path:
    """The tiny cross-encoder, built fresh by a server environment's Python."""
    model_dir = work / "tiny-reranker"
    shutil.rmtree(model_dir, ignore_errors=True)
    python = next(
        VENVS[name] / "bin" / "python"
        for name in ("infinity", "xinference")
        if (VENVS[name] / "bin" / "python").exists()
    )
    subprocess.run(
        [str(python), "-m", "interop.tiny_model", str(model_dir)],
        cwd=REPO_ROOT,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    return model_dir


class Report:
    def __init__(self) -> None:
        self.results: list[CaseResult] = []
        self.failures: list[str] = []
        self.timings: dict[str, float] = {}

    def run(self, server: Server, cases: Sequence[Case], record: bool) -> None:
        print(f"\n== {server.name} {server.version}: {len(cases)} cases", flush=True)
        for case in cases:
            started = time.monotonic()
            try:
                result = run_case(server, case, RECORDINGS_DIR if record else None)
            except Exception as exc:  # a case that cannot even run is a failure to report
                self.failures.append(f"{server.name}/{case.name}: {exc}")
                print(f"  ERROR  {case.name}: {exc}", flush=True)
                traceback.print_exc()
                continue
            self.results.append(result)
            took = time.monotonic() - started
            print(f"  {result.status:<5}  {case.name}  ({took:.1f}s)", flush=True)
            for mode in result.modes:
                if mode.status in ("FAIL", "XPASS"):
                    print(f"           {mode.mode}: {mode.status} {mode.detail[:400]}", flush=True)
            if result.status == "XFAIL":
                first = next(mode for mode in result.modes if mode.status == "XFAIL")
                print(f"           pending: {case.pending}", flush=True)
                print(f"           today ({first.mode}): {first.detail[:300]}", flush=True)

    def timed(self, name: str, step: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            step()
        except ServerFailed as exc:
            self.failures.append(str(exc))
            print(f"\n!! {exc}", flush=True)
        except Exception as exc:  # one server's trouble must not stop the others' cases
            self.failures.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"\n!! {name}: {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc()
        finally:
            self.timings[name] = time.monotonic() - started

    def summary(self) -> int:
        counts: dict[str, dict[str, int]] = {}
        for result in self.results:
            per = counts.setdefault(result.server, {})
            per[result.status] = per.get(result.status, 0) + 1
        print("\n== summary")
        for server, per in counts.items():
            shown = ", ".join(f"{count} {status}" for status, count in sorted(per.items()))
            print(f"  {server:<11} {shown}  ({self.timings.get(server, 0):.0f}s)")
        for failure in self.failures:
            print(f"  FAILED: {failure.splitlines()[0]}")
        bad = [r for r in self.results if r.status in ("FAIL", "XPASS")]
        for result in bad:
            print(f"  {result.status}: {result.server}/{result.case.name}")
        return 1 if bad or self.failures else 0

    def write_json(self, path: Path) -> None:
        data = [
            {
                "server": result.server,
                "case": result.case.name,
                "status": result.status,
                "pending": result.case.pending,
                "modes": {mode.mode: [mode.status, mode.detail] for mode in result.modes},
            }
            for result in self.results
        ]
        path.write_text(
            json.dumps(
                {"results": data, "failures": self.failures, "timings": self.timings}, indent=2
            )
            + "\n",
            encoding="utf-8",
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interop", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated subset of %(default)s",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="do not rewrite tests/wire/recorded"
    )
    parser.add_argument("--case", action="append", default=[], help="run only cases named so")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SERVERS))
    if unknown:
        parser.error(f"unknown servers: {', '.join(unknown)}")
    for name in chosen:
        if not (VENVS[name] / "bin" / "python").exists():
            parser.error(f"{VENVS[name].name} is missing: run 'make interop'")

    def only(cases: list[Case]) -> list[Case]:
        return [case for case in cases if not args.case or case.name in args.case]

    record = not args.no_record
    work = REPO_ROOT / ".interop"
    (work / "logs").mkdir(parents=True, exist_ok=True)
    report = Report()
    started = time.monotonic()
    with stop_on_sigterm(), Processes() as processes:
        model_dir = build_tiny_model(work)
        infinity_base = ""

        if "infinity" in chosen or "litellm" in chosen:

            def infinity() -> None:
                nonlocal infinity_base
                open_server, infinity_base = _infinity.start(
                    processes, REPO_ROOT, work, model_dir, api_key=None
                )
                auth_server, auth_base = _infinity.start(
                    processes, REPO_ROOT, work, model_dir, api_key=_infinity.API_KEY
                )
                _infinity.wait_ready(open_server, infinity_base)
                _infinity.wait_ready(auth_server, auth_base)
                if "infinity" in chosen:
                    info = _infinity.server_info()
                    info.version = installed_version("infinity")
                    report.run(info, only(_infinity.cases(infinity_base, auth_base)), record)
                processes.stop(auth_server)

            report.timed("infinity", infinity)

        if "litellm" in chosen and infinity_base:

            def litellm() -> None:
                with _litellm.upstreams() as upstream:
                    config = work / "litellm-config.yaml"
                    _litellm.write_config(config, upstream, infinity_base)
                    open_config = work / "litellm-open-config.yaml"
                    _litellm.write_config(open_config, upstream, infinity_base, master_key=False)
                    server, base = _litellm.start(processes, REPO_ROOT, work, config)
                    open_server, open_base = _litellm.start(
                        processes, REPO_ROOT, work, open_config, name="litellm-open"
                    )
                    _litellm.wait_ready(server, base)
                    _litellm.wait_ready(open_server, open_base)
                    info = _litellm.server_info()
                    info.version = installed_version("litellm")
                    cases = [*_litellm.cases(base), *_litellm.open_cases(open_base)]
                    report.run(info, only(cases), record)
                    processes.stop(open_server)
                    processes.stop(server)

            report.timed("litellm", litellm)
        processes.stop_all()

        if "xinference" in chosen:

            def xinference() -> None:
                setup = _xinference.start(processes, REPO_ROOT, work, model_dir)
                info = _xinference.server_info(setup.api_key)
                info.version = installed_version("xinference")
                report.run(info, only(_xinference.cases(setup.base, setup.api_key)), record)
                processes.stop(setup.server)
                open_setup = _xinference.start(processes, REPO_ROOT, work, model_dir, auth=False)
                open_info = _xinference.server_info("", auth=False)
                open_info.version = info.version
                report.run(open_info, only(_xinference.open_cases(open_setup.base)), record)
                processes.stop(open_setup.server)

            report.timed("xinference", xinference)
    report.write_json(work / "report.json")
    status = report.summary()
    print(f"  wall time {time.monotonic() - started:.0f}s; report in {work / 'report.json'}")
    return status


def run() -> int:
    try:
        return main()
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({exc or 'Ctrl-C'}); every server started was stopped", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(run())
