"""Task use cases: validation, store writes, then the orchestrator projection."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.bots.repository import BotRepository
from api.clock import Clock, from_ms, to_ms
from api.contacts.repository import ContactRepository
from api.db.engine import Database
from api.db.models import Task
from api.errors import BadRequest, LimitsReached, NotFound
from api.ids import new_id
from api.meta import apply_meta_update, check_meta
from api.quotas import QuotaDefaults, quota_defaults, read_usage
from api.resources import ResourceService, sent_fields, to_wire
from api.settings import Settings
from api.tasks.projection import TaskProjection
from api.tasks.repository import TaskRepository
from api.tasks.schemas import TaskCreate, TaskExportItem, TaskOut, TaskUpdate
from deployments.schedules import ScheduleError, TaskSchedule, load_schedule, parse_schedule


def current_next_run(task: Task, now: datetime) -> int | None:
    """``nextRunAt`` as of ``now``: the stored value, recomputed once it has passed.

    The stored value is refreshed when a run ends; between the slot passing and that
    moment the schedule itself says what comes next.
    """
    if task.next_run_at is None or task.next_run_at > to_ms(now):
        return task.next_run_at
    return _next_ms(schedule_of(task), now)


def to_out(task: Task, now: datetime) -> TaskOut:
    """The wire object of a task row, with ``nextRunAt`` as of ``now``."""
    out = to_wire(task, TaskOut)
    out.next_run_at = current_next_run(task, now)
    return out


def to_export(task: Task) -> TaskExportItem:
    """The export object of a task row; a null ``meta`` exports as ``{}``."""
    return to_wire(task, TaskExportItem, meta=task.meta or {})


def schedule_of(task: Task) -> TaskSchedule:
    """The parsed schedule of a stored task."""
    anchor = from_ms(task.schedule_anchor) if task.schedule_anchor is not None else None
    return load_schedule(task.schedule, task.timezone, anchor)


def _blank_to_none(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def _parse(schedule: str | None, timezone: str | None, now: datetime) -> TaskSchedule:
    try:
        return parse_schedule(schedule, timezone, now=now)
    except ScheduleError as error:
        raise BadRequest(error.message) from None


class TaskService(ResourceService[Task, TaskOut]):
    """Create, read, update, delete, list, trigger and cancel tasks of one account."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        projection: TaskProjection,
        quotas: QuotaDefaults | None = None,
    ) -> None:
        super().__init__(db, clock, self.present, "Task not found")
        self.projection = projection
        self.quotas = quotas or quota_defaults(Settings())

    def present(self, task: Task) -> TaskOut:
        """The wire object of ``task`` as of now."""
        return to_out(task, self.clock())

    def repository(self, session: AsyncSession) -> TaskRepository:
        """Tasks as seen now: expired ones are already invisible."""
        return TaskRepository(session, to_ms(self.clock()))

    async def create(self, account_id: str, body: TaskCreate) -> str:
        """Store a new task, then project it; returns its id."""
        now = self.clock()
        now_ms = to_ms(now)
        schedule_text = _blank_to_none(body.schedule)
        timezone = _blank_to_none(body.timezone)
        parsed = _parse(schedule_text, timezone, now)
        meta = check_meta(body.meta)
        task = Task(
            id=new_id("task"),
            account_id=account_id,
            name=body.name,
            description=body.description,
            bot_id=body.bot_id,
            contact_id=body.contact_id,
            blueprint_id=body.blueprint_id,
            schedule=schedule_text,
            timezone=timezone,
            schedule_anchor=to_ms(parsed.anchor) if parsed.anchor else None,
            session_duration=body.session_duration,
            max_iterations=body.max_iterations,
            max_time=body.max_time,
            expires_at=body.expires_at,
            meta=meta,
            next_run_at=_next_ms(parsed, now),
            created_at=now_ms,
            updated_at=now_ms,
        )
        async with self.db.transaction() as session:
            await self._check_refs(session, account_id, body.bot_id, body.contact_id)
            TaskRepository(session, now_ms).add(task)
        await self.projection.push([task.id])
        return task.id

    async def update(self, account_id: str, task_id: str, body: TaskUpdate) -> str:
        """Apply a partial update; ``nextRunAt`` is recomputed when schedule/timezone are sent."""
        now = self.clock()
        now_ms = to_ms(now)
        async with self.db.transaction() as session:
            task = await TaskRepository(session, now_ms).get(account_id, task_id, lock=True)
            if task is None:
                raise NotFound("Task not found")
            changes = sent_fields(body)
            await self._check_refs(
                session, account_id, changes.get("bot_id"), changes.get("contact_id")
            )
            if "meta" in changes:
                changes["meta"] = apply_meta_update(task.meta, changes["meta"])
            if "schedule" in changes or "timezone" in changes:
                schedule_text = _blank_to_none(changes.get("schedule", task.schedule))
                timezone = _blank_to_none(changes.get("timezone", task.timezone))
                parsed = _parse(schedule_text, timezone, now)
                changes.update(
                    schedule=schedule_text,
                    timezone=timezone,
                    schedule_anchor=to_ms(parsed.anchor) if parsed.anchor else None,
                    next_run_at=_next_ms(parsed, now),
                )
            for key, value in changes.items():
                setattr(task, key, value)
            task.updated_at = now_ms
            task.sync_version += 1
        await self.projection.push([task_id])
        return task_id

    async def delete(self, account_id: str, task_id: str) -> str:
        """Delete the task; its deployment and not-yet-started runs go with it."""
        async with self.db.transaction() as session:
            tasks = TaskRepository(session, to_ms(self.clock()))
            task = await tasks.get(account_id, task_id, lock=True)
            if task is None:
                raise NotFound("Task not found")
            await tasks.delete(task)
        await self.projection.remove([(account_id, task_id)])
        return task_id

    async def trigger(self, account_id: str, task_id: str) -> str:
        """Queue one run now (merged per task per UTC minute); 429 when over quota."""
        task = await self.get(account_id, task_id)
        async with self.db.session() as session:
            usage = await read_usage(session, account_id, self.clock(), self.quotas)
        # A trigger of a task that is running only queues behind it: no new concurrency.
        refusal = usage.refusal(including_self=task.status == "running")
        if refusal is not None:
            raise LimitsReached(refusal[0], retry_after=refusal[1])
        await self.projection.trigger(task)
        return task_id

    async def cancel(self, account_id: str, task_id: str) -> str:
        """Cancel the task's running and queued runs (a no-op when there are none)."""
        await self.projection.cancel(await self.get(account_id, task_id))
        return task_id

    async def _check_refs(
        self, session: AsyncSession, account_id: str, bot_id: str | None, contact_id: str | None
    ) -> None:
        if bot_id is not None and not await BotRepository(session).exists(account_id, bot_id):
            raise BadRequest("Bot not found")
        if contact_id is not None and not await ContactRepository(session).exists(
            account_id, contact_id
        ):
            raise BadRequest("Contact not found")


def _next_ms(parsed: TaskSchedule, now: datetime) -> int | None:
    upcoming = parsed.next_run_after(now)
    return to_ms(upcoming) if upcoming is not None else None
