"""The deployment gateway: the one interface through which taskbot talks to Prefect.

Every task maps to one deployment of the `bot-session` flow, named by the task id. The
task store is the source of truth; a gateway projects a task onto Prefect and reads
back what Prefect did with it (runs, the next scheduled time).

Key contracts (both implementations honour them; the contract suite checks them):
- apply_deployment is an idempotent upsert that updates the schedule in place, so the
  schedule keeps its id, and with it the scheduler's run keys: a slot that already has a
  run (even one a worker has picked up) is not filled twice. Re-applying an unchanged
  task changes nothing in Prefect.
- The same instant in another timezone is another scheduler key, and Prefect's scheduler
  can race a change (it reads the old schedule and inserts its runs after the change
  lands). So after every change, and whenever repair_runs is called (the reconciler's
  periodic pass), a gateway removes future auto-scheduled runs that duplicate a slot or
  are no slot of the current schedule. The flow still checks at start that its scheduled
  time is a slot of the task's schedule and has not run yet: a race can land later.
- Triggers are ad-hoc flow runs deduplicated by an idempotency key scoped to the task.
- delete_deployment stops future runs at once; a run already in progress finishes.
- Every failure to reach Prefect surfaces as GatewayUnavailable, never as a Prefect or
  httpx exception, so the API can mark the task out of sync and answer without a 5xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeAlias

from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

FLOW_NAME = "bot-session"
ENTRYPOINT = "flows/bot_session.py:bot_session"
DEFAULT_WORK_POOL = "taskbot"
# Our in-process worker type (flows/worker.py); "process" for Prefect's process worker.
DEFAULT_WORK_POOL_TYPE = "taskbot"
TASKBOT_TAG = "taskbot"
# The one schedule of a task deployment carries this slug: Prefect matches schedules by
# slug on update, which is what keeps the schedule id (and so run idempotency) stable.
SCHEDULE_SLUG = "taskbot"
# Prefect tags every run its scheduler creates with this; ad-hoc runs never have it.
AUTO_SCHEDULED_TAG = "auto-scheduled"
ACCOUNT_TAG_PREFIX = "account:"
BOT_TAG_PREFIX = "bot:"

Schedule: TypeAlias = IntervalSchedule | CronSchedule | RRuleSchedule

# Prefect state types (prefect.client.schemas.objects.StateType values).
ACTIVE_STATE_TYPES = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"})


class GatewayError(Exception):
    """Prefect refused a request for a reason that retrying will not fix."""


class GatewayUnavailable(GatewayError):
    """Prefect is unreachable, too slow, or answering 5xx, even after retries."""


class DeploymentNotFound(GatewayError, LookupError):
    """The task has no deployment in Prefect (never applied, or deleted)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no deployment for task {task_id!r}")
        self.task_id = task_id


@dataclass(frozen=True)
class DeploymentSpec:
    """What a task's deployment should look like; the schedule is built by the caller."""

    task_id: str
    account_id: str
    bot_id: str | None
    name: str
    description: str
    schedule: Schedule | None

    @property
    def tags(self) -> list[str]:
        """Deployment tags: `taskbot`, the account, and the bot when there is one."""
        tags = [TASKBOT_TAG, f"{ACCOUNT_TAG_PREFIX}{self.account_id}"]
        if self.bot_id:
            tags.append(f"{BOT_TAG_PREFIX}{self.bot_id}")
        return tags

    @property
    def parameters(self) -> dict[str, Any]:
        """Flow parameters: the flow loads everything else from the task store."""
        return {"task_id": self.task_id}

    @property
    def deployment_description(self) -> str:
        """The deployment description shown in the Prefect UI: task name, then description."""
        return "\n\n".join(part for part in (self.name.strip(), self.description.strip()) if part)


@dataclass(frozen=True)
class DeploymentInfo:
    """A task deployment as it exists in Prefect, for drift repair."""

    task_id: str
    deployment_id: str
    tags: frozenset[str]
    schedule_id: str | None
    schedule: Schedule | None
    paused: bool
    updated: datetime | None

    @property
    def account_id(self) -> str | None:
        """The account named by the `account:` tag, if any."""
        return _tag_value(self.tags, ACCOUNT_TAG_PREFIX)

    @property
    def bot_id(self) -> str | None:
        """The bot named by the `bot:` tag, if any."""
        return _tag_value(self.tags, BOT_TAG_PREFIX)


@dataclass(frozen=True)
class FlowRunInfo:
    """One Prefect flow run of a task's deployment."""

    id: str
    task_id: str
    state_type: str
    state_name: str
    expected_start_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    scheduled: bool
    idempotency_key: str | None

    @property
    def active(self) -> bool:
        """Whether the run has not reached a final state yet."""
        return self.state_type in ACTIVE_STATE_TYPES


class Gateway(Protocol):
    """Projects tasks onto Prefect deployments and reads their runs back."""

    async def ensure_ready(self) -> None:
        """Create the work pool and the `bot-session` flow if they are missing."""
        ...

    async def apply_deployment(self, spec: DeploymentSpec) -> str:
        """Create or update the task's deployment in place; return the deployment id."""
        ...

    async def delete_deployment(self, task_id: str) -> None:
        """Delete the deployment and its not-yet-started runs; missing is a no-op."""
        ...

    async def create_flow_run(
        self,
        task_id: str,
        *,
        idempotency_key: str,
        parameters: Mapping[str, Any] | None = None,
        scheduled_time: datetime | None = None,
    ) -> str:
        """Create an ad-hoc run (now, or at `scheduled_time`); the same key gives the same run."""
        ...

    async def cancel_runs(self, task_id: str) -> list[str]:
        """Cancel the task's running and queued runs; return the ids cancelled."""
        ...

    async def repair_runs(self, task_id: str) -> list[str]:
        """Remove future auto runs that duplicate a slot or are no slot; return their ids."""
        ...

    async def cancel_run(self, flow_run_id: str) -> bool:
        """Cancel one run if it has not finished; whether Prefect accepted it."""
        ...

    async def read_run(self, flow_run_id: str) -> FlowRunInfo | None:
        """One run by id, or None when Prefect has no such run."""
        ...

    async def read_runs(self, task_id: str, *, limit: int = 50) -> list[FlowRunInfo]:
        """The task's runs, latest expected start first."""
        ...

    async def next_scheduled_time(
        self, task_id: str, *, after: datetime | None = None
    ) -> datetime | None:
        """Expected start of the earliest auto-scheduled run after `after` (default now)."""
        ...

    async def list_task_deployments(self) -> dict[str, DeploymentInfo]:
        """Every deployment tagged `taskbot`, keyed by task id."""
        ...

    async def aclose(self) -> None:
        """Release connections; the gateway is not used afterwards."""
        ...


# Prefect's scheduler defaults (PREFECT_SERVER_SERVICES_SCHEDULER_*): at least 3 runs and
# 1 h ahead, at most 100 runs and 100 days ahead. A slot further out has no run yet.
SCHEDULER_MIN_RUNS = 3
SCHEDULER_MAX_RUNS = 100
SCHEDULER_MIN_TIME = timedelta(hours=1)
SCHEDULER_MAX_TIME = timedelta(days=100)


async def scheduler_slots(schedule: Schedule, start: datetime) -> list[tuple[datetime, str]]:
    """The slots Prefect's scheduler fills from `start`: (UTC time, time as Prefect writes it).

    Prefect writes the slot into the run's idempotency key in the *schedule's* timezone,
    so one instant under two timezones is two keys.
    """
    candidates = await _server_schedule(schedule).get_dates(
        n=SCHEDULER_MAX_RUNS, start=start, end=start + SCHEDULER_MAX_TIME
    )
    slots: list[tuple[datetime, str]] = []
    for date in candidates:
        slots.append((plain_utc(date), str(date)))
        if len(slots) >= SCHEDULER_MIN_RUNS and date >= start + SCHEDULER_MIN_TIME:
            break
    return slots


async def is_slot(schedule: Schedule, moment: datetime) -> bool:
    """Whether the schedule fires at exactly this instant."""
    dates = await _server_schedule(schedule).get_dates(n=1, start=moment)
    return bool(dates) and dates[0] == moment


def plain_utc(moment: datetime) -> datetime:
    """A stdlib datetime in UTC: no Prefect DateTime leaves a gateway.

    Prefect's DateTime subclass can drop the timezone in arithmetic
    (`DateTime(..., tzinfo=timezone.utc) + timedelta` is naive).
    """
    utc = moment.astimezone(UTC)
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, UTC
    )


def _server_schedule(schedule: Schedule) -> Any:
    # Prefect's server models compute dates exactly as its scheduler does; imported late
    # because they are heavy and only needed once a schedule is evaluated.
    from prefect.server.schemas import schedules as server_schedules

    server_type = getattr(server_schedules, type(schedule).__name__)
    return server_type.model_validate(schedule.model_dump())


def scoped_idempotency_key(task_id: str, key: str) -> str:
    """Scope a caller's key to the task: Prefect deduplicates per flow, not per deployment."""
    return f"taskbot-trigger {task_id} {key}"


def _tag_value(tags: frozenset[str], prefix: str) -> str | None:
    for tag in tags:
        if tag.startswith(prefix):
            return tag[len(prefix) :]
    return None
