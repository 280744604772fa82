"""The stored unit of text: one chunk of a message, a file or a document."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


def chunk_id(namespace: str, text: str, source: str = "", position: int = 0) -> str:
    """Content-derived id: the same chunk gets the same id on every machine and every run.

    The compactor names dropped chunks by id in its placeholders before the store sees
    them, so ids cannot come from the database.
    """
    # one update of the NUL-terminated parts (the digest is the same as part by part)
    data = "\0".join((namespace, source, str(position), text, "")).encode()
    return hashlib.blake2b(data, digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    namespace: str  # the session id for history chunks, or a corpus name
    text: str
    role: str | None = None  # role of the source message (history chunks)
    message_index: int | None = None  # index of the source message in its history
    source: str = ""  # file path or document name (corpus chunks)
    start_line: int = 1  # line of `source` where the chunk starts
    tokens: int = 0
    created_at: float = field(default_factory=time.time)


class ChunkSink(Protocol):
    """Where dropped history goes. The chunk store implements it; the compactor uses it."""

    def add(self, chunks: Sequence[Chunk]) -> list[str]:
        """Store chunks (duplicates by content are skipped) and return their ids."""
        ...
