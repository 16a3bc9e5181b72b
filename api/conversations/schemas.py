"""Conversation and message shapes on the wire (CONTRACT §6)."""

from __future__ import annotations

from typing import Any

import msgspec


class ConversationOut(msgspec.Struct, rename="camel"):
    """A conversation of a bot (a task run opens one)."""

    id: str
    name: str
    description: str
    bot_id: str | None
    contact_id: str | None
    task_id: str | None
    meta: dict[str, Any] | None
    created_at: int
    updated_at: int


class MessageOut(msgspec.Struct, rename="camel"):
    """One message: ``type`` is user, bot, instruction, activity…"""

    id: str
    type: str
    text: str
    meta: dict[str, Any] | None
    created_at: int
    updated_at: int
