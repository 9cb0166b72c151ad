"""``python -m rerank_integrations._settings_table``: the settings table and the
client's ``Args`` entries, from the settings' declaration (:mod:`._settings`).

``--markdown`` prints the table, ``--docstring`` the entries; ``--write FILE`` writes
both in place (the table between its markers, the entries in ``RerankClient``'s module).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from ._client import RerankClient
from ._settings import docstring_args, markdown_table, with_args, with_table


def client_module() -> Path:
    """The source file that defines ``RerankClient``."""
    return Path(inspect.getsourcefile(RerankClient) or "")


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 when done, 2 for arguments it does not take."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--markdown"]:
        sys.stdout.write(markdown_table())
    elif args == ["--docstring"]:
        sys.stdout.write(docstring_args())
    elif len(args) == 2 and args[0] == "--write":
        path = Path(args[1])
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
        client = client_module()
        client.write_text(with_args(client.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stderr.write(
            "usage: python -m rerank_integrations._settings_table "
            "--markdown | --docstring | --write docs/reference/settings.md\n"
        )
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
