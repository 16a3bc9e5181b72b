"""One contract for every Gateway: the in-memory fake and the real Prefect server.

Tests isolate by task id (a fresh one per test), so they share one Prefect server. Runs
never start by themselves here (no worker): tests move runs to Pending/Running through a
harness, as a worker would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import State
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
from prefect.exceptions import ObjectNotFound
from prefect.states import Completed, Pending, Running, Scheduled

from deployments.gateway import (
    DEFAULT_WORK_POOL_TYPE,
    DeploymentNotFound,
    DeploymentSpec,
    FlowRunInfo,
    Gateway,
    GatewayError,
    GatewayUnavailable,
    Schedule,
)
from deployments.memory_gateway import MemoryGateway
from deployments.prefect_gateway import PrefectGateway
from tests.support.prefect_server import PrefectTestServer, free_port, shared_prefect_server

ANCHOR = datetime(2024, 1, 1, 0, 0, 7, tzinfo=UTC)
EVERY_15_MIN = IntervalSchedule(interval=timedelta(minutes=15), anchor_date=ANCHOR, timezone="UTC")
EVERY_10_MIN_CRON = CronSchedule(cron="*/10 * * * *", timezone="UTC")


class Harness(ABC):
    """A gateway plus the worker-side controls a contract test needs."""

    gateway: Gateway
    server: PrefectTestServer | None = None

    @abstractmethod
    async def set_state(self, run_id: str, state_type: str) -> None:
        """Move a run to PENDING / RUNNING / COMPLETED, as a worker would."""

    @abstractmethod
    async def run_state(self, run_id: str) -> str | None:
        """The run's state type, or None when the run no longer exists."""

    @abstractmethod
    async def add_scheduler_run(self, task_id: str, when: datetime) -> str:
        """Insert an auto-scheduled run at `when`, as a racing scheduler would."""

    async def open(self) -> Harness:
        await self.gateway.ensure_ready()
        return self

    @abstractmethod
    async def settle(self) -> None:
        """Give background services (Prefect's scheduler) time to act."""

    async def converge(self, task_id: str) -> list[str]:
        """Settle, then run the repair pass that follows every change (see gateway.py)."""
        await self.settle()
        return await self.gateway.repair_runs(task_id)

    async def aclose(self, task_id: str) -> None:
        """Delete what the test created (it would keep Prefect's scheduler busy), close."""
        with contextlib.suppress(GatewayError):
            for created in await self.gateway.list_task_deployments():
                if created.startswith(task_id):
                    await self.gateway.delete_deployment(created)
        await self.gateway.aclose()


class MemoryHarness(Harness):
    def __init__(self) -> None:
        self.memory = MemoryGateway()
        self.gateway = self.memory

    async def set_state(self, run_id: str, state_type: str) -> None:
        self.memory.set_run_state(run_id, state_type)

    async def run_state(self, run_id: str) -> str | None:
        run = self.memory.run(run_id)
        return run.state_type if run else None

    async def add_scheduler_run(self, task_id: str, when: datetime) -> str:
        return self.memory.add_scheduler_run(task_id, when)

    async def settle(self) -> None:
        """Nothing runs in the background of the fake."""


_STATES: dict[str, Callable[[], State[Any]]] = {
    "PENDING": Pending,
    "RUNNING": Running,
    "COMPLETED": Completed,
}


class PrefectHarness(Harness):
    def __init__(self, server: PrefectTestServer) -> None:
        self.server = server
        self.gateway = PrefectGateway(server.api_url)
        # A plain client plays the worker; only the gateway under test is constrained.
        self.client = PrefectClient(server.api_url)

    async def set_state(self, run_id: str, state_type: str) -> None:
        await self.client.set_flow_run_state(run_id, _STATES[state_type](), force=True)

    async def run_state(self, run_id: str) -> str | None:
        try:
            run = await self.client.read_flow_run(UUID(run_id))
        except ObjectNotFound:
            return None
        return run.state_type.value if run.state_type else None

    async def add_scheduler_run(self, task_id: str, when: datetime) -> str:
        deployment_id = (await self.gateway.list_task_deployments())[task_id].deployment_id
        run = await self.client.create_flow_run_from_deployment(
            UUID(deployment_id), state=Scheduled(scheduled_time=when), tags=["auto-scheduled"]
        )
        return str(run.id)

    async def open(self) -> Harness:
        await self.client.__aenter__()
        return await super().open()

    async def settle(self) -> None:
        # The test server's scheduler loops every second.
        await asyncio.sleep(2.5)

    async def aclose(self, task_id: str) -> None:
        await super().aclose(task_id)
        await self.client.__aexit__(None, None, None)


@pytest.fixture(params=["memory", "prefect"])
async def h(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, task_id: str
) -> AsyncIterator[Harness]:
    """The gateway under test, once per implementation."""
    harness: Harness
    if request.param == "memory":
        harness = MemoryHarness()
    else:
        harness = PrefectHarness(shared_prefect_server(request.config, tmp_path_factory))
    yield await harness.open()
    await harness.aclose(task_id)


@pytest.fixture
async def prefect_harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, task_id: str
) -> AsyncIterator[PrefectHarness]:
    """The real gateway only, for what the fake cannot show (outages, Prefect drift)."""
    harness = PrefectHarness(shared_prefect_server(request.config, tmp_path_factory))
    await harness.open()
    yield harness
    await harness.aclose(task_id)


@pytest.fixture
def task_id() -> str:
    """A fresh task id: tests share the Prefect server and isolate by task."""
    return f"task_{uuid4().hex[:16]}"


def spec(
    task_id: str,
    schedule: Schedule | None = EVERY_15_MIN,
    *,
    name: str = "Daily digest",
    bot_id: str | None = "bot_1",
    account_id: str = "acct_1",
) -> DeploymentSpec:
    return DeploymentSpec(
        task_id=task_id,
        account_id=account_id,
        bot_id=bot_id,
        name=name,
        description="Summarise the news",
        schedule=schedule,
    )


def once_at(when: datetime) -> RRuleSchedule:
    return RRuleSchedule(
        rrule=f"DTSTART:{when:%Y%m%dT%H%M%S}Z\nRRULE:FREQ=DAILY;COUNT=1", timezone="UTC"
    )


def next_slot(after: datetime, anchor: datetime, every: timedelta) -> datetime:
    """The first anchor + k * every at or after `after`."""
    steps = -((anchor - after) // every)  # ceiling division
    return anchor + steps * every


# apply ------------------------------------------------------------------------------


async def test_apply_creates_a_tagged_deployment_with_scheduled_runs(h: Harness, task_id: str):
    deployment_id = await h.gateway.apply_deployment(spec(task_id))

    info = (await h.gateway.list_task_deployments())[task_id]
    assert info.deployment_id == deployment_id
    assert info.tags == {"taskbot", "account:acct_1", "bot:bot_1"}
    assert (info.account_id, info.bot_id) == ("acct_1", "bot_1")
    assert info.schedule == EVERY_15_MIN
    assert info.schedule_id is not None
    # The runs exist as soon as apply returns, not one scheduler loop later.
    runs = await h.gateway.read_runs(task_id)
    assert len(runs) >= 3
    assert all(r.scheduled and r.state_type == "SCHEDULED" for r in runs)


SCHEDULE_KINDS: dict[str, Schedule | None] = {
    "interval": EVERY_15_MIN,
    "interval-tz": IntervalSchedule(
        interval=timedelta(days=1), anchor_date=ANCHOR, timezone="Europe/Berlin"
    ),
    "cron-tz": CronSchedule(cron="30 9 * * 1-5", timezone="America/New_York"),
    "rrule": RRuleSchedule(
        rrule="DTSTART:20240101T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH", timezone="Asia/Tokyo"
    ),
    "none": None,
}


@pytest.mark.parametrize("kind", SCHEDULE_KINDS)
async def test_apply_again_changes_nothing(h: Harness, task_id: str, kind: str):
    first = await h.gateway.apply_deployment(spec(task_id, SCHEDULE_KINDS[kind]))
    before = (await h.gateway.list_task_deployments())[task_id]
    runs_before = {r.id for r in await h.gateway.read_runs(task_id)}

    second = await h.gateway.apply_deployment(spec(task_id, SCHEDULE_KINDS[kind]))

    after = (await h.gateway.list_task_deployments())[task_id]
    assert second == first
    assert after.schedule_id == before.schedule_id
    assert after.updated == before.updated
    assert {r.id for r in await h.gateway.read_runs(task_id)} == runs_before


async def test_apply_updates_metadata(h: Harness, task_id: str):
    await h.gateway.apply_deployment(spec(task_id))
    await h.gateway.apply_deployment(spec(task_id, bot_id=None, account_id="acct_2"))

    info = (await h.gateway.list_task_deployments())[task_id]
    assert info.tags == {"taskbot", "account:acct_2"}
    assert info.bot_id is None


async def test_schedule_change_is_in_place(h: Harness, task_id: str):
    await h.gateway.apply_deployment(spec(task_id, EVERY_15_MIN))
    before = (await h.gateway.list_task_deployments())[task_id]

    await h.gateway.apply_deployment(spec(task_id, EVERY_10_MIN_CRON))
    await h.converge(task_id)

    after = (await h.gateway.list_task_deployments())[task_id]
    assert after.deployment_id == before.deployment_id
    assert after.schedule_id == before.schedule_id
    assert after.schedule == EVERY_10_MIN_CRON
    upcoming = [r for r in await h.gateway.read_runs(task_id) if r.state_type == "SCHEDULED"]
    assert upcoming
    # No run of the old schedule (:07 past the quarter hour) survives.
    assert all(r.expected_start_time and r.expected_start_time.second == 0 for r in upcoming)


async def test_schedule_removed_then_added_back(h: Harness, task_id: str):
    await h.gateway.apply_deployment(spec(task_id, EVERY_15_MIN))
    await h.gateway.apply_deployment(spec(task_id, None))
    await h.converge(task_id)

    info = (await h.gateway.list_task_deployments())[task_id]
    assert info.schedule is None and info.schedule_id is None
    assert await h.gateway.read_runs(task_id) == []
    assert await h.gateway.next_scheduled_time(task_id) is None

    await h.gateway.apply_deployment(spec(task_id, EVERY_10_MIN_CRON))
    assert (await h.gateway.list_task_deployments())[task_id].schedule == EVERY_10_MIN_CRON
    assert await h.gateway.next_scheduled_time(task_id) is not None


# next_scheduled_time ----------------------------------------------------------------


def _expected_interval(before: datetime, after: datetime) -> set[datetime | None]:
    every = timedelta(minutes=15)
    return {next_slot(before, ANCHOR, every), next_slot(after, ANCHOR, every)}


def _expected_cron(before: datetime, after: datetime) -> set[datetime | None]:
    every, epoch = timedelta(minutes=10), datetime(2024, 1, 1, tzinfo=UTC)
    return {next_slot(before, epoch, every), next_slot(after, epoch, every)}


IN_TWO_DAYS = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)

NEXT_TIME_CASES: dict[str, tuple[Schedule | None, Callable[..., set[datetime | None]]]] = {
    "interval": (EVERY_15_MIN, _expected_interval),
    "cron": (EVERY_10_MIN_CRON, _expected_cron),
    "rrule-once": (once_at(IN_TWO_DAYS), lambda *_: {IN_TWO_DAYS}),
    "rrule-once-past": (once_at(datetime(2020, 5, 1, tzinfo=UTC)), lambda *_: {None}),
    # Prefect schedules at most 100 days ahead: a later one-shot has no run yet.
    "beyond-horizon": (once_at(IN_TWO_DAYS + timedelta(days=200)), lambda *_: {None}),
    "none": (None, lambda *_: {None}),
}


@pytest.mark.parametrize("case", NEXT_TIME_CASES)
async def test_next_scheduled_time(h: Harness, task_id: str, case: str):
    schedule, expected = NEXT_TIME_CASES[case]
    before = datetime.now(UTC)
    await h.gateway.apply_deployment(spec(task_id, schedule))
    result = await h.gateway.next_scheduled_time(task_id)
    assert result in expected(before, datetime.now(UTC))


async def test_next_scheduled_time_ignores_triggers(h: Harness, task_id: str):
    await h.gateway.apply_deployment(spec(task_id, None))
    await h.gateway.create_flow_run(
        task_id, idempotency_key="later", scheduled_time=datetime.now(UTC) + timedelta(hours=1)
    )
    assert await h.gateway.next_scheduled_time(task_id) is None


async def test_next_scheduled_time_of_missing_task_is_none(h: Harness, task_id: str):
    assert await h.gateway.next_scheduled_time(task_id) is None
    assert await h.gateway.read_runs(task_id) == []


# triggers ---------------------------------------------------------------------------


async def test_unscheduled_deployment_exists_and_can_be_triggered(h: Harness, task_id: str):
    await h.gateway.apply_deployment(spec(task_id, None))
    assert task_id in await h.gateway.list_task_deployments()
    assert await h.gateway.read_runs(task_id) == []

    run_id = await h.gateway.create_flow_run(task_id, idempotency_key="k")

    [run] = await h.gateway.read_runs(task_id)
    assert (run.id, run.task_id, run.state_type, run.scheduled) == (
        run_id,
        task_id,
        "SCHEDULED",
        False,
    )
    assert run.expected_start_time is not None
    assert abs(run.expected_start_time - datetime.now(UTC)) < timedelta(minutes=1)


async def test_create_flow_run_is_idempotent_per_task(h: Harness, task_id: str):
    other = f"{task_id}_other"
    await h.gateway.apply_deployment(spec(task_id, None))
    await h.gateway.apply_deployment(spec(other, None))

    first = await h.gateway.create_flow_run(task_id, idempotency_key="2025-01-01T10:00")
    again = await h.gateway.create_flow_run(task_id, idempotency_key="2025-01-01T10:00")
    next_minute = await h.gateway.create_flow_run(task_id, idempotency_key="2025-01-01T10:01")
    # Prefect deduplicates keys per flow, and every task shares the flow.
    other_task = await h.gateway.create_flow_run(other, idempotency_key="2025-01-01T10:00")

    assert again == first
    assert len({first, next_minute, other_task}) == 3
    assert len(await h.gateway.read_runs(task_id)) == 2


async def test_create_flow_run_without_deployment(h: Harness, task_id: str):
    with pytest.raises(DeploymentNotFound):
        await h.gateway.create_flow_run(task_id, idempotency_key="k")


# cancel -----------------------------------------------------------------------------


async def test_cancel_runs_cancels_running_and_queued_but_not_the_schedule(
    h: Harness, task_id: str
):
    await h.gateway.apply_deployment(spec(task_id, EVERY_15_MIN))
    queued = await h.gateway.create_flow_run(task_id, idempotency_key="queued")
    running = await h.gateway.create_flow_run(task_id, idempotency_key="running")
    done = await h.gateway.create_flow_run(task_id, idempotency_key="done")
    await h.set_state(running, "RUNNING")
    await h.set_state(done, "COMPLETED")
    upcoming = await h.gateway.next_scheduled_time(task_id)

    cancelled = await h.gateway.cancel_runs(task_id)

    assert sorted(cancelled) == sorted([queued, running])
    assert await h.run_state(queued) == "CANCELLED"
    # A running run is asked to stop; its worker moves it on to Cancelled.
    assert await h.run_state(running) == "CANCELLING"
    assert await h.run_state(done) == "COMPLETED"
    assert await h.gateway.next_scheduled_time(task_id) == upcoming
    assert await h.gateway.cancel_runs(task_id) == []


async def test_cancel_runs_of_missing_task_is_a_no_op(h: Harness, task_id: str):
    assert await h.gateway.cancel_runs(task_id) == []


# delete -----------------------------------------------------------------------------


async def test_delete_removes_deployment_and_unstarted_runs(h: Harness, task_id: str):
    await h.gateway.apply_deployment(spec(task_id, EVERY_15_MIN))
    auto = [r.id for r in await h.gateway.read_runs(task_id)]
    now_run = await h.gateway.create_flow_run(task_id, idempotency_key="now")
    later_run = await h.gateway.create_flow_run(
        task_id, idempotency_key="later", scheduled_time=datetime.now(UTC) + timedelta(hours=2)
    )
    pending = await h.gateway.create_flow_run(task_id, idempotency_key="pending")
    running = await h.gateway.create_flow_run(task_id, idempotency_key="running")
    await h.set_state(pending, "PENDING")
    await h.set_state(running, "RUNNING")

    await h.gateway.delete_deployment(task_id)

    assert task_id not in await h.gateway.list_task_deployments()
    assert await h.gateway.read_runs(task_id) == []
    assert await h.gateway.next_scheduled_time(task_id) is None
    for run_id in [*auto, now_run, later_run]:
        assert await h.run_state(run_id) in (None, "CANCELLED")
    assert await h.run_state(pending) == "CANCELLING"
    assert await h.run_state(running) == "RUNNING"  # finishes on its own
    with pytest.raises(DeploymentNotFound):
        await h.gateway.create_flow_run(task_id, idempotency_key="after")
    # Nothing comes back once the scheduler has had its turn.
    await h.settle()
    assert await h.gateway.read_runs(task_id) == []
    for run_id in auto:
        assert await h.run_state(run_id) in (None, "CANCELLED")


async def test_delete_of_missing_deployment_is_a_no_op(h: Harness, task_id: str):
    await h.gateway.delete_deployment(task_id)
    await h.gateway.apply_deployment(spec(task_id))
    await h.gateway.delete_deployment(task_id)
    await h.gateway.delete_deployment(task_id)
    assert task_id not in await h.gateway.list_task_deployments()


# drift ------------------------------------------------------------------------------


async def test_list_task_deployments(h: Harness, task_id: str):
    with_bot, without_bot = f"{task_id}_a", f"{task_id}_b"
    await h.gateway.apply_deployment(spec(with_bot, EVERY_15_MIN))
    await h.gateway.apply_deployment(spec(without_bot, None, bot_id=None, account_id="acct_9"))

    listed = await h.gateway.list_task_deployments()
    assert listed[with_bot].bot_id == "bot_1"
    assert (listed[without_bot].account_id, listed[without_bot].bot_id) == ("acct_9", None)
    assert listed[without_bot].schedule is None

    await h.gateway.delete_deployment(with_bot)
    listed = await h.gateway.list_task_deployments()
    assert with_bot not in listed and without_bot in listed


async def test_repair_runs_leaves_a_clean_deployment_alone(h: Harness, task_id: str):
    assert await h.gateway.repair_runs(task_id) == []
    await h.gateway.apply_deployment(spec(task_id, EVERY_10_MIN_CRON))
    runs = {r.id for r in await h.gateway.read_runs(task_id)}
    assert await h.gateway.repair_runs(task_id) == []
    assert {r.id for r in await h.gateway.read_runs(task_id)} == runs


async def test_repair_runs_removes_strays_and_duplicates(h: Harness, task_id: str):
    await h.gateway.apply_deployment(spec(task_id, EVERY_10_MIN_CRON))
    upcoming = await h.gateway.next_scheduled_time(task_id)
    assert upcoming is not None
    stray = await h.add_scheduler_run(task_id, upcoming + timedelta(minutes=5))
    duplicate = await h.add_scheduler_run(task_id, upcoming + timedelta(minutes=10))

    removed = await h.gateway.repair_runs(task_id)

    assert sorted(removed) == sorted([stray, duplicate])
    assert await h.run_state(stray) is None  # deleted: its key must not block the slot
    assert await h.run_state(duplicate) == "CANCELLED"  # the original keeps the slot
    runs = await h.gateway.read_runs(task_id, limit=500)
    live = [r for r in runs if r.state_type == "SCHEDULED"]
    assert len(live) == len({r.expected_start_time for r in live})
    assert await h.gateway.next_scheduled_time(task_id) == upcoming


async def test_ensure_ready_is_idempotent(h: Harness):
    await h.gateway.ensure_ready()
    await h.gateway.ensure_ready()


# schedule churn ---------------------------------------------------------------------

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
# Every schedule below fires every ten minutes (:00, :10, ...), in a different timezone
# or form, so each change re-creates the same slots: where duplicates could appear.
CHURN: list[Schedule] = [
    IntervalSchedule(interval=timedelta(minutes=5), anchor_date=EPOCH, timezone="UTC"),
    CronSchedule(cron="*/5 * * * *", timezone="Europe/Berlin"),
    IntervalSchedule(
        interval=timedelta(minutes=10), anchor_date=EPOCH, timezone="America/New_York"
    ),
    CronSchedule(cron="*/5 * * * *", timezone="Asia/Kolkata"),
    CronSchedule(cron="*/10 * * * *", timezone="Asia/Tokyo"),
]


async def test_twenty_schedule_changes_leave_one_run_per_slot(h: Harness, task_id: str):
    await h.gateway.apply_deployment(spec(task_id, CHURN[0]))
    soon = datetime.now(UTC) + timedelta(minutes=2)
    slots = sorted(
        (r for r in await h.gateway.read_runs(task_id, limit=500) if _shared_slot_after(r, soon)),
        key=lambda r: r.expected_start_time or EPOCH,
    )[:2]
    # A worker has picked up one future slot early and started another: Prefect keeps
    # both through every change, and the new schedules must not duplicate them.
    await h.set_state(slots[0].id, "PENDING")
    await h.set_state(slots[1].id, "RUNNING")

    for i in range(20):
        last_change = datetime.now(UTC)
        await h.gateway.apply_deployment(spec(task_id, CHURN[i % len(CHURN)], name=f"v{i % 3}"))
    # Prefect's scheduler may have read an earlier schedule and inserted its runs after
    # the last change landed: the repair pass after a change removes those.
    repaired = await h.converge(task_id)
    print(f"repair_runs removed {len(repaired)} raced runs")

    runs = await h.gateway.read_runs(task_id, limit=500)
    live = [r for r in runs if r.state_type not in ("CANCELLED", "CANCELLING")]
    per_slot = Counter(r.expected_start_time for r in live if r.scheduled)
    assert max(per_slot.values()) == 1, [t for t, n in per_slot.items() if n > 1]
    states = {r.id: r.state_type for r in runs}
    assert (states[slots[0].id], states[slots[1].id]) == ("PENDING", "RUNNING")
    # Only the last schedule's slots (:00, :10, ...) are still waiting to run. A slot that
    # came due during the churn stays (Prefect only replaces future runs): it is due.
    waiting = [
        r.expected_start_time
        for r in live
        if r.state_type == "SCHEDULED"
        and r.scheduled
        and r.expected_start_time
        and r.expected_start_time > last_change
    ]
    assert len(waiting) >= 3
    assert [t for t in waiting if t.minute % 10] == []
    info = (await h.gateway.list_task_deployments())[task_id]
    assert info.schedule == CHURN[19 % len(CHURN)]


def _shared_slot_after(run: FlowRunInfo, after: datetime) -> bool:
    start = run.expected_start_time
    return start is not None and start > after and start.minute % 10 == 0


# real server only -------------------------------------------------------------------


async def test_a_run_raced_in_after_a_change_is_removed_shortly_after(
    prefect_harness: PrefectHarness, task_id: str
):
    h = prefect_harness
    assert h.server is not None
    gateway = PrefectGateway(h.server.api_url, repair_delay=0.5)
    try:
        await gateway.apply_deployment(spec(task_id, EVERY_15_MIN))
        await gateway.apply_deployment(spec(task_id, EVERY_10_MIN_CRON))
        upcoming = await gateway.next_scheduled_time(task_id)
        assert upcoming is not None
        # What a scheduler pass that read the old schedule inserts after apply returned.
        stray = await h.add_scheduler_run(task_id, upcoming + timedelta(minutes=7))
        assert await h.run_state(stray) == "SCHEDULED"
        # The repair is debounced by 0.5 s; on a loaded machine it can take longer.
        for _ in range(60):
            if await h.run_state(stray) is None:
                break
            await asyncio.sleep(0.25)
        assert await h.run_state(stray) is None
        assert await gateway.next_scheduled_time(task_id) == upcoming
    finally:
        await gateway.aclose()


async def test_apply_recreates_a_work_pool_that_disappeared(
    prefect_harness: PrefectHarness, task_id: str
):
    h = prefect_harness
    assert h.server is not None
    pool = f"taskbot-{uuid4().hex[:8]}"
    gateway = PrefectGateway(h.server.api_url, work_pool=pool)
    try:
        await gateway.apply_deployment(spec(task_id))
        await h.client.delete_work_pool(pool)  # drift: someone removed it in the UI

        await gateway.apply_deployment(spec(task_id, name="renamed"))
        await gateway.apply_deployment(spec(f"{task_id}_new"))

        assert (await h.client.read_work_pool(pool)).type == DEFAULT_WORK_POOL_TYPE
        for deployment in (await gateway.list_task_deployments()).values():
            if deployment.task_id.startswith(task_id):
                found = await h.client.read_deployment(UUID(deployment.deployment_id))
                assert found.work_pool_name == pool
    finally:
        await gateway.aclose()
        await h.client.delete_work_pool(pool)


async def test_unreachable_api_url_is_unavailable(prefect_harness: PrefectHarness):
    # Only the URL given counts (no PREFECT_API_URL, no profile): a dead one fails fast.
    dead = PrefectGateway(f"http://127.0.0.1:{free_port()}/api", deadline=2.0)
    try:
        with pytest.raises(GatewayUnavailable):
            await dead.list_task_deployments()
    finally:
        await dead.aclose()
    assert isinstance(await prefect_harness.gateway.list_task_deployments(), dict)


# outage (real server only) ----------------------------------------------------------


async def test_unavailable_while_prefect_is_down_then_recovers(
    prefect_harness: PrefectHarness, task_id: str
):
    h = prefect_harness
    assert h.server is not None
    gateway = h.gateway
    deployment_id = await gateway.apply_deployment(spec(task_id, EVERY_15_MIN))

    # Writes keep coming while the server dies abruptly mid-way.
    outcomes: list[str] = []
    first_write = asyncio.Event()

    async def writer() -> None:
        for i in range(200):
            schedule = CHURN[i % len(CHURN)]
            try:
                await gateway.apply_deployment(spec(task_id, schedule, name=f"w{i}"))
                outcomes.append("ok")
                first_write.set()
            except GatewayUnavailable:
                outcomes.append("unavailable")
                if outcomes.count("unavailable") == 3:
                    return
            await asyncio.sleep(0.05)

    writing = asyncio.create_task(writer())
    await first_write.wait()
    await asyncio.sleep(0.2)  # into the next write
    await asyncio.to_thread(h.server.kill)
    await writing
    assert "ok" in outcomes and "unavailable" in outcomes

    calls: list[Callable[[], Awaitable[object]]] = [
        gateway.ensure_ready,
        lambda: gateway.apply_deployment(spec(task_id)),
        lambda: gateway.delete_deployment(task_id),
        lambda: gateway.create_flow_run(task_id, idempotency_key="k"),
        lambda: gateway.cancel_runs(task_id),
        lambda: gateway.repair_runs(task_id),
        lambda: gateway.read_runs(task_id),
        lambda: gateway.next_scheduled_time(task_id),
        gateway.list_task_deployments,
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable):
            await call()
        print(f"GatewayUnavailable after {time.monotonic() - started:.2f} s")

    await asyncio.to_thread(h.server.start)

    # Same gateway, same client: it reconnects, and converging is one more apply (plus
    # the repair pass, as the restarted scheduler catches up on every deployment at once).
    assert await gateway.apply_deployment(spec(task_id, CHURN[4])) == deployment_id
    await h.converge(task_id)
    info = (await gateway.list_task_deployments())[task_id]
    assert info.schedule == CHURN[4]
    runs = await gateway.read_runs(task_id, limit=500)
    after = datetime.now(UTC)
    per_slot = Counter(
        r.expected_start_time
        for r in runs
        if r.state_type == "SCHEDULED" and r.expected_start_time and r.expected_start_time > after
    )
    assert per_slot and max(per_slot.values()) == 1, per_slot
    assert [t for t in per_slot if t and t.minute % 10] == []
