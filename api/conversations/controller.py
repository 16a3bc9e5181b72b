"""``/api/v1/conversation/…`` routes (CONTRACT §6): read-only; task runs write them."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import Parameter
from litestar.response import Response

from api.conversations.schemas import ConversationOut, MessageOut
from api.conversations.service import ConversationService, MessageService
from api.listing import split_csv
from api.routing import errors, list_response
from api.wire import Page


class ConversationController(Controller):
    """Conversations and their messages."""

    path = "/api/v1/conversation"
    tags = ["conversation"]

    @get("/list", responses=errors(400))
    async def list(
        self,
        request: Request[Any, Any, Any],
        conversations: ConversationService,
        account_id: str,
        bot_id: str | None = Parameter(query="botId", default=None),
        contact_id: str | None = Parameter(query="contactId", default=None),
        task_id: str | None = Parameter(query="taskId", default=None),
    ) -> Response[Page[ConversationOut]]:
        """List conversations: a JSON page, or all pages as JSONL."""
        filters = {
            "bot_id": split_csv(bot_id),
            "contact_id": split_csv(contact_id),
            "task_id": split_csv(task_id),
        }
        return await list_response(request, conversations, account_id, filters)

    @get("/{conversation_id:str}/fetch", responses=errors(404))
    async def fetch(
        self, conversation_id: str, conversations: ConversationService, account_id: str
    ) -> ConversationOut:
        """Fetch one conversation."""
        return await conversations.fetch(account_id, conversation_id)

    @get("/{conversation_id:str}/message/list", responses=errors(400, 404))
    async def messages(
        self,
        request: Request[Any, Any, Any],
        conversation_id: str,
        conversations: ConversationService,
        messages: MessageService,
        account_id: str,
    ) -> Response[Page[MessageOut]]:
        """The messages of one conversation, in the list envelope."""
        await conversations.get(account_id, conversation_id)
        filters = {"conversation_id": conversation_id}
        return await list_response(request, messages, account_id, filters)
