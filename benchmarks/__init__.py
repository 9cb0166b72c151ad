"""Performance benchmark of ``rerank_integrations`` against a bare ``httpx`` floor and peers.

Run it with ``python -m benchmarks.run``; see ``BENCHMARKS.md`` for the latest results and
how to read them.
"""
