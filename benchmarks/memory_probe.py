"""Scenario 5's probe: one contender, one large call, in a fresh process.

``python -m benchmarks.memory_probe --contender client-sync --base-url URL --documents N``
imports what the contender needs, builds its input, makes one small warm-up call, then
measures the peak resident set size during one call with every document, and prints one
JSON line: ``{"baseline": ..., "peak": ..., "growth": ..., "results": ...}`` in bytes, or
``{"error": "..."}``.

The peak is the kernel's high-water mark (``VmHWM``), reset right before the call through
``/proc/self/clear_refs``; where that reset is refused, a thread samples ``VmRSS`` every
half millisecond instead. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import sys
import threading
from typing import Any

__all__ = ["PeakMeter", "main", "resident_bytes"]

_STATUS = "/proc/self/status"
_FIELD = re.compile(r"^(VmRSS|VmHWM):\s+(\d+)\s+kB", re.MULTILINE)
_WARM_UP_DOCUMENTS = 10


def _status_fields() -> dict[str, int]:
    with open(_STATUS, encoding="ascii") as status:
        return {name: int(value) * 1024 for name, value in _FIELD.findall(status.read())}


def resident_bytes() -> int:
    """This process's resident set size now, in bytes."""
    return _status_fields()["VmRSS"]


class PeakMeter:
    """The peak resident set size over a stretch of code."""

    def __init__(self) -> None:
        self._sampled = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.method = "VmHWM"

    def start(self) -> None:
        """Forget earlier peaks and start watching."""
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
                clear_refs.write("5")
        except OSError:
            self.method = "sampling"
            self._sampled = resident_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.0005):
            self._sampled = max(self._sampled, resident_bytes())

    def stop(self) -> int:
        """The peak since :meth:`start`, in bytes."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            return max(self._sampled, resident_bytes())
        return _status_fields()["VmHWM"]


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    from .contenders import SessionOptions, get_contender, prepare_inputs, result_count
    from .corpus import make_documents

    contender = get_contender(args.contender)
    texts = make_documents(args.documents, args.words)
    inputs = prepare_inputs(contender.family, texts)
    warm_up = prepare_inputs(contender.family, texts[:_WARM_UP_DOCUMENTS])
    settings = json.loads(args.client_settings)
    session = contender.open(SessionOptions(args.base_url, args.top_n, client_settings=settings))
    meter = PeakMeter()

    if contender.mode == "sync":
        session.call(warm_up)
        gc.collect()
        baseline = resident_bytes()
        meter.start()
        result = session.call(inputs)
        peak = meter.stop()
        session.close()
    else:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(session.acall(warm_up))
            gc.collect()
            baseline = resident_bytes()
            meter.start()
            result = loop.run_until_complete(session.acall(inputs))
            peak = meter.stop()
            loop.run_until_complete(session.aclose())
        finally:
            loop.close()
    count = result_count(result)
    if args.top_n is not None and count != min(args.top_n, len(texts)):
        raise RuntimeError(f"expected {args.top_n} results, got {count}")
    return {
        "baseline": baseline,
        "peak": peak,
        "growth": max(0, peak - baseline),
        "results": count,
        "method": meter.method,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure one contender and print the JSON line; exit 0 even when the call fails."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_probe")
    parser.add_argument("--contender", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--documents", type=int, required=True)
    parser.add_argument("--words", type=int, default=12)
    parser.add_argument("--top-n", type=int, default=5)
    parser.add_argument(
        "--client-settings", default="{}", help="RerankClient settings of ours, as JSON"
    )
    args = parser.parse_args(argv)
    try:
        outcome = _measure(args)
    except Exception as exc:
        outcome = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
