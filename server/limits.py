"""Concurrent requests per API key: past `limits.max_concurrent_per_key`, a 429 /
RESOURCE_EXHAUSTED whose message names the limit and its value. Requests per minute per
key (`limits.max_requests_per_minute_per_key`, off by default) the same way, counted in
fixed one-minute windows.

A slot is held for the whole request, streaming included, and released exactly once.
The server is one asyncio loop, but a lock keeps the counter right for threaded callers.
Acquire and release are coroutines so that server/stores/shared.py's `RedisLimiter`, which
counts a key's requests across replicas, fits the same two calls.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from switchyard.server.errors import LimitExceeded

LOCAL_KEY = "(local)"  # requests without a key (auth.mode: local) share one bucket


class ConcurrencyLimiter:
    def __init__(self, max_per_key: int, per_minute: int | None = None) -> None:
        self.max_per_key = max_per_key
        self.per_minute = per_minute
        self._active: dict[str, int] = {}
        self._minute: dict[str, tuple[int, int]] = {}  # key -> (window, requests in it)
        self._lock = threading.Lock()

    async def acquire(self, key_id: str | None) -> Slot:
        key = key_id or LOCAL_KEY
        with self._lock:
            active = self._active.get(key, 0)
            if active >= self.max_per_key:
                raise over_limit(active, self.max_per_key)
            if self.per_minute is not None:
                now = time.time()
                window, used = self._minute.get(key, (0, 0))
                if window != int(now // 60):
                    window, used = int(now // 60), 0
                if used >= self.per_minute:
                    raise over_rate(used, self.per_minute, 60 - now % 60)
                self._minute[key] = (window, used + 1)
            self._active[key] = active + 1
        return Slot(self, key)

    def in_flight(self, key_id: str | None) -> int:
        with self._lock:
            return self._active.get(key_id or LOCAL_KEY, 0)

    async def _release(self, key: str) -> None:
        with self._lock:
            left = self._active.get(key, 0) - 1
            if left > 0:
                self._active[key] = left
            else:
                self._active.pop(key, None)  # no entry per idle key: the dict stays small


class Releaser(Protocol):
    async def _release(self, key: str) -> None: ...


class Slot:
    def __init__(self, limiter: Releaser, key: str) -> None:
        self._limiter = limiter
        self._key = key
        self._held = True

    async def release(self) -> None:
        if self._held:
            self._held = False
            await self._limiter._release(self._key)


def over_rate(used: int, limit: int, retry_in: float) -> LimitExceeded:
    return LimitExceeded(
        f"too many requests for this API key: {used} this minute, at the limit "
        f"max_requests_per_minute_per_key={limit}; retry in {retry_in:.0f} s",
        code="max_requests_per_minute_per_key")


def over_limit(active: int, limit: int, where: str = "") -> LimitExceeded:
    return LimitExceeded(
        f"too many concurrent requests for this API key: {active} in flight{where}, over the "
        f"limit max_concurrent_per_key={limit}; retry when one finishes",
        code="max_concurrent_per_key")
