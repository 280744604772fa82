"""Responses <-> pipeline translation, the SSE event machine and the response store, in process.

Every streamed event is validated strictly against the openai SDK's own pydantic types.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from switchyard.core.messages import Message, ToolCall
from switchyard.server.errors import InvalidRequest, NotFound, UpstreamRateLimited
from switchyard.server.http.responses.events import ResponseEvents
from switchyard.server.http.responses.store import ResponseStore, StoredResponse
from switchyard.server.http.responses.tools import ToolPlan, plan_tools
from switchyard.server.http.responses.translate import (
    items_to_messages,
    output_items,
    response_body,
    to_chat_request,
)
from switchyard.server.http.responses.wire import (
    ResponsesRequest,
    Turn,
    input_items,
    parse_responses_request,
)
from switchyard.server.pipeline_types import StreamDelta, ToolCallDelta, Usage

EVENTS = TypeAdapter(ResponseStreamEvent)


def call(call_id: str, name: str = "shell", args: str = "{}") -> dict:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": args}


def output(call_id: str, text: str = "ok") -> dict:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def user(text: str) -> dict:
    return {"role": "user", "content": [{"type": "input_text", "text": text}]}


def test_parallel_calls_and_text_join_one_assistant_turn() -> None:
    items = [user("fix it"),
             {"type": "message", "role": "assistant",
              "content": [{"type": "output_text", "text": "Looking."}]},
             {"type": "reasoning", "id": "rs_1", "summary": []},
             call("a"), call("b", "grep", '{"q": 1}'), output("b", "B"), output("a", "A"),
             call("c"), output("c")]
    msgs = items_to_messages(items)
    assert [m.role for m in msgs] == ["user", "assistant", "tool", "tool", "assistant", "tool"]
    assert msgs[1].content == "Looking."
    assert msgs[1].tool_calls == (ToolCall("a", "shell", "{}"), ToolCall("b", "grep", '{"q": 1}'))
    assert (msgs[2].tool_call_id, msgs[2].content) == ("b", "B")
    assert msgs[4].tool_calls == (ToolCall("c", "shell", "{}"),)


@pytest.mark.parametrize("items,param", [
    ([user("x"), output("zz")], "input[1].call_id"),
    ([user("x"), call("a"), user("y")], "input"),
    ([user("x"), call("a")], "input"),
    ([user("x"), call("a"), output("a"), output("a")], "input[3].call_id"),
    ([{"type": "local_shell_call", "id": "x"}], "input[0].type"),
    ([{"role": "user", "content": [{"type": "input_audio"}]}], "input[0].content[0]"),
    ([{"role": "user", "content": 5}], "input[0].content"),
    ([{"type": "function_call", "name": "x"}], "input[0].call_id"),
    ([{"type": "reasoning", "id": "rs"}], "input"),
])
def test_bad_items_name_the_culprit(items: list[dict], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        items_to_messages(items)
    assert info.value.param == param and info.value.status == 400


def test_errors_in_stored_history_name_previous_response_id() -> None:
    history = [user("x"), call("a")]  # a stored turn that ended in a call...
    with pytest.raises(InvalidRequest) as info:
        items_to_messages(history + [user("no output sent")], offset=len(history))
    assert "'a'" in info.value.message
    with pytest.raises(InvalidRequest) as info:
        items_to_messages([{"type": "bogus"}, user("y")], offset=1)
    assert info.value.param == "previous_response_id.type"


def test_images_files_and_string_input() -> None:
    body = ResponsesRequest(model="m", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "what is this"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
        {"type": "input_file", "file_id": "file_1", "filename": "a.pdf"}]}])
    (m,) = items_to_messages(input_items(body))
    assert m.to_openai()["content"] == [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {"type": "file", "file": {"file_id": "file_1", "filename": "a.pdf"}}]
    assert input_items(ResponsesRequest(model="m", input="hi")) == [
        {"type": "message", "role": "user", "content": "hi"}]


def test_request_translation_fields_and_effort_mapping() -> None:
    raw = json.dumps({"model": "switchyard/auto", "input": "hi", "instructions": "be brief",
                      "max_output_tokens": 50, "tool_choice": "required", "store": False,
                      "reasoning": {"effort": "xhigh"}, "parallel_tool_calls": False,
                      "tools": [{"type": "function", "name": "t", "parameters": {}}]}).encode()
    body = parse_responses_request(raw)
    chat = to_chat_request(body, [], input_items(body), {}, raw)
    assert chat.endpoint == "http.responses" and chat.raw_json == raw.decode()
    assert chat.messages == [Message("system", "be brief"), Message("user", "hi")]
    assert chat.params.to_openai() == {"max_tokens": 50, "parallel_tool_calls": False,
                                       "tool_choice": "required"}
    assert chat.overrides.reasoning_effort == "high"  # xhigh clamps to the top effort
    none = parse_responses_request(b'{"model": "m", "input": "x", "reasoning": {"effort": "none"}}')
    assert to_chat_request(none, [], input_items(none), {}, b"").overrides.thinking is False
    header = to_chat_request(body, [], input_items(body),
                             {"x-switchyard-reasoning-effort": "low"}, raw)
    assert header.overrides.reasoning_effort == "low"  # the header beats the body
    with pytest.raises(InvalidRequest) as info:
        parse_responses_request(b'{"model": "m", "input": "x", "reasoning": {"effort": "max"}}')
    assert info.value.param == "reasoning.effort"


def test_flat_and_nested_tools() -> None:
    tools = plan_tools([
        {"type": "function", "name": "a", "description": "A", "parameters": {"type": "object"}},
        {"type": "function", "function": {"name": "b", "parameters": {}}}]).tools
    assert [t.to_openai()["function"]["name"] for t in tools] == ["a", "b"]
    assert tools[0].to_openai()["function"]["parameters"] == {"type": "object"}


def _turn() -> Turn:
    return Turn(ResponsesRequest(model="switchyard/auto", input="hi",
                                 tools=[{"type": "function", "name": "shell", "parameters": {}}]),
                [user("hi")])


def _events(chunks: list[bytes]) -> list[dict]:
    out = []
    for chunk in chunks:
        head, data = chunk.decode().split("\n", 1)
        body = json.loads(data.removeprefix("data: "))
        assert head == f"event: {body['type']}"
        EVENTS.validate_python(body)  # strict: the SDK's own required fields and literals
        out.append(body)
    return out


def test_event_machine_text_then_calls_validates_against_sdk() -> None:
    ev = ResponseEvents(_turn(), "fake-fast")
    chunks = ev.start()
    for delta in [StreamDelta(content="Let me "), StreamDelta(content="look."),
                  StreamDelta(tool_calls=(ToolCallDelta(0, "call_1", "shell", ""),)),
                  StreamDelta(tool_calls=(ToolCallDelta(0, arguments='{"command":'),)),
                  StreamDelta(tool_calls=(ToolCallDelta(0, arguments=' ["ls"]}'),)),
                  StreamDelta(tool_calls=(ToolCallDelta(1, "call_2", "shell", "{}"),)),
                  StreamDelta(finish_reason="tool_calls"),
                  StreamDelta(usage=Usage(10, 5, 2, 1))]:
        chunks += ev.on_delta(delta)
    closing, final = ev.finish()
    events = _events(chunks + closing)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    resp = SDKResponse.model_validate(final)
    assert resp.output_text == "Let me look."
    assert [o.type for o in resp.output] == ["message", "function_call", "function_call"]
    assert resp.output[1].arguments == '{"command": ["ls"]}' and resp.output[2].call_id == "call_2"
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.done"] == \
        [0, 1, 2]
    assert resp.usage.input_tokens == 10 and resp.usage.output_tokens_details.reasoning_tokens == 2
    assert resp.usage.input_tokens_details.cached_tokens == 1


def test_length_finish_is_incomplete_and_failure_is_failed() -> None:
    ev = ResponseEvents(_turn(), "m")
    chunks = ev.start() + ev.on_delta(StreamDelta(content="cut", finish_reason="length"))
    closing, final = ev.finish()
    events = _events(chunks + closing)
    assert events[-1]["type"] == "response.incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    failed = ResponseEvents(_turn(), "m")
    events = _events(failed.start() + failed.fail(UpstreamRateLimited("slow down")))
    assert events[-1]["response"]["error"] == {"code": "rate_limit_exceeded",
                                               "message": "slow down"}


def test_non_stream_body_validates_against_sdk() -> None:
    msg = Message("assistant", "done", tool_calls=(ToolCall("c1", "shell", "{}"),))
    body = response_body(_turn(), model="fake", status="completed", output=output_items(msg, ToolPlan()),
                         usage=Usage(3, 4))
    resp = SDKResponse.model_validate(body)
    assert resp.output_text == "done" and resp.output[1].call_id == "c1"
    assert resp.usage.total_tokens == 7 and resp.tools[0].name == "shell"


def test_store_walks_the_chain_and_names_missing_links(tmp_path: Path) -> None:
    store = ResponseStore.for_data_dir(tmp_path)
    store.put(StoredResponse("r1", "m", "completed", [user("a")], [call("c")], {"id": "r1"}))
    store.put(StoredResponse("r2", "m", "completed", [output("c")], [{"type": "message"}],
                             {"id": "r2"}, previous_response_id="r1"))
    store.put(StoredResponse("r3", "m", "completed", [user("b")], [], {"id": "r3"},
                             previous_response_id="gone"))
    assert store.conversation("r2") == [user("a"), call("c"), output("c"), {"type": "message"}]
    assert store.get("r2").previous_response_id == "r1"  # type: ignore[union-attr]
    with pytest.raises(NotFound) as info:
        store.conversation("nope")
    assert info.value.param == "previous_response_id" and info.value.status == 404
    with pytest.raises(NotFound, match="'gone'"):
        store.conversation("r3")
    store.close()
    reopened = ResponseStore.for_data_dir(tmp_path)  # survives a restart
    assert reopened.count() == 3 and reopened.get("r1").response == {"id": "r1"}  # type: ignore[union-attr]
    reopened.close()


PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
              "format": {"type": "grammar", "syntax": "lark",
                         "definition": 'start: "*** Begin Patch" /(.|\\n)*/ "*** End Patch"'}}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"


def test_custom_tool_is_a_one_string_function_upstream() -> None:
    plan = plan_tools([PATCH_TOOL])
    (tool,) = plan.tools
    params = json.loads(tool.parameters_json)
    assert tool.name == "apply_patch" and plan.custom == {"apply_patch"} and not plan.dropped
    assert params["required"] == ["input"] and params["properties"]["input"]["type"] == "string"
    assert "*** Begin Patch" in tool.description  # the grammar travels in the description
    history = [user("patch it"),
               {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch",
                "input": PATCH},
               {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done!"}]
    _, assistant, result = items_to_messages(history, plan=plan)
    assert json.loads(assistant.tool_calls[0].arguments) == {"input": PATCH}
    assert (result.role, result.tool_call_id, result.content) == ("tool", "c1", "Done!")


def test_custom_tool_call_streams_as_custom_events_and_validates() -> None:
    turn = Turn(ResponsesRequest(model="switchyard/auto", input="hi", tools=[PATCH_TOOL]),
                [user("hi")])
    ev = ResponseEvents(turn, "m")
    args = json.dumps({"input": PATCH})
    chunks = ev.start()
    chunks += ev.on_delta(StreamDelta(tool_calls=(ToolCallDelta(0, "c7", "apply_patch",
                                                                args[:20]),)))
    chunks += ev.on_delta(StreamDelta(tool_calls=(ToolCallDelta(0, arguments=args[20:]),),
                                      finish_reason="tool_calls"))
    closing, final = ev.finish()
    events = _events(chunks + closing)
    assert [e["type"] for e in events][2:] == [
        "response.output_item.added", "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done", "response.output_item.done",
        "response.completed"]
    (item,) = SDKResponse.model_validate(final).output
    assert (item.type, item.call_id, item.name, item.input) == \
        ("custom_tool_call", "c7", "apply_patch", PATCH)
    assert output_items(Message("assistant", None, tool_calls=(
        ToolCall("c7", "apply_patch", args),)), turn.plan)[0]["input"] == PATCH
