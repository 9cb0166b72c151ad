"""What every command shares: the program's name, the error with an exit status, the client."""

from __future__ import annotations

import argparse
import os

import httpx

from .._client import RerankClient
from .._constants import ENV_BASE_URL, ENV_MODEL

PROG = "rerank-integrations"
"""The command's name, as shown in help and error messages."""


class CommandError(Exception):
    """A failure to report as one line, with the exit status to return."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def client_from_args(
    args: argparse.Namespace, http_client: httpx.Client | None = None
) -> RerankClient:
    """A client from the connection options; the library fills in the environment."""
    if not (args.base_url or os.environ.get(ENV_BASE_URL, "").strip()):
        raise CommandError(
            f"no base URL: pass --base-url URL or set {ENV_BASE_URL} "
            "(e.g. http://127.0.0.1:8080 for 'rerank-integrations serve')",
            2,
        )
    client = RerankClient(
        base_url=args.base_url,
        api_key=args.api_key,
        model=args.model,
        dialect=args.dialect,
        timeout=args.timeout,
        max_retries=args.max_retries,
        max_documents_per_request=getattr(args, "max_documents_per_request", None),
        http_client=http_client,
    )
    if client.settings.dialect.model_required and client.model is None:
        client.close()
        raise CommandError(
            f"the {client.dialect} dialect needs a model: pass --model NAME or set {ENV_MODEL}",
            2,
        )
    return client
