"""The offline development model: deterministic, obviously offline, finishes when it can."""

from __future__ import annotations

from typing import Any

from flows.runtime import (
    OFFLINE_BANNER,
    ChatMessage,
    ModelRegistry,
    OfflineChatModel,
    ToolCall,
    ToolSpec,
)

INSTRUCTIONS = [
    ChatMessage.system("You are a helpful bot."),
    ChatMessage.user(
        "Task: Daily digest\n\nSummarise yesterday's support tickets.\nKeep it short."
    ),
]


def finish_tool(**parameters: Any) -> ToolSpec:
    """A finish tool; parameters default to a required string ``summary``."""
    schema = parameters or {
        "type": "object",
        "properties": {"summary": {"type": "string"}},
        "required": ["summary"],
    }
    return ToolSpec("finish", "End the session.", schema)


READ_DETAILS = ToolSpec("read_task_details", "Read the task.", {"type": "object"})
ACK = (
    f'{OFFLINE_BANNER} Task "Daily digest" acknowledged. '
    'First instruction: "Summarise yesterday\'s support tickets.".'
)


async def test_plain_reply_quotes_the_task_and_names_itself() -> None:
    reply = await OfflineChatModel().complete(INSTRUCTIONS)

    assert reply.model == "offline/dev"
    assert reply.text is not None and reply.text.startswith(ACK)
    assert "offline model does not reason" in reply.text
    assert reply.tool_calls == ()
    assert reply.finish_reason == "stop"


async def test_it_is_deterministic() -> None:
    model = OfflineChatModel()
    tools = [READ_DETAILS, finish_tool()]

    first = await model.complete(INSTRUCTIONS, tools)
    second = await OfflineChatModel().complete(list(INSTRUCTIONS), list(tools))

    assert first == second


async def test_calls_finish_with_the_acknowledgement_as_summary() -> None:
    reply = await OfflineChatModel().complete(INSTRUCTIONS, [finish_tool()])

    assert reply.text == ACK
    assert reply.finish_reason == "tool_calls"
    assert reply.tool_calls == (
        ToolCall(id="offline_call_1", name="finish", arguments={"summary": ACK}),
    )


async def test_reads_details_first_then_finishes_then_only_talks() -> None:
    model = OfflineChatModel()
    tools = [finish_tool(), READ_DETAILS]
    history = list(INSTRUCTIONS)

    first = await model.complete(history, tools)
    assert [c.name for c in first.tool_calls] == ["read_task_details"]
    assert first.text == f"{OFFLINE_BANNER} Reading the task details first."
    history += [first.message, ChatMessage.tool("offline_call_1", "Details: none")]

    second = await model.complete(history, tools)
    assert second.tool_calls == (
        ToolCall(id="offline_call_2", name="finish", arguments={"summary": ACK}),
    )
    history += [second.message, ChatMessage.tool("offline_call_2", "ok")]

    third = await model.complete(history, tools)
    assert third.tool_calls == ()
    assert third.text is not None and third.text.startswith(OFFLINE_BANNER)


async def test_fills_enum_and_boolean_finish_arguments() -> None:
    tool = ToolSpec(
        "completeTask",
        "Done.",
        {
            "type": "object",
            "properties": {
                "outcome": {"type": "string", "enum": ["success", "failure"]},
                "ok": {"type": "boolean"},
                "result": {"type": "string"},
                "notes": {"type": "string"},
            },
            "required": ["outcome", "ok"],
        },
    )

    reply = await OfflineChatModel().complete(INSTRUCTIONS, [tool])

    assert reply.tool_calls[0].arguments == {"outcome": "success", "ok": True, "result": ACK}


async def test_does_not_invent_arguments_it_cannot_fill() -> None:
    tool = finish_tool(type="object", properties={"count": {"type": "integer"}}, required=["count"])

    reply = await OfflineChatModel().complete(INSTRUCTIONS, [tool])

    assert reply.tool_calls == ()
    assert reply.finish_reason == "stop"


async def test_without_a_task_line_it_quotes_the_first_instruction() -> None:
    reply = await OfflineChatModel("tiny").complete([ChatMessage.user("\n  Water the plants.\n")])

    assert reply.model == "offline/tiny"
    assert reply.text is not None
    assert reply.text.startswith(
        f'{OFFLINE_BANNER} Task acknowledged. First instruction: "Water the plants.".'
    )


async def test_long_lines_are_shortened() -> None:
    reply = await OfflineChatModel().complete([ChatMessage.user("x" * 500)])

    assert reply.text is not None and len(reply.text) < 400


async def test_is_the_default_when_a_bot_has_no_model() -> None:
    reply = await ModelRegistry().resolve(None).complete(INSTRUCTIONS, [finish_tool()])

    assert reply.text == ACK
