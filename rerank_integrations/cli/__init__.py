"""The ``rerank-integrations`` command: ``rerank``, ``batch``, ``check``, ``demo`` and ``serve``.

``main(argv)`` is the console script's entry point (also ``python -m rerank_integrations``);
it returns the exit status instead of exiting, so tests and other code can call it:

- ``0``: success;
- ``1``: a runtime failure (the endpoint refused, failed or could not be reached, bad input
  data, a failed ``check``, a ``batch`` row that failed);
- ``2``: a usage error (bad options, no base URL anywhere, a missing file).

Errors are one line on stderr, ``rerank-integrations: error: ...``, never a traceback, and
never the API key.

One concern per module: ``_main`` (entry, error mapping), ``_parser``, ``_advice`` (what to
tell the user), ``_rerank``, ``_batch``, ``_check``, ``_demo``; ``_common`` holds what they
share.
"""

from __future__ import annotations

from ._advice import advice_for
from ._check import CheckStep, run_check
from ._common import PROG, CommandError
from ._main import main
from ._parser import build_parser
from ._rerank import read_documents

__all__ = [
    "PROG",
    "CheckStep",
    "CommandError",
    "advice_for",
    "build_parser",
    "main",
    "read_documents",
    "run_check",
]
