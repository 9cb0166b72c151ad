"""What the cloud dialects (watsonx, vertex, bedrock, oci) share: how their entries differ
from the generic format in the same way, the optional SDK a credential flow imports when a
client is built, and the setup steps of the dialects that sign each request instead of
sending a key."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from .._auth import Authorizer, AuthSettings, optional_module
from .._exceptions import ConfigurationError
from ._base import AuthScheme, CredentialSetup, Dialect

#: What every cloud entry states unless it says otherwise: a model named in each request,
#: and no instruction (none of these APIs takes one, and their models follow none).
_CLOUD_DEFAULTS: dict[str, Any] = {"model_required": True, "instruction": "refuse"}


def cloud_dialect(
    name: str,
    default_path: str,
    description: str,
    *,
    auth: AuthScheme,
    reads: Iterable[str],
    setup: Callable[[CredentialSetup], CredentialSetup],
    authorizer: Callable[[AuthSettings, str], Authorizer | None],
    **differences: Any,
) -> Dialect:
    """A cloud vendor's entry: its credential flow (``auth``, ``setup``, ``authorizer``),
    the cloud settings it ``reads``, a model required and instructions refused, and
    ``differences`` (any other :class:`Dialect` fields, those two included)."""
    flow = {"auth": auth, "setup": setup, "authorizer": authorizer}
    fields = {**_CLOUD_DEFAULTS, **flow, "cloud_settings": frozenset(reads), **differences}
    return Dialect(name, default_path, description, **fields)


def import_sdk(package: str, submodules: Iterable[str], refusal: str) -> Any:
    """``package``, an optional SDK, with the ``submodules`` its credential flow uses.

    Raises:
        ConfigurationError: it is not installed; ``refusal`` says why it is needed and
            which extra to install.
    """
    try:
        for submodule in submodules:
            optional_module(f"{package}.{submodule}")
        return optional_module(package)
    except ImportError:
        raise ConfigurationError(refusal, setting="credentials") from None


def refuse_api_key(setup: CredentialSetup, dialect: str, signs_with: str, configure: str) -> None:
    """Refuse ``api_key=`` for a dialect that signs each request with ``signs_with``.

    Raises:
        ConfigurationError: an API key was passed.
    """
    if setup.api_key_given:
        raise ConfigurationError(
            f"the {dialect} dialect signs requests with {signs_with}, not an API key: pass "
            f"credentials=... or configure {configure}",
            setting="api_key",
        )


def signing_setup(setup: CredentialSetup, signer: Any, location: str | None) -> CredentialSetup:
    """``setup`` completed with what signs its requests and the region; no API key, so
    that a ``RERANK_API_KEY`` meant for another service is not sent."""
    return replace(setup, api_key=None, credentials=signer, location=location)
