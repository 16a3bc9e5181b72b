"""The offline development model: deterministic, non-reasoning, no network, no weights.

It exists so that a fresh install (no API key) can run a task end to end. It only
acknowledges the task: it quotes the task name (a line like ``Task: <name>`` in the
instructions) and the first instruction line, reads the task details once if a tool for
that is offered, and calls a finish-like tool with that acknowledgement as the summary.
Every text it writes starts with ``OFFLINE_BANNER`` so nobody mistakes it for real work.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from flows.runtime.messages import ChatMessage, ModelReply, ToolCall, ToolSpec
from flows.runtime.providers import OFFLINE_PROVIDER

OFFLINE_BANNER = "[offline development model]"
_NOTE = (
    "This deterministic offline model does not reason or do the task; "
    "configure a real model on the bot (e.g. openai/gpt-4o-mini) for that."
)
_QUOTE_LIMIT = 160
_TASK_LINE = re.compile(r"^\s*(?:#+\s*)?task(?:\s+name)?\s*[:=-]\s*(\S.*?)\s*$", re.I | re.M)
_FINISH_WORDS = frozenset({"finish", "finished", "complete", "completed", "done", "end"})
_READ_VERBS = frozenset({"read", "get", "fetch", "load", "show", "describe"})
_READ_NOUNS = frozenset({"task", "details", "detail", "instructions", "instruction"})
_SUMMARY_FIELDS = frozenset({"summary", "result", "message", "text", "output", "content"})


class OfflineChatModel:
    """``offline/<anything>``: the same conversation and tools always give the same reply."""

    def __init__(self, model: str = "dev") -> None:
        self._name = f"{OFFLINE_PROVIDER}/{model}"

    @property
    def name(self) -> str:
        """``offline/<model>``."""
        return self._name

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> ModelReply:
        """Read the details once, then finish with an acknowledgement, then just say it."""
        called = {call.name for m in messages for call in m.tool_calls}
        # Ids only need to be unique within the conversation: number them by turn.
        turn = 1 + sum(1 for m in messages if m.role == "assistant")
        acknowledgement = _acknowledge(messages)

        reader = _find_tool(tools, _is_read_details_tool)
        if reader is not None and reader.name not in called and not _required(reader):
            return ModelReply(
                model=self._name,
                text=f"{OFFLINE_BANNER} Reading the task details first.",
                tool_calls=(ToolCall(id=f"offline_call_{turn}", name=reader.name),),
                finish_reason="tool_calls",
            )

        finisher = _find_tool(tools, _is_finish_tool)
        if finisher is not None and finisher.name not in called:
            arguments = _fill_arguments(finisher, acknowledgement)
            if arguments is not None:
                call = ToolCall(id=f"offline_call_{turn}", name=finisher.name, arguments=arguments)
                return ModelReply(
                    model=self._name,
                    text=acknowledgement,
                    tool_calls=(call,),
                    finish_reason="tool_calls",
                )
        return ModelReply(model=self._name, text=f"{acknowledgement} {_NOTE}", finish_reason="stop")


def _acknowledge(messages: Sequence[ChatMessage]) -> str:
    """The one-line acknowledgement: banner, task name, first instruction line."""
    instructions = [m.content for m in messages if m.role in ("system", "user") and m.content]
    task_name = None
    for text in instructions:
        match = _TASK_LINE.search(text)
        if match is not None:
            task_name = match.group(1)
            break
    first_user = next((m.content for m in messages if m.role == "user" and m.content), "")
    lines = [line.strip() for line in first_user.splitlines() if line.strip()]
    # The task-name line is quoted separately; the instruction is the first line after it.
    body = [line for line in lines if not _TASK_LINE.match(line)] or lines
    parts = [OFFLINE_BANNER]
    parts.append(f'Task "{_quote(task_name)}" acknowledged.' if task_name else "Task acknowledged.")
    if body:
        parts.append(f'First instruction: "{_quote(body[0])}".')
    else:
        parts.append("No instructions were given.")
    return " ".join(parts)


def _quote(text: str) -> str:
    """Cap a quoted line so the reply stays short."""
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 1] + "…"


def _words(name: str) -> set[str]:
    """The words of a tool name in any casing: ``readTaskDetails`` → read, task, details."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return set(re.findall(r"[a-z]+", spaced.lower()))


def _is_finish_tool(tool: ToolSpec) -> bool:
    """``finish``, ``complete_task``, ``taskDone``..."""
    return bool(_words(tool.name) & _FINISH_WORDS)


def _is_read_details_tool(tool: ToolSpec) -> bool:
    """``read_task_details``, ``getInstructions``..."""
    words = _words(tool.name)
    return bool(words & _READ_VERBS) and bool(words & _READ_NOUNS)


def _find_tool(tools: Sequence[ToolSpec], matches: Callable[[ToolSpec], bool]) -> ToolSpec | None:
    """The first offered tool that ``matches`` (offer order, so the choice is stable)."""
    return next((tool for tool in tools if matches(tool)), None)


def _required(tool: ToolSpec) -> list[str]:
    """The tool's required parameter names."""
    required = tool.parameters.get("required", [])
    return [str(name) for name in required] if isinstance(required, list) else []


def _fill_arguments(tool: ToolSpec, summary: str) -> dict[str, Any] | None:
    """Arguments for a finish tool, or None when a required one cannot be filled honestly.

    Summary-like strings get the acknowledgement, enums their first value, booleans true.
    """
    properties = tool.parameters.get("properties", {})
    if not isinstance(properties, dict):
        properties = {}
    required = set(_required(tool))
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        spec = schema if isinstance(schema, dict) else {}
        enum = spec.get("enum")
        if isinstance(enum, list) and enum:
            if name in required:
                arguments[name] = enum[0]
        elif spec.get("type") == "string" and (name in required or name in _SUMMARY_FIELDS):
            arguments[name] = summary
        elif spec.get("type") == "boolean" and name in required:
            arguments[name] = True
    if required - arguments.keys():
        return None
    return arguments
