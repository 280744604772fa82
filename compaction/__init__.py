"""Compaction: fit long agent histories into a token budget without losing what is needed.

    compactor = Compactor.load()                       # bundled learned checkpoint
    result = compactor.compact(messages, budget, model="gpt-4o", namespace=session, sink=store)
    budget = CompactionPolicy().budget_for(history_tokens, context_window, requested_budget)
"""

from switchyard.compaction.compactor import Compactor
from switchyard.compaction.errors import (
    BudgetTooSmall,
    CheckpointError,
    CompactionError,
    InvalidHistory,
    TrajectoryFormatError,
    UnknownStrategy,
)
from switchyard.compaction.options import CompactionOptions, CompactionPolicy
from switchyard.compaction.result import Compaction
from switchyard.compaction.strategies import STRATEGIES, get_strategy

__all__ = [
    "STRATEGIES",
    "BudgetTooSmall",
    "CheckpointError",
    "Compaction",
    "CompactionError",
    "CompactionOptions",
    "CompactionPolicy",
    "Compactor",
    "InvalidHistory",
    "TrajectoryFormatError",
    "UnknownStrategy",
    "get_strategy",
]
