"""The public surface: what the top-level package exports, what it deprecated, the read-only
dialect registry and registering a dialect, on the sync and async paths."""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from support import SEED_DOCUMENTS, SEED_QUERY, MockAPI, run_mode

import rerank_integrations
from rerank_integrations import (
    DIALECTS,
    ClientSettings,
    Cost,
    RateLimiter,
    RerankClient,
    register_dialect,
)
from rerank_integrations._actions import Flow, Send
from rerank_integrations._auth import Authorizer, AuthSettings, with_headers
from rerank_integrations._retry import backoff_delay, next_wait
from rerank_integrations.dialects import GENERIC, WATSONX, Dialect, _registry


def call(mode: str, client: RerankClient, *args: Any, **kwargs: Any) -> Any:
    return run_mode(
        mode, lambda: client.rerank(*args, **kwargs), lambda: client.arerank(*args, **kwargs)
    )


@pytest.fixture
def registry() -> Iterator[None]:
    """Whatever a test registers is gone after it."""
    before = dict(_registry._REGISTERED)
    yield
    _registry._REGISTERED.clear()
    _registry._REGISTERED.update(before)


def acme(**changes: Any) -> Dialect:
    fields: dict[str, Any] = {
        "name": "acme",
        "default_path": "/api/rank",
        "description": "ACME's rank API in the generic format at /api/rank.",
        "max_documents_per_request": 2,
    }
    return dataclasses.replace(GENERIC, **{**fields, **changes})


# -- deprecated names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "function"), [("next_wait", next_wait), ("backoff_delay", backoff_delay)]
)
def test_retry_helpers_left_the_top_level_but_still_work_with_a_warning(
    name: str, function: Any
) -> None:
    assert name not in rerank_integrations.__all__
    with pytest.warns(DeprecationWarning, match=rf"rerank_integrations\.{name} is deprecated"):
        found = getattr(rerank_integrations, name)
    assert found is function
    with pytest.warns(DeprecationWarning, match=name):
        exec(f"from rerank_integrations import {name}", {})


def test_an_unknown_top_level_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        rerank_integrations.no_such_name  # type: ignore[attr-defined] # noqa: B018


def test_the_public_names_import_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in rerank_integrations.__all__:
            getattr(rerank_integrations, name)


def test_the_old_dialects_module_still_answers_with_a_warning() -> None:
    old = importlib.import_module("rerank_integrations._dialects")
    with pytest.warns(
        DeprecationWarning, match=r"import get_dialect from rerank_integrations\.dialects"
    ):
        assert old.get_dialect is rerank_integrations.dialects.get_dialect
    with pytest.raises(AttributeError):
        old.no_such_name  # noqa: B018


# -- what users hold --------------------------------------------------------------------------


def test_client_settings_is_the_exported_class(make_client: Any) -> None:
    client = make_client(model="m")
    assert isinstance(client.settings, ClientSettings)
    assert client.settings.model == "m"


class CountingLimiter:
    """A limiter written with the public names only: it records every cost, waits none."""

    def __init__(self) -> None:
        self.costs: list[Cost] = []

    def reserve(self, cost: Cost, max_wait: float | None) -> float | None:
        self.costs.append(cost)
        return 0.0


def test_a_rate_limiter_of_ones_own_gets_each_requests_cost(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    limiter = CountingLimiter()
    assert isinstance(limiter, RateLimiter)
    client = make_client(rate_limit=limiter, max_documents_per_request=3)
    call(mode, client, SEED_QUERY, SEED_DOCUMENTS[:5])
    assert len(mock_api.requests) == 2
    # The two batches are sent at once: their costs may reach the limiter in either order.
    assert sorted((cost.requests, cost.documents) for cost in limiter.costs) == [(1, 2), (1, 3)]


# -- the dialect registry ---------------------------------------------------------------------


def test_dialects_is_read_only() -> None:
    with pytest.raises(TypeError):
        DIALECTS["acme"] = acme()  # type: ignore[index]
    with pytest.raises(TypeError):
        del DIALECTS["generic"]  # type: ignore[attr-defined]
    assert "acme" not in DIALECTS
    assert DIALECTS["generic"] is GENERIC


@pytest.mark.usefixtures("registry")
def test_a_registered_dialect_is_used_by_name(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    dialect = acme()
    assert register_dialect(dialect) is dialect
    assert DIALECTS["acme"] is dialect
    client = make_client(base_url="https://acme.test", dialect="ACME")
    response = call(mode, client, SEED_QUERY, SEED_DOCUMENTS[:3])
    assert len(response.results) == 3
    assert [request.url.path for request in mock_api.requests] == ["/api/rank", "/api/rank"]
    assert [len(body["documents"]) for body in mock_api.bodies] == [2, 1]


@pytest.mark.usefixtures("registry")
def test_a_name_taken_is_refused_unless_replaced(make_client: Any) -> None:
    register_dialect(acme())
    with pytest.raises(ValueError, match=r"'acme' is already registered; pass replace=True"):
        register_dialect(acme(max_documents_per_request=5))
    assert DIALECTS["acme"].max_documents_per_request == 2
    register_dialect(acme(max_documents_per_request=5), replace=True)
    assert (
        make_client(base_url="https://acme.test", dialect="acme").settings.max_documents_per_request
        == 5
    )
    with pytest.raises(ValueError, match="'generic' is already registered"):
        register_dialect(dataclasses.replace(WATSONX, name="generic"))
    assert DIALECTS["generic"] is GENERIC


@pytest.mark.parametrize(
    ("entry", "error", "message"),
    [
        ({"name": "Acme"}, ValueError, "name must be lower-case"),
        ({"name": ""}, ValueError, "name must be lower-case"),
        ({"description": " "}, ValueError, "description must be not empty"),
        ({"default_path": "api/rank"}, ValueError, "default_path must be a path starting"),
        ({"default_path": "/v1/{tenant}/rank"}, ValueError, "default_path must be free of"),
        ({"base_url": "acme.test"}, ValueError, "base_url must be an http"),
        (
            {"max_documents_per_request": 0},
            ValueError,
            "max_documents_per_request must be at least 1",
        ),
        (
            {"max_documents_per_request": None},
            TypeError,
            "max_documents_per_request must be a whole",
        ),
        ({"max_request_bytes": 1.5}, TypeError, "max_request_bytes must be a whole number"),
        ({"score_scale": "percent"}, ValueError, "score_scale must be one of"),
        ({"auth": "oauth"}, ValueError, "auth must be one of"),
        ({"image_format": "png"}, ValueError, "image_format must be one of"),
        ({"build_body": "generic"}, TypeError, "build_body must be callable"),
        ({"model_required": "yes"}, TypeError, "model_required must be a flag or callable"),
        ({"cloud_settings": frozenset({"region"})}, ValueError, "cloud_settings must be among"),
        ({"default_path": "/p/{project}"}, ValueError, "cloud_settings must be naming what"),
        ({"auth": "ibm_iam"}, ValueError, "authorizer must be set for auth='ibm_iam'"),
        ({"setup": 3}, TypeError, "setup must be callable or None"),
    ],
)
@pytest.mark.usefixtures("registry")
def test_an_entry_no_client_could_use_is_refused(
    entry: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        register_dialect(acme(**entry))
    assert "acme" not in DIALECTS


def test_only_a_dialect_is_registered() -> None:
    with pytest.raises(TypeError, match="register_dialect takes a Dialect, got dict"):
        register_dialect({"name": "acme"})  # type: ignore[arg-type]


class HeaderAuthorizer(Authorizer):
    """A vendor's own credential flow: a signature header on every request."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def authorize(self, send: Send) -> Flow[Send]:
        yield from ()
        return with_headers(send, {"X-Acme-Signature": f"signed:{self.secret}"})


@pytest.mark.usefixtures("registry")
def test_a_registered_dialect_brings_its_own_credential_flow(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    def authorizer(settings: AuthSettings, user_agent: str) -> Authorizer | None:
        assert settings.api_key is not None
        return HeaderAuthorizer(settings.api_key.get_secret_value())

    register_dialect(acme(auth="ibm_iam", authorizer=authorizer))
    client = make_client(base_url="https://acme.test", dialect="acme", api_key="k-123")
    call(mode, client, SEED_QUERY, SEED_DOCUMENTS[:2])
    (request,) = mock_api.requests
    assert request.headers["X-Acme-Signature"] == "signed:k-123"
    assert "Authorization" not in request.headers  # the key is the flow's, not a header
