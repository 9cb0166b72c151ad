"""``python -m rerank_integrations._settings_table``: the README's settings table and the
client's ``Args`` entries, from the settings' declaration (:mod:`._settings`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ._settings import docstring_args, markdown_table, with_table


def main(argv: list[str] | None = None) -> int:
    """``--markdown``: print the table; ``--write README.md``: update it in place;
    ``--docstring``: print the client's ``Args`` entries."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--markdown"]:
        sys.stdout.write(markdown_table())
    elif args == ["--docstring"]:
        sys.stdout.write(docstring_args())
    elif len(args) == 2 and args[0] == "--write":
        path = Path(args[1])
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stderr.write(
            "usage: python -m rerank_integrations._settings_table "
            "--markdown | --docstring | --write README.md\n"
        )
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
