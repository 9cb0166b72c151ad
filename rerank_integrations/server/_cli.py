"""``rerank-integrations serve``: the local server in the foreground.

The console command owns the parser; this module adds the ``serve`` options
(:func:`add_arguments`) and runs the server (:func:`run`). Each option's default is the
:class:`ServerConfig` default, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

import uvicorn

from ._app import create_app
from ._config import SCORING_MODES, ServerConfig
from ._thread import bind_socket, format_base_url

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "add_arguments",
    "config_from_args",
    "run",
]

API_KEY_ENV = "RERANK_SERVER_API_KEY"
"""Read when ``--api-key`` is not given, so a key need not show in the process list."""

DEFAULT_HOST = "127.0.0.1"
"""Loopback only: exposing the server is a choice made with ``--host``."""

DEFAULT_PORT = 8080
"""The default port."""

_PROG = "rerank-integrations"
_DEFAULTS = ServerConfig()
_FIELD_TYPES = {field.name: field.type for field in dataclasses.fields(ServerConfig)}

#: The options that are :class:`ServerConfig` fields, in ``--help`` order, with their help.
#: Each option's type and default are its field's: a flag for a ``bool``, an integer ``N`` for
#: a limit that is off (``None``) by default.
_OPTIONS: dict[str, str] = {
    "max_documents": "largest number of documents per request (default: %(default)s)",
    "max_request_bytes": ("refuse larger request bodies with nginx's 413 page (default: no limit)"),
    "max_tokens_per_document": (
        "refuse a document whose tokens with the query's are more, with TEI's 413 "
        "(default: no limit)"
    ),
    "max_tokens_per_request": (
        "refuse a request with more tokens, the query counted once per document, "
        "with a 400 (default: no limit)"
    ),
    "auto_truncate": (
        "score a too-long document on its first tokens instead of refusing it, unless "
        "the request says truncate: false"
    ),
    "latency_ms": (
        "extra delay added to every rerank request, in milliseconds (default: %(default)s)"
    ),
    "error_rate": "probability of answering with --error-status (default: %(default)s)",
    "error_status": "HTTP status of injected errors, 400-599 (default: %(default)s)",
    "error_html": "answer injected errors with an HTML page like a proxy, not JSON",
    "rate_limit_rate": (
        "probability of a random 429 with Retry-After, a fault (default: %(default)s)"
    ),
    "rate_limit_rpm": (
        "take N requests a minute, at most a second's worth at once; answer the rest "
        "429 with Retry-After (default: no limit)"
    ),
    "retry_after": "seconds sent in the Retry-After header (default: %(default)s)",
    "drop_rate": "probability of dropping the connection mid-response (default: %(default)s)",
    "stall_rate": "probability of stalling before answering (default: %(default)s)",
    "stall_seconds": "length of a stall in seconds (default: %(default)s)",
    "seed": "seed of the fault draws, for reproducible runs",
    "scoring": (
        "bm25 ranks by relevance; cheap scores in constant time per document (default: %(default)s)"
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``, the ``serve`` command's (sub-)parser."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port to listen on, 0 for any free port (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help=(
            "require 'Authorization: Bearer <key>' "
            f"(default: ${API_KEY_ENV}; unset means no authentication)"
        ),
    )
    for name, help_text in _OPTIONS.items():
        default = getattr(_DEFAULTS, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help_text)
        elif name == "scoring":
            parser.add_argument(flag, choices=SCORING_MODES, default=default, help=help_text)
        elif default is None:
            metavar = None if name == "seed" else "N"
            parser.add_argument(flag, type=int, default=None, metavar=metavar, help=help_text)
        else:
            kind = float if _FIELD_TYPES[name] == "float" else int
            parser.add_argument(flag, type=kind, default=default, help=help_text)


def _option(args: argparse.Namespace, name: str) -> Any:
    """``args.<name>``, else the :class:`ServerConfig` default (a namespace built by hand may
    lack options)."""
    return getattr(args, name, getattr(_DEFAULTS, name))


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The :class:`ServerConfig` of parsed ``serve`` options; ``ValueError`` for a bad value.

    ``--api-key`` falls back to ``RERANK_SERVER_API_KEY``; an empty variable means no key.
    """
    api_key = getattr(args, "api_key", None)
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV) or None
    options = {name: _option(args, name) for name in _OPTIONS}
    for name in ("auto_truncate", "error_html"):
        options[name] = bool(options[name])
    return ServerConfig(api_key=api_key, **options)


def _fail(message: str, code: int) -> int:
    """Print one error line on stderr and return ``code``."""
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl+C, after one line naming the URL.

    Returns the exit status: ``0`` after Ctrl+C, ``2`` for a bad option, ``1`` when the
    address cannot be bound; each error is one line on stderr.
    """
    try:
        config = config_from_args(args)
    except ValueError as exc:
        return _fail(str(exc), 2)
    host = str(getattr(args, "host", DEFAULT_HOST))
    port = getattr(args, "port", DEFAULT_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        return _fail(f"port must be between 0 and 65535, got {port!r}", 2)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        return _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1)

    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
    )
    url = format_base_url(host, int(sock.getsockname()[1]))
    try:
        print(f"Rerank server listening on {url} (POST {url}/v1/rerank)", flush=True)
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0
