"""The entry point: parse, run the command, and turn every failure into one line and a status."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO
from urllib.parse import urlsplit

from .._constants import ENV_API_KEY, ENV_BASE_URL, LOGGER_NAME
from .._exceptions import ConfigurationError, RerankError
from ._advice import configuration_message, with_advice
from ._common import PROG, CommandError
from ._parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    secrets = _Secrets()
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        try:
            args, unknown = parser.parse_known_args(argv)
            if unknown and not getattr(args, "any_arguments", False):
                parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else 0
        secrets.add(getattr(args, "api_key", None), os.environ.get(ENV_API_KEY))
        for url in (getattr(args, "base_url", None), os.environ.get(ENV_BASE_URL)):
            secrets.add_url(url)
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is None:
            raise CommandError(
                "choose a command: rerank, batch, eval, check, demo or serve "
                "(see 'rerank-integrations --help')",
                2,
            )
        with _logging(getattr(args, "verbose", 0)), _warnings_as_lines(secrets):
            return handler(args)
    except CommandError as exc:
        return _fail(exc.message, exc.code, secrets)
    except ConfigurationError as exc:
        return _fail(configuration_message(exc, vars(args) if args is not None else ()), 2, secrets)
    except RerankError as exc:
        return _fail(with_advice(exc), 1, secrets)
    except ImportError as exc:
        return _fail(str(exc), 1, secrets)
    except (TypeError, ValueError) as exc:
        return _fail(str(exc), 2, secrets)
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep Python from complaining
        # when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}", 1, secrets)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, secrets)


class _Secrets:
    """Strings that must never be printed: the API key from the options or the environment."""

    def __init__(self) -> None:
        self._values: list[str] = []

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and value.strip():
                self._values.append(value.strip())

    def add_url(self, url: str | None) -> None:
        """Also hide a password and a query string given in a URL."""
        if url:
            try:
                parts = urlsplit(url.strip())
                self.add(parts.password, parts.query)
            except ValueError:
                pass

    def redact(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def _fail(message: str, code: int, secrets: _Secrets) -> int:
    """Print ``message`` as one line on stderr and return ``code``."""
    line = " ".join(secrets.redact(message).split())
    print(f"{PROG}: error: {line}", file=sys.stderr)
    return code


@contextmanager
def _warnings_as_lines(secrets: _Secrets) -> Iterator[None]:
    """Warnings (a key about to go over plain http) as one ``warning:`` line each, once:
    Python's own form, with a file name and a source line, reads like a crash."""
    shown: set[str] = set()

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = " ".join(secrets.redact(str(message)).split())
        if text not in shown:
            shown.add(text)
            print(f"{PROG}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


class _logging:
    """Show the library's retries (``-v``) or requests (``-vv``) on stderr for one command;
    otherwise keep its warnings off the terminal (failures are reported as one line)."""

    def __init__(self, verbose: int) -> None:
        self._verbose = verbose
        self._logger = logging.getLogger(LOGGER_NAME)
        self._handler: logging.Handler = logging.NullHandler()
        self._level = self._logger.level

    def __enter__(self) -> None:
        if self._verbose:
            self._handler = logging.StreamHandler(sys.stderr)
            self._handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
            self._logger.setLevel(logging.DEBUG if self._verbose > 1 else logging.INFO)
        self._logger.addHandler(self._handler)

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)
