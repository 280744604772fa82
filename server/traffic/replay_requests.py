"""Every front door's logged request, read back as a Chat Completions body for replay.

The traffic log keeps each request as its door received it: Chat Completions JSON, a
Responses body, or (gRPC, which has no JSON body) the Chat Completions form of the request
the servicer built. Replay and training read chat messages, so each door's body goes back
through that door's own translation (a new door adds its converter to CONVERTERS). Other
rows are read as Chat Completions when they parse as such; anything else (a refused
request's capped body, a door without a converter) is unreadable: replay skips and counts
it, never crashes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from switchyard.core.messages import parse_messages, parse_tools
from switchyard.server.errors import SwitchyardError


def _responses(raw: str) -> str:
    from switchyard.server.http.responses.translate import to_chat_request
    from switchyard.server.http.responses.wire import input_items, parse_responses_request

    data = raw.encode()
    body = parse_responses_request(data)
    # previous_response_id history lives in the Responses store, not in the log: the
    # replayed request is the turn's own items (Codex sends store=false and whole histories).
    chat = to_chat_request(body, [], input_items(body), {}, data)
    return json.dumps(chat.to_openai())


def _messages(raw: str) -> str:
    from switchyard.server.http.messages.translate import replay_json

    return replay_json(raw)


CONVERTERS: dict[str, Callable[[str], str]] = {"http.responses": _responses,
                                               "http.messages": _messages}


def replay_body(endpoint: str, request_json: str) -> str:
    """The logged request as Chat Completions JSON; ValueError when it cannot be read."""
    try:
        convert = CONVERTERS.get(endpoint)
        if convert is not None:
            return convert(request_json)
        body = json.loads(request_json)
    except SwitchyardError as exc:
        raise ValueError(f"{endpoint} request: {exc.message}") from None
    if not isinstance(body, dict):
        raise ValueError(f"{endpoint} request is not a JSON object")  # noqa: TRY004
    parse_messages(body.get("messages"))  # ChatFormatError is a ValueError
    parse_tools(body.get("tools"))
    return request_json
