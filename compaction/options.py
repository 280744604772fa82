"""Compaction options and policy: typed, validated, a typo fails loudly."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class CompactionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str = "learned"
    keep_last_groups: int = Field(2, ge=1, description="latest turns (message groups) always kept")
    chunk_max_tokens: int = Field(48, ge=16, description="long texts split at lines near this size")
    placeholder_max_tokens: int = Field(120, ge=40, description="cap on one dropped-run placeholder")
    placeholder_max_ids: int = Field(3, ge=1, description="chunk ids listed in one placeholder")
    marker_max_ids: int = Field(1, ge=1, description="chunk ids named by an inline marker")
    extractive_summary: bool = True
    ledger_share: float = Field(
        0.5, ge=0.0, le=1.0,
        description="learned strategy: most of the budget above the minimum that placeholders "
        "may spend listing single terms (the ledger); the rest keeps text verbatim")


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """When to compact and to what size (DESIGN.md: above 70% of the window, down to 40%)."""

    trigger_share: float = 0.70
    target_share: float = 0.40

    def __post_init__(self) -> None:
        if not 0.0 < self.target_share < self.trigger_share <= 1.0:
            raise ValueError(
                "CompactionPolicy needs 0 < target_share < trigger_share <= 1; got "
                f"target_share={self.target_share}, trigger_share={self.trigger_share}"
            )

    def budget_for(
        self, history_tokens: int, context_window: int, requested_budget: int | None = None
    ) -> int | None:
        """The token budget to compact to, or None when no compaction is needed.

        A budget the caller asks for wins over the window shares.
        """
        if requested_budget is not None:
            if requested_budget <= 0:
                raise ValueError(f"requested_budget must be positive; got {requested_budget}")
            return requested_budget if history_tokens > requested_budget else None
        if context_window <= 0:
            raise ValueError(f"context_window must be positive; got {context_window}")
        if history_tokens <= self.trigger_share * context_window:
            return None
        return int(self.target_share * context_window)
