"""``demo``: a thin door to the demo, imported only when it runs (it needs the frameworks)."""

from __future__ import annotations

import argparse
import sys


def command_demo(args: argparse.Namespace) -> int:
    """Run ``demo``; its errors are the library's, mapped by ``main`` like any other."""
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
