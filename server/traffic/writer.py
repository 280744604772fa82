"""The traffic-log writer: one row per request, group-committed by a single writer thread.

Handlers await `write()`, which returns once the row is committed, so a response is never
sent for a request whose row could still be lost (the log survives `kill -9`). Batching the
commits of concurrent requests keeps SQLite off the hot path's critical section.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from switchyard.core.trafficlog.outcomes import Outcome, record_outcome
from switchyard.core.trafficlog.schema import COLUMNS, TrafficRecord, connect

_INSERT = (f"INSERT OR REPLACE INTO requests ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join(':' + c for c in COLUMNS)})")
_STOP = object()
_Entry = tuple[TrafficRecord, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class TrafficLog:
    """SQLite; server/stores/pg_stores.py's subclass writes PostgreSQL with the same thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path)
        self._outcomes_db: sqlite3.Connection | None = None  # feedback: its own connection
        self._outcomes_lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="traffic-log", daemon=True)
        self._thread.start()

    async def write(self, record: TrafficRecord) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put((record, loop, done))
        await asyncio.shield(done)  # a cancelled caller must not lose its row

    def write_sync(self, record: TrafficRecord) -> None:
        self._commit([record])

    def record_outcome(self, outcome: Outcome) -> bool:
        """Attach an outcome (router/outcomes.py); True when new. Blocking: call in a thread."""
        with self._outcomes_lock:
            if self._outcomes_db is None:
                self._outcomes_db = connect(self.path)
            return record_outcome(self._outcomes_db, outcome)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        self._release()

    def _release(self) -> None:
        self._db.close()
        if self._outcomes_db is not None:
            self._outcomes_db.close()

    def _commit(self, records: Sequence[TrafficRecord]) -> None:
        """One transaction for the batch: the group commit."""
        with self._db:
            # IMMEDIATE takes the write lock first, so with several workers on one file a
            # batch waits out the others (busy timeout) instead of failing.
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(_INSERT, [r.as_row() for r in records])

    def reader(self) -> sqlite3.Connection:
        """A separate read-only connection (WAL lets it read while the writer writes)."""
        return connect(self.path)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while True:  # drain whatever queued up while we were committing
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(i is _STOP for i in batch)
            entries: list[_Entry] = [i for i in batch if i is not _STOP]  # type: ignore[misc]
            error: BaseException | None = None
            try:
                if entries:
                    self._commit([e[0] for e in entries])
            except Exception as exc:  # noqa: BLE001 - handed to every waiter of the batch
                error = exc
            for _, loop, fut in entries:
                loop.call_soon_threadsafe(_settle, fut, error)
            if stop:
                return


def _settle(fut: asyncio.Future[None], error: BaseException | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)
