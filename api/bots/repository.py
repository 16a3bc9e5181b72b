"""Every SQL query about bots."""

from api.db.models import Bot
from api.db.owned import OwnedRepository


class BotRepository(OwnedRepository[Bot]):
    """Bot rows of one account."""

    model = Bot
