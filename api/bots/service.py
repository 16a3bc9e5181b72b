"""Bot use cases. Deleting a bot leaves its tasks in place with ``botId: null``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.bots.repository import BotRepository
from api.bots.schemas import BotCreate, BotOut, BotUpdate
from api.clock import Clock, to_ms
from api.db.engine import Database
from api.db.models import Bot
from api.errors import NotFound
from api.ids import new_id
from api.meta import check_meta
from api.resources import ResourceService, sent_fields, to_wire
from api.tasks.projection import TaskProjection
from api.tasks.repository import TaskRepository


def bot_out(bot: Bot) -> BotOut:
    """The wire object of a bot row."""
    return to_wire(bot, BotOut)


class BotService(ResourceService[Bot, BotOut]):
    """Create, read, update and delete bots of one account."""

    def __init__(self, db: Database, clock: Clock, projection: TaskProjection) -> None:
        super().__init__(db, clock, bot_out, "Bot not found")
        self.projection = projection

    def repository(self, session: AsyncSession) -> BotRepository:
        """Bot rows."""
        return BotRepository(session)

    async def create(self, account_id: str, body: BotCreate) -> str:
        """Store a new bot; returns its id."""
        now_ms = to_ms(self.clock())
        fields = sent_fields(body)
        fields["meta"] = check_meta(body.meta)
        bot = Bot(
            id=new_id("bot"), account_id=account_id, created_at=now_ms, updated_at=now_ms, **fields
        )
        async with self.db.transaction() as session:
            BotRepository(session).add(bot)
        return bot.id

    async def update(self, account_id: str, bot_id: str, body: BotUpdate) -> str:
        """Apply a partial update."""
        return await self.update_fields(account_id, bot_id, body)

    async def delete(self, account_id: str, bot_id: str) -> str:
        """Delete the bot; its tasks stay, with ``botId`` null (and are re-projected)."""
        async with self.db.transaction() as session:
            bots = BotRepository(session)
            bot = await bots.get(account_id, bot_id, lock=True)
            if bot is None:
                raise NotFound(self.not_found)
            detached = await TaskRepository(session, to_ms(self.clock())).detach_bot(
                account_id, bot_id
            )
            await bots.delete(bot)
        await self.projection.push(list(detached))
        return bot_id
