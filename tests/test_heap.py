"""The heap freezing that keeps full collections off the tail (server/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from switchyard.server.heap import freeze_after_slow_full_collections, freeze_heap


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    callbacks = list(gc.callbacks)
    yield
    gc.callbacks[:] = callbacks
    gc.unfreeze()


def test_freeze_heap_exempts_what_exists() -> None:
    gc.unfreeze()
    kept = [[i] for i in range(1000)]
    freeze_heap()
    assert gc.get_freeze_count() >= len(kept)


def test_a_slow_full_collection_freezes_its_survivors() -> None:
    gc.unfreeze()
    freeze_after_slow_full_collections(limit_ms=0.0)  # every full collection is "slow"
    kept = [[i] for i in range(1000)]
    gc.collect(1)
    assert gc.get_freeze_count() == 0  # younger collections never freeze
    gc.collect()
    assert gc.get_freeze_count() >= len(kept)


def test_a_fast_full_collection_freezes_nothing() -> None:
    gc.unfreeze()
    freeze_after_slow_full_collections(limit_ms=60_000.0)
    gc.collect()
    assert gc.get_freeze_count() == 0
