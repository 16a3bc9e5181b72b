"""Every SQL statement of a bot session: executions, the running lease, conversations.

Key contracts:
- One execution per (task, slot): a second flow run for the same scheduled time finds
  the slot taken (unique index) and stops, whatever Prefect did to produce it.
- ``status: running`` is a lease held by one flow run (``running_flow_run_id``); only
  its holder, or someone who proved the holder's flow run is over, may release it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from api.db.engine import Database
from api.db.models import Bot, Conversation, Execution, Message, Task
from api.ids import new_id
from api.quotas import QuotaDefaults, Usage, read_usage

DONE = "done"


class SessionStore:
    """The task store as a bot session sees it (any account: the flow acts for the task)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, task_id: str) -> tuple[Task, Bot | None] | None:
        """The task and its bot, or ``None`` when the task is gone."""
        async with self.db.session() as session:
            task = await session.get(Task, task_id)
            if task is None:
                return None
            bot = await session.get(Bot, task.bot_id) if task.bot_id else None
            return task, bot

    async def open_execution(self, execution: Execution) -> bool:
        """Insert the execution; ``False`` when its slot is already taken (a duplicate)."""
        try:
            async with self.db.transaction() as session:
                session.add(execution)
        except IntegrityError:
            return False
        return True

    async def waiting_execution(self, task_id: str, other_than: str) -> Execution | None:
        """Another execution of the task still waiting for the running one to end."""
        async with self.db.session() as session:
            stmt = select(Execution).where(
                col(Execution.task_id) == task_id,
                col(Execution.phase) == "waiting",
                col(Execution.id) != other_than,
            )
            return (await session.execute(stmt)).scalars().first()

    async def set_phase(self, execution_id: str, phase: str, now_ms: int) -> None:
        """Move an execution to ``waiting`` or ``running``."""
        async with self.db.transaction() as session:
            await session.execute(
                update(Execution)
                .where(col(Execution.id) == execution_id)
                .values(phase=phase, updated_at=now_ms)
            )

    async def claim(self, task_id: str, flow_run_id: str, now_ms: int) -> bool:
        """Take the running lease if the task is idle: ``status: running``, ``lastRunAt``."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Task)
                .where(col(Task.id) == task_id, col(Task.status) == "idle")
                .values(
                    status="running",
                    running_flow_run_id=flow_run_id,
                    last_run_at=now_ms,
                    updated_at=now_ms,
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def lease_holder(self, task_id: str) -> str | None:
        """The flow run holding the task's running lease."""
        async with self.db.session() as session:
            stmt = select(col(Task.running_flow_run_id)).where(col(Task.id) == task_id)
            return (await session.execute(stmt)).scalar_one_or_none()

    async def release(
        self,
        task_id: str,
        holder: str,
        *,
        outcome: str,
        next_run_at: int | None,
        now_ms: int,
    ) -> None:
        """Give the lease back: ``status: idle``, the outcome and the next run time."""
        async with self.db.transaction() as session:
            await session.execute(
                update(Task)
                .where(col(Task.id) == task_id, col(Task.running_flow_run_id) == holder)
                .values(
                    status="idle",
                    running_flow_run_id=None,
                    outcome=outcome,
                    next_run_at=next_run_at,
                    updated_at=now_ms,
                )
            )

    async def usage(self, account_id: str, now: datetime, defaults: QuotaDefaults) -> Usage:
        """The account's quota use (our own session already counts as running)."""
        async with self.db.session() as session:
            return await read_usage(session, account_id, now, defaults)

    async def previous_summary(self, task_id: str, other_than: str) -> str | None:
        """The summary of the task's latest finished execution."""
        async with self.db.session() as session:
            stmt = (
                select(col(Execution.summary))
                .where(
                    col(Execution.task_id) == task_id,
                    col(Execution.phase) == DONE,
                    col(Execution.outcome) != "pending",
                    col(Execution.id) != other_than,
                )
                .order_by(col(Execution.completed_at).desc())
                .limit(1)
            )
            return (await session.execute(stmt)).scalar_one_or_none()

    async def create_conversation(self, task: Task, now_ms: int) -> str:
        """A conversation for this run: the task's bot, contact, name and description."""
        conversation = Conversation(
            id=new_id("conv"),
            account_id=task.account_id,
            bot_id=task.bot_id,
            contact_id=task.contact_id,
            task_id=task.id,
            name=task.name,
            description=task.description,
            created_at=now_ms,
            updated_at=now_ms,
        )
        async with self.db.transaction() as session:
            session.add(conversation)
        return conversation.id

    async def add_messages(
        self,
        account_id: str,
        conversation_id: str,
        messages: Sequence[tuple[str, str, dict[str, Any] | None]],
        now_ms: int,
    ) -> None:
        """Store (type, text, meta) messages in order (ids break created_at ties)."""
        async with self.db.transaction() as session:
            for offset, (kind, text, meta) in enumerate(messages):
                session.add(
                    Message(
                        id=new_id("msg"),
                        account_id=account_id,
                        conversation_id=conversation_id,
                        type=kind,
                        text=text,
                        meta=meta,
                        # Strictly increasing times keep the conversation in order.
                        created_at=now_ms + offset,
                        updated_at=now_ms + offset,
                    )
                )

    async def update_execution(self, execution_id: str, **values: Any) -> None:
        """Write execution fields (conversation, outcome, summary, phase…)."""
        async with self.db.transaction() as session:
            await session.execute(
                update(Execution).where(col(Execution.id) == execution_id).values(**values)
            )

    async def execution(self, execution_id: str) -> Execution | None:
        """Read one execution back."""
        async with self.db.session() as session:
            return await session.get(Execution, execution_id)
