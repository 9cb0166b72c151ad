"""Oracle Cloud Infrastructure Generative AI rerank (``RerankText``): its wire format (an
``input`` query, a compartment, a serving mode naming the model or a dedicated endpoint,
``documentRanks`` back), and OCI's HTTP signature over each request, made by the ``oci``
SDK's own signer (an API signing key from the OCI configuration, or any SDK signer:
instance principals, resource principals, session tokens).

``oci`` is optional (extra ``oci``): it is imported only when such a client is built, and a
missing one is a :class:`~rerank_integrations.ConfigurationError` naming the extra.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from .._actions import Flow, Run, Send
from .._answers import ParsedRanking, extract_error_message, parse_ranking
from .._auth import Authorizer, AuthSettings
from .._exceptions import AuthenticationError, ConfigurationError
from .._secrets import HiddenHeaders
from ._base import CredentialSetup, RankingRequest, document_text, scored_pairs, top_n
from ._cloud import cloud_dialect, import_sdk, refuse_api_key, signing_setup

__all__ = ["OCI", "KeySigner", "OCISignatureAuthorizer", "oci_signer", "region_from_host"]

#: A model named by this prefix is a dedicated AI cluster's endpoint, not a model.
_ENDPOINT_OCID = "ocid1.generativeaiendpoint."
_REGION_IN_HOST = re.compile(r"inference\.generativeai\.([a-z]+(?:-[a-z]+)*-\d+)\.oci\.")
_OCI_HINT = "install the optional OCI support: pip install 'rerank-integrations[oci]'"


# -- the wire format --------------------------------------------------------------------------


def serving_mode(model: str | None) -> dict[str, Any]:
    """OCI's ``servingMode``: ``DEDICATED`` with the ``endpointId`` of a dedicated AI
    cluster's endpoint (an ``ocid1.generativeaiendpoint...`` OCID), else ``ON_DEMAND`` with
    the ``modelId`` (a model name such as ``cohere.rerank.v3-5``, or a model OCID)."""
    if model is not None and model.startswith(_ENDPOINT_OCID):
        return {"servingType": "DEDICATED", "endpointId": model}
    return {"servingType": "ON_DEMAND", "modelId": model}


def _body(request: RankingRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input": request.query,
        "compartmentId": request.project,
        "servingMode": serving_mode(request.model),
        "documents": [document_text(d) for d in request.documents],
    }
    wanted = top_n(request)
    if wanted is not None:
        body["topN"] = wanted
    body["isEcho"] = False  # the documents are ours already: a smaller answer
    return body


def _answer(body: Any) -> ParsedRanking:
    """OCI: ``documentRanks[{index, relevanceScore, document?}]``, ``id``, ``modelId`` and
    ``modelVersion``. ``modelId`` names the model that answered only when it is a name: an
    OCID cannot be compared with the name asked for."""
    pairs = scored_pairs(body, "documentRanks", "relevanceScore")
    if pairs is None:
        return parse_ranking(body)
    model = body.get("modelId")
    named = isinstance(model, str) and bool(model) and not model.startswith("ocid1.")
    return ParsedRanking(pairs=pairs, model=model if named else None)


def _error(body: Any) -> str | None:
    """OCI errors: ``{code, message}``; the code is kept beside the message."""
    if isinstance(body, Mapping):
        code, message = body.get("code"), body.get("message")
        if isinstance(message, str) and message.strip():
            return f"{message.strip()} ({code})" if isinstance(code, str) and code else message
    return extract_error_message(body)


# -- OCI credentials and the request signature -------------------------------------------------


def _import_oci() -> Any:
    return import_sdk(
        "oci",
        ("signer", "config", "exceptions"),
        f"the oci dialect signs requests with an OCI API signing key: {_OCI_HINT}",
    )


def region_from_host(url: str) -> str | None:
    """The OCI region an ``inference.generativeai.<region>.oci...`` URL names, if any."""
    found = _REGION_IN_HOST.match(urlsplit(url).hostname or "")
    return found.group(1) if found else None


def _is_signer(credentials: object) -> bool:
    return callable(credentials) and callable(getattr(credentials, "do_request_sign", None))


def oci_signer(credentials: object, location: str | None) -> tuple[Any, str | None]:
    """The signer to sign with and the region: ``credentials`` as given (an SDK
    signer such as ``oci.signer.Signer`` or ``oci.auth.signers.InstancePrincipalsSecurity
    TokenSigner``, or an OCI configuration mapping as ``oci.config.from_file`` returns),
    else the ``DEFAULT`` profile of the OCI configuration file (``~/.oci/config``, or
    ``OCI_CONFIG_FILE``); the region is ``location``, else the signer's or configuration's
    (``OCI_REGION`` too). A configuration gives a :class:`KeySigner`.

    Raises:
        ConfigurationError: ``oci`` is not installed, the configuration is missing or
            incomplete, or its key cannot be read (no secret is quoted).
    """
    oci = _import_oci()
    if _is_signer(credentials):
        return credentials, location or getattr(credentials, "region", None) or None
    if credentials is None:
        try:
            config: Mapping[str, Any] = oci.config.from_file()
        except (oci.exceptions.ConfigFileNotFound, oci.exceptions.ProfileNotFound) as exc:
            raise ConfigurationError(
                "no OCI configuration was found (~/.oci/config, profile DEFAULT, or "
                f"OCI_CONFIG_FILE): {type(exc).__name__}; configure one or pass credentials=...",
                setting="credentials",
            ) from None
        except (ValueError, oci.exceptions.InvalidConfig) as exc:
            raise ConfigurationError(
                f"the OCI configuration file is not usable: {type(exc).__name__}",
                setting="credentials",
            ) from None
    elif isinstance(credentials, Mapping):
        config = dict(credentials)
    else:
        raise TypeError(
            "credentials for the oci dialect must be an oci signer or an OCI configuration "
            f"mapping, got {type(credentials).__name__}"
        )
    region = location or config.get("region") or os.environ.get("OCI_REGION") or None
    config = {**config, "region": region or "unset"}  # a missing region is ours to report
    try:
        oci.config.validate_config(config)
    except oci.exceptions.InvalidConfig as exc:
        wrong = exc.args[0] if exc.args and isinstance(exc.args[0], Mapping) else {}
        names = ", ".join(sorted(str(name) for name in wrong)) or "some fields"
        raise ConfigurationError(
            f"the OCI configuration is missing or has malformed {names}",
            setting="credentials",
        ) from None
    return KeySigner(config), region


class KeySigner:
    """``oci.signer.Signer`` made from an OCI configuration; it travels (pickles, copies) as
    that configuration and is made again where it lands, since the loaded key cannot.

    Raises:
        ConfigurationError: the key cannot be read (no secret is quoted).
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        oci = _import_oci()
        self._config = dict(config)
        try:
            self._signer = oci.signer.Signer(
                config["tenancy"],
                config["user"],
                config["fingerprint"],
                private_key_file_location=config.get("key_file"),
                pass_phrase=config.get("pass_phrase"),
                private_key_content=config.get("key_content"),
            )
        except (OSError, ValueError, TypeError, oci.exceptions.ClientError) as exc:
            raise ConfigurationError(
                f"the OCI API signing key could not be loaded: {type(exc).__name__} (check "
                "key_file or key_content, and pass_phrase)",
                setting="credentials",
            ) from None
        #: The key's id, ``tenancy/user/fingerprint``, as the signature names it.
        self.api_key: str = self._signer.api_key

    def __call__(self, request: Any, enforce_content_headers: bool = True) -> Any:
        """Sign ``request`` in place, as ``oci.signer.Signer`` does."""
        return self._signer(request, enforce_content_headers)

    def do_request_sign(self, request: Any, enforce_content_headers: bool = True) -> Any:
        """Sign ``request`` in place, as ``oci.signer.Signer`` does."""
        return self._signer.do_request_sign(request, enforce_content_headers)

    def __repr__(self) -> str:
        return "KeySigner(<OCI API signing key>)"

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self._config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["config"])  # type: ignore[misc]


class _Signable:
    """The parts of a ``requests`` request the ``oci`` signer reads and writes."""

    def __init__(self, send: Send) -> None:
        self.method = "POST"
        self.url = send.url
        self.body = send.content
        parts = urlsplit(send.url)
        self.path_url = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = httpx.Headers(send.headers)
        # The signer counts only text bodies; ours are bytes, and the length is signed.
        self.headers["content-length"] = str(len(send.content))


class OCISignatureAuthorizer(Authorizer):
    """OCI's HTTP signature (``rsa-sha256`` over ``date``, ``(request-target)``, ``host``,
    ``content-length``, ``content-type`` and ``x-content-sha256``) on each request, made
    by the ``oci`` SDK's signer; signers that fetch a security token (instance or resource
    principals) run where they may block."""

    def __init__(self, signer: Any, region: str | None) -> None:
        self._oci = _import_oci()
        self._signer = signer
        self.region = region
        # An API-key signer signs in memory; the others may refresh a token first.
        self._may_block = not isinstance(signer, KeySigner) and (
            type(signer) is not self._oci.signer.Signer
        )
        self._lock = threading.Lock()
        key_id = getattr(signer, "api_key", None)  # known before the first request, or not
        self._key_id: str | None = key_id if isinstance(key_id, str) else None

    def __repr__(self) -> str:
        signer = type(self._signer).__name__
        return f"OCISignatureAuthorizer(region={self.region!r}, signer={signer})"

    def _sign(self, send: Send) -> Send:
        request = _Signable(send)
        # Calling an SDK signer is how its security token is renewed before it signs.
        self._signer(request)
        key_id = getattr(self._signer, "api_key", None)
        with self._lock:
            self._key_id = key_id if isinstance(key_id, str) else None
        return replace(send, headers=HiddenHeaders(request.headers.items()))

    def authorize(self, send: Send) -> Flow[Send]:
        if not self._may_block:
            return self._sign(send)
        signed = yield Run(lambda: self._sign(send))  # may fetch a security token
        if isinstance(signed, BaseException):
            raise AuthenticationError(
                f"the OCI request could not be signed: {type(signed).__name__}",
                status_code=401,
            ) from None
        assert isinstance(signed, Send)
        return signed

    def secrets(self) -> list[str]:
        """The signing key's id (``tenancy/user/fingerprint``, or ``ST$`` and a security
        token) and its secret part: the fingerprint, or the token."""
        with self._lock:
            key_id = self._key_id
        if not key_id:
            return []
        return [key_id, key_id.removeprefix("ST$").rsplit("/", 1)[-1]]


# -- building a client ------------------------------------------------------------------------


def _setup(setup: CredentialSetup) -> CredentialSetup:
    """An OCI signer, a region (given, in the URL, or configured) and the compartment
    (``project``); never an API key."""
    refuse_api_key(setup, "oci", "an OCI API signing key", "~/.oci/config")
    if not setup.project:
        raise ConfigurationError(
            "the oci dialect needs the OCID of the compartment to call from: pass "
            "project='ocid1.compartment.oc1..…' (the tenancy's OCID for the root compartment)",
            setting="project",
        )
    location = setup.location or region_from_host(setup.base_url)
    signer, location = oci_signer(setup.credentials, location)
    if not location and "{location}" in setup.base_url:
        raise ConfigurationError(
            "the oci dialect needs an OCI region: pass location=... (e.g. 'us-chicago-1'), "
            "set it in the OCI configuration or OCI_REGION, or give the regional endpoint "
            "as base_url",
            setting="location",
        )
    return signing_setup(setup, signer, location)


def _authorizer(settings: AuthSettings, user_agent: str) -> Authorizer | None:
    return OCISignatureAuthorizer(settings.credentials, settings.location)


#: OCI Generative AI RerankText: OCI-signed, a compartment, on-demand or dedicated serving.
OCI = cloud_dialect(
    "oci",
    "/20231130/actions/rerankText",
    (
        "Oracle Cloud Infrastructure Generative AI RerankText (Cohere rerank models): input, "
        "compartmentId from project=, servingMode ON_DEMAND by model or DEDICATED by "
        "endpoint OCID, documentRanks back; signed with the oci SDK's HTTP signature."
    ),
    base_url="https://inference.generativeai.{location}.oci.oraclecloud.com",
    build_body=_body,
    parse_body=_answer,
    error_message=_error,
    auth="oci_signature",
    reads=("credentials", "project", "location"),
    setup=_setup,
    authorizer=_authorizer,
)
