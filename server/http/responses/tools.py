"""Responses API tools -> Chat Completions function tools, and the model's calls back.

A Responses request offers four kinds of tool (Codex 0.171 sends the first, second and
fourth at once; `custom` ones when it knows the model takes them):
- `function` tools, flat (`{type, name, parameters}`) or in the nested chat shape;
- `namespace` tools: a named group of functions (Codex's `multi_agent_v1`). A Chat
  Completions upstream has no groups, so each member becomes one function named
  `<namespace>__<name>` (the spelling Codex itself uses for MCP tools), and a call of that
  name goes back to the client as `{"name": <name>, "namespace": <namespace>}`, the two
  separate fields Codex's `function_call` item carries;
- freeform `custom` tools (Codex's `apply_patch` for models trained on it): a function of
  the same name taking one string, `input`; the call goes back as a `custom_tool_call` with
  that string as its `input`;
- tools the provider runs itself (`web_search`, `file_search`, `computer_use`, ...). Only a
  deployment that speaks the Responses API can run them; for the others they are left out,
  named in `dropped`, never refused: the user did not choose the tool list, the client did.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from switchyard.core.messages import ToolDefinition
from switchyard.server.errors import InvalidRequest

SEPARATOR = "__"
_VALID_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what Chat Completions accepts
CUSTOM_PARAMETERS = json.dumps({
    "type": "object", "additionalProperties": False, "required": ["input"],
    "properties": {"input": {"type": "string", "description": "The tool's raw input."}}})


@dataclass(slots=True)
class ToolPlan:
    """The function tools to send upstream, and how to name their calls for the client."""

    tools: list[ToolDefinition] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # tool types left out, in request order
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # flat -> (ns, name)
    custom: set[str] = field(default_factory=set)  # names of freeform tools
    _flat: dict[tuple[str, str], str] = field(default_factory=dict)

    def flat(self, namespace: str | None, name: str) -> str:
        """The upstream name of `name` in `namespace` (None: a plain function)."""
        if not namespace:
            return name
        return self._flat.get((namespace, name)) or flat_name(namespace, name)

    def client_call(self, flat: str) -> tuple[str | None, str]:
        """(namespace, name) of a call the model made by its flat name."""
        return self.namespaced.get(flat, (None, flat))

    def add_namespaced(self, namespace: str, name: str) -> str:
        flat = flat_name(namespace, name)
        taken = {t.name for t in self.tools}
        if flat in taken:  # a plain function already has this spelling: disambiguate
            flat = _hashed(namespace, name)
        self._flat[(namespace, name)] = flat
        self.namespaced[flat] = (namespace, name)
        return flat


def flat_name(namespace: str, name: str) -> str:
    """`ns__name` when that is a valid, short enough function name, else a hashed form.

    Deterministic, so the same tools give the same names on every turn of a conversation
    (Codex resends its whole history, calls included, each turn).
    """
    flat = f"{namespace}{SEPARATOR}{name}"
    return flat if _VALID_NAME.match(flat) else _hashed(namespace, name)


def _hashed(namespace: str, name: str) -> str:
    digest = hashlib.blake2b(f"{namespace}\x00{name}".encode(), digest_size=4).hexdigest()
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", f"{namespace}{SEPARATOR}{name}")
    return f"{safe[:55]}_{digest}"


def plan_tools(raw: list[Any] | None) -> ToolPlan:
    """Split a Responses `tools` list into upstream functions and what was left out."""
    plan = ToolPlan()
    namespaces: list[tuple[int, dict[str, Any]]] = []
    for i, tool in enumerate(raw or []):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(kind, str):
            raise InvalidRequest(f"{where} must be an object with a type string",
                                 param=f"{where}.type")
        if kind == "function":
            plan.tools.append(_function(tool, where))
        elif kind == "custom":
            plan.tools.append(_custom(tool, where))
            plan.custom.add(plan.tools[-1].name)
        elif kind == "namespace":
            namespaces.append((i, tool))
        else:
            plan.dropped.append(kind)
    for i, tool in namespaces:  # after the plain functions, so a clash renames the member
        _namespace(plan, tool, f"tools[{i}]")
    return plan


def _function(tool: dict[str, Any], where: str) -> ToolDefinition:
    if isinstance(tool.get("function"), dict):  # the nested Chat Completions shape
        return ToolDefinition.from_openai(tool)
    name, params = tool.get("name"), tool.get("parameters") or {}
    if not isinstance(name, str) or not name or not isinstance(params, dict):
        raise InvalidRequest(f"{where} needs a name string and parameters object",
                             param=f"{where}.name")
    return ToolDefinition(name, str(tool.get("description") or ""), json.dumps(params))


def _custom(tool: dict[str, Any], where: str) -> ToolDefinition:
    name, fmt = tool.get("name"), tool.get("format") or {}
    if not isinstance(name, str) or not _VALID_NAME.match(name):
        raise InvalidRequest(f"{where}: a custom tool needs a name of letters, digits, _ or -",
                             param=f"{where}.name")
    about = str(tool.get("description") or "")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and fmt.get("definition"):
        about += (f"\n\nPut the raw input in `input`; it must follow this "
                  f"{fmt.get('syntax') or ''} grammar:\n{fmt['definition']}")
    return ToolDefinition(name, about, CUSTOM_PARAMETERS)


def custom_input(arguments: str) -> str:
    """A custom tool's raw input, from the one-string arguments the model sent."""
    try:
        value = json.loads(arguments).get("input")
    except (ValueError, AttributeError):
        return arguments  # not the JSON we asked for: pass what the model wrote
    return value if isinstance(value, str) else arguments


def custom_arguments(raw_input: str) -> str:
    return json.dumps({"input": raw_input})


def _namespace(plan: ToolPlan, tool: dict[str, Any], where: str) -> None:
    namespace, members = tool.get("name"), tool.get("tools")
    if not isinstance(namespace, str) or not namespace or not isinstance(members, list):
        raise InvalidRequest(f"{where}: a namespace tool needs a name string and a tools list",
                             param=f"{where}.name")
    about = str(tool.get("description") or "")
    for j, member in enumerate(members):
        here = f"{where}.tools[{j}]"
        if not isinstance(member, dict) or member.get("type") != "function":
            kind = member.get("type") if isinstance(member, dict) else None
            plan.dropped.append(f"{namespace}.{kind}")
            continue
        fn = _function(member, here)
        flat = plan.add_namespaced(namespace, fn.name)
        description = f"[{namespace}: {about}] {fn.description}" if about else fn.description
        plan.tools.append(ToolDefinition(flat, description, fn.parameters_json))
