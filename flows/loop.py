"""The model loop of one session: model turns and tool calls until the bot finishes.

Bounds (CONTRACT §5 step 4) are the caller's: it wraps the loop in a deadline. Here:
``max_steps`` model turns at most; a reply without tool calls, or a ``finish`` call,
ends the session.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from flows.instructions import FINISH, READ_TASK, TOOLS
from flows.runtime import ChatMessage, ChatModel, ToolCall

SUMMARY_MAX = 4000

# (type, text, meta) → stored as a conversation message; also logged.
Emit = Callable[[str, str, dict[str, Any] | None], Awaitable[None]]


@dataclass
class LoopResult:
    """How the loop ended."""

    summary: str
    success: bool = True
    steps: int = 0
    finished: bool = False
    transcript: list[tuple[str, str]] = field(default_factory=list)


async def run_loop(
    model: ChatModel,
    history: list[ChatMessage],
    *,
    max_steps: int,
    details: str,
    emit: Emit,
    result: LoopResult,
) -> LoopResult:
    """Run model turns into ``result`` (filled as it goes, so a timeout keeps what was done)."""
    while result.steps < max_steps:
        reply = await model.complete(history, TOOLS)
        result.steps += 1
        history.append(reply.message)
        if reply.text:
            result.transcript.append(("bot", reply.text))
            await emit("bot", reply.text, {"model": model.name})
        if not reply.tool_calls:
            result.summary = (reply.text or "").strip()[
                :SUMMARY_MAX
            ] or "The bot ended the session."
            result.finished = True
            return result
        for call in reply.tool_calls:
            answer = await _tool(call, details, result)
            result.transcript.append(("activity", f"{call.name}({_args(call)}) → {answer}"))
            await emit("activity", answer, {"tool": call.name, "arguments": call.arguments})
            history.append(ChatMessage.tool(call.id, answer))
            if result.finished:
                return result
    result.summary = result.summary or f"Stopped after {result.steps} model steps (maxIterations)."
    return result


async def _tool(call: ToolCall, details: str, result: LoopResult) -> str:
    if not call.arguments_valid:
        return f"Error: the arguments of {call.name} must be a JSON object."
    if call.name == READ_TASK.name:
        return details
    if call.name == FINISH.name:
        summary = str(call.arguments.get("summary") or "").strip()
        result.summary = summary[:SUMMARY_MAX] or "Finished."
        result.success = call.arguments.get("success", True) is not False
        result.finished = True
        return "Session finished."
    return f"Error: unknown tool {call.name!r}; available: {', '.join(t.name for t in TOOLS)}."


def _args(call: ToolCall) -> str:
    return json.dumps(call.arguments, ensure_ascii=False)
