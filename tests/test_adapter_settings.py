"""Settings both adapters share, checked on each of them."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

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


# -- the key as a string --------------------------------------------------------------------


def test_a_string_key_is_kept_as_a_secret(adapter: Any) -> None:
    instance = adapter(base_url="https://h", api_key=KEY)
    assert isinstance(instance.api_key, SecretStr)
    assert instance.api_key.get_secret_value() == KEY
    instance.api_key = "sk-another"
    assert isinstance(instance.api_key, SecretStr)
    assert instance.rerank_client.settings.api_key == SecretStr("sk-another")
    assert "sk-another" not in repr(instance)


# -- near misses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("topn", "top_n"),
        ("top_k", "top_n"),
        ("api_base", "base_url"),
        ("url", "base_url"),
        ("model_name", "model"),
        ("score_treshold", "score_threshold"),
    ],
)
def test_a_near_miss_names_the_setting_meant(adapter: Any, given: str, meant: str) -> None:
    with pytest.raises(ValidationError, match=f"did you mean {meant}=") as info:
        adapter(base_url="https://h", api_key=KEY, **{given: "x"})
    assert f"'{given}'" in str(info.value)
    assert KEY not in str(info.value)
    with pytest.raises(ValidationError, match=f"did you mean {meant}="):
        adapter.model_validate({"base_url": "https://h", given: "x"})


def test_a_near_miss_set_later_names_the_setting_meant(adapter: Any) -> None:
    instance = adapter(base_url="https://h")
    with pytest.raises(ValidationError, match="'topn': did you mean top_n=") as info:
        instance.topn = KEY
    assert KEY not in str(info.value)
    with pytest.raises(ValidationError, match="zzz_option"):
        instance.zzz_option = 3
    instance.top_n = 4
    assert instance.top_n == 4


def test_an_unknown_setting_like_no_other_is_still_refused(adapter: Any) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted") as info:
        adapter(base_url="https://h", zzz_option=1)
    assert "zzz_option" in str(info.value)
    assert "did you mean" not in str(info.value)


# -- no lax numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("top_n", True),
        ("top_n", "3"),
        ("top_n", 3.0),
        ("max_retries", False),
        ("max_concurrency", "4"),
        ("max_tokens_per_document", True),
        ("chunk_overlap", "8"),
        ("timeout", "5"),
        ("timeout", True),
        ("deadline", "2.5"),
        ("score_threshold", "0.5"),
        ("score_threshold", True),
        ("adaptive_concurrency", "yes"),
        ("adaptive_concurrency", 1),
        ("trace_content", "false"),
    ],
)
def test_booleans_and_strings_are_not_taken_as_numbers(
    adapter: Any, name: str, value: object
) -> None:
    with pytest.raises(ValidationError, match=name):
        adapter(base_url="https://h", **{name: value})
    instance = adapter(base_url="https://h")
    before = getattr(instance, name)
    with pytest.raises(ValidationError, match=name):
        setattr(instance, name, value)
    assert getattr(instance, name) == before


def test_whole_numbers_are_still_taken_for_seconds_and_scores(adapter: Any) -> None:
    instance = adapter(base_url="https://h", timeout=5, deadline=2, score_threshold=0, top_n=4)
    assert (instance.timeout, instance.deadline, instance.score_threshold) == (5.0, 2.0, 0.0)
    assert instance.rerank_client.settings.deadline == 2.0
    instance.top_n = None
    assert instance.top_n is None
