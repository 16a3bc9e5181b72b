"""Tasks projected onto Prefect deployments (the store stays the source of truth).

Key contracts:
- Writes have committed before anything here runs; nothing here may turn a committed
  write into a 5xx. When Prefect is unreachable the task simply stays out of sync
  (``synced_version != sync_version``) or keeps its tombstone, and the reconciler
  converges it later.
- A task is marked synced only for the exact version that was applied, so a write that
  lands while an older version is being applied is never lost.
- Trigger and cancel act on runs *now*; if Prefect cannot be reached they answer 503 and
  change nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime

from api.clock import Clock
from api.db.engine import Database
from api.db.models import Task
from api.errors import ServiceUnavailable
from api.orchestration.repository import SyncRepository
from api.tasks.service import schedule_of
from deployments.gateway import DeploymentNotFound, DeploymentSpec, Gateway, GatewayUnavailable

log = logging.getLogger(__name__)

DOWN_BACKOFF_SECONDS = 5.0


def deployment_spec(task: Task) -> DeploymentSpec:
    """The deployment a task maps to (name = task id, schedule = the task's schedule)."""
    return DeploymentSpec(
        task_id=task.id,
        account_id=task.account_id,
        bot_id=task.bot_id,
        name=task.name,
        description=task.description,
        schedule=schedule_of(task).to_prefect(),
    )


def trigger_key(task_id: str, now: datetime) -> str:
    """Idempotency key of a trigger: one run per task per UTC minute."""
    return f"taskbot-trigger:{task_id}:{now.strftime('%Y%m%dT%H%M')}"


class DeploymentProjection:
    """Applies task changes to Prefect right after they commit (best effort)."""

    def __init__(self, db: Database, gateway: Gateway, clock: Clock) -> None:
        self.db = db
        self.gateway = gateway
        self.clock = clock
        # Set when a write could not be applied: the reconciler wakes up early.
        self.pending = asyncio.Event()
        # While Prefect is known to be down, requests do not wait for it to time out
        # again: writes go straight to the reconciler (a simple circuit breaker).
        self._down_until = 0.0

    @property
    def prefect_down(self) -> bool:
        """Whether a recent call found Prefect unreachable."""
        return time.monotonic() < self._down_until

    def mark_down(self) -> None:
        """Remember that Prefect is unreachable, and wake the reconciler."""
        self._down_until = time.monotonic() + DOWN_BACKOFF_SECONDS
        self.pending.set()

    def mark_up(self) -> None:
        """Prefect answered again (the reconciler calls this after a good pass)."""
        self._down_until = 0.0

    async def push(self, task_ids: Sequence[str], *, force: bool = False) -> None:
        """Apply the latest version of these tasks; out-of-sync ones wait for the reconciler.

        ``force`` (the reconciler) tries even while Prefect is believed down.
        """
        if not task_ids:
            return
        if self.prefect_down and not force:
            self.pending.set()
            return
        async with self.db.session() as session:
            tasks = list(await SyncRepository(session).tasks(task_ids))
        for task in tasks:
            try:
                await self.apply(task)
            except GatewayUnavailable as error:
                log.warning("Prefect unreachable; task %s left out of sync: %s", task.id, error)
                self.mark_down()
                return

    async def apply(self, task: Task) -> None:
        """Apply one task's deployment and record the version applied.

        A delete can commit while the apply is in flight (its own deployment removal
        then runs first), which would leave a deployment for a task that no longer
        exists: so the store is read again afterwards, and such a deployment removed.
        """
        await self.gateway.apply_deployment(deployment_spec(task))
        async with self.db.transaction() as session:
            repo = SyncRepository(session)
            await repo.mark_synced(task.id, task.sync_version)
            still_there = bool(await repo.existing_ids([task.id]))
        if not still_there:
            await self.gateway.delete_deployment(task.id)

    async def remove(self, tasks: Sequence[tuple[str, str]]) -> None:
        """Delete the deployments of deleted tasks, then their tombstones."""
        removed: list[str] = []
        if self.prefect_down:
            self.pending.set()
            return
        for _account_id, task_id in tasks:
            try:
                await self.gateway.delete_deployment(task_id)
            except GatewayUnavailable as error:
                log.warning("Prefect unreachable; deployment %s removed later: %s", task_id, error)
                self.mark_down()
                break
            removed.append(task_id)
        if removed:
            async with self.db.transaction() as session:
                await SyncRepository(session).clear_tombstones(removed)

    async def trigger(self, task: Task) -> None:
        """One ad-hoc flow run now, merged per task per UTC minute."""
        try:
            if task.synced_version != task.sync_version:
                # The deployment may not exist yet (created during an outage).
                await self.gateway.apply_deployment(deployment_spec(task))
                async with self.db.transaction() as session:
                    await SyncRepository(session).mark_synced(task.id, task.sync_version)
            key = trigger_key(task.id, self.clock())
            try:
                await self.gateway.create_flow_run(task.id, idempotency_key=key)
            except DeploymentNotFound:
                # Deleted by hand in Prefect since: put it back, then queue the run.
                await self.gateway.apply_deployment(deployment_spec(task))
                await self.gateway.create_flow_run(task.id, idempotency_key=key)
        except GatewayUnavailable:
            self.mark_down()
            raise ServiceUnavailable("The orchestrator is unavailable; try again shortly") from None
        self.mark_up()

    async def cancel(self, task: Task) -> None:
        """Cancel the task's running and queued runs."""
        try:
            await self.gateway.cancel_runs(task.id)
        except GatewayUnavailable:
            raise ServiceUnavailable("The orchestrator is unavailable; try again shortly") from None

    async def cancel_run(self, flow_run_id: str) -> None:
        """Cancel one flow run (an execution)."""
        try:
            await self.gateway.cancel_run(flow_run_id)
        except GatewayUnavailable:
            raise ServiceUnavailable("The orchestrator is unavailable; try again shortly") from None
