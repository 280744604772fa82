"""The `Compaction` core type (DESIGN.md): one definition."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchyard.core.messages import Message, to_openai_messages
from switchyard.retrieval.chunk import Chunk


@dataclass(frozen=True, slots=True)
class Run:
    """One dropped run: where its placeholder is, the chunks it dropped, its ledger terms."""

    at: int  # index of the placeholder in `messages`
    ids: list[str]
    mentions: str = ""
    dropped_messages: int = 0  # how many messages the placeholder stands for


@dataclass(frozen=True, slots=True)
class Compaction:
    messages: list[Message]
    kept_ids: list[str]
    dropped_ids: list[str]
    tokens_before: int
    tokens_after: int
    summary: str
    strategy: str
    dropped_chunks: list[Chunk] = field(default_factory=list, repr=False, compare=False)
    runs: list[Run] = field(default_factory=list, repr=False, compare=False)
    budget: int = field(default=0, repr=False, compare=False)

    @property
    def changed(self) -> bool:
        return bool(self.dropped_ids)

    def stats(self) -> dict[str, Any]:
        """Figures for logs, response headers and the CLI."""
        return {
            "strategy": self.strategy,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "ratio": round(self.tokens_before / max(self.tokens_after, 1), 3),
            "messages_after": len(self.messages),
            "kept_chunks": len(self.kept_ids),
            "dropped_chunks": len(self.dropped_ids),
        }

    def to_json(self) -> dict[str, Any]:
        return {"messages": to_openai_messages(self.messages), "stats": self.stats()}
