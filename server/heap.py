"""Keep full garbage collections off the tail: freeze the startup heap.

A served process holds a few hundred thousand long-lived objects (modules, the router, the
tokenizer tables, pydantic models). CPython's full collection walks all of them, and did
so about every 400 requests at concurrency 32, stalling the event loop, and so every
in-flight request, for 100-460 ms: that was the p99 (bench/proxy.py). `gc.freeze()` moves
what exists once the process is warm into a generation the collector never scans, so a full
collection only walks what requests made since, and takes about 1-15 ms.
"""

from __future__ import annotations

import gc


def freeze_heap() -> None:
    """Collect once, then exempt every surviving object from later collections. Call it
    when the process is warm (everything the request paths load lazily is loaded)."""
    gc.collect()
    gc.freeze()
