"""Settings both adapters share, checked on each of them."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from rerank_integrations import ConfigurationError, RerankClient
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

ADAPTERS = [RerankCompressor, RerankPostprocessor]
KEY = "sk-adapter-SECRET-42"


@pytest.fixture(params=ADAPTERS, ids=lambda cls: cls.__name__)
def adapter(request: pytest.FixtureRequest) -> Any:
    return request.param


def test_client_and_connection_settings_do_not_mix(adapter: Any) -> None:
    client = RerankClient("https://h")
    with pytest.raises(ConfigurationError, match="base_url"):
        adapter(client=client, base_url="https://other")
    adapter(client=client, top_n=2, model="m")  # call settings are fine


def test_changed_settings_rebuild_the_client(adapter: Any) -> None:
    instance = adapter(base_url="https://first")
    assert instance.rerank_client.endpoint == "https://first/v1/rerank"
    instance.base_url = "https://second/v2"
    assert instance.rerank_client.endpoint == "https://second/v2/rerank"
    assert instance.rerank_client is instance.rerank_client


def test_missing_base_url_is_a_configuration_error_without_the_key(
    adapter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RERANK_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError) as info:
        adapter(api_key=KEY, headers={"X-Api-Key": KEY})
    assert KEY not in str(info.value)


def test_bad_field_errors_do_not_echo_the_key(adapter: Any) -> None:
    with pytest.raises(ValueError, match="top_k") as info:
        adapter(base_url="https://h", api_key=KEY, top_k=3)
    assert "top_k" in str(info.value)
    assert KEY not in str(info.value)


def test_pickled_adapter_keeps_working_settings(adapter: Any) -> None:
    instance = adapter(base_url="https://h/v1", top_n=4)
    copy = pickle.loads(pickle.dumps(instance))
    assert copy.top_n == 4
    assert copy.rerank_client.endpoint == "https://h/v1/rerank"
    assert copy.rerank_client.dialect == "generic"


def test_score_transform_and_deadline_reach_the_client(adapter: Any) -> None:
    instance = adapter(base_url="https://h", score_transform="sigmoid", deadline=2.5)
    assert instance.rerank_client.settings.score_transform == "sigmoid"
    assert instance.rerank_client.settings.deadline == 2.5
    with pytest.raises(ValueError, match="score_transform"):
        adapter(base_url="https://h", score_transform="softmax")
