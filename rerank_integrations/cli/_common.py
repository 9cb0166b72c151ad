"""What every command shares: the program's name, the error with an exit status, the client."""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from .._client import RerankClient

PROG = "rerank-integrations"
"""The command's name, as shown in help and error messages."""


class CommandError(Exception):
    """A failure to report as one line, with the exit status to return."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def client_from_args(
    args: argparse.Namespace, http_client: httpx.Client | None = None, **settings: Any
) -> RerankClient:
    """A client from the connection options, and any other ``settings`` a command has.

    The library reads the environment and checks the settings; its ``ConfigurationError``
    names the one at fault, which :func:`main` words as this command's option.
    """
    return RerankClient(
        base_url=args.base_url,
        api_key=args.api_key,
        model=args.model,
        dialect=args.dialect,
        timeout=args.timeout,
        max_retries=args.max_retries,
        max_documents_per_request=getattr(args, "max_documents_per_request", None),
        instruction=getattr(args, "instruction", None),
        http_client=http_client,
        **settings,
    )
