"""Every SQL query about conversations and messages."""

from api.db.models import Conversation, Message
from api.db.owned import OwnedRepository


class ConversationRepository(OwnedRepository[Conversation]):
    """Conversation rows of one account."""

    model = Conversation


class MessageRepository(OwnedRepository[Message]):
    """Message rows of one account (list them with a ``conversation_id`` filter)."""

    model = Message
