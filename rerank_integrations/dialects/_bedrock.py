"""AWS Bedrock Agent Runtime rerank: its wire format (queries, sources, a model ARN, paged
by ``nextToken``), and AWS Signature Version 4 over each request with botocore's signer and
credentials (the usual chain, or given; refreshed by botocore when they are temporary).

``botocore`` is optional (extra ``aws``): it is imported only when such a client is built,
and a missing one is a :class:`~rerank_integrations.ConfigurationError` naming the extra.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from .._actions import Flow, Run, Send
from .._answers import ParsedRanking, extract_error_message, parse_ranking
from .._auth import Authorizer, AuthSettings
from .._exceptions import AuthenticationError, ConfigurationError
from .._secrets import HiddenHeaders
from ._base import CredentialSetup, RankingRequest, document_text, top_n
from ._cloud import cloud_dialect, import_sdk, refuse_api_key, signing_setup

__all__ = ["AWS_SERVICE", "BEDROCK", "SigV4Authorizer", "aws_credentials", "region_from_host"]

#: The SigV4 signing name of Bedrock Agent Runtime (its endpoint prefix differs).
AWS_SERVICE = "bedrock"
#: How Bedrock names a foundation model given by its id alone.
_BEDROCK_ARN = "arn:aws:bedrock:{location}::foundation-model/{model}"
_REGION_IN_HOST = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$")


# -- the wire format --------------------------------------------------------------------------


def _model_arn(model: str | None, location: str | None) -> str | None:
    """``model`` as a Bedrock model ARN: an ARN as given, a bare model id
    (``amazon.rerank-v1:0``) in the client's region."""
    if model is None or model.startswith("arn:") or not location:
        return model
    return _BEDROCK_ARN.format(location=location, model=model)


def _body(request: RankingRequest) -> dict[str, Any]:
    configuration: dict[str, Any] = {
        "modelConfiguration": {"modelArn": _model_arn(request.model, request.location)}
    }
    wanted = top_n(request)
    if wanted is not None:
        configuration["numberOfResults"] = wanted
    return {
        "queries": [{"type": "TEXT", "textQuery": {"text": request.query}}],
        "sources": [
            {
                "type": "INLINE",
                "inlineDocumentSource": {
                    "type": "TEXT",
                    "textDocument": {"text": document_text(d)},
                },
            }
            for d in request.documents
        ],
        "rerankingConfiguration": {
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": configuration,
        },
    }


def _answer(body: Any) -> ParsedRanking:
    """Bedrock: ``results[{index, relevanceScore}]`` and a ``nextToken`` while more remain."""
    if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
        return parse_ranking(body)
    items = [
        {"index": item.get("index"), "relevance_score": item["relevanceScore"]}
        if isinstance(item, Mapping) and "relevanceScore" in item
        else item
        for item in body["results"]
    ]
    parsed = parse_ranking({**body, "results": items})
    token = body.get("nextToken")
    return replace(parsed, next_page=token if isinstance(token, str) and token else None)


def _error(body: Any) -> str | None:
    """AWS errors: ``{message}``, or ``{Message}`` from the gateway in front."""
    if isinstance(body, Mapping) and isinstance(body.get("Message"), str):
        return body["Message"].strip() or None
    return extract_error_message(body)


# -- AWS credentials and Signature Version 4 ---------------------------------------------------

_AWS_HINT = "install the optional AWS support: pip install 'rerank-integrations[aws]'"


def _import_botocore() -> Any:
    return import_sdk(
        "botocore",
        ("auth", "awsrequest", "credentials", "session"),
        f"the bedrock dialect signs requests with AWS SigV4: {_AWS_HINT}",
    )


def region_from_host(url: str) -> str | None:
    """The AWS region an ``*.amazonaws.com`` URL names, if any."""
    host = urlsplit(url).hostname or ""
    found = _REGION_IN_HOST.search(host)
    return found.group(1) if found else None


def aws_credentials(credentials: object, location: str | None) -> tuple[Any, str | None]:
    """The AWS credentials and region to sign with: ``credentials`` as given (botocore
    credentials, a botocore session, or a mapping of ``aws_access_key_id``,
    ``aws_secret_access_key`` and ``aws_session_token``), else the usual chain
    (environment, shared files, SSO, container and instance roles); the region is
    ``location``, else the AWS configuration's.

    Raises:
        ConfigurationError: ``botocore`` is not installed, or no credentials are found.
    """
    botocore = _import_botocore()
    session = credentials if isinstance(credentials, botocore.session.Session) else None
    if isinstance(credentials, Mapping):
        try:
            credentials = botocore.credentials.Credentials(
                credentials["aws_access_key_id"],
                credentials["aws_secret_access_key"],
                credentials.get("aws_session_token"),
            )
        except KeyError as exc:
            raise ConfigurationError(
                f"AWS credentials need {exc.args[0]}", setting="credentials"
            ) from None
    elif (
        credentials is not None
        and session is None
        and not callable(getattr(credentials, "get_frozen_credentials", None))
    ):
        raise TypeError(
            "credentials for the bedrock dialect must be botocore credentials, a "
            f"botocore session or a mapping, got {type(credentials).__name__}"
        )
    if credentials is None or session is not None:
        session = session or botocore.session.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigurationError(
                "no AWS credentials were found (environment, shared files, SSO, container "
                "or instance role); configure them or pass credentials=...",
                setting="credentials",
            )
    if not location:
        # AWS_REGION is what the current SDKs read first; botocore reads AWS_DEFAULT_REGION
        # and the config file's region.
        region = os.environ.get("AWS_REGION", "").strip()
        location = region or (session or botocore.session.Session()).get_config_variable("region")
    return credentials, location or None


class _NoCanonicalRequests(logging.Filter):
    """Drops botocore's DEBUG record of each canonical request: it holds the session token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("CanonicalRequest")


_SIGNER_LOG_FILTER = _NoCanonicalRequests()


class SigV4Authorizer(Authorizer):
    """AWS Signature Version 4 over the final URL, headers and body bytes, with botocore's
    signer and credentials (refreshed by botocore when they are temporary)."""

    def __init__(self, credentials: Any, region: str, service: str = AWS_SERVICE) -> None:
        self._botocore = _import_botocore()
        signer_log = logging.getLogger("botocore.auth")
        if _SIGNER_LOG_FILTER not in signer_log.filters:
            signer_log.addFilter(_SIGNER_LOG_FILTER)
        self._credentials = credentials
        self.region = region
        self.service = service
        self._lock = threading.Lock()
        self._session_token: str | None = None

    def __repr__(self) -> str:
        return f"SigV4Authorizer(region={self.region!r}, service={self.service!r})"

    def authorize(self, send: Send) -> Flow[Send]:
        needs_refresh = getattr(self._credentials, "refresh_needed", None)
        if callable(needs_refresh) and needs_refresh():
            frozen = yield Run(self._credentials.get_frozen_credentials)  # may fetch
            if isinstance(frozen, BaseException):
                raise AuthenticationError(
                    f"AWS credentials could not be refreshed: {type(frozen).__name__}",
                    status_code=401,
                ) from None
        else:
            frozen = self._credentials.get_frozen_credentials()
        with self._lock:
            self._session_token = frozen.token
        request = self._botocore.awsrequest.AWSRequest(
            method="POST", url=send.url, data=send.content, headers=dict(send.headers)
        )
        self._botocore.auth.SigV4Auth(frozen, self.service, self.region).add_auth(request)
        return replace(send, headers=HiddenHeaders(request.headers.items()))

    def secrets(self) -> list[str]:
        with self._lock:
            return [self._session_token] if self._session_token else []


# -- building a client ------------------------------------------------------------------------


def _setup(setup: CredentialSetup) -> CredentialSetup:
    """AWS credentials and a region (given, in the URL, or configured); never an API key."""
    refuse_api_key(setup, "bedrock", "AWS credentials (SigV4)", "the AWS credential chain")
    location = setup.location or region_from_host(setup.base_url)
    credentials, location = aws_credentials(setup.credentials, location)
    if not location:
        raise ConfigurationError(
            "the bedrock dialect needs an AWS region: pass location=... (e.g. "
            "'us-east-1'), set AWS_REGION, or give the regional endpoint as base_url",
            setting="location",
        )
    return signing_setup(setup, credentials, location)


def _authorizer(settings: AuthSettings, user_agent: str) -> Authorizer | None:
    assert settings.location is not None  # found by _setup
    return SigV4Authorizer(settings.credentials, settings.location)


#: AWS Bedrock Agent Runtime rerank: SigV4-signed, sources, paged by nextToken.
BEDROCK = cloud_dialect(
    "bedrock",
    "/rerank",
    (
        "AWS Bedrock Agent Runtime: queries, sources, model ARN, numberOfResults always sent, "
        "nextToken paging; signed with AWS SigV4; 1,000 documents a request."
    ),
    base_url="https://bedrock-agent-runtime.{location}.amazonaws.com",
    max_characters_per_document=32000,
    build_body=_body,
    parse_body=_answer,
    error_message=_error,
    explicit_top_n=True,
    next_page_field="nextToken",
    auth="aws_sigv4",
    reads=("credentials", "location"),
    setup=_setup,
    authorizer=_authorizer,
)
