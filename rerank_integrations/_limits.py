"""Limits a server has shown: what later calls of the same client plan with.

A refusal for size teaches the most documents (or bytes) a request may hold, once a part
split off after it goes through; a refusal of one long document teaches the tokens a
document may have. What :mod:`._refusals` reads from a message, :class:`Learned` keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._refusals import Refusal

__all__ = ["Learned"]


@dataclass(slots=True)
class Learned:
    """Limits a server has shown, kept for the client's life: later calls plan with them.

    Attributes:
        documents: the most documents a request may hold: the limit the server stated, else
            the most that worked after a refusal.
        bytes: the largest body a request may be, after refusals for size.
        document_tokens: the tokens a server says one document may have.
    """

    documents: int | None = None
    bytes: int | None = None
    document_tokens: int | None = None
    _stated: bool = False
    _refused_documents: int | None = None
    _refused_bytes: int | None = None

    def refused(
        self, documents: int, body_bytes: int, stated: int | None, refusal: Refusal
    ) -> None:
        """A request of ``documents`` documents and ``body_bytes`` bytes was refused; a
        refusal that names the body alone teaches no count of documents."""
        if stated is not None:
            self.documents, self._stated = stated, True
        if not refusal.only_bytes:
            self._refused_documents = min(documents, self._refused_documents or documents)
        if refusal.by_bytes:
            self._refused_bytes = min(body_bytes, self._refused_bytes or body_bytes)

    def worked(self, documents: int, body_bytes: int) -> None:
        """A request split off after a refusal went through: as big may go again."""
        refused = self._refused_documents
        if not self._stated and refused is not None and documents < refused:
            self.documents = max(documents, self.documents or 0)
        if self._refused_bytes is not None and body_bytes < self._refused_bytes:
            self.bytes = max(body_bytes, self.bytes or 0)

    def learn(self, **limits: int | None) -> None:
        """Keep each limit given, or the smaller of it and the one known."""
        for name, value in limits.items():
            if value is not None:
                known = getattr(self, name)
                setattr(self, name, value if known is None else min(known, value))
