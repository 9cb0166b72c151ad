"""``demo``: a thin door to the demo, imported only when it runs (it needs the frameworks)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def command_demo(args: argparse.Namespace) -> int:
    """Run ``demo``; its errors are the library's, mapped by ``main`` like any other."""
    if getattr(args, "eval", None):
        return _demo_eval(args)
    from ..demo._pipeline import run_demo

    run_demo(
        base_url=args.base_url,
        query_id=args.query_id,
        query=args.query,
        top_k=args.top_k,
        top_n=args.top_n,
        out=sys.stdout,
        as_json=args.json,
        long_documents=args.long_documents,
        instruction=args.instruction,
    )
    return 0


def _demo_eval(args: argparse.Namespace) -> int:
    """``demo --eval DIR``: the evaluation over the demo corpus (needs the eval extra)."""
    from ..eval._demo import run_demo_eval

    report = run_demo_eval(args.eval, base_url=args.base_url)
    print(report.table())
    print(f"report in {Path(args.eval) / 'report.md'}", file=sys.stderr)
    return 0
