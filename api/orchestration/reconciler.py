"""Converges the Prefect projection on the task store, in the API process and on demand.

One pass: remove deployments of tombstoned tasks, delete expired tasks, apply every
out-of-sync task, and (on a full pass) repair drift: a task deployment deleted by hand in
Prefect is recreated, a ``taskbot``-tagged deployment without a task is removed. Every
step is idempotent, so several API replicas may reconcile at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from api.clock import Clock, to_ms
from api.db.engine import Database
from api.idempotency import IdempotencyStore
from api.orchestration.projection import DeploymentProjection
from api.orchestration.repository import SyncRepository
from api.tasks.repository import TaskRepository
from api.tasks.service import schedule_of
from deployments.gateway import Gateway, GatewayUnavailable

log = logging.getLogger(__name__)

_BATCH = 200
# How long after a write a task's Prefect runs are re-checked (see _settle_recent).
SETTLE_WINDOW_MS = 10 * 60 * 1000
FINAL_STATE_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})


@dataclass
class PassReport:
    """What one reconcile pass did."""

    applied: int = 0
    removed: int = 0
    expired: int = 0
    recreated: int = 0
    orphans_removed: int = 0
    dead_sessions: int = 0
    repaired: int = 0
    remaining: int = 0
    errors: list[str] = field(default_factory=list)


class Reconciler:
    """Runs reconcile passes: periodically in the API process, or once for ``taskbot sync``."""

    def __init__(
        self,
        db: Database,
        gateway: Gateway,
        projection: DeploymentProjection,
        clock: Clock,
        *,
        interval: float = 15.0,
        drift_every: int = 20,
        parallelism: int = 8,
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.projection = projection
        self.clock = clock
        self.interval = interval
        self.drift_every = drift_every
        self.parallelism = parallelism
        self._task: asyncio.Task[None] | None = None
        self._ready = False

    async def start(self) -> None:
        """Start the background loop (the first pass runs at once: start-up convergence)."""
        self._task = asyncio.create_task(self._loop(), name="taskbot-reconciler")

    async def stop(self) -> None:
        """Stop the loop; a pass in progress is cancelled (every step is idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        passes = 0
        while True:
            try:
                await self.run_pass(full=passes % self.drift_every == 0)
                self.projection.mark_up()
                passes += 1
            except GatewayUnavailable as error:
                log.warning("reconcile: Prefect unreachable (%s); retrying", error)
            except Exception:
                log.exception("reconcile pass failed; retrying")
            self.projection.pending.clear()
            with contextlib.suppress(TimeoutError):
                # A write that could not be applied wakes the loop early, but never more
                # often than once a second: an outage must not turn into a busy loop.
                await asyncio.wait_for(self.projection.pending.wait(), self.interval)
                await asyncio.sleep(1.0)

    async def run_pass(self, *, full: bool) -> PassReport:
        """One convergence pass; ``full`` adds drift repair against Prefect's deployments."""
        report = PassReport()
        if not self._ready:
            await self.gateway.ensure_ready()
            self._ready = True
        await self._expire(report)
        await self._remove_tombstoned(report)
        await self._apply_unsynced(report)
        await self._end_dead_sessions(report)
        await self._settle_recent(report)
        if full:
            await self._repair_drift(report)
        async with self.db.session() as session:
            report.remaining = await SyncRepository(session).unsynced_count()
        await IdempotencyStore(self.db).purge(to_ms(self.clock()))
        return report

    async def _expire(self, report: PassReport) -> None:
        while True:
            async with self.db.transaction() as session:
                expired = await SyncRepository(session).expired(to_ms(self.clock()), _BATCH)
                tasks = TaskRepository(session, to_ms(self.clock()))
                for account_id, task_id in expired:
                    await tasks.delete_ids(account_id, [task_id])
            report.expired += len(expired)
            if len(expired) < _BATCH:
                return

    async def _remove_tombstoned(self, report: PassReport) -> None:
        while True:
            async with self.db.session() as session:
                ids = list(await SyncRepository(session).tombstones(_BATCH))
            if not ids:
                return
            for task_id in ids:
                await self.gateway.delete_deployment(task_id)
            async with self.db.transaction() as session:
                await SyncRepository(session).clear_tombstones(ids)
            report.removed += len(ids)

    async def _end_dead_sessions(self, report: PassReport) -> None:
        """A task is never left ``running`` by a session whose flow run is over.

        A worker that died cannot close its sessions; Prefect marks such runs Crashed
        (missed heartbeats), and this records the failure and frees the task.
        """
        async with self.db.session() as session:
            running = list(await SyncRepository(session).running(_BATCH))
        for task in running:
            holder = task.running_flow_run_id
            if holder is None:
                continue
            info = await self.gateway.read_run(holder)
            if info is not None and info.state_type not in FINAL_STATE_TYPES:
                continue
            state = info.state_name if info is not None else "missing"
            now = self.clock()
            upcoming = schedule_of(task).next_run_after(now)
            async with self.db.transaction() as session:
                closed = await SyncRepository(session).end_dead_session(
                    task,
                    holder,
                    summary=f"The session ended without finishing (Prefect flow run {state})",
                    canceled=info is not None and info.state_type == "CANCELLED",
                    next_run_at=to_ms(upcoming) if upcoming else None,
                    now_ms=to_ms(now),
                )
            if not closed:
                continue  # the session released its lease itself meanwhile
            log.warning(
                "task %s: flow run %s is %s; session closed as failure", task.id, holder, state
            )
            report.dead_sessions += 1

    async def _settle_recent(self, report: PassReport) -> None:
        """Re-check the runs of recently changed tasks against their schedule.

        Prefect's scheduler service reads a schedule and inserts its runs in separate
        transactions; under load a change can land in between, leaving runs of the old
        schedule (and too few of the new one) after the gateway's own repair. Applying
        again schedules the missing slots; repairing removes the stale ones.
        """
        since = to_ms(self.clock()) - SETTLE_WINDOW_MS
        async with self.db.session() as session:
            recent = list(await SyncRepository(session).recently_updated(since, _BATCH))
        for task in recent:
            await self.projection.apply(task)
            report.repaired += len(await self.gateway.repair_runs(task.id))

    async def _apply_unsynced(self, report: PassReport) -> None:
        after: str | None = None
        while True:
            async with self.db.session() as session:
                ids = list(await SyncRepository(session).unsynced_ids(_BATCH, after))
            if not ids:
                return
            await self._push_or_raise(ids)
            report.applied += len(ids)
            after = ids[-1]

    async def _push_or_raise(self, ids: list[str]) -> None:
        """Apply ``ids`` a few at a time in parallel (each apply is several round trips)."""
        self.projection.pending.clear()
        chunks = [ids[i :: self.parallelism] for i in range(self.parallelism)]
        await asyncio.gather(*(self.projection.push(c, force=True) for c in chunks if c))
        if self.projection.pending.is_set():
            # push() swallows outages for the request path; here an outage ends the pass.
            raise GatewayUnavailable("Prefect became unreachable during reconcile")

    async def _repair_drift(self, report: PassReport) -> None:
        deployed = set((await self.gateway.list_task_deployments()).keys())
        async with self.db.session() as session:
            existing = await SyncRepository(session).existing_ids(sorted(deployed))
        for orphan in sorted(deployed - existing):
            await self.gateway.delete_deployment(orphan)
            report.orphans_removed += 1
        missing: list[str] = []
        after: str | None = None
        while True:
            async with self.db.session() as session:
                ids = list(await SyncRepository(session).all_ids(after, _BATCH))
            if not ids:
                break
            missing.extend(i for i in ids if i not in deployed)
            after = ids[-1]
        if missing:
            async with self.db.transaction() as session:
                await SyncRepository(session).mark_unsynced(missing)
            for start in range(0, len(missing), _BATCH):  # recreate in parallel too
                await self._push_or_raise(missing[start : start + _BATCH])
            report.recreated += len(missing)
