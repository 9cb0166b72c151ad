"""Instructions: how a call's ``instruction`` reaches the model, dialect by dialect.

A dialect carries an instruction in one of three ways (``Dialect.instruction``):

- ``"field"``: a field of its own request body (Contextual's ``instruction``, DeepInfra's
  ``instruction`` for the Qwen3 rerankers, DashScope's ``parameters.instruct``);
- ``"prefix"`` (the default): written before the query, ``"{instruction}\\n{query}"``, as
  Voyage documents for rerank-2.5;
- ``"refuse"``: the API has no way and its models follow none; the call is refused before
  anything is sent, naming the dialect.

Self-hosted servers that hand the texts to the model as they are (``generic``, ``vllm``,
``tei``, ``sglang``, ``infinity``: ``Dialect.prompt_templates``) get the model's documented
prompt template instead, where the model has one: the query written into the template's
query side, each document into its document side. The template is chosen by the model name
(Qwen3-Reranker: ``/qwen3-reranker/i``), by :func:`register_prompt_template`, or by the
``instruction_template`` setting (a :class:`PromptTemplate`, a registered template's name,
or ``"none"`` for never a template).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._base import Dialect

__all__ = [
    "INSTRUCTION_STYLES",
    "NO_TEMPLATE",
    "QWEN3_RERANKER",
    "CarriedInstruction",
    "InstructionStyle",
    "PromptTemplate",
    "carry_instruction",
    "check_instruction_template",
    "register_prompt_template",
    "template_for",
]

#: How a dialect carries an instruction (see the module's docstring).
InstructionStyle = Literal["field", "prefix", "refuse"]
INSTRUCTION_STYLES: tuple[InstructionStyle, ...] = ("field", "prefix", "refuse")

#: The query with an instruction written before it, for ``"prefix"`` dialects.
PREFIX_FORMAT = "{instruction}\n{query}"

#: ``instruction_template="none"``: never a prompt template, whatever the model.
NO_TEMPLATE = "none"


@dataclass(frozen=True)
class PromptTemplate:
    """A model's documented prompt for a query with an instruction, and for each document.

    Attributes:
        name: the name it is registered and chosen under.
        query: the query side, naming ``{instruction}`` and ``{query}``.
        document: the document side, naming ``{document}``.
        default_instruction: the instruction the model was trained with, for reference.
    """

    name: str
    query: str
    document: str
    default_instruction: str | None = None

    def __post_init__(self) -> None:
        if "{query}" not in self.query or "{instruction}" not in self.query:
            raise ValueError(
                f"prompt template {self.name!r}: query must name {{instruction}} and {{query}}"
            )
        if self.document.count("{document}") != 1:
            raise ValueError(f"prompt template {self.name!r}: document must name {{document}} once")

    def render_query(self, instruction: str, query: str) -> str:
        """The query side, filled in (by replacement: braces in the texts stay as they are)."""
        return self.query.replace("{instruction}", instruction).replace("{query}", query)

    @property
    def wrapper(self) -> tuple[str, str]:
        """The text before and after each document."""
        before, after = self.document.split("{document}")
        return before, after


_QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
_QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

#: Qwen3-Reranker's template, as vLLM's Qwen3-Reranker example formats the query and the
#: documents (examples/offline_inference/qwen3_reranker.py; the same in vLLM Ascend's
#: tutorial): a system prefix, ``<Instruct>: ... <Query>: ...``, ``<Document>: ...`` and the
#: assistant suffix.
QWEN3_RERANKER = PromptTemplate(
    name="qwen3-reranker",
    query=_QWEN3_PREFIX + "<Instruct>: {instruction}\n<Query>: {query}\n",
    document="<Document>: {document}" + _QWEN3_SUFFIX,
    default_instruction=(
        "Given a web search query, retrieve relevant passages that answer the query"
    ),
)

_LOCK = threading.Lock()
#: (model name pattern, template), the latest registered first.
_TEMPLATES: list[tuple[re.Pattern[str], PromptTemplate]] = [
    (re.compile(r"qwen3-reranker", re.IGNORECASE), QWEN3_RERANKER)
]


def register_prompt_template(pattern: str, template: PromptTemplate) -> PromptTemplate:
    """Use ``template`` for models whose name matches ``pattern`` (a regular expression,
    searched case-insensitively), ahead of every template registered before; it can also
    be chosen by its name with ``instruction_template=``.

    Raises:
        TypeError: ``template`` is not a :class:`PromptTemplate`.
        re.error: ``pattern`` is not a regular expression.
    """
    if not isinstance(template, PromptTemplate):
        raise TypeError(
            f"register_prompt_template takes a PromptTemplate, got {type(template).__name__}"
        )
    compiled = re.compile(pattern, re.IGNORECASE)
    with _LOCK:
        _TEMPLATES.insert(0, (compiled, template))
    return template


def template_for(model: str | None) -> PromptTemplate | None:
    """The prompt template of ``model`` by its name; ``None`` when it has none."""
    if not model:
        return None
    for pattern, template in list(_TEMPLATES):
        if pattern.search(model):
            return template
    return None


def check_instruction_template(value: object) -> PromptTemplate | str | None:
    """The ``instruction_template`` setting, checked: ``None``, a :class:`PromptTemplate`,
    ``"none"`` or a registered template's name.

    Raises:
        ConfigurationError: anything else.
    """
    if value is None or isinstance(value, PromptTemplate):
        return value
    if isinstance(value, str):
        if value.strip().lower() == NO_TEMPLATE:
            return NO_TEMPLATE
        if _named(value) is not None:
            return value
        known = sorted({template.name for _, template in _TEMPLATES})
        raise ConfigurationError(
            f"instruction_template={value!r} names no prompt template; known: "
            f"{', '.join(known)}, or 'none'",
            setting="instruction_template",
        )
    raise ConfigurationError(
        "instruction_template must be a PromptTemplate, a template's name or 'none', "
        f"got {type(value).__name__}",
        setting="instruction_template",
    )


def _named(name: str) -> PromptTemplate | None:
    for _, template in list(_TEMPLATES):
        if template.name == name:
            return template
    return None


@dataclass(frozen=True, slots=True)
class CarriedInstruction:
    """How one call carries its instruction.

    Attributes:
        query: the query as sent (with the instruction written in, for a prefix or a
            template).
        field: the instruction for the dialect's own body field; ``None`` otherwise.
        wrapper: the text before and after each document (a template); ``None``: none.
        how: ``"field"``, ``"prefix"``, ``"template:<name>"`` or ``"none"``: part of the
            cache key and the trace.
        instruction: the instruction itself; ``None``: none.
    """

    query: str
    field: str | None = None
    wrapper: tuple[str, str] | None = None
    how: str = "none"
    instruction: str | None = None


def refusal(dialect: Dialect) -> ConfigurationError:
    """The error for an instruction given to a dialect that cannot carry one."""
    return ConfigurationError(
        f"the {dialect.name} dialect cannot carry an instruction (its API has no field for "
        "one and its models follow none); leave instruction unset, or write it into the "
        "query yourself",
        setting="instruction",
    )


def carry_instruction(
    dialect: Dialect,
    query: str,
    instruction: str | None,
    model: str | None,
    template: PromptTemplate | str | None = None,
) -> CarriedInstruction:
    """How ``dialect`` carries ``instruction`` for ``query`` and ``model``.

    Raises:
        ConfigurationError: the dialect cannot carry an instruction.
    """
    if instruction is None:
        return CarriedInstruction(query)
    if dialect.instruction == "refuse":
        raise refusal(dialect)
    chosen: PromptTemplate | None = None
    if isinstance(template, PromptTemplate):
        chosen = template
    elif isinstance(template, str) and template != NO_TEMPLATE:
        chosen = _named(template)
    elif template is None and dialect.prompt_templates:
        chosen = template_for(model)
    if chosen is not None:
        return CarriedInstruction(
            chosen.render_query(instruction, query),
            wrapper=chosen.wrapper,
            how=f"template:{chosen.name}",
            instruction=instruction,
        )
    if dialect.instruction == "field":
        return CarriedInstruction(query, field=instruction, how="field", instruction=instruction)
    prefixed = PREFIX_FORMAT.replace("{instruction}", instruction).replace("{query}", query)
    return CarriedInstruction(prefixed, how="prefix", instruction=instruction)
