"""SQL the projection and the reconciler need: sync markers, tombstones, expiry."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.db.models import DeploymentTombstone, Execution, Task


class SyncRepository:
    """Cross-account reads and writes about the Prefect projection of tasks."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def tasks(self, task_ids: Sequence[str]) -> Sequence[Task]:
        """Task rows by id, any account."""
        stmt = select(Task).where(col(Task.id).in_(task_ids))
        return (await self.session.execute(stmt)).scalars().all()

    async def mark_synced(self, task_id: str, version: int) -> None:
        """Record that ``version`` of the task is applied, unless it changed meanwhile."""
        await self.session.execute(
            update(Task)
            .where(col(Task.id) == task_id, col(Task.sync_version) == version)
            .values(synced_version=version)
        )

    async def mark_unsynced(self, task_ids: Sequence[str]) -> None:
        """Force tasks out of sync (their deployment went missing in Prefect)."""
        if task_ids:
            await self.session.execute(
                update(Task)
                .where(col(Task.id).in_(task_ids))
                .values(sync_version=col(Task.sync_version) + 1)
            )

    async def unsynced_ids(self, limit: int, after: str | None = None) -> Sequence[str]:
        """Ids of tasks whose latest version is not applied yet, in id order."""
        stmt = select(col(Task.id)).where(col(Task.synced_version) != col(Task.sync_version))
        if after is not None:
            stmt = stmt.where(col(Task.id) > after)
        stmt = stmt.order_by(col(Task.id)).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def unsynced_count(self) -> int:
        """How many tasks are out of sync."""
        stmt = (
            select(func.count())
            .select_from(Task)
            .where(col(Task.synced_version) != col(Task.sync_version))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def existing_ids(self, task_ids: Sequence[str]) -> set[str]:
        """Which of these task ids exist."""
        if not task_ids:
            return set()
        stmt = select(col(Task.id)).where(col(Task.id).in_(task_ids))
        return set((await self.session.execute(stmt)).scalars().all())

    async def all_ids(self, after: str | None, limit: int) -> Sequence[str]:
        """Every task id in id order, a batch at a time."""
        stmt = select(col(Task.id))
        if after is not None:
            stmt = stmt.where(col(Task.id) > after)
        stmt = stmt.order_by(col(Task.id)).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def tombstones(self, limit: int) -> Sequence[str]:
        """Task ids whose deployment must still be removed."""
        stmt = select(col(DeploymentTombstone.task_id)).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def clear_tombstones(self, task_ids: Sequence[str]) -> None:
        """Forget tombstones whose deployment is gone."""
        if task_ids:
            await self.session.execute(
                delete(DeploymentTombstone).where(col(DeploymentTombstone.task_id).in_(task_ids))
            )

    async def expired(self, now_ms: int, limit: int) -> Sequence[tuple[str, str]]:
        """(account_id, id) of tasks past their ``expires_at``."""
        stmt = (
            select(col(Task.account_id), col(Task.id))
            .where(col(Task.expires_at).is_not(None), col(Task.expires_at) <= now_ms)
            .limit(limit)
        )
        return [(a, i) for a, i in (await self.session.execute(stmt)).all()]

    async def running(self, limit: int) -> Sequence[Task]:
        """Tasks whose running lease is held (to check the holder is still alive)."""
        stmt = (
            select(Task)
            .where(col(Task.status) == "running", col(Task.running_flow_run_id).is_not(None))
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def end_dead_session(
        self,
        task: Task,
        holder: str,
        *,
        summary: str,
        canceled: bool,
        next_run_at: int | None,
        now_ms: int,
    ) -> bool:
        """Close a session whose flow run ended without closing it: failure, lease released.

        Returns False when the holder had released the lease meanwhile (nothing done).
        """
        released = await self.session.execute(
            update(Task)
            .where(col(Task.id) == task.id, col(Task.running_flow_run_id) == holder)
            .values(
                status="idle",
                running_flow_run_id=None,
                outcome="failure",
                next_run_at=next_run_at,
                updated_at=now_ms,
            )
        )
        if not released.rowcount:  # type: ignore[attr-defined]
            return False
        await self.session.execute(
            update(Execution)
            .where(col(Execution.flow_run_id) == holder, col(Execution.phase) != "done")
            .values(
                phase="done",
                status="canceled" if canceled else "idle",
                outcome="failure",
                summary=summary,
                completed_at=now_ms,
                updated_at=now_ms,
            )
        )
        return True

    async def recently_updated(self, since_ms: int, limit: int) -> Sequence[Task]:
        """In-sync tasks written since ``since_ms``, newest first."""
        stmt = (
            select(Task)
            .where(
                col(Task.updated_at) >= since_ms,
                col(Task.synced_version) == col(Task.sync_version),
            )
            .order_by(col(Task.updated_at).desc())
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()
