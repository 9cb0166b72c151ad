"""Cloud credentials, checked and handed out locally: AWS SigV4 signatures recomputed with
botocore's own signer (:func:`verify_sigv4`), OCI request signatures checked with the
signing key's public half (:func:`verify_oci_signature`, :func:`oci_test_key`), and a fake
Google metadata server that gives the default service account's access tokens
(:class:`MetadataServer`)."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


def verify_sigv4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    service: str = "bedrock",
) -> str | None:
    """Why a request's AWS SigV4 signature is wrong, or ``None`` when it is right: the
    signature is computed again with botocore's own signer from the headers it names.

    Args:
        method, url, headers, body: the request as it arrived (header names in lower case).
        secrets: the secret key of each access key that may sign.
        service: the service the signature must be for.
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    found = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})",
        headers.get("authorization", ""),
    )
    if not found:
        return "no SigV4 Authorization header"
    access_key, day, region, signed_service, signed, signature = found.groups()
    if access_key not in secrets:
        return "The security token included in the request is invalid."
    if signed_service != service:
        return f"signed for service {signed_service}, not {service}"
    stamp = headers.get("x-amz-date", "")
    if not stamp.startswith(day):
        return "X-Amz-Date does not match the credential scope"
    names = signed.split(";")
    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={name: headers[name] for name in names if name != "host" and name in headers},
    )
    request.context["timestamp"] = stamp
    token = headers.get("x-amz-security-token")
    signer = SigV4Auth(Credentials(access_key, secrets[access_key], token), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != signature or signer.signed_headers(signer.headers_to_sign(request)) != signed:
        return (
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return None


#: The headers an OCI signature of a request with a body must cover, in OCI's order.
OCI_SIGNED_HEADERS = "date (request-target) host content-length content-type x-content-sha256"
#: OCI's words for a request whose signature it cannot check.
OCI_UNAUTHENTICATED = (
    "The required information to complete authentication was not provided or was incorrect."
)
_OCI_AUTHORIZATION = re.compile(r"Signature (?P<params>.+)")
_OCI_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class OCITestKey:
    """A throwaway OCI API signing key: the configuration that signs with it, the ``keyId``
    its signatures carry and the public key they are checked with."""

    config: dict[str, Any]
    key_id: str
    public_key: Any
    private_pem: str
    fingerprint: str


@functools.lru_cache(maxsize=8)
def _rsa_key(seed: str, passphrase: str | None) -> tuple[Any, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption: Any = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()
    return key.public_key(), pem


def oci_test_key(
    name: str = "main", passphrase: str | None = None, region: str = "us-chicago-1"
) -> OCITestKey:
    """A throwaway RSA key (one per ``name`` and passphrase) as an OCI configuration with
    ``key_content``, its user, tenancy and fingerprint made up but well formed."""
    public_key, pem = _rsa_key(name, passphrase)
    digest = hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, 32, 2))
    tenancy = f"ocid1.tenancy.oc1..aaaaaaaatenancy{digest[:12]}"
    user = f"ocid1.user.oc1..aaaaaaaauser{digest[:12]}"
    config: dict[str, Any] = {
        "user": user,
        "tenancy": tenancy,
        "fingerprint": fingerprint,
        "key_content": pem,
        "region": region,
    }
    if passphrase:
        config["pass_phrase"] = passphrase
    return OCITestKey(config, f"{tenancy}/{user}/{fingerprint}", public_key, pem, fingerprint)


def verify_oci_signature(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    public_keys: Mapping[str, Any],
) -> str | None:
    """Why a request's OCI signature is wrong, or ``None`` when it is right: the signing
    string is rebuilt from the request as it arrived (draft-cavage-http-signatures-08 as OCI
    uses it) and the RSA-SHA256 signature checked with the public key of its ``keyId``.

    Args:
        method, target, headers, body: the request as it arrived (its path with the query;
            header names in lower case).
        public_keys: the public key of each ``keyId`` that may sign.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    found = _OCI_AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if not found:
        return "no OCI Signature Authorization header"
    params = dict(_OCI_PARAM.findall(found["params"]))
    if params.get("version") != "1" or params.get("algorithm") != "rsa-sha256":
        return "the signature must be version 1, rsa-sha256"
    if params.get("headers") != OCI_SIGNED_HEADERS:
        return f"the signature covers {params.get('headers')!r}, not {OCI_SIGNED_HEADERS!r}"
    key = public_keys.get(params.get("keyId", ""))
    if key is None:
        return OCI_UNAUTHENTICATED
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if headers.get("x-content-sha256") != digest:
        return "x-content-sha256 does not match the body"
    if headers.get("content-length") != str(len(body)):
        return "content-length does not match the body"
    lines = []
    for name in OCI_SIGNED_HEADERS.split():
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in headers:
            lines.append(f"{name}: {headers[name]}")
        else:
            return f"the signed header {name} is missing"
    try:
        signature = base64.b64decode(params.get("signature", ""), validate=True)
        key.verify(signature, "\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return OCI_UNAUTHENTICATED
    return None


class MetadataServer:
    """A fake Google metadata server on 127.0.0.1: the default service account's access
    tokens (``token-1``, ``token-2``, ... after ``prefix``), each lasting ``lifetime``.

    Attributes:
        host: ``127.0.0.1:<port>``, where google-auth is to look for it.
        tokens: every token handed out, in order.
    """

    def __init__(self, prefix: str = "ya29.metadata", lifetime: int = 3599) -> None:
        self.prefix = prefix
        self.lifetime = lifetime
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, payload = server._answer(self.path, self.headers.get("Metadata-Flavor"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="metadata-server", daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.host = f"{host}:{port}"

    def _answer(self, target: str, flavor: str | None) -> tuple[int, bytes]:
        if flavor != "Google":
            return 403, b'"Missing Metadata-Flavor:Google header."'
        path = urlsplit(target).path
        found = re.fullmatch(r"/computeMetadata/v1/instance/service-accounts/[^/]+/(token)?", path)
        if found and not found.group(1):
            info = {
                "email": "reranker@test-project.iam.gserviceaccount.com",
                "aliases": ["default"],
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
            return 200, json.dumps(info).encode()
        if found and found.group(1):
            with self._lock:
                token = f"{self.prefix}-token-{len(self.tokens) + 1}"
                self.tokens.append(token)
            answer = {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"}
            return 200, json.dumps(answer).encode()
        return 404, b'"not found"'

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetadataServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
