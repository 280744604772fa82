"""Keep full garbage collections off the tail: freeze the long-lived heap.

A served process holds a few hundred thousand long-lived objects (modules, the router, the
tokenizer tables, pydantic models, whatever the first requests load lazily). CPython's full
collection walks all of them, and did so about every 400 requests at concurrency 32,
stalling the event loop, and so every in-flight request, for 100-460 ms: that was the p99
(bench/proxy.py). `gc.freeze()` moves what exists into a generation the collector never
scans, so a full collection only walks what requests made since: 1-15 ms.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

SLOW_FULL_COLLECTION_MS = 20.0


def freeze_heap() -> None:
    """Collect once, then exempt every surviving object from later collections."""
    gc.collect()
    gc.freeze()


def freeze_after_slow_full_collections(
        limit_ms: float = SLOW_FULL_COLLECTION_MS) -> Callable[[str, dict[str, Any]], None]:
    """After a full collection slower than `limit_ms`, freeze its survivors, so the next one
    skips them. Covers what loads after startup (the first requests' lazy imports, an index
    opened on first use). Survivors of a full collection are long-lived by then; the cost is
    that a cycle among them that dies later is never reclaimed. Returns the gc callback."""
    started = 0.0

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if info["generation"] != 2:
            return
        if phase == "start":
            started = time.perf_counter()
        elif (time.perf_counter() - started) * 1000 > limit_ms:
            gc.freeze()

    gc.callbacks.append(on_gc)
    return on_gc
