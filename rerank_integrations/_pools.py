"""A client's connection pools and worker threads, opened when first needed.

One ``httpx.Client`` for sync calls, one ``httpx.AsyncClient`` per event loop (closed when
``asyncio.run`` ends that loop) and one thread pool for a sync call's batches; pools the
caller passed in are used instead, and never closed here.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from ._config import ClientSettings

__all__ = ["Pools", "shared_ssl_context"]


class Pools:
    """The pools of one client (its copies have their own, sharing the caller's)."""

    def __init__(
        self,
        settings: ClientSettings,
        http_client: httpx.Client | None,
        async_http_client: httpx.AsyncClient | None,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError(
                f"http_client must be an httpx.Client, got {type(http_client).__name__}"
            )
        if async_http_client is not None and not isinstance(async_http_client, httpx.AsyncClient):
            raise TypeError(
                "async_http_client must be an httpx.AsyncClient, "
                f"got {type(async_http_client).__name__}"
            )
        self._settings = settings
        self.user_http_client = http_client
        self.user_async_http_client = async_http_client
        self._http_client: httpx.Client | None = None
        self.loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = (
            weakref.WeakKeyDictionary()
        )
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the pools and threads opened here; async pools of loops still running are
        left to :meth:`aclose` on that loop."""
        with self._lock:
            http_client, self._http_client = self._http_client, None
            executor, self._executor = self._executor, None
            self.loops.clear()
        if http_client is not None:
            http_client.close()
        if executor is not None:
            executor.shutdown(wait=True)

    async def aclose(self) -> None:
        """Close this loop's async pool, and everything :meth:`close` closes."""
        pool = self.loops.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()
        self.close()

    def http_client(self) -> httpx.Client:
        """The sync pool."""
        if self.user_http_client is not None:
            return self.user_http_client
        client = self._http_client
        if client is None:
            from ._deadline_pool import DeadlineTransport  # httpcore, when first needed

            with self._lock:
                if self._http_client is None:
                    self._http_client = httpx.Client(
                        transport=DeadlineTransport(),
                        timeout=self._settings.timeout,
                        follow_redirects=False,
                    )
                    # A client dropped without close() still releases its connections.
                    weakref.finalize(self, self._http_client.close)
                client = self._http_client
        return client

    async def async_http_client(self) -> httpx.AsyncClient:
        """The running loop's async pool."""
        if self.user_async_http_client is not None:
            return self.user_async_http_client
        # Connection pools belong to the event loop that opened them, so each loop gets its
        # own, closed when the loop shuts down.
        loop = asyncio.get_running_loop()
        pool = self.loops.get(loop)
        if pool is None and _ssl_key() not in _SSL_CONTEXTS:
            # Loading the CA bundle takes tens of milliseconds: not on the loop.
            await asyncio.to_thread(shared_ssl_context)
            pool = self.loops.get(loop)  # another task may have opened it meanwhile
        if pool is None:
            client = _async_pool(self._settings)
            pool = _LoopPool(client, lambda: self.loops.pop(loop, None))
            with self._lock:
                self.loops[loop] = pool
            await pool.watch()
        return pool.client

    def executor(self) -> ThreadPoolExecutor:
        """The threads a sync call's batches run in."""
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self._settings.max_concurrency,
                        thread_name_prefix="rerank-batch",
                    )
                    weakref.finalize(self, self._executor.shutdown, wait=False)
                executor = self._executor
        return executor


class _LoopPool:
    """One event loop's connection pool, closed when ``asyncio.run`` shuts that loop down.

    The loop closes unfinished async generators before it closes itself
    (``shutdown_asyncgens``); a generator that holds the pool is how the pool hears of it.
    """

    def __init__(self, client: httpx.AsyncClient, forget: Callable[[], object]) -> None:
        self.client = client
        self._forget = forget
        self._keeper = self._keep()

    async def watch(self) -> None:
        await self._keeper.__anext__()  # registered with the running loop from here on

    async def aclose(self) -> None:
        await self._keeper.aclose()

    async def _keep(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            self._forget()  # the owner lets go, so the closed loop can be freed
            await self.client.aclose()


def _async_pool(settings: ClientSettings) -> httpx.AsyncClient:
    """A new async connection pool on the transport the settings name."""
    if settings.async_transport == "aiohttp":
        from httpx_aiohttp import HttpxAiohttpClient

        return HttpxAiohttpClient(timeout=settings.timeout, follow_redirects=False)
    return httpx.AsyncClient(
        timeout=settings.timeout, follow_redirects=False, verify=shared_ssl_context()
    )


#: The TLS contexts of the async pools opened here, by :func:`_ssl_key`.
_SSL_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_SSL_LOCK = threading.Lock()


def _ssl_key() -> tuple[str | None, str | None]:
    """The variables httpx reads for its CA certificates (``trust_env``)."""
    return os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")


def shared_ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context, made once a process (again if ``SSL_CERT_FILE`` or
    ``SSL_CERT_DIR`` change): loading the CA bundle takes some 20 ms of CPU, which every new
    client's first async call held its event loop for."""
    key = _ssl_key()
    context = _SSL_CONTEXTS.get(key)
    if context is None:
        with _SSL_LOCK:
            context = _SSL_CONTEXTS.get(key)
            if context is None:
                context = _SSL_CONTEXTS[key] = httpx.create_ssl_context(verify=True, trust_env=True)
    return context
