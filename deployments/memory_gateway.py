"""An in-memory gateway that behaves like PrefectGateway, for fast tests of the API.

It mimics what Prefect 3.9.1 does with our requests: the scheduler keeps at least three
auto-scheduled runs and one hour ahead (computed with Prefect's own server schedule
models, so the times are the ones Prefect would pick), deduplicates runs by idempotency
key, deletes future auto-scheduled runs when a deployment or its schedule changes, and
keeps the schedule id across in-place updates. No run ever starts by itself: tests drive
runs with set_run_state, as a worker would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from deployments.gateway import (
    TASKBOT_TAG,
    DeploymentInfo,
    DeploymentNotFound,
    DeploymentSpec,
    FlowRunInfo,
    GatewayUnavailable,
    is_slot,
    plain_utc,
    scheduler_slots,
    scoped_idempotency_key,
)


@dataclass
class _Deployment:
    id: str
    spec: DeploymentSpec
    schedule_id: str | None
    updated: datetime


@dataclass
class _Run:
    id: str
    task_id: str
    deployment_id: str
    key: str | None
    auto: bool
    state_type: str
    state_name: str
    expected_start_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    run_count: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)

    def info(self) -> FlowRunInfo:
        return FlowRunInfo(
            id=self.id,
            task_id=self.task_id,
            state_type=self.state_type,
            state_name=self.state_name,
            expected_start_time=self.expected_start_time,
            start_time=self.start_time,
            end_time=self.end_time,
            scheduled=self.auto,
            idempotency_key=self.key,
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryGateway:
    """Gateway fake: one process, no I/O; set `available = False` to simulate an outage."""

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.available = True
        self.ready = False
        self._clock = clock
        self._deployments: dict[str, _Deployment] = {}
        self._runs: dict[str, _Run] = {}

    async def ensure_ready(self) -> None:
        """Mark the work pool and flow as present."""
        self._check()
        self.ready = True

    async def apply_deployment(self, spec: DeploymentSpec) -> str:
        """Create or update the task's deployment in place; return the deployment id."""
        self._check()
        self.ready = True
        now = self._clock()
        current = self._deployments.get(spec.task_id)
        changed = False
        if current is None:
            current = _Deployment(str(uuid4()), spec, None, now)
            self._deployments[spec.task_id] = current
            if spec.schedule is not None:
                current.schedule_id = str(uuid4())
        elif spec != current.spec:
            changed = True
            if spec.schedule is None and current.schedule_id is not None:
                # Deleting a schedule deletes all its unstarted auto runs, due or not.
                self._drop_scheduled(current.id, auto_only=True, future_only=False)
                current.schedule_id = None
            elif spec.schedule is not None and current.schedule_id is None:
                current.schedule_id = str(uuid4())
            # Any update deletes future auto runs; the schedule id stays.
            self._drop_scheduled(current.id, auto_only=True, future_only=True)
            current.spec = spec
            current.updated = now
        await self._schedule(current)
        if changed:
            await self._prune_future_runs(current)
        return current.id

    async def delete_deployment(self, task_id: str) -> None:
        """Delete the deployment and its not-yet-started runs; missing is a no-op."""
        self._check()
        deployment = self._deployments.pop(task_id, None)
        if deployment is None:
            return
        self._drop_scheduled(deployment.id, auto_only=False, future_only=False)
        for run in self._runs.values():
            if run.deployment_id == deployment.id and run.state_type == "PENDING":
                self._cancel(run)

    async def create_flow_run(
        self,
        task_id: str,
        *,
        idempotency_key: str,
        parameters: Mapping[str, Any] | None = None,
        scheduled_time: datetime | None = None,
    ) -> str:
        """Create an ad-hoc run (now, or at `scheduled_time`); the same key gives the same run."""
        self._check()
        deployment = self._deployments.get(task_id)
        if deployment is None:
            raise DeploymentNotFound(task_id)
        key = scoped_idempotency_key(task_id, idempotency_key)
        for run in self._runs.values():
            if run.key == key:
                return run.id
        run = _Run(
            id=str(uuid4()),
            task_id=task_id,
            deployment_id=deployment.id,
            key=key,
            auto=False,
            state_type="SCHEDULED",
            state_name="Scheduled",
            expected_start_time=plain_utc(scheduled_time or self._clock()),
            parameters={"task_id": task_id, **(parameters or {})},
        )
        self._runs[run.id] = run
        return run.id

    async def cancel_runs(self, task_id: str) -> list[str]:
        """Cancel the task's running and queued runs; future schedule slots stay."""
        self._check()
        deployment = self._deployments.get(task_id)
        if deployment is None:
            return []
        now = self._clock()
        cancelled = []
        for run in self._runs.values():
            if run.deployment_id != deployment.id:
                continue
            if run.state_type not in ("SCHEDULED", "PENDING", "RUNNING", "PAUSED"):
                continue
            if run.auto and run.state_type == "SCHEDULED" and run.expected_start_time > now:
                continue
            self._cancel(run)
            cancelled.append(run.id)
        return cancelled

    async def cancel_run(self, flow_run_id: str) -> bool:
        """Cancel one run if it has not finished; whether it was cancelled."""
        self._check()
        run = self._runs.get(flow_run_id)
        if run is None or run.state_type not in ("SCHEDULED", "PENDING", "RUNNING", "PAUSED"):
            return False
        self._cancel(run)
        return True

    async def repair_runs(self, task_id: str) -> list[str]:
        """Remove future auto runs that duplicate a slot or are no slot; return their ids."""
        self._check()
        deployment = self._deployments.get(task_id)
        return await self._prune_future_runs(deployment) if deployment else []

    async def read_run(self, flow_run_id: str) -> FlowRunInfo | None:
        """One run by id, or None."""
        self._check()
        run = self._runs.get(flow_run_id)
        return run.info() if run is not None else None

    async def read_runs(self, task_id: str, *, limit: int = 50) -> list[FlowRunInfo]:
        """The task's runs, latest expected start first."""
        self._check()
        deployment = self._deployments.get(task_id)
        if deployment is None:
            return []
        await self._schedule(deployment)
        runs = [r for r in self._runs.values() if r.deployment_id == deployment.id]
        runs.sort(key=lambda r: r.expected_start_time, reverse=True)
        return [r.info() for r in runs[:limit]]

    async def next_scheduled_time(
        self, task_id: str, *, after: datetime | None = None
    ) -> datetime | None:
        """Expected start of the earliest auto-scheduled run after `after` (default now)."""
        self._check()
        deployment = self._deployments.get(task_id)
        if deployment is None:
            return None
        await self._schedule(deployment)
        after = after or self._clock()
        times = [
            r.expected_start_time
            for r in self._runs.values()
            if r.deployment_id == deployment.id
            and r.auto
            and r.state_type in ("SCHEDULED", "PENDING")
            and r.expected_start_time >= after
        ]
        return min(times, default=None)

    async def list_task_deployments(self) -> dict[str, DeploymentInfo]:
        """Every deployment tagged `taskbot`, keyed by task id."""
        self._check()
        return {
            task_id: DeploymentInfo(
                task_id=task_id,
                deployment_id=d.id,
                tags=frozenset(d.spec.tags),
                schedule_id=d.schedule_id,
                schedule=d.spec.schedule,
                paused=False,
                updated=d.updated,
            )
            for task_id, d in self._deployments.items()
            if TASKBOT_TAG in d.spec.tags
        }

    async def aclose(self) -> None:
        """Nothing to release."""

    # Test controls ----------------------------------------------------------------

    def set_run_state(self, run_id: str, state_type: str, state_name: str | None = None) -> None:
        """Move a run to a state, as a worker or the flow engine would."""
        run = self._runs[run_id]
        now = self._clock()
        if state_type == "RUNNING" and run.start_time is None:
            run.start_time = now
            run.run_count += 1
        if state_type in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED"):
            run.end_time = now
        run.state_type = state_type
        run.state_name = state_name or state_type.capitalize()

    def add_scheduler_run(self, task_id: str, when: datetime) -> str:
        """Insert an auto-scheduled run, as Prefect's scheduler racing a change would."""
        deployment = self._deployments[task_id]
        run = _Run(
            id=str(uuid4()),
            task_id=task_id,
            deployment_id=deployment.id,
            key=f"scheduled {deployment.id} {deployment.schedule_id} {when} (raced)",
            auto=True,
            state_type="SCHEDULED",
            state_name="Scheduled",
            expected_start_time=when,
            parameters=dict(deployment.spec.parameters),
        )
        self._runs[run.id] = run
        return run.id

    def run(self, run_id: str) -> FlowRunInfo | None:
        """One run by id, also of a deleted deployment; None once deleted."""
        run = self._runs.get(run_id)
        return run.info() if run is not None else None

    # Internals --------------------------------------------------------------------

    def _check(self) -> None:
        if not self.available:
            raise GatewayUnavailable("memory gateway set unavailable")

    def _cancel(self, run: _Run) -> None:
        started = run.state_type in ("PENDING", "RUNNING", "PAUSED")
        run.state_type, run.state_name = (
            ("CANCELLING", "Cancelling")
            if started
            else (
                "CANCELLED",
                "Cancelled",
            )
        )
        if not started:
            run.end_time = self._clock()

    def _drop_scheduled(self, deployment_id: str, *, auto_only: bool, future_only: bool) -> None:
        now = self._clock()
        for run_id, run in list(self._runs.items()):
            if (
                run.deployment_id == deployment_id
                and run.state_type == "SCHEDULED"
                and run.run_count == 0
                and (run.auto or not auto_only)
                and (run.expected_start_time > now or not future_only)
            ):
                del self._runs[run_id]

    async def _prune_future_runs(self, deployment: _Deployment) -> list[str]:
        """Cancel duplicate slots and delete strays, as PrefectGateway does."""
        now = self._clock()
        future = [
            r
            for r in self._runs.values()  # insertion order = creation order
            if r.deployment_id == deployment.id
            and r.auto
            and r.state_type in ("SCHEDULED", "PENDING", "RUNNING", "PAUSED")
            and r.expected_start_time > now
        ]
        future.sort(key=lambda r: r.state_type == "SCHEDULED")  # stable: started first
        taken: set[datetime] = set()
        removed: list[str] = []
        schedule = deployment.spec.schedule
        for run in future:
            slot = run.expected_start_time
            if run.state_type != "SCHEDULED":
                taken.add(slot)
            elif schedule is None or not await is_slot(schedule, slot):
                del self._runs[run.id]
                removed.append(run.id)
            elif slot in taken:
                self._cancel(run)
                removed.append(run.id)
            else:
                taken.add(slot)
        return removed

    async def _schedule(self, deployment: _Deployment) -> None:
        """What Prefect's scheduler does: fill future slots, deduplicated by key."""
        schedule = deployment.spec.schedule
        if schedule is None or deployment.schedule_id is None:
            return
        now = self._clock()
        keys = {r.key for r in self._runs.values()}
        for date, written in await scheduler_slots(schedule, now):
            # Prefect writes the slot in the schedule's timezone into the key (see
            # PrefectGateway): the same instant in another zone is another key.
            key = f"scheduled {deployment.id} {deployment.schedule_id} {written}"
            if key in keys:
                continue
            run = _Run(
                id=str(uuid4()),
                task_id=deployment.spec.task_id,
                deployment_id=deployment.id,
                key=key,
                auto=True,
                state_type="SCHEDULED",
                state_name="Scheduled",
                expected_start_time=date,
                parameters=dict(deployment.spec.parameters),
            )
            self._runs[run.id] = run
