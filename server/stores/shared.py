"""State replicas share through Redis: per-key concurrency slots and upstream cooldowns.

- `RedisLimiter`: a key's slots are members of one sorted set, scored by when their lease
  runs out. One Lua script drops expired leases, counts, and adds a slot or refuses, so two
  replicas can never both take the last slot; it also counts the key's requests in the
  current minute (INCR + EXPIRE) when a per-minute limit is set. A lease outlives the longest request
  (`upstream.request_timeout` + a minute); a replica killed with -9 leaks its slots only
  until then, never for good.
- `SharedCooldowns`: a replica that cools a deployment publishes it (and writes a key that
  expires with the cooldown, for replicas that start later); every replica listens and
  cools the same deployment locally, so the hot path never waits on Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from switchyard.server.errors import ConfigError
from switchyard.server.limits import LOCAL_KEY, Slot, over_limit, over_rate

logger = logging.getLogger(__name__)
PREFIX = "switchyard:"
COOLDOWN_CHANNEL = PREFIX + "cooldowns"
# KEYS: the key's slot set, its per-minute counter prefix. ARGV: max slots, lease seconds,
# slot id, requests per minute (0: no limit). Returns {status, count, seconds left in the
# minute}: status 0 rate-limited, 1 no slot free, 2 slot taken.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local per_minute = tonumber(ARGV[4])
local counter = KEYS[2] .. math.floor(now / 60)
if per_minute > 0 then
    local used = tonumber(redis.call('GET', counter) or '0')
    if used >= per_minute then return {0, used, 60 - math.floor(now % 60)} end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[1]) then return {1, n, 0} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
if per_minute > 0 then
    redis.call('INCR', counter)
    redis.call('EXPIRE', counter, 120)
end
return {2, n + 1, 0}
"""


def connect(url: str) -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError:
        raise ImportError("server.redis_url needs redis-py: pip install 'switchyard[scale]'") \
            from None
    return aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


class RedisLimiter:
    """`ConcurrencyLimiter`'s two calls, counted across every replica on one Redis."""

    def __init__(self, client: Any, max_per_key: int, lease_seconds: float,
                 per_minute: int | None = None) -> None:
        self.client = client
        self.max_per_key = max_per_key
        self.lease_seconds = lease_seconds
        self.per_minute = per_minute
        self._script = client.register_script(_ACQUIRE)

    async def acquire(self, key_id: str | None) -> Slot:
        slot = f"{key_id or LOCAL_KEY}\x00{uuid.uuid4().hex}"
        status, count, retry_in = await self._script(
            keys=[_slots_key(key_id), f"{PREFIX}rate:{key_id or LOCAL_KEY}:"],
            args=[self.max_per_key, self.lease_seconds, slot, self.per_minute or 0])
        if status == 0:
            raise over_rate(int(count), self.per_minute or 0, float(retry_in))
        if status == 1:
            raise over_limit(int(count), self.max_per_key, " across all replicas")
        return Slot(self, slot)

    async def in_flight(self, key_id: str | None) -> int:
        return int(await self.client.zcount(_slots_key(key_id), time.time(), "+inf"))

    async def _release(self, slot: str) -> None:
        key_id = slot.partition("\x00")[0]
        # shielded: a request cancelled mid-release must still give its slot back
        await asyncio.shield(self.client.zrem(_slots_key(key_id), slot))


class SharedCooldowns:
    """Relays cooldowns between replicas. `cool(name, seconds)` is what this replica saw;
    `apply(name, until)` is called for every cooldown any replica saw (this one included)."""

    def __init__(self, client: Any, apply: Callable[[str, float], None]) -> None:
        self.client = client
        self.apply = apply
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        """Subscribe, then load the cooldowns still running (subscribing first: none is
        missed between the two)."""
        from redis.exceptions import RedisError

        try:
            await self.client.ping()
            self._listener = asyncio.create_task(self._listen())
            await asyncio.wait_for(self._subscribed.wait(), 10)
            async for key in self.client.scan_iter(match=PREFIX + "cooldown:*"):
                until = await self.client.get(key)
                if until is not None:
                    self.apply(key.decode()[len(PREFIX + "cooldown:"):], float(until))
        except (RedisError, OSError, TimeoutError) as exc:
            await self.aclose()
            raise ConfigError(f"cannot use Redis at server.redis_url: {exc}") from None

    def cool(self, name: str, seconds: float) -> None:
        """Tell the other replicas; fire and forget (the caller is the upstream hot path)."""
        until = time.time() + seconds
        task = asyncio.get_running_loop().create_task(self._publish(name, until, seconds))
        task.add_done_callback(_log_failure)

    async def _publish(self, name: str, until: float, seconds: float) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(PREFIX + "cooldown:" + name, until, px=max(1, int(seconds * 1000)))
            pipe.publish(COOLDOWN_CHANNEL, json.dumps({"name": name, "until": until}))
            await pipe.execute()

    async def _listen(self) -> None:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(COOLDOWN_CHANNEL)
        self._subscribed.set()
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    data = json.loads(message["data"])
                    self.apply(str(data["name"]), float(data["until"]))
        finally:
            await pubsub.aclose()

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener


def _slots_key(key_id: str | None) -> str:
    return f"{PREFIX}slots:{key_id or LOCAL_KEY}"


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("could not share a cooldown through Redis: %s", task.exception())
