"""``eval``: the first stage alone and rerankers side by side, scored with trec_eval's
measures, into a report folder. The evaluation's modules are imported only when it runs (they
need the ``eval`` extra)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any

from .._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._batch import COST_LIMIT_STATUS
from ._common import PROG, CommandError, price_from_args
from ._options import (
    DIALECT,
    INSTRUCTION,
    MAX_RETRIES,
    MODEL,
    PRICES,
    TIMEOUT,
    Option,
    positive_int,
    price_value,
    share,
)

__all__ = ["add_eval", "command_eval", "read_config"]

#: Each reranker's options, declared once: the flags, and the keys of a ``[[reranker]]``
#: table of ``--config`` (the flag's name with underscores, read and checked as the flag
#: is). Those of the first tuple are the ``--reranker`` ones' (a table gives its own); those
#: of the second apply to every reranker, a table's own value first.
_EACH = (
    dataclasses.replace(MODEL, help="the model of the --reranker ones (default: the server's)"),
    dataclasses.replace(DIALECT, help="their wire format (default: generic)"),
    Option("--api-key-env", "the variable holding their key (default: none)", metavar="VAR"),
    dataclasses.replace(
        INSTRUCTION,
        help="what their ranking should favour, sent as the client's instruction; the same "
        "endpoint with another instruction is another contender (default: none)",
    ),
)
_EVERY = (
    dataclasses.replace(TIMEOUT, default=DEFAULT_TIMEOUT),
    dataclasses.replace(MAX_RETRIES, default=DEFAULT_MAX_RETRIES),
    Option("--rate-limit-rpm", "requests a minute, per reranker", positive_int, "N"),
    *PRICES,
)
#: A table's keys besides the options': its name, its endpoint, and client arguments.
_TABLE_KEYS = ("name", "base_url", "settings")

_EPILOG = """\
examples:
  rerank-integrations eval --corpus scifact --split test --run bm25.trec \\
      --reranker tei=http://127.0.0.1:8080 --reranker cohere=https://api.cohere.com \\
      --out report/
  rerank-integrations eval --candidates runs.jsonl --qrels qrels.txt --config rerankers.toml \\
      --out report/

rerankers.toml:
  [[reranker]]
  name = "cohere"
  base_url = "https://api.cohere.com"
  dialect = "cohere"
  model = "rerank-v3.5"
  api_key_env = "COHERE_API_KEY"
  instruction = "prefer maintenance guides"  # and any option below, by its name: timeout,
  price_per_search_unit = 0.002               # max_retries, rate_limit_rpm, price_*, ...
  [reranker.settings]            # any other RerankClient argument
  max_documents_per_request = 100

exit status: 0 report written, 1 a reranker failed (run again to carry on), 2 usage error,
3 stopped at --max-cost (no report; run again to carry on)
"""


def _whole_numbers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers of at least 1")
    return values


#: The sweeps' and the tests' options.
_SWEEPS = (
    Option(
        "--depth",
        "candidate depths swept; rerankers see the deepest (default: 10,20,50,100)",
        _whole_numbers,
        "K,K",
    ),
    Option("--top-n", "top_n swept (default: 1,3,5,10,20)", _whole_numbers, "N,N"),
    Option(
        "--target-precision",
        "suggest the score_threshold reaching this precision (default: %(default)g)",
        share,
        "P",
        default=0.8,
    ),
    Option(
        "--target-recall",
        "and the one keeping this share of relevant candidates (default: %(default)g)",
        share,
        "R",
        default=0.9,
    ),
    Option(
        "--alpha",
        "significance level after Holm-Bonferroni (default: %(default)g)",
        share,
        "A",
        default=0.05,
    ),
)


#: Where the scores and the report go.
_OUTPUT = (
    Option(
        "--cache", "the scores' SQLite file (default: REPORT_DIR/scores.sqlite)", metavar="PATH"
    ),
    Option("--no-plots", "write no plots", action="store_true"),
    Option(
        "--progress",
        "the batch job's progress on stderr (default: on)",
        default=True,
        action=argparse.BooleanOptionalAction,
    ),
)


def add_eval(
    commands: argparse._SubParsersAction[Any], formatter: type[argparse.HelpFormatter]
) -> None:
    """Add the ``eval`` subcommand to ``commands``."""
    parser = commands.add_parser(
        "eval",
        help="measure rerankers against the first stage on judged queries (nDCG, MRR, ...)",
        description="\n\n".join(
            textwrap.fill(paragraph, 88)
            for paragraph in (
                "Score the first stage alone and each reranker over the same candidates with "
                "trec_eval's measures (ir-measures), test the differences (paired t-test, "
                "Holm-Bonferroni), sweep candidate depth, top_n and score_threshold, and write "
                "a report folder: metrics.json, runs/<contender>.trec, per_query.jsonl, "
                "significance.json, sweeps.json, usage.json, report.md and plots.",
                "Input: a BEIR folder (--corpus, --split) and a first-stage run in TREC format "
                "(--run), or a candidates file as the batch job reads it (--candidates) with "
                "qrels (--qrels). Each reranker scores each query's candidates once, through "
                "the batch job (rate-limited, resumable); the scores are kept on disk, so "
                "running it again, or sweeping, sends no request. Needs the eval extra: pip "
                'install "rerank-integrations[eval]".',
            )
        ),
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    given = parser.add_argument_group("input")
    given.add_argument("--corpus", metavar="BEIR_DIR", help="corpus.jsonl, queries.jsonl, qrels/")
    given.add_argument(
        "--split", default="test", metavar="NAME", help="the qrels split (default: %(default)s)"
    )
    given.add_argument("--run", metavar="FILE.trec", help="the first stage: a TREC run")
    given.add_argument(
        "--candidates", metavar="FILE.jsonl", help="the first stage: rows as the batch job reads"
    )
    given.add_argument("--qrels", metavar="FILE", help="with --candidates: TREC or JSON Lines")
    given.add_argument("--out", required=True, metavar="REPORT_DIR", help="the report folder")
    contenders = parser.add_argument_group("rerankers")
    contenders.add_argument(
        "--reranker",
        action="append",
        default=[],
        metavar="NAME=BASE_URL",
        help="a reranker to measure (repeat for more)",
    )
    contenders.add_argument(
        "--config", metavar="FILE.toml", help="more rerankers, with settings: [[reranker]] tables"
    )
    each = parser.add_argument_group(
        "each --reranker's settings (a [[reranker]] table of --config has its own)"
    )
    for option in _EACH:
        option.add(each)
    every = parser.add_argument_group(
        "every reranker's settings (a [[reranker]] table may give its own)"
    )
    for option in _EVERY:
        option.add(every)
    contenders.add_argument(
        "--max-cost",
        type=price_value,
        metavar="AMOUNT",
        help="the most this run may spend, all rerankers together, at their --price-* prices: it "
        "stops before a query whose estimated cost would pass it, writes no report (exit "
        "status 3), and a rerun carries on",
    )
    Option(
        "--concurrency",
        "queries scored at once (default: %(default)s)",
        positive_int,
        "N",
        default=16,
    ).add(contenders)
    measured = parser.add_argument_group("measures and sweeps")
    measured.add_argument(
        "--measure",
        action="append",
        metavar="NAME",
        help="an ir-measures name, repeatable: nDCG@10, RR@10, R@100, P@5, AP (default: a set)",
    )
    for option in _SWEEPS:
        option.add(measured)
    kept = parser.add_argument_group("output")
    for option in _OUTPUT:
        option.add(kept)
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="show retries (-v), requests (-vv)"
    )
    parser.set_defaults(handler=command_eval)


def read_config(path: str | Path) -> list[dict[str, Any]]:
    """The ``[[reranker]]`` tables of a TOML file, each option's value checked as its flag's.

    Raises:
        ValueError: the file is no TOML, or a table has unknown keys, bad values or no name.
    """
    module = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    try:
        tomllib = importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - Python 3.10 without the extra
        raise ImportError(
            'reading --config needs tomli on Python 3.10: pip install "rerank-integrations[eval]"'
        ) from exc
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not TOML ({exc})") from None
    tables = data.get("reranker", [])
    unknown = set(data) - {"reranker"}
    if unknown or not isinstance(tables, list):
        raise ValueError(f"{path}: expected [[reranker]] tables only, got {sorted(data)}")
    options = {option.key: option for option in (*_EACH, *_EVERY)}
    found = []
    for number, table in enumerate(tables, start=1):
        extra = set(table) - set(_TABLE_KEYS) - set(options)
        if extra:
            raise ValueError(
                f"{path}: reranker {number} has unknown keys {sorted(extra)} (put client "
                "arguments under [reranker.settings])"
            )
        if not isinstance(table.get("name"), str):
            raise ValueError(f"{path}: reranker {number} has no name")
        where = f"{path}: reranker {table['name']!r}"
        found.append(
            {
                key: options[key].read(value, where) if key in options else value
                for key, value in table.items()
            }
        )
    return found


def _reranker(name: str, base_url: str | None, values: dict[str, Any], more: Any) -> Any:
    """A contender from its options' values and any other client arguments (``more``)."""
    from .._ratelimit import RateLimit
    from ..eval import Reranker

    settings: dict[str, Any] = {"timeout": values["timeout"], "max_retries": values["max_retries"]}
    if values.get("rate_limit_rpm"):
        settings["rate_limit"] = RateLimit(requests_per_minute=values["rate_limit_rpm"])
    price = price_from_args(argparse.Namespace(**values))
    if price is not None:
        settings["price"] = price
    settings.update(more or {})
    return Reranker(
        name,
        base_url=base_url,
        model=values.get("model"),
        dialect=values.get("dialect"),
        api_key_env=values.get("api_key_env"),
        settings=settings,
        instruction=values.get("instruction"),
    )


def _rerankers(args: argparse.Namespace) -> list[Any]:
    given = {option.key: getattr(args, option.key) for option in (*_EACH, *_EVERY)}
    shared = {option.key: given[option.key] for option in _EVERY}
    found = []
    for option in args.reranker:
        name, equals, base_url = option.partition("=")
        if not equals or not name.strip() or not base_url.strip():
            raise CommandError(f"--reranker {option!r}: expected NAME=BASE_URL", 2)
        found.append(_reranker(name.strip(), base_url.strip(), given, None))
    if args.config:
        for table in read_config(args.config):
            values = {**shared, **{k: v for k, v in table.items() if k not in _TABLE_KEYS}}
            found.append(
                _reranker(table["name"], table.get("base_url"), values, table.get("settings"))
            )
    if not found:
        raise CommandError("give a reranker: --reranker NAME=BASE_URL or --config FILE.toml", 2)
    if args.max_cost is not None:
        unpriced = [r.name for r in found if r.settings.get("price") is None]
        if unpriced:
            raise CommandError(
                f"--max-cost needs a price, and {', '.join(unpriced)} has none: give "
                "--price-per-search-unit, --price-per-million-tokens or --price-per-request "
                "(or price_per_* in its [[reranker]] table)",
                2,
            )
    return found


def _inputs(args: argparse.Namespace) -> tuple[Any, Any]:
    from ..eval import load_beir, load_candidates, read_trec_run

    if args.candidates:
        if args.corpus or args.run:
            raise CommandError("give --candidates with --qrels, or --corpus with --run", 2)
        if not args.qrels:
            raise CommandError("--candidates needs --qrels", 2)
        return load_candidates(args.candidates, args.qrels)
    if not args.corpus or not args.run:
        raise CommandError("give --corpus BEIR_DIR and --run FILE.trec (or --candidates)", 2)
    if args.qrels:
        raise CommandError("--qrels goes with --candidates (a BEIR folder has its own)", 2)
    return load_beir(args.corpus, args.split), read_trec_run(args.run)


def command_eval(args: argparse.Namespace) -> int:
    """Run ``eval``: 0 when the report is written, 1 when a reranker could not finish, 3
    when the run stopped at ``--max-cost``."""
    from ..eval import DEFAULT_DEPTHS, DEFAULT_MEASURES, DEFAULT_TOP_NS, EvalRunError, evaluate

    rerankers = _rerankers(args)
    try:
        dataset, first_stage = _inputs(args)
    except FileNotFoundError as exc:
        raise CommandError(f"no such file: {exc.filename}", 2) from None
    try:
        report = evaluate(
            dataset,
            first_stage,
            rerankers,
            args.out,
            measures=args.measure or DEFAULT_MEASURES,
            depths=args.depth or DEFAULT_DEPTHS,
            top_ns=args.top_n or DEFAULT_TOP_NS,
            concurrency=args.concurrency,
            cache=args.cache or "auto",
            target_precision=args.target_precision,
            target_recall=args.target_recall,
            alpha=args.alpha,
            plots=not args.no_plots,
            progress=args.progress,
            progress_stream=sys.stderr,
            max_cost=args.max_cost,
        )
    except EvalRunError as exc:
        if exc.cost_limited:
            raise CommandError(
                str(exc).replace("stopped at max_cost", "stopped at --max-cost", 1),
                COST_LIMIT_STATUS,
            ) from None
        raise CommandError(str(exc), 1) from None
    print(report.table())
    print(
        f"{PROG} eval: {report.requests_sent:,} requests sent; report in "
        f"{Path(args.out) / 'report.md'}",
        file=sys.stderr,
    )
    return 0
