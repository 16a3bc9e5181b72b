"""The one interface the bot-session flow talks to, whatever the provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from flows.runtime.messages import ChatMessage, ModelReply, ToolSpec


class ChatModel(Protocol):
    """A chat model that answers a conversation, possibly by asking for tool calls.

    Implementations are safe to share between concurrent sessions: they hold no
    per-conversation state, the caller passes the whole history on every call.
    """

    @property
    def name(self) -> str:
        """The model as configured on the bot: ``provider/model``."""
        ...

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> ModelReply:
        """Answer the conversation; raise :class:`ModelError` on any failure."""
        ...
