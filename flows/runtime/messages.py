"""Provider-neutral conversation values: tools offered, tool calls made, messages, replies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for.

    ``arguments`` is the parsed JSON object. When the model sent something that is not a JSON
    object, ``arguments`` is empty and ``raw_arguments`` keeps what it sent, so the flow can
    answer the call with an error instead of running the tool on made-up input.
    """

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None

    @property
    def arguments_valid(self) -> bool:
        """Whether the model's arguments parsed as a JSON object."""
        return self.raw_arguments is None

    @classmethod
    def from_json(cls, id: str, name: str, raw: str | None) -> ToolCall:
        """Parse the model's JSON argument string; an empty string means no arguments."""
        text = (raw or "").strip()
        if not text:
            return cls(id=id, name=name)
        try:
            parsed = json.loads(text)
        except ValueError:
            return cls(id=id, name=name, raw_arguments=raw)
        if not isinstance(parsed, dict):
            return cls(id=id, name=name, raw_arguments=raw)
        return cls(id=id, name=name, arguments=parsed)

    def arguments_json(self) -> str:
        """The arguments as the model sent them (raw when invalid), for replaying history."""
        if self.raw_arguments is not None:
            return self.raw_arguments
        return json.dumps(self.arguments, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class ChatMessage:
    """One message of the conversation sent to the model.

    Invariants (checked at construction): only assistant messages carry ``tool_calls``, and
    a tool message always names the call it answers.
    """

    role: Role
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("tool messages, and only they, need a tool_call_id")
        if self.content is None and not self.tool_calls:
            raise ValueError("a message needs content or tool calls")

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        """A system message (the bot's backstory)."""
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        """A user message (the task's instructions)."""
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str | None, tool_calls: tuple[ToolCall, ...] = ()) -> ChatMessage:
        """A message the model wrote earlier, replayed as history."""
        return cls("assistant", content, tool_calls)

    @classmethod
    def tool(cls, tool_call_id: str, content: str) -> ChatMessage:
        """The result of one tool call, answering the call with ``tool_call_id``."""
        return cls("tool", content, tool_call_id=tool_call_id)


@dataclass(frozen=True)
class Usage:
    """Tokens a model call consumed, as reported by the provider."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ModelReply:
    """One model turn: text, tool calls, or both.

    ``finish_reason`` is the provider's (``stop``, ``tool_calls``, ``length``, ...). The
    turn is final when it asks for no tool calls.
    """

    model: str
    text: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None

    @property
    def message(self) -> ChatMessage:
        """This reply as an assistant message, to append to the conversation history."""
        content = self.text if self.text is not None or self.tool_calls else ""
        return ChatMessage.assistant(content, self.tool_calls)
