"""Loaders for real agent trajectories: SWE-agent `.traj` files and tau-bench chat logs.

The data lives in ../shared/data/trajectories (overridable with SWITCHYARD_TRAJECTORIES).
Every trajectory comes out as validated `Message` values.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchyard.compaction.errors import TrajectoryFormatError
from switchyard.core.errors import ChatFormatError
from switchyard.core.messages import Message, parse_messages

ENV_VAR = "SWITCHYARD_TRAJECTORIES"


@dataclass(frozen=True, slots=True)
class Trajectory:
    name: str
    source: str  # "swe-agent" or "tau-bench"
    family: str  # near-duplicates share a family; splits hold out whole families
    messages: list[Message]
    reward: float | None = None


def default_root() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "trajectories"


def _swe_message(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": raw.get("role"), "content": raw.get("content")}
    if raw.get("tool_calls"):
        out["tool_calls"] = [
            {"type": "function", **c} if isinstance(c, dict) else c for c in raw["tool_calls"]
        ]
    ids = raw.get("tool_call_ids")
    if out["role"] == "tool" and isinstance(ids, list) and ids:
        out["tool_call_id"] = ids[0]
    return out


def _swe_family(name: str) -> str:
    m = re.search(r"(marshmallow-\d+|pydicom-\d+|test-repo|humanevalfix|ctf__\w+?__)", name)
    return m.group(1) if m else name


def load_swe_agent(path: Path) -> Trajectory:
    try:
        data = json.loads(Path(path).read_text())
        history = data["history"]
        messages = parse_messages([_swe_message(m) for m in history])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrajectoryFormatError(f"{path}: not a SWE-agent trajectory ({exc})", "path") from exc
    name = Path(path).stem
    return Trajectory(name, "swe-agent", "swe:" + _swe_family(name), messages)


def load_tau_bench(path: Path) -> list[Trajectory]:
    try:
        data = json.loads(Path(path).read_text())
        out = []
        for i, item in enumerate(data):
            messages = parse_messages(item["traj"])
            task = item.get("task_id", i)
            out.append(Trajectory(f"tau-{task}-{item.get('trial', i)}", "tau-bench",
                                  f"tau:{task}", messages, float(item.get("reward", 0.0))))
    except (OSError, ValueError, KeyError, TypeError, ChatFormatError) as exc:
        raise TrajectoryFormatError(f"{path}: not a tau-bench log ({exc})", "path") from exc
    return out


def load_all(root: Path | None = None) -> list[Trajectory]:
    """Every trajectory under root, in a stable order."""
    root = Path(root or default_root())
    if not root.is_dir():
        raise TrajectoryFormatError(
            f"no trajectories at {root}; set {ENV_VAR} to the data folder", "root"
        )
    out = [load_swe_agent(p) for p in sorted(root.glob("swe-agent/*.traj"))]
    for p in sorted(root.glob("tau-bench/*.json")):
        out.extend(load_tau_bench(p))
    if not out:  # training on nothing would write a checkpoint of NaNs
        raise TrajectoryFormatError(
            f"no trajectories under {root} (looked for swe-agent/*.traj and "
            f"tau-bench/*.json); set {ENV_VAR} to the data folder", "root")
    return out


def is_held_out(t: Trajectory, every: int = 5) -> bool:
    """A fixed, seed-free split by family: about one family in `every` is held out."""
    import zlib

    return zlib.crc32(t.family.encode()) % every == 0


def cut_points(messages: list[Message], min_index: int = 3) -> Iterator[int]:
    """Indices t where messages[t] is an assistant step: history = messages[:t]."""
    for t in range(min_index, len(messages)):
        if messages[t].role == "assistant":
            yield t
