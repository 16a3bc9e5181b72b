"""Execution reads and cancellation."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.clock import Clock, to_ms
from api.db.engine import Database
from api.db.models import Execution
from api.errors import NotFound
from api.executions.repository import ExecutionRepository
from api.executions.schemas import ExecutionOut
from api.resources import ResourceService, to_wire
from api.tasks.projection import TaskProjection

FINAL_PHASE = "done"


def execution_out(row: Execution) -> ExecutionOut:
    """The wire object of an execution row."""
    return to_wire(row, ExecutionOut)


class ExecutionService(ResourceService[Execution, ExecutionOut]):
    """The executions of a task; cancelling one cancels its Prefect flow run."""

    def __init__(self, db: Database, clock: Clock, projection: TaskProjection) -> None:
        super().__init__(db, clock, execution_out, "Execution not found")
        self.projection = projection

    def repository(self, session: AsyncSession) -> ExecutionRepository:
        """Execution rows."""
        return ExecutionRepository(session)

    async def cancel(self, account_id: str, task_id: str, execution_id: str) -> None:
        """Cancel a running or waiting execution; a finished one is left as it is."""
        async with self.db.session() as session:
            row = await ExecutionRepository(session).get(account_id, execution_id)
        if row is None or row.task_id != task_id:
            raise NotFound(self.not_found)
        if row.phase == FINAL_PHASE:
            return
        if row.flow_run_id is not None:
            await self.projection.cancel_run(row.flow_run_id)
        async with self.db.transaction() as session:
            fresh = await ExecutionRepository(session).get(account_id, execution_id, lock=True)
            if fresh is not None and fresh.phase != FINAL_PHASE:
                now_ms = to_ms(self.clock())
                fresh.status = "canceled"
                fresh.updated_at = now_ms
                # The flow records the final outcome when it sees the cancellation; a run
                # that never started has nobody else to close it.
                if fresh.phase == "waiting":
                    fresh.phase = FINAL_PHASE
                    fresh.outcome = "failure"
                    fresh.summary = "Canceled before it started"
                    fresh.completed_at = now_ms
