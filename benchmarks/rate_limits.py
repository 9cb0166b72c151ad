"""Rate limits and adaptive concurrency against a server that allows 20 requests a second.

``python -m benchmarks.rate_limits`` starts the local server (``rate_limit_rpm=1200``, 50 ms
an answer) and sends 200 concurrent calls three ways: a plain client, one with
``adaptive_concurrency=True`` and one with ``rate_limit`` just under the server's. It prints
failed calls, requests sent, 429s and wall time for each: the table in the README's
"Production" section.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from rerank_integrations import RateLimit, RerankClient
from rerank_integrations.server import serve_in_thread

CALLS = 200
SERVER_RPM = 1200
LATENCY_MS = 50


def burst(client: RerankClient) -> dict[str, Any]:
    """``CALLS`` concurrent calls; what they cost."""

    async def calls() -> list[Any]:
        pending = [client.arerank("apple", ["pear", "apple"]) for _ in range(CALLS)]
        return await asyncio.gather(*pending, return_exceptions=True)

    started = time.perf_counter()
    outcomes = asyncio.run(calls())
    wall = time.perf_counter() - started
    stats = client.stats()
    client.close()
    return {
        "failed": sum(isinstance(outcome, Exception) for outcome in outcomes),
        "requests": stats.requests,
        "rate_limited": stats.rate_limited,
        "wall": wall,
    }


def main() -> None:
    logging.getLogger("rerank_integrations").setLevel(logging.ERROR)  # one line per retry
    with serve_in_thread(rate_limit_rpm=SERVER_RPM, latency_ms=LATENCY_MS) as server:
        clients = {
            "plain": lambda: RerankClient(server.base_url, max_retries=20),
            "adaptive_concurrency=True": lambda: RerankClient(
                server.base_url, max_retries=20, adaptive_concurrency=True
            ),
            f"rate_limit=RateLimit(requests_per_minute={SERVER_RPM * 95 // 100})": lambda: (
                RerankClient(
                    server.base_url,
                    max_retries=20,
                    rate_limit=RateLimit(requests_per_minute=SERVER_RPM * 95 // 100),
                )
            ),
        }
        print(f"{CALLS} concurrent calls; the server allows {SERVER_RPM // 60} a second")
        print("| client | failed calls | requests | 429s | wall time |")
        print("|---|---|---|---|---|")
        for name, build in clients.items():
            found = burst(build())
            print(
                f"| `{name}` | {found['failed']} of {CALLS} | {found['requests']:,} | "
                f"{found['rate_limited']:,} | {found['wall']:.1f} s |"
            )
            time.sleep(5)  # the server's budget refills between runs


if __name__ == "__main__":
    main()
