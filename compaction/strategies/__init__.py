"""Compaction strategies by name: one lookup, one error listing the valid names."""

from __future__ import annotations

from collections.abc import Callable

from switchyard.compaction.errors import UnknownStrategy
from switchyard.compaction.strategies import learned, observation_mask, truncate

STRATEGIES: dict[str, Callable[..., object]] = {
    learned.NAME: learned.compact,
    truncate.NAME: truncate.compact,
    observation_mask.NAME: observation_mask.compact,
}


def get_strategy(name: str) -> Callable[..., object]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownStrategy(
            f"unknown compaction strategy {name!r}; valid names: {', '.join(STRATEGIES)}",
            "strategy",
        ) from None
