"""API keys: created once and shown once, stored hashed, checked on every request.

A key reads `sy_<key id>_<secret>`. The key id (`key_` + 10 hex digits) is public: it is
what `switchyard keys list` shows and what the traffic log's `api_key_id` holds. Only the
SHA-256 of the whole key is stored; with 256 bits of randomness in the secret, a plain hash
is enough (a slow password hash buys nothing against a key nobody can guess).

Two modes (config `auth.mode`):
- "local": no keys; the server refuses to bind a non-loopback host (see `check_bind`).
- "keys": every request needs `Authorization: Bearer <key>` (HTTP) or the same metadata (gRPC).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import ipaddress
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchyard.core.db import Schema
from switchyard.server.errors import ConfigError, NotFound, Unauthenticated

KEY_PREFIX = "sy_"
KEY_PATTERN = re.compile(r"sy_(key_[0-9a-f]{10})_[A-Za-z0-9_-]{20,}")
# Verified key id of the request being served (set at the gRPC edge, read by the servicer).
CURRENT_KEY_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "switchyard_api_key_id", default=None)
_MISSING = ("missing API key: send 'Authorization: Bearer <key>' (create one with "
            "'switchyard keys create')")
_INVALID = "invalid or revoked API key (list keys with 'switchyard keys list')"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    name: str
    created_at: float
    revoked_at: float | None = None
    last4: str = ""  # the secret's last 4 characters, to tell keys apart when listing

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "name": self.name, "created_at": self.created_at,
                "revoked_at": self.revoked_at, "active": self.active, "last4": self.last4}


SCHEMA = Schema("the API key store", key="keys")


@SCHEMA.migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "key_sha256 TEXT NOT NULL, last4 TEXT NOT NULL, created_at REAL NOT NULL, "
        "revoked_at REAL)")


class KeyStore:
    """Hashed keys in SQLite (`<data_dir>/keys.sqlite`). Thread-safe; revocations made by
    another process (the CLI) apply to the next request, since every check reads the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SCHEMA.open(path)
        self._lock = threading.Lock()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _change(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run one write; the number of rows it changed. (PgKeyStore runs the same SQL.)"""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def create(self, name: str = "") -> tuple[KeyInfo, str]:
        """A new key; the returned secret is the only copy there will ever be."""
        key_id = "key_" + secrets.token_hex(5)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        info = KeyInfo(key_id, name, time.time(), None, key[-4:])
        self._change("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                     (key_id, name, _digest(key), info.last4, info.created_at))
        return info, key

    def list(self) -> list[KeyInfo]:
        rows = self._rows("SELECT key_id, name, created_at, revoked_at, last4 "
                          "FROM api_keys ORDER BY created_at")
        return [KeyInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def revoke(self, key_id: str) -> KeyInfo:
        changed = self._change("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND "
                               "revoked_at IS NULL", (time.time(), key_id))
        if changed == 0 and not self._rows("SELECT 1 FROM api_keys WHERE key_id = ?", (key_id,)):
            raise NotFound(f"no API key with id {key_id!r} (see 'switchyard keys list')",
                           param="key_id")
        return next(k for k in self.list() if k.key_id == key_id)

    def verify(self, key: str) -> str:
        """The key id of a valid, unrevoked key; `Unauthenticated` otherwise (never 500)."""
        match = KEY_PATTERN.fullmatch(key)
        if match is None:
            raise Unauthenticated(_INVALID, code="invalid_api_key")
        found = self._rows("SELECT key_sha256, revoked_at FROM api_keys WHERE key_id = ?",
                           (match.group(1),))
        row = found[0] if found else None
        if row is None or row[1] is not None or not hmac.compare_digest(row[0], _digest(key)):
            raise Unauthenticated(_INVALID, code="invalid_api_key")
        return match.group(1)

    def close(self) -> None:
        self._db.close()


class Authenticator:
    """The one check both front doors call: a credential in, a key id (or None) out."""

    def __init__(self, mode: str, store: KeyStore | None) -> None:
        if mode == "keys" and store is None:
            raise ConfigError("auth.mode 'keys' needs a key store")
        self.mode = mode
        self.store = store

    @classmethod
    def from_config(cls, config: Any, store: KeyStore | None = None) -> Authenticator:
        """`store`: the shared one (PostgreSQL); default: the SQLite file of `keys_path`."""
        if config.auth.mode == "local":
            return cls("local", None)
        return cls("keys", store or KeyStore(keys_path(config)))

    @property
    def required(self) -> bool:
        return self.mode == "keys"

    def check(self, authorization: Iterable[str]) -> str | None:
        """`authorization`: every Authorization header / metadata value the caller sent."""
        if not self.required:
            return None
        values = list(authorization)
        if not values:
            raise Unauthenticated(_MISSING, code="missing_api_key")
        scheme, _, key = values[0].strip().partition(" ")
        if len(values) > 1 or scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("the Authorization value must be exactly one 'Bearer <key>'",
                                  code="invalid_api_key")
        assert self.store is not None
        return self.store.verify(key.strip())

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def keys_path(config: Any) -> Path:
    return config.auth.keys_file or config.server.data_dir / "keys.sqlite"


def check_bind(mode: str, host: str) -> None:
    """Local mode has no keys, so it may only listen on loopback."""
    if mode == "local" and not is_loopback(host):
        raise ConfigError(
            f"auth.mode is 'local' (no API keys) but server.host is {host!r}, which is not a "
            "loopback address; bind 127.0.0.1, or set auth.mode: keys and create keys with "
            "'switchyard keys create'")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
