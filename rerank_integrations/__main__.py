"""``python -m rerank_integrations``: the ``rerank-integrations`` command."""

from rerank_integrations.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
