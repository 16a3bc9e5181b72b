"""``/api/v1/bot/…`` routes (CONTRACT §6)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Response

from api.bots.schemas import BotCreate, BotOut, BotUpdate
from api.bots.service import BotService
from api.routing import errors, list_response
from api.wire import EmptyBody, IdResponse, Page


class BotController(Controller):
    """Bots: the model and system prompt (backstory) a task's runs talk to."""

    path = "/api/v1/bot"
    tags = ["bot"]

    @post("/create", status_code=200, responses=errors(400))
    async def create(self, data: BotCreate, bots: BotService, account_id: str) -> IdResponse:
        """Create a bot."""
        return IdResponse(id=await bots.create(account_id, data))

    @get("/list", responses=errors(400))
    async def list(
        self, request: Request[Any, Any, Any], bots: BotService, account_id: str
    ) -> Response[Page[BotOut]]:
        """List bots: a JSON page, or all pages as JSONL."""
        return await list_response(request, bots, account_id)

    @get("/{bot_id:str}/fetch", responses=errors(404))
    async def fetch(self, bot_id: str, bots: BotService, account_id: str) -> BotOut:
        """Fetch one bot."""
        return await bots.fetch(account_id, bot_id)

    @post("/{bot_id:str}/update", status_code=200, responses=errors(400, 404))
    async def update(
        self, bot_id: str, data: BotUpdate, bots: BotService, account_id: str
    ) -> IdResponse:
        """Update a bot partially."""
        return IdResponse(id=await bots.update(account_id, bot_id, data))

    @post("/{bot_id:str}/delete", status_code=200, responses=errors(400, 404))
    async def delete(
        self, bot_id: str, data: EmptyBody, bots: BotService, account_id: str
    ) -> IdResponse:
        """Delete a bot; its tasks stay with ``botId: null``."""
        return IdResponse(id=await bots.delete(account_id, bot_id))
