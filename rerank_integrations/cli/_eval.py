"""``eval``: the first stage alone and rerankers side by side, scored with trec_eval's
measures, into a report folder. The evaluation's modules are imported only when it runs (they
need the ``eval`` extra)."""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any

from .._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._common import PROG, CommandError

__all__ = ["add_eval", "command_eval", "read_config"]

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
  [reranker.settings]            # any RerankClient argument
  max_documents_per_request = 100

exit status: 0 report written, 1 a reranker failed (run again to carry on), 2 usage error
"""


def _whole_numbers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers of at least 1")
    return values


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _positive(text: str) -> int:
    values = _whole_numbers(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not one whole number")
    return values[0]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


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
    contenders.add_argument("--model", metavar="M", help="the model of the --reranker ones")
    contenders.add_argument("--dialect", metavar="D", help="their wire format (default: generic)")
    contenders.add_argument(
        "--api-key-env", metavar="VAR", help="the variable holding their key (default: none)"
    )
    contenders.add_argument(
        "--config", metavar="FILE.toml", help="more rerankers, with settings: [[reranker]] tables"
    )
    contenders.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="seconds per request (default: %(default)g)",
    )
    contenders.add_argument(
        "--max-retries",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        metavar="N",
        help="retries after a failed request (default: %(default)s)",
    )
    contenders.add_argument(
        "--rate-limit-rpm", type=_positive, metavar="N", help="requests a minute, per reranker"
    )
    contenders.add_argument(
        "--concurrency",
        type=_positive,
        default=16,
        metavar="N",
        help="queries scored at once (default: %(default)s)",
    )
    measured = parser.add_argument_group("measures and sweeps")
    measured.add_argument(
        "--measure",
        action="append",
        metavar="NAME",
        help="an ir-measures name, repeatable: nDCG@10, RR@10, R@100, P@5, AP (default: a set)",
    )
    measured.add_argument(
        "--depth",
        type=_whole_numbers,
        metavar="K,K",
        help="candidate depths swept; rerankers see the deepest (default: 10,20,50,100)",
    )
    measured.add_argument(
        "--top-n", type=_whole_numbers, metavar="N,N", help="top_n swept (default: 1,3,5,10,20)"
    )
    measured.add_argument(
        "--target-precision",
        type=_share,
        default=0.8,
        metavar="P",
        help="suggest the score_threshold reaching this precision (default: %(default)g)",
    )
    measured.add_argument(
        "--target-recall",
        type=_share,
        default=0.9,
        metavar="R",
        help="and the one keeping this share of relevant candidates (default: %(default)g)",
    )
    measured.add_argument(
        "--alpha",
        type=_share,
        default=0.05,
        metavar="A",
        help="significance level after Holm-Bonferroni (default: %(default)g)",
    )
    kept = parser.add_argument_group("output")
    kept.add_argument(
        "--cache",
        metavar="PATH",
        help="the scores' SQLite file (default: REPORT_DIR/scores.sqlite)",
    )
    kept.add_argument("--no-plots", action="store_true", help="write no plots")
    kept.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the batch job's progress on stderr (default: on)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="show retries (-v), requests (-vv)"
    )
    parser.set_defaults(handler=command_eval)


def read_config(path: str | Path) -> list[dict[str, Any]]:
    """The ``[[reranker]]`` tables of a TOML file.

    Raises:
        ValueError: the file is no TOML, or a table has unknown keys or no name.
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
    allowed = {"name", "base_url", "model", "dialect", "api_key_env", "settings"}
    for number, table in enumerate(tables, start=1):
        extra = set(table) - allowed
        if extra:
            raise ValueError(
                f"{path}: reranker {number} has unknown keys {sorted(extra)} (put client "
                "arguments under [reranker.settings])"
            )
        if not isinstance(table.get("name"), str):
            raise ValueError(f"{path}: reranker {number} has no name")
    return [dict(table) for table in tables]


def _rerankers(args: argparse.Namespace, settings: dict[str, Any]) -> list[Any]:
    from ..eval import Reranker

    found = []
    for option in args.reranker:
        name, equals, base_url = option.partition("=")
        if not equals or not name.strip() or not base_url.strip():
            raise CommandError(f"--reranker {option!r}: expected NAME=BASE_URL", 2)
        found.append(
            Reranker(
                name.strip(),
                base_url=base_url.strip(),
                model=args.model,
                dialect=args.dialect,
                api_key_env=args.api_key_env,
                settings=settings,
            )
        )
    if args.config:
        for table in read_config(args.config):
            found.append(
                Reranker(
                    table["name"],
                    base_url=table.get("base_url"),
                    model=table.get("model"),
                    dialect=table.get("dialect"),
                    api_key_env=table.get("api_key_env"),
                    settings={**settings, **table.get("settings", {})},
                )
            )
    if not found:
        raise CommandError("give a reranker: --reranker NAME=BASE_URL or --config FILE.toml", 2)
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
    """Run ``eval``: 0 when the report is written, 1 when a reranker could not finish."""
    from .._ratelimit import RateLimit
    from ..eval import DEFAULT_DEPTHS, DEFAULT_MEASURES, DEFAULT_TOP_NS, EvalRunError, evaluate

    settings: dict[str, Any] = {"timeout": args.timeout, "max_retries": args.max_retries}
    if args.rate_limit_rpm:
        settings["rate_limit"] = RateLimit(requests_per_minute=args.rate_limit_rpm)
    rerankers = _rerankers(args, settings)
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
        )
    except EvalRunError as exc:
        raise CommandError(str(exc), 1) from None
    print(report.table())
    print(
        f"{PROG} eval: {report.requests_sent:,} requests sent; report in "
        f"{Path(args.out) / 'report.md'}",
        file=sys.stderr,
    )
    return 0
