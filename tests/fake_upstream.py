"""A local OpenAI-compatible chat server that behaves like a provider, for tests and benches.

It answers `/v1/chat/completions` (plain and SSE streaming, tool calls, usage with reasoning
tokens for models whose name contains "think"), with configurable latency and scripted faults
queued with `enqueue()`: HTTP errors (500, 429 with retry-after), hangs past a timeout,
malformed bodies and streams cut mid-way. It counts requests whose client went away
(`cancelled`), which is how tests prove that cancellation reaches the upstream. With
`reasoning` set, requests that carry a reasoning knob get it back as `reasoning_content`; a
latest user turn saying `call NAME with {json}` makes it call that tool (benches drive real
clients' tools this way).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Fault:
    status: int | None = None  # answer with this HTTP status and an OpenAI error body
    retry_after: float | None = None
    hang: float | None = None  # sleep this long before answering
    malformed: bool = False  # a 200 with a body that is not JSON
    cut_after: int | None = None  # streaming: drop the connection after N chunks
    code: str | None = None  # error code in the body (e.g. context_length_exceeded)


@dataclass
class FakeUpstream:
    latency: float = 0.0
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    native: list[dict[str, Any]] = field(default_factory=list)  # bodies sent to /v1/responses
    cancelled: int = 0
    completed: int = 0
    record: bool = True
    port: int = 0
    fault_rate: float = 0.0  # share of unscripted requests given a random fault (soak bench)
    fault_hang: float = 2.0  # how long a random hang lasts (set it past the deployment timeout)
    seed: int = 0
    reasoning: str = ""  # sent as reasoning_content by models given a reasoning knob
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def enqueue(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/responses", self._responses, methods=["POST"]),
        ])

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeUpstream:
        # proto=IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections; with the
        # default proto 0 it does not, and every response stalls 40 ms on delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off",
                                timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(timeout=10)

    def _random_fault(self, body: dict[str, Any]) -> Fault | None:
        if not self.fault_rate:
            return None
        rng = self.__dict__.setdefault("_rng", random.Random(self.seed))
        if rng.random() >= self.fault_rate:
            return None
        kinds = [Fault(status=500), Fault(status=429, retry_after=0.05),
                 Fault(hang=self.fault_hang), Fault(malformed=True)]
        if body.get("stream"):
            kinds.append(Fault(cut_after=2))
        return rng.choice(kinds)

    # -- handlers --------------------------------------------------------------------
    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": []})

    async def _responses(self, request: Request) -> Response:
        """A provider's own Responses endpoint: one text answer naming the hosted tools."""
        body = await request.json()
        self.native.append(body)
        fault = self.faults.popleft() if self.faults else None
        if fault and fault.status:
            return JSONResponse({"error": {"message": f"injected {fault.status}",
                                           "type": "server_error", "param": None,
                                           "code": fault.code}}, status_code=fault.status)
        hosted = sorted({t["type"] for t in body.get("tools") or [] if t.get("type") not in
                         ("function", "namespace")})
        text = f"Native answer with {', '.join(hosted) or 'no hosted tools'}"
        usage = {"input_tokens": len(json.dumps(body.get("input"))) // 4,
                 "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}
        response = {"id": "resp_native", "object": "response", "status": "completed",
                    "model": body.get("model"), "usage": usage, "output": [
                        {"type": "message", "id": "msg_native", "role": "assistant",
                         "status": "completed", "content": [
                             {"type": "output_text", "text": text, "annotations": []}]}]}
        self.completed += 1
        if not body.get("stream"):
            return JSONResponse(response)
        events = [{"type": "response.created", "response": {**response, "status": "in_progress",
                                                             "output": []}},
                  {"type": "response.output_text.delta", "item_id": "msg_native",
                   "output_index": 0, "content_index": 0, "delta": text},
                  {"type": "response.output_item.done", "output_index": 0,
                   "item": response["output"][0]},
                  {"type": "response.completed", "response": response}]
        sse = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
        return Response(sse, media_type="text/event-stream")

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        if self.record:
            self.requests.append(body)
        fault = self.faults.popleft() if self.faults else self._random_fault(body)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            if fault and fault.hang:
                await asyncio.sleep(fault.hang)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if fault and fault.status:
            headers = {"retry-after": str(fault.retry_after)} if fault.retry_after else {}
            return JSONResponse(
                {"error": {"message": f"injected {fault.status}", "type": "server_error"
                           if fault.status >= 500 else "invalid_request_error",
                           "param": None, "code": fault.code}},
                status_code=fault.status, headers=headers)
        if fault and fault.malformed:
            return Response("{not json", media_type="application/json")
        answer = _answer(body, self.reasoning)
        if body.get("stream"):
            return StreamingResponse(self._stream(body, answer, fault, request),
                                     media_type="text/event-stream")
        self.completed += 1
        return JSONResponse(_completion(body, answer))

    async def _stream(self, body: dict[str, Any], answer: Answer, fault: Fault | None,
                      request: Request):  # type: ignore[no-untyped-def]
        chunks = _chunks(body, answer)
        try:
            for i, chunk in enumerate(chunks):
                if fault and fault.cut_after is not None and i >= fault.cut_after:
                    raise ConnectionResetError("injected stream cut")
                yield f"data: {json.dumps(chunk)}\n\n"
                await asyncio.sleep(self.latency / 20 if self.latency else 0)
            yield "data: [DONE]\n\n"
            self.completed += 1
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise


# "call NAME with {json}" in the latest user turn: the model calls that tool with those args.
_SCRIPTED_CALL = re.compile(r"call (\w+) with (\{.*\})", re.DOTALL)


@dataclass
class Answer:
    text: str
    tool_name: str | None
    tool_args: str
    reasoning: str = ""


def _answer(body: dict[str, Any], reasoning: str = "") -> Answer:
    answer = _plain_answer(body)
    if reasoning and (body.get("reasoning_effort") or body.get("thinking")):
        answer.reasoning = reasoning  # like vLLM / DeepSeek / LiteLLM's reasoning_content
    return answer


def _plain_answer(body: dict[str, Any]) -> Answer:
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    content = _text(last)
    tools = body.get("tools") or []
    if last.get("role") == "tool":
        return Answer(f"The tool returned: {content}", None, "")
    users = [m for m in messages if m.get("role") == "user"]
    scripted = _SCRIPTED_CALL.search(_text(users[-1])) if users else None
    if scripted and scripted[1] in {t["function"]["name"] for t in tools}:
        return Answer("", scripted[1], scripted[2])  # benches script a real client's tool use
    choice = body.get("tool_choice")
    if isinstance(choice, dict):  # a named function: call that one
        return Answer("", choice["function"]["name"], json.dumps({"query": content[:80]}))
    if tools and ("tool" in content.lower() or choice == "required"):
        name = tools[0]["function"]["name"]
        return Answer("", name, json.dumps({"query": content[:80]}))
    return Answer(f"You said: {content}", None, "")


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _usage(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    prompt = sum(len(str(m.get("content") or "").split()) + 4 for m in body.get("messages", []))
    completion = len(answer.text.split()) + len(answer.tool_args.split())
    effort = body.get("reasoning_effort")
    thinking = "think" in str(body.get("model", ""))
    reasoning = {"minimal": 8, "low": 64, "medium": 256, "high": 1024}.get(effort or "medium", 256) \
        if thinking else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion + reasoning,
        "total_tokens": prompt + completion + reasoning,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _completion(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    finish = "stop"
    if answer.tool_name:
        message["tool_calls"] = [{"id": "call_fake_1", "type": "function",
                                  "function": {"name": answer.tool_name,
                                               "arguments": answer.tool_args}}]
        finish = "tool_calls"
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(body, answer),
    }


def _chunks(body: dict[str, Any], answer: Answer) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    for i in range(0, len(answer.reasoning), 16):
        out.append(chunk({"reasoning_content": answer.reasoning[i:i + 16]}))
    if answer.tool_name:
        out.append(chunk({"tool_calls": [{"index": 0, "id": "call_fake_1", "type": "function",
                                          "function": {"name": answer.tool_name,
                                                       "arguments": ""}}]}))
        args = answer.tool_args
        for i in range(0, len(args), 8):
            out.append(chunk({"tool_calls": [{"index": 0,
                                              "function": {"arguments": args[i:i + 8]}}]}))
        out.append(chunk({}, "tool_calls"))
    else:
        words = answer.text.split(" ")
        for i, word in enumerate(words):
            out.append(chunk({"content": word if i == 0 else " " + word}))
        out.append(chunk({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": body.get("model"), "choices": [],
                    "usage": _usage(body, answer)})
    return out


if __name__ == "__main__":  # python -m tests.fake_upstream [PORT] (benches, manual runs)
    import sys

    fake = FakeUpstream(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8999, record=False)
    fake.start()
    print(f"fake upstream on {fake.base_url}", flush=True)
    threading.Event().wait()
