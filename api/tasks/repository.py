"""Every SQL query about tasks; services never build queries themselves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.db.models import DeploymentTombstone, Task
from api.db.owned import OwnedRepository


class TaskRepository(OwnedRepository[Task]):
    """Task rows of one account as seen at ``now_ms``: expired tasks are already gone."""

    model = Task

    def __init__(self, session: AsyncSession, now_ms: int) -> None:
        super().__init__(session)
        self.now_ms = now_ms

    def _visible(self, account_id: str) -> list[Any]:
        # A task past its expiresAt is deleted by the sweeper soon; until then it must
        # already behave as deleted.
        live = or_(col(Task.expires_at).is_(None), col(Task.expires_at) > self.now_ms)
        return [*super()._visible(account_id), live]

    async def ids_of_contact(self, account_id: str, contact_id: str) -> Sequence[str]:
        """Ids of every task of one contact (deleting a contact deletes them)."""
        stmt = select(col(Task.id)).where(
            col(Task.account_id) == account_id, col(Task.contact_id) == contact_id
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def detach_bot(self, account_id: str, bot_id: str) -> Sequence[str]:
        """Set ``bot_id`` to null on the bot's tasks; returns their ids (to re-project)."""
        stmt = (
            update(Task)
            .where(col(Task.account_id) == account_id, col(Task.bot_id) == bot_id)
            .values(bot_id=None, updated_at=self.now_ms, sync_version=col(Task.sync_version) + 1)
            .returning(col(Task.id))
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def delete(self, row: Task) -> None:
        """Delete a task, leaving a tombstone so its deployment is removed for sure."""
        await self.delete_ids(row.account_id, [row.id])

    async def delete_ids(self, account_id: str, ids: Sequence[str]) -> None:
        """Delete task rows of one account by id, each leaving a tombstone."""
        if not ids:
            return
        await self.session.execute(
            delete(Task).where(col(Task.account_id) == account_id, col(Task.id).in_(ids))
        )
        for task_id in ids:
            await self.session.merge(
                DeploymentTombstone(task_id=task_id, account_id=account_id, created_at=self.now_ms)
            )
