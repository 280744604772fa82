"""Router checkpoints: the state_dict as safetensors (.safetensors) plus a JSON config (.json).

Loading needs numpy only (serving runs `NumpyModel`); saving takes the trained torch model.

The JSON records the format version, the feature spec, the model shape, the training data
hash, the validation metrics and the calibration (held-out score quantiles, from which any
thinking share's threshold is read, and the effort cut points). It also records the
SHA-256 of the weights file, so a truncated or swapped file fails loudly at load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from switchyard.router.errors import CheckpointError, RoutingError
from switchyard.router.features import FeatureSpec
from switchyard.router.model import NumpyModel

FORMAT = "switchyard-router"
VERSION = 3  # 3: five sources, encoder "none" allowed, the second head is the budget grade
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "default.safetensors"
_SUFFIXES = (".safetensors", ".json")


@dataclass(frozen=True)
class Calibration:
    score_quantiles: list[float]  # held-out p_hard at q = 0, 1/n, ..., 1
    default_thinking_share: float
    threshold: float  # the threshold for default_thinking_share
    effort_cuts: list[float]


@dataclass(frozen=True)
class CheckpointConfig:
    policy_version: str
    features: FeatureSpec
    model: dict[str, Any]  # build_model kwargs: embed_dim, n_structural, hidden, dropout
    calibration: Calibration
    training: dict[str, Any] = field(default_factory=dict)  # data hash, rows, seed, split
    validation: dict[str, Any] = field(default_factory=dict)  # APGR, CPT... per data set
    weights_sha256: str = ""
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CheckpointConfig:
        raw = dict(raw)
        raw["features"] = FeatureSpec.from_dict(raw["features"])
        raw["calibration"] = Calibration(**raw["calibration"])
        return cls(**raw)


def paths_for(path: Path) -> tuple[Path, Path]:
    """(weights .safetensors, config .json) for a path given as either file or the stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in _SUFFIXES else path
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(model: Any, config: CheckpointConfig, path: Path) -> Path:
    """Write weights and config; returns the weights path."""
    from dataclasses import replace

    from safetensors.numpy import save_file

    weights, meta = paths_for(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}, str(weights))
    config = replace(config, weights_sha256=_sha256(weights))
    meta.write_text(config.to_json() + "\n")
    return weights


def load_config(path: Path) -> CheckpointConfig:
    _weights, meta = paths_for(path)
    if not meta.is_file():
        raise CheckpointError(
            f"router checkpoint config {meta} not found; train one with "
            "'switchyard train-router --output PATH' or omit --checkpoint for the bundled one",
            path=str(meta),
        )
    try:
        raw = json.loads(meta.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"router checkpoint config {meta} is not valid JSON: {exc}",
                              path=str(meta)) from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{meta} is not a Switchyard router checkpoint", path=str(meta))
    if raw.get("version") != VERSION:
        raise CheckpointError(
            f"{meta} has checkpoint version {raw.get('version')!r}; this build reads "
            f"version {VERSION}: retrain with 'switchyard train-router'",
            path=str(meta),
        )
    try:
        return CheckpointConfig.from_dict(raw)
    except (KeyError, TypeError, ValueError, RoutingError) as exc:
        raise CheckpointError(f"{meta} is missing or has bad fields: {exc}",
                              path=str(meta)) from exc


def load_checkpoint(path: Path | None = None) -> tuple[NumpyModel, CheckpointConfig]:
    """(the serving model, config); raises CheckpointError for anything unusable."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    config = load_config(path)
    weights, _ = paths_for(path)
    if not weights.is_file():
        raise CheckpointError(f"router weights {weights} not found", path=str(weights))
    if config.weights_sha256 and _sha256(weights) != config.weights_sha256:
        raise CheckpointError(
            f"router weights {weights} do not match the hash in their config "
            "(corrupt or replaced file)",
            path=str(weights),
        )
    try:
        model = NumpyModel(load_file(str(weights)), config.model["embed_dim"],
                           config.model.get("hidden", 0))
    except (SafetensorError, KeyError, ValueError) as exc:
        raise CheckpointError(f"cannot load router weights {weights}: {exc}",
                              path=str(weights)) from exc
    return model, config
