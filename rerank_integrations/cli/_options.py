"""Options several commands share, each declared once: its flag, how its text is read and its
help. A command adds them to its parser; ``eval`` also reads them from its ``--config`` file's
``[[reranker]]`` tables, under the flag's name with underscores, checked the same way."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .._config import ENV_DIALECT
from .._constants import ENV_MODEL
from ..dialects import DIALECTS

__all__ = [
    "DIALECT",
    "INSTRUCTION",
    "MAX_RETRIES",
    "MODEL",
    "PRICES",
    "TIMEOUT",
    "Option",
    "add_price_options",
    "non_negative_int",
    "number",
    "positive_int",
    "price_value",
    "seconds",
    "share",
    "whole_number",
]


def number(
    convert: Callable[[str], Any], what: str, fits: Callable[[Any], bool], wanted: str
) -> Callable[[str], Any]:
    """An argparse type: ``convert(text)`` (else "is not ``what``"), refused unless it
    ``fits`` (then "must be ``wanted``")."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except (ValueError, ArithmeticError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not fits(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text.strip()}")
        return value

    return parse


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""
    bound = "at least 1" if minimum == 1 else f"{minimum} or more"
    return number(int, "a whole number", lambda value: value >= minimum, bound)


positive_int = whole_number(1)
non_negative_int = whole_number(0)
#: A positive, finite number of seconds.
seconds: Callable[[str], float] = number(
    float,
    "a number of seconds",
    lambda value: math.isfinite(value) and value > 0,
    "a positive number of seconds",
)
#: A share: a number in (0, 1].
share: Callable[[str], float] = number(float, "a number", lambda value: 0 < value <= 1, "in (0, 1]")


def price_value(text: str) -> str:
    """A price or a cost: a decimal number of 0 or more, kept as text for ``Decimal``."""
    number(Decimal, "a decimal number", lambda v: v.is_finite() and v >= 0, "0 or more")(text)
    return text


@dataclass(frozen=True)
class Option:
    """One option: its flag, its help, how its text is read, its default, and its
    ``argparse`` action when it is not to store a value."""

    flag: str
    help: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: Sequence[str] | None = None
    default: Any = None
    action: Any = None

    @property
    def key(self) -> str:
        """Its name in the parsed arguments, and in a config file."""
        return self.flag.lstrip("-").replace("-", "_")

    def add(self, group: Any, **changes: Any) -> None:
        """Add it to ``group`` (a parser or an argument group); ``changes`` replace its
        ``help`` or ``default`` there."""
        given = {
            "action": self.action,
            "type": self.type,
            "metavar": self.metavar,
            "choices": self.choices,
            "default": self.default,
            "help": self.help,
            **changes,
        }
        group.add_argument(self.flag, **{k: v for k, v in given.items() if v is not None})

    def read(self, value: object, where: str) -> Any:
        """``value`` from a config file, checked as the option's text would be.

        Raises:
            ValueError: naming ``where`` and the key.
        """
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"{where}: {self.key} must be a string or a number, got {value!r}")
        if self.type is None:
            if not isinstance(value, str):
                raise ValueError(f"{where}: {self.key} must be a string, got {value!r}")
            found: Any = value
        else:
            try:
                found = self.type(str(value))
            except argparse.ArgumentTypeError as error:
                raise ValueError(f"{where}: {self.key}: {error}") from None
        if self.choices is not None and found not in self.choices:
            raise ValueError(
                f"{where}: {self.key} {found!r} is not one of {', '.join(self.choices)}"
            )
        return found


MODEL = Option("--model", f"the model (default: ${ENV_MODEL}, else the server's)", metavar="NAME")
DIALECT = Option(
    "--dialect",
    f"the wire format, one of the dialects below (default: ${ENV_DIALECT}, else generic)",
    choices=sorted(DIALECTS),
    metavar="NAME",
)
TIMEOUT = Option(
    "--timeout",
    "seconds allowed per HTTP request (default: %(default)g)",
    seconds,
    "SECONDS",
)
MAX_RETRIES = Option(
    "--max-retries",
    "retries after a failed request (default: %(default)s)",
    non_negative_int,
    "N",
)
INSTRUCTION = Option(
    "--instruction",
    "what the ranking should favour, in words, carried as the dialect can (its own field, "
    "the model's prompt template or before the query; refused by a dialect that cannot "
    "carry one) (default: $RERANK_INSTRUCTION)",
    metavar="TEXT",
)

#: What the API charges, as the ``Price`` of :func:`~._common.price_from_args`.
PRICES = (
    Option(
        "--price-per-search-unit",
        "per search unit (Cohere) or rerank unit (Pinecone)",
        price_value,
        "AMOUNT",
    ),
    Option("--price-per-million-tokens", "per 1M tokens", price_value, "AMOUNT"),
    Option("--price-per-request", "per request", price_value, "AMOUNT"),
    Option(
        "--price-currency", "the prices' currency (default: %(default)s)", None, "CODE", None, "USD"
    ),
)


def add_price_options(parser: argparse.ArgumentParser) -> None:
    """The ``--price-*`` options, in a group of their own."""
    group = parser.add_argument_group(
        "price (what the API charges: gives the cost; no built-in prices)"
    )
    for option in PRICES:
        option.add(group)
