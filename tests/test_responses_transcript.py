"""Multi-turn coding-agent exchanges replayed through POST /v1/responses.

1. A real SWE-agent trajectory (native tool calls), replayed the way Codex runs with
   `store: false`: every turn resends the whole history as Responses items. The upstream must
   receive exactly the trajectory's chat messages at every turn (translation fidelity).
2. A Codex-style loop chained with `previous_response_id`: the agent calls a shell tool,
   returns outputs, and Codex's `reasoning` items ride along in the input.
"""

from __future__ import annotations

import json
from typing import Any

import openai
from switchyard.compaction.trajectories import load_swe_agent
from switchyard.core.messages import Message, to_openai_messages
from switchyard.server.http.responses.native import messages_to_items
from switchyard.server.http.responses.tools import ToolPlan

from tests.conftest import ServerThread
from tests.data import TRAJECTORIES
from tests.fake_upstream import FakeUpstream

TRAJ = ("swe-agent/trajectories__demonstrations__replay__marshmallow-code__marshmallow-1867__"
        "function_calling__install-1__marshmallow-code__marshmallow-1867.traj")
SHELL = [{"type": "function", "name": "shell", "description": "Run a shell command",
          "parameters": {"type": "object", "properties": {"command": {"type": "array",
                                                                      "items": {"type": "string"}}},
                         "required": ["command"]}}]


def flat_tools(messages: list[Message]) -> list[dict[str, Any]]:
    names = sorted({c.name for m in messages for c in m.tool_calls})
    return [{"type": "function", "name": n, "description": f"SWE-agent command {n}",
             "parameters": {"type": "object", "properties": {}}} for n in names]


def test_swe_agent_trajectory_replays_with_full_fidelity(proxy: ServerThread,
                                                          fake_upstream: FakeUpstream) -> None:
    messages = load_swe_agent(TRAJECTORIES / TRAJ).messages
    assert messages[0].role == "system"
    c = openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0)
    tools = flat_tools(messages)
    cuts = [t for t in range(2, len(messages)) if messages[t].role == "assistant"]
    assert len(cuts) >= 4
    for turn, t in enumerate(cuts):
        history = messages[1:t]
        kwargs: dict[str, Any] = {"model": "switchyard/auto", "instructions": messages[0].content,
                                      "input": messages_to_items(history, ToolPlan()), "tools": tools, "store": False}
        if turn % 2:
            events = list(c.responses.create(stream=True, **kwargs))
            assert events[-1].type == "response.completed", events[-1]
            status = events[-1].response.status
        else:
            status = c.responses.create(**kwargs).status
        assert status == "completed"
        sent = fake_upstream.requests[-1]
        assert sent["messages"] == to_openai_messages(messages[:t]), f"turn {turn} differs"
        assert [tool["function"]["name"] for tool in sent["tools"]] == \
            [tool["name"] for tool in tools]
    assert len(fake_upstream.requests) == len(cuts)


def test_codex_style_loop_chained_by_previous_response_id(proxy: ServerThread,
                                                          fake_upstream: FakeUpstream) -> None:
    c = openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0)
    instructions = "You are Codex, a coding agent. Use the shell tool."
    tasks = ["use the tool to list the repository", "use the tool to open setup.py"]
    outputs = ["README.md\nsetup.py\nsrc/", "from setuptools import setup\nsetup(name='demo')"]
    previous: str | None = None
    expected: list[dict[str, Any]] = [{"role": "system", "content": instructions}]
    turns = 0
    for task, output in zip(tasks, outputs):
        # turn A: the user asks; the model calls the shell tool (streamed, as Codex does)
        events = list(c.responses.create(
            model="switchyard/auto", instructions=instructions, tools=SHELL, stream=True,
            previous_response_id=previous, reasoning={"effort": "medium"},
            input=[{"type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": task}]}]))
        final = events[-1].response
        assert events[-1].type == "response.completed" and final.status == "completed"
        (call,) = final.output
        assert call.type == "function_call" and call.name == "shell"
        expected += [{"role": "user", "content": task},
                     {"role": "assistant", "content": None, "tool_calls": [{
                         "id": call.call_id, "type": "function",
                         "function": {"name": "shell", "arguments": call.arguments}}]}]
        # turn B: Codex runs the command and sends the output (plus an opaque reasoning item)
        answer = c.responses.create(
            model="switchyard/auto", instructions=instructions, tools=SHELL,
            previous_response_id=final.id, reasoning={"effort": "medium"},
            input=[{"type": "reasoning", "id": "rs_1", "summary": [],
                    "encrypted_content": "opaque"},
                   {"type": "function_call_output", "call_id": call.call_id, "output": output}])
        assert answer.output_text == f"The tool returned: {output}"
        expected += [{"role": "tool", "tool_call_id": call.call_id, "content": output},
                     {"role": "assistant", "content": answer.output_text}]
        previous = answer.id
        turns += 2
        assert fake_upstream.requests[-1]["messages"] == expected[:-1]
        # Codex always sends reasoning.effort: an exact knob, so the thinking group answers
        assert fake_upstream.requests[-1]["reasoning_effort"] == "medium"
        assert fake_upstream.requests[-1]["model"] == "fake-think"
    assert turns >= 4
    last = c.responses.create(model="switchyard/auto", previous_response_id=previous,
                              input="summarise what you found")
    assert fake_upstream.requests[-1]["messages"] == [
        *expected[1:], {"role": "user", "content": "summarise what you found"}]
    assert json.loads(json.dumps(last.model_dump()))["previous_response_id"] == previous
