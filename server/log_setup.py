"""Structured logs: one JSON object per line, with the request id, and never a secret.

Every line passes a `Redactor` last, after formatting (tracebacks included), so API keys
(`sy_key_...`), `Bearer` tokens, Authorization header values and configured provider keys
never reach the log, whichever logger or library wrote the line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping
from typing import IO, Any

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "switchyard_request_id", default=None)
REDACTED = "[REDACTED]"
_PATTERNS = (
    re.compile(r"sy_key_[0-9a-f]{10}_[A-Za-z0-9_-]+"),  # our API keys (see server/auth.py)
    re.compile(r"(?i)(?<=bearer )\s*[^\s\"',]+"),
    re.compile(r"(?i)(?<=authorization)([\"']?\s*[:=,]\s*[\"']?)(?!\[REDACTED\])[^\"',}\s]+"
               r"(\s+[^\"',}\s]+)?"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style provider keys
)
_MIN_SECRET = 8  # shorter configured "secrets" would redact ordinary words


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET},
                              key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            if pattern.groups:
                text = pattern.sub(lambda m: (m.group(1) or "") + REDACTED, text)
            else:
                text = pattern.sub(REDACTED, text)
        return text


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            out["request_id"] = request_id
        out.update(getattr(record, "fields", None) or {})  # e.g. the access line's
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return self.redactor.redact(json.dumps(out, default=str))


class RedactingFilter(logging.Filter):
    """For handlers with another formatter: redact the message before it is formatted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        return True


def configured_secrets(config: Any, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Provider keys from the config, inline or through the environment variables it names."""
    out = []
    for d in config.models.all():
        if d.api_key is not None:
            out.append(d.api_key.get_secret_value())
        if d.api_key_env and environ.get(d.api_key_env):
            out.append(environ[d.api_key_env])
    return out


def setup_logging(config: Any, *, level: int = logging.INFO, stream: IO[str] | None = None,
                  environ: Mapping[str, str] = os.environ) -> logging.Handler:
    """JSON lines on stderr (or `stream`) for the root logger; uvicorn's loggers propagate."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(Redactor(configured_secrets(config, environ))))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # faiss's loader reports at INFO each CPU-specific build it could not load (about 7
    # "Could not load library" lines on every start); only its warnings matter to us.
    logging.getLogger("faiss.loader").setLevel(max(level, logging.WARNING))
    return handler
