"""Conversation reads: conversations are written by task runs, read through the API."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.clock import Clock
from api.conversations.repository import ConversationRepository, MessageRepository
from api.conversations.schemas import ConversationOut, MessageOut
from api.db.engine import Database
from api.db.models import Conversation, Message
from api.resources import ResourceService, to_wire


def conversation_out(row: Conversation) -> ConversationOut:
    """The wire object of a conversation row."""
    return to_wire(row, ConversationOut)


def message_out(row: Message) -> MessageOut:
    """The wire object of a message row."""
    return to_wire(row, MessageOut)


class ConversationService(ResourceService[Conversation, ConversationOut]):
    """List and fetch conversations of one account."""

    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__(db, clock, conversation_out, "Conversation not found")

    def repository(self, session: AsyncSession) -> ConversationRepository:
        """Conversation rows."""
        return ConversationRepository(session)


class MessageService(ResourceService[Message, MessageOut]):
    """Messages of one account; routes narrow them to one conversation."""

    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__(db, clock, message_out, "Message not found")

    def repository(self, session: AsyncSession) -> MessageRepository:
        """Message rows."""
        return MessageRepository(session)
