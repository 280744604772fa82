"""Errors raised by compaction/.

    ParamError (core/errors.py: message + param)
    └── CompactionError          base for everything the compactor rejects
        ├── InvalidHistory       input that is not a sequence of `Message` values
        ├── BudgetTooSmall       a budget below what the invariants need (states the minimum)
        ├── UnknownStrategy      a strategy name not in the registry (lists the valid names)
        ├── CheckpointError      a missing or incompatible scorer checkpoint
        └── TrajectoryFormatError a trajectory file that cannot be read as a chat history

Chat-format problems (tool results without calls, unknown roles in raw JSON) are
`core.errors.ChatFormatError`, raised by the shared chat helpers.
"""

from __future__ import annotations

from switchyard.core.errors import ParamError


class CompactionError(ParamError):
    """Base class of compaction errors; `param` names the offending argument when known."""


class InvalidHistory(CompactionError):
    pass


class BudgetTooSmall(CompactionError):
    """The budget cannot hold the system prompt, the task and the latest turns."""

    def __init__(self, budget: int, minimum: int) -> None:
        super().__init__(
            f"budget of {budget} tokens is below the {minimum} tokens the invariants need "
            "(system prompt, first user task, latest turns and placeholders); "
            f"ask for at least {minimum} tokens or lower options.keep_last_groups",
            "budget",
        )
        self.budget = budget
        self.minimum = minimum


class UnknownStrategy(CompactionError):
    pass


class CheckpointError(CompactionError):
    pass


class TrajectoryFormatError(CompactionError):
    pass
