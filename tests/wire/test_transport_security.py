"""Transport guarantees: TLS stays verified, keys stay on their host, http:// is flagged."""

from __future__ import annotations

import asyncio
import ssl
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import Reply, ScriptedServer, run_mode

from rerank_integrations import APIStatusError, RerankClient
from rerank_integrations import _pools as pools_module

KEY = "sk-transport-SECRET"


@pytest.fixture
def other_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


def test_own_pools_verify_tls() -> None:
    client = RerankClient("https://h", api_key=KEY)
    sync_pool = client._get_http_client()._transport._pool  # type: ignore[attr-defined]
    assert sync_pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert sync_pool._ssl_context.check_hostname is True

    async def async_context() -> ssl.SSLContext:
        pool = (await client._get_async_http_client())._transport._pool  # type: ignore[attr-defined]
        context: ssl.SSLContext = pool._ssl_context
        await client.aclose()
        return context

    context = asyncio.run(async_context())
    assert context.verify_mode == ssl.CERT_REQUIRED
    client.close()


def test_new_clients_share_one_tls_context_made_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Loading the CA bundle takes some 20 ms of CPU: it is done once a process, in a worker
    thread for an async pool, and every pool opened here (sync and async, of any client)
    verifies with that one context; new CA variables make a new one."""
    monkeypatch.setattr(pools_module, "_SSL_CONTEXTS", {})
    made_in: list[str] = []
    real = httpx.create_ssl_context

    def recording(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made_in.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", recording)
    first, second = RerankClient("https://h", api_key=KEY), RerankClient("https://h", api_key=KEY)

    async def async_contexts() -> list[ssl.SSLContext]:
        contexts = []
        for client in (first, second):
            pool = (await client._get_async_http_client())._transport._pool  # type: ignore[attr-defined]
            contexts.append(pool._ssl_context)
            await client.aclose()
        return contexts

    contexts = asyncio.run(async_contexts())
    assert len(made_in) == 1 and made_in[0] != threading.main_thread().name
    for client in (first, second):
        contexts.append(client._get_http_client()._transport._pool._ssl_context)  # type: ignore[attr-defined]
        client.close()
    assert all(context is contexts[0] for context in contexts)
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname
    monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent-ca-dir")
    third = RerankClient("https://h", api_key=KEY)
    assert third._get_http_client()._transport._pool._ssl_context is not contexts[0]  # type: ignore[attr-defined]
    third.close()
    assert len(made_in) == 2


def redirect_to(url: str) -> Reply:
    return Reply(307, headers={"Location": url})


def test_own_pools_do_not_follow_redirects(
    mode: str, scripted_server: ScriptedServer, other_server: ScriptedServer
) -> None:
    scripted_server.queue(redirect_to(f"{other_server.base_url}/v1/rerank"))
    client = RerankClient(scripted_server.base_url, api_key=KEY)
    with pytest.raises(APIStatusError) as info:
        run_mode(mode, lambda: client.rerank("q", ["a"]), lambda: client.arerank("q", ["a"]))
    assert info.value.status_code == 307
    assert other_server.bodies == []
    client.close()


def test_a_followed_redirect_to_another_host_drops_the_key(
    mode: str, scripted_server: ScriptedServer, other_server: ScriptedServer
) -> None:
    # The two servers differ by port: another origin, as far as credentials go.
    scripted_server.queue(redirect_to(f"{other_server.base_url}/v1/rerank"))

    async def run_async() -> list[int]:
        async with httpx.AsyncClient(follow_redirects=True) as http:
            client = RerankClient(scripted_server.base_url, api_key=KEY, async_http_client=http)
            response = await client.arerank("apple", ["pear", "apple"])
        return [r.index for r in response.results]

    if mode == "sync":
        with httpx.Client(follow_redirects=True) as http:
            client = RerankClient(scripted_server.base_url, api_key=KEY, http_client=http)
            order = [r.index for r in client.rerank("apple", ["pear", "apple"]).results]
    else:
        order = asyncio.run(run_async())
    assert order == [1, 0]
    assert scripted_server.headers[0]["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in other_server.headers[0]


@pytest.mark.parametrize(
    ("base_url", "key", "warned"),
    [
        ("http://rerank.example.com", KEY, True),
        ("http://10.1.2.3:8080/v1", KEY, True),
        ("http://rerank.example.com", None, False),
        ("https://rerank.example.com", KEY, False),
        ("http://127.0.0.1:8080", KEY, False),
        ("http://localhost:8080", KEY, False),
        ("http://[::1]:8080", KEY, False),
    ],
)
def test_warning_when_a_key_would_travel_in_clear(
    base_url: str, key: str | None, warned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RerankClient(base_url, api_key=key)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert bool(messages) is warned
    for message in messages:
        assert "http://" in message and KEY not in message
