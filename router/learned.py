"""The learned router: request features -> the router model -> p_hard and budget grade.

The checkpoint decides the shape: linear heads (the shipped default, a logistic link over
topic-free counts) or an MLP, with or without a MiniLM embedding (router/model.py,
router/features.py). The registry name stays "mlp", the name config files and the CLI have
always used. Serving runs the numpy copy of the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from switchyard.router.base import Router, Scores, validate_threshold
from switchyard.router.calibrate import threshold_from_quantiles
from switchyard.router.decision import RouteRequest
from switchyard.router.model import NumpyModel


class LearnedRouter(Router):
    """Scores with a trained router model; thresholds come from the checkpoint's calibration."""

    name = "mlp"

    def __init__(self, model: NumpyModel, config: Any, **kwargs: Any) -> None:
        kwargs.setdefault("policy_version", config.policy_version)
        kwargs.setdefault("effort_cuts", config.calibration.effort_cuts)
        kwargs.setdefault("threshold", config.calibration.threshold)
        super().__init__(**kwargs)
        self.forward = model
        self.config = config
        self.spec = config.features

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Path | None = None,
        *,
        thinking_share: float | None = None,
        known_models: Mapping[str, str] | None = None,
    ) -> LearnedRouter:
        """Load weights and config; `thinking_share` recalibrates the threshold."""
        from switchyard.router.checkpoint import load_checkpoint

        model, config = load_checkpoint(checkpoint)
        threshold = config.calibration.threshold
        if thinking_share is not None:
            validate_threshold(thinking_share)
            threshold = threshold_from_quantiles(
                config.calibration.score_quantiles, thinking_share
            )
        return cls(model, config, threshold=threshold, known_models=known_models)

    def score(self, request: RouteRequest) -> float:
        return float(self.score_batch([request]).p_hard[0])

    def score_batch(self, requests: Sequence[RouteRequest]) -> Scores:
        from switchyard.router.features import featurize

        return self.score_features(featurize(requests, self.spec))

    def score_features(self, x: np.ndarray) -> Scores:
        """Scores for precomputed feature rows (training, metrics, benchmarks)."""
        p_hard, grade = self.forward.predict(x)
        return Scores(p_hard=p_hard, grade=grade)
