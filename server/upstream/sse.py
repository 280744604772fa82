"""The SSE reader for OpenAI-compatible streams: bytes in, chunk dicts out."""

from __future__ import annotations

import json
from typing import Any

from switchyard.server.config import Deployment
from switchyard.server.errors import UpstreamError


class SSEReader:
    """Splits streamed bytes into `data:` events; whole lines only, the rest waits."""

    def __init__(self, d: Deployment) -> None:
        self.name = d.public_name
        self.pending = b""
        self.done = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        *lines, self.pending = (self.pending + data).split(b"\n")
        batch = []
        for raw in lines:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.done = True
                break
            try:
                batch.append(json.loads(payload))
            except ValueError:
                raise UpstreamError(f"model {self.name!r} streamed malformed JSON",
                                    code="stream_error") from None
        return batch
