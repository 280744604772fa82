"""The public surface of retrieval/ is pinned, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

from switchyard import retrieval


def test_all_matches_exported_names() -> None:
    exported = {name for name in dir(retrieval) if not name.startswith("_")}
    modules = {"bm25", "chunk", "errors", "faiss_index", "files", "fuse", "grep", "index",
               "persist", "select", "store", "tokenize", "chat", "tokens", "embedding",
               "embedding_torch"}
    assert set(retrieval.__all__) == exported - modules
    assert sorted(retrieval.__all__) == sorted(set(retrieval.__all__))


def test_import_loads_nothing_heavy() -> None:
    code = ("import sys, switchyard.retrieval, switchyard.retrieval.index; "
            "print([m for m in ('torch', 'faiss', 'bm25s', 're2', 'transformers') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
