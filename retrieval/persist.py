"""Index files keyed to the chunk store's state, so that a stale one is caught, not trusted.

Each retriever of a namespace saves into its own directory (bm25/, grep/, dense/) and this
module adds `keys.npy` beside its files: the (row id, content key) pairs of the rows it holds,
the content key being the first 8 bytes of the store's content hash. On load the pairs are
compared with the store's: rows whose key differs (a replaced or rebuilt store file) or that
are gone become stale and are removed, rows the index lacks are added, and an index with more
stale rows than `REBUILD_SHARE` is not worth patching and is rebuilt from the store.

Directories are written beside the live one and swapped in by rename: a memory-mapped file of
the old version stays valid (its inode lives on until unmapped), and a crash between the two
renames leaves no directory, which reads as "rebuild".
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

KEYS_FILE = "keys.npy"
REBUILD_SHARE = 0.5  # stale rows above this share of the saved index: rebuild instead


class RowKeys(NamedTuple):
    """Row ids (ascending) and their content keys, as the store holds them."""

    rowids: np.ndarray  # int64
    keys: np.ndarray  # int64: content hash prefix

    @classmethod
    def empty(cls) -> RowKeys:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64))

    def lookup(self, rowids: np.ndarray) -> RowKeys:
        """The subset of `rowids` present here, with their keys."""
        pos = np.searchsorted(self.rowids, rowids)
        pos = np.minimum(pos, max(self.rowids.size - 1, 0))
        found = (self.rowids[pos] == rowids) if self.rowids.size else np.zeros(0, bool)
        return RowKeys(np.asarray(rowids, np.int64)[found], self.keys[pos[found]])


    def keys_for(self, rowids: np.ndarray) -> np.ndarray:
        """Keys of `rowids`; 0 (matches no content, bar a 2**-64 chance) for rows not here."""
        out = np.zeros(len(rowids), dtype=np.int64)
        if self.rowids.size and len(rowids):
            pos = np.minimum(np.searchsorted(self.rowids, rowids), self.rowids.size - 1)
            found = self.rowids[pos] == rowids
            out[found] = self.keys[pos[found]]
        return out


def content_keys(hex_hashes: list[str]) -> np.ndarray:
    """The first 8 bytes of each hex content hash as a signed 64-bit integer."""
    raw = bytes.fromhex("".join(h[:16] for h in hex_hashes))
    return np.frombuffer(raw, dtype=">i8").astype(np.int64)


@dataclass(frozen=True)
class Reconcile:
    """What a saved index must do to match the store."""

    stale: np.ndarray  # row ids to remove (gone from the store, or holding other content)
    missing: np.ndarray  # live row ids the index lacks
    rebuild: bool  # too stale to patch: build from the store instead

    @property
    def current(self) -> bool:
        return not self.rebuild and not self.stale.size and not self.missing.size


def reconcile(saved: RowKeys, live: RowKeys) -> Reconcile:
    """Compare an index's saved (row id, key) pairs with the store's live ones."""
    if saved.rowids.size == live.rowids.size and np.array_equal(saved.rowids, live.rowids) \
            and np.array_equal(saved.keys, live.keys):
        return Reconcile(np.empty(0, np.int64), np.empty(0, np.int64), False)
    both = live.lookup(saved.rowids)
    same = np.isin(saved.rowids, both.rowids)
    same[same] = both.keys == saved.keys[same]
    stale = saved.rowids[~same]
    missing = live.rowids[~np.isin(live.rowids, saved.rowids[same])]
    rebuild = stale.size > REBUILD_SHARE * max(saved.rowids.size, 1)
    return Reconcile(stale, missing, rebuild)


def save_dir(final: Path, write: Callable[[Path], np.ndarray], live: RowKeys) -> None:
    """Write a component with `write(tmp_dir)` (which returns the row ids it wrote) plus their
    keys from `live` (the store's, read before the write), then swap it in for `final`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    tmp = final.with_name(f"{final.name}.tmp-{token}")
    tmp.mkdir()
    try:
        rowids = np.asarray(write(tmp), dtype=np.int64)
        np.save(tmp / KEYS_FILE, np.stack([rowids, live.keys_for(rowids)]))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f"{final.name}.old-{token}")
    try:
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    except OSError:
        # another process swapped its copy in between our renames: keep theirs (its keys
        # say what it holds) and drop ours
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.exists():
            raise
    shutil.rmtree(old, ignore_errors=True)


def load_keys(directory: Path) -> RowKeys | None:
    """The saved (row id, key) pairs of a component, or None if it has none (not ours, an
    older format, or a half-written directory)."""
    path = directory / KEYS_FILE
    if not path.exists():
        return None
    try:
        pairs = np.load(path)
    except (OSError, ValueError):
        return None
    if pairs.ndim != 2 or pairs.shape[0] != 2:
        return None
    order = np.argsort(pairs[0], kind="stable")
    return RowKeys(pairs[0][order].astype(np.int64), pairs[1][order].astype(np.int64))

