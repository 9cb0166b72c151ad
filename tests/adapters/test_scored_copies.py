"""The scored copies both adapters return are built by ``copy_with``, which must give what
pydantic's ``model_copy(update=...)`` gives: same class, values, fields set, extra and
private attributes, and the input left as it was."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import TextNode
from pydantic import BaseModel, ConfigDict, PrivateAttr

from rerank_integrations._adapters import copy_with


class WithPrivate(Document):
    """A document class of a user's, with a private attribute."""

    _seen: list[str] = PrivateAttr(default_factory=list)


class Open(BaseModel):
    """A model that keeps unknown fields as extra."""

    model_config = ConfigDict(extra="allow")

    metadata: dict[str, Any] = {}


class CopiesItself(Document):
    """A document class that copies itself its own way."""

    def model_copy(self, *, update: Any = None, deep: bool = False) -> Any:
        copied = super().model_copy(update=update, deep=deep)
        copied.metadata["copied_by"] = "CopiesItself"
        return copied


def state(model: BaseModel) -> tuple[Any, ...]:
    return (
        type(model),
        model.__dict__,
        model.__pydantic_fields_set__,
        model.__pydantic_extra__,
        model.__pydantic_private__,
    )


def private_document() -> WithPrivate:
    document = WithPrivate(page_content="text", id="d-1", metadata={"k": 1})
    document._seen.append("retriever")
    return document


@pytest.mark.parametrize(
    "make",
    [
        lambda: Document(page_content="text", id="d-1", metadata={"k": 1}),
        lambda: Document(page_content="text"),
        private_document,
        lambda: Open(metadata={"k": 1}, note="kept"),
        lambda: TextNode(text="text", id_="n-1", metadata={"k": 1}),
    ],
    ids=["document", "defaults", "private", "extra", "text-node"],
)
def test_the_copy_is_the_one_pydantic_makes(make: Any) -> None:
    original = make()
    before = state(original)
    update = {"metadata": {**original.metadata, "relevance_score": 0.5}}

    ours = copy_with(original, update)
    theirs = original.model_copy(update=update)

    assert state(ours) == state(theirs)
    assert ours is not original
    assert state(original) == before  # the input is left as it was
    if original.__pydantic_extra__ is not None:
        assert ours.__pydantic_extra__ is not original.__pydantic_extra__
    if original.__pydantic_private__ is not None:
        assert ours.__pydantic_private__ is not original.__pydantic_private__


def test_a_class_that_copies_itself_is_asked_to() -> None:
    original = CopiesItself(page_content="text", metadata={})

    copied = copy_with(original, {"metadata": {"relevance_score": 0.5}})

    assert copied.metadata == {"relevance_score": 0.5, "copied_by": "CopiesItself"}
    assert original.metadata == {}
