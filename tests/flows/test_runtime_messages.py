"""Conversation values: invariants at construction and tool-call argument parsing."""

from __future__ import annotations

import pytest

from flows.runtime import ChatMessage, ModelReply, ToolCall, Usage


@pytest.mark.parametrize(
    ("raw", "arguments", "valid"),
    [
        ('{"a": 1}', {"a": 1}, True),
        ("", {}, True),
        (None, {}, True),
        ("  ", {}, True),
        ("[1, 2]", {}, False),
        ('{"a": ', {}, False),
    ],
)
def test_tool_call_arguments_are_parsed(
    raw: str | None, arguments: dict[str, int], valid: bool
) -> None:
    call = ToolCall.from_json("call_1", "lookup", raw)

    assert call.arguments == arguments
    assert call.arguments_valid is valid
    assert call.raw_arguments == (None if valid else raw)


def test_arguments_json_replays_what_the_model_sent() -> None:
    assert ToolCall("c", "f", {"q": "é"}).arguments_json() == '{"q":"é"}'
    assert ToolCall("c", "f", raw_arguments="{oops").arguments_json() == "{oops"


@pytest.mark.parametrize(
    "build",
    [
        lambda: ChatMessage("user", "x", tool_calls=(ToolCall("c", "f"),)),
        lambda: ChatMessage("tool", "x"),
        lambda: ChatMessage("user", "x", tool_call_id="c"),
        lambda: ChatMessage("assistant", None),
    ],
)
def test_message_invariants(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_reply_becomes_an_assistant_message() -> None:
    call = ToolCall("c", "finish", {"summary": "s"})
    reply = ModelReply(model="m/x", text=None, tool_calls=(call,), usage=Usage(3, 4))

    assert reply.message == ChatMessage("assistant", None, (call,))
    assert ModelReply(model="m/x", text=None).message == ChatMessage("assistant", "")
    assert reply.usage is not None and reply.usage.total_tokens == 7
