"""The one call the server makes: a ready router, or "routing off" if the checkpoint is bad."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from switchyard.router.base import Router, validate_group, validate_threshold
from switchyard.router.baselines import OffRouter
from switchyard.router.errors import CheckpointError
from switchyard.router.registry import router_class

logger = logging.getLogger(__name__)


def load_router(
    name: str = "mlp",
    *,
    checkpoint: Path | None = None,
    thinking_share: float | None = None,
    default_group: str = "non_thinking",
    known_models: Mapping[str, str] = {},
) -> Router:
    """Build router `name`. A missing or corrupt checkpoint logs a warning and gives "off".

    `thinking_share` (0..1) sets the threshold to the quantile of the checkpoint's held-out
    scores that sends that share of requests to the thinking group; without it the
    checkpoint's calibrated default is used. Bad names and shares still raise RoutingError:
    those are configuration mistakes, not a damaged file.
    """
    validate_group(default_group)
    if thinking_share is not None:
        validate_threshold(thinking_share)
    cls = router_class(name)
    if name == "off":
        return OffRouter(default_group=default_group, known_models=known_models)
    if name == "mlp":
        from switchyard.router.learned import LearnedRouter

        try:
            return LearnedRouter.from_checkpoint(
                checkpoint, thinking_share=thinking_share, known_models=known_models
            )
        except CheckpointError as exc:
            logger.warning(
                "router checkpoint unusable (%s); routing off, every request goes to %s",
                exc.message, default_group,
            )
            return OffRouter(default_group=default_group, known_models=known_models)
    share = 0.5 if thinking_share is None else thinking_share
    # Constant and random scores are uniform on [0, 1]: threshold 1 - share gives that share.
    return cls(threshold=1.0 - share, known_models=known_models)
