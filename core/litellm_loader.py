"""LiteLLM, imported on first use: its import costs seconds, and it would fetch a price map
over the network unless told not to."""

from __future__ import annotations

import os
from typing import Any


def load_litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm
