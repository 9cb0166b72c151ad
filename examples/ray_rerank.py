"""Rerank a generated dataset with Ray Data and write the rankings as Parquet.

On this machine (a local Ray runtime, the local BM25 server answering after 20 ms)::

    python examples/ray_rerank.py                      # 20,000 rows into reranked.parquet/

On a cluster, the same code: Ray connects to ``RAY_ADDRESS`` and the workers call the
endpoint in ``RERANK_BASE_URL`` (the local server listens on 127.0.0.1, which only this
machine's workers reach)::

    RAY_ADDRESS=ray://head:10001 RERANK_BASE_URL=https://api.example.com/v1 \\
        RERANK_API_KEY=sk-... RERANK_MODEL=... \\
        python examples/ray_rerank.py --workers 16 --rate-limit-rpm 6000 --out s3://bucket/out

Needs ``pip install "rerank-integrations[ray,server]"`` (and the package on every node).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import time
from typing import Any

import ray
from pydantic import SecretStr

from rerank_integrations import RateLimit
from rerank_integrations.ray import Reranker

VOCABULARY = (
    "espresso descale machine water filter grinder milk steam boiler pump valve scale coffee "
    "bean roast brew kettle tea leaf cup heat clean vinegar citric acid manual warranty"
)
WORDS = VOCABULARY.split()


def make_rows(batch: dict[str, Any], documents: int = 20) -> dict[str, Any]:
    """Rows of a made-up retrieval run: a query and its candidates for each id (the same for
    the same id, wherever it is made)."""
    ids = [int(number) for number in batch["id"]]
    queries, candidates = [], []
    for number in ids:
        rng = random.Random(number)
        queries.append(" ".join(rng.sample(WORDS, 3)))
        candidates.append(
            [" ".join(rng.choices(WORDS, k=rng.randint(6, 24))) for _ in range(documents)]
        )
    return {"id": ids, "query": queries, "documents": candidates}


def rerank_dataset(
    rows: int,
    out: str,
    base_url: str | None,
    *,
    workers: int = 2,
    batch_size: int = 256,
    top_n: int = 5,
    rate_limit_rpm: int | None = None,
) -> ray.data.Dataset:
    """Make ``rows`` rows on the workers, rerank them on ``workers`` actors (one client
    each) and write them to ``out`` as Parquet; return the written dataset."""
    key = os.environ.get("RERANK_API_KEY")
    settings: dict[str, Any] = {
        "base_url": base_url,  # None: RERANK_BASE_URL on the workers
        "api_key": SecretStr(key) if key else None,  # hidden on its way to the workers
        "top_n": top_n,
        "concurrency": 16,  # rows of a batch in flight, per worker
    }
    if rate_limit_rpm:
        settings["rate_limit"] = RateLimit(requests_per_minute=rate_limit_rpm)  # cluster-wide
    ranked = (
        ray.data.range(rows)
        .map_batches(make_rows)
        .map_batches(
            Reranker,
            fn_constructor_kwargs=settings,
            compute=ray.data.ActorPoolStrategy(size=workers),  # one client per actor
            batch_size=batch_size,
            num_cpus=0.5,  # mostly waiting on the network: leave CPUs to reading and writing
        )
    )
    ranked.write_parquet(out)
    return ray.data.read_parquet(out)


def quiet_ray() -> None:
    """No progress bars or start-up banners: the example prints its own lines."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows to make and rerank")
    parser.add_argument("--workers", type=int, default=2, help="actors, one client each")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per batch")
    parser.add_argument("--top-n", type=int, default=5, help="results kept per row")
    parser.add_argument("--rate-limit-rpm", type=int, help="requests a minute, whole cluster")
    parser.add_argument("--out", default="reranked.parquet", help="where the Parquet goes")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        base_url = os.environ.get("RERANK_BASE_URL")
        if base_url is None:
            from rerank_integrations.server import serve_in_thread

            base_url = stack.enter_context(serve_in_thread(latency_ms=20)).base_url
        ray.init(logging_level=logging.ERROR, include_dashboard=False)  # RAY_ADDRESS, if set
        stack.callback(ray.shutdown)
        quiet_ray()

        started = time.perf_counter()
        written = rerank_dataset(
            args.rows,
            args.out,
            base_url,
            workers=args.workers,
            batch_size=args.batch_size,
            top_n=args.top_n,
            rate_limit_rpm=args.rate_limit_rpm,
        )
        seconds = time.perf_counter() - started
        count = written.count()
        pairs = count * 20
        print(
            f"{count:,} rows ({pairs:,} pairs) in {seconds:.1f} s: {pairs / seconds:,.0f} pairs/s"
        )
        print(written.schema())
        first = written.take(1)[0]
        print(first["id"], first["query"], "->", first["results"][0])


if __name__ == "__main__":
    main()
