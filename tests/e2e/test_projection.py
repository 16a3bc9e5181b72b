"""Tasks projected onto a real Prefect server: nextRunAt, in-place updates, deletes, outages."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from deployments.prefect_gateway import PrefectGateway
from tests.e2e.conftest import Client, Stack
from tests.e2e.test_sessions import eventually

TOLERANCE_MS = 1000


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[PrefectGateway]:
    gw = PrefectGateway(stack.prefect.api_url, work_pool=stack.settings.work_pool)
    yield gw
    await gw.aclose()


async def next_runs(c: Client, gw: PrefectGateway, task_id: str) -> tuple[int | None, int | None]:
    """(our nextRunAt, Prefect's earliest scheduled run) in ms."""
    ours = (await c.get(f"task/{task_id}/fetch"))["nextRunAt"]
    theirs = await gw.next_scheduled_time(task_id)
    return ours, None if theirs is None else int(theirs.timestamp() * 1000)


async def assert_next_run_matches(c: Client, gw: PrefectGateway, task_id: str) -> None:
    """nextRunAt equals Prefect's earliest scheduled run (within 1 s).

    Prefect's scheduler service reads a schedule and inserts its runs in two transactions,
    so a schedule change can race it and leave runs of the old schedule; the gateway
    repairs them a few seconds later (and the flow ignores them). Hence "eventually".
    """

    async def agree() -> bool:
        ours, theirs = await next_runs(c, gw, task_id)
        if ours is None or theirs is None:
            return ours is None and theirs is None
        return abs(ours - theirs) <= TOLERANCE_MS

    if not await agree():
        try:
            await eventually(agree, within=15, every=0.5)
        except AssertionError:
            raise AssertionError(
                f"{task_id}: (ours, Prefect's) = {await next_runs(c, gw, task_id)}"
            ) from None


async def test_next_run_is_what_prefect_will_do(client: Client, gateway: PrefectGateway) -> None:
    task = (await client.post("task/create", {"name": "invariant", "schedule": "hourly"}))["id"]
    await assert_next_run_matches(client, gateway, task)
    future = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    steps = [
        {"schedule": "0 9 * * 1-5", "timezone": "America/New_York"},
        {"timezone": "Asia/Tokyo"},
        {"schedule": "never"},
        {"schedule": "*/5 * * * *"},
        {"schedule": future.strftime("%Y-%m-%dT%H:%M:%S")},
        {"schedule": "daily", "timezone": "Europe/Berlin"},
        {"schedule": "monthly"},
        {"schedule": "twiceweekly"},
        {"schedule": "07:30", "timezone": "Australia/Sydney"},
        {"schedule": "Wed, 25 Dec 2025 10:00:00 GMT"},
        {"schedule": None},
        {"schedule": "quarterhourly", "timezone": None},
    ]
    for body in steps:
        await client.post(f"task/{task}/update", body)
        await assert_next_run_matches(client, gateway, task)


async def test_twenty_schedule_updates_leave_no_duplicate_runs(
    client: Client, gateway: PrefectGateway
) -> None:
    task = (await client.post("task/create", {"schedule": "*/5 * * * *"}))["id"]
    schedules = ["*/5 * * * *", "*/10 * * * *", "hourly", "*/15 * * * *", "0 * * * *"]
    for i in range(20):
        await client.post(f"task/{task}/update", {"schedule": schedules[i % len(schedules)]})
    await asyncio.sleep(3)  # let the scheduler loop run too
    runs = await gateway.read_runs(task, limit=200)
    live = [r for r in runs if r.scheduled and r.state_type not in ("CANCELLED", "CANCELLING")]
    per_slot = Counter(r.expected_start_time for r in live)
    assert per_slot and max(per_slot.values()) == 1, per_slot
    await assert_next_run_matches(client, gateway, task)


async def test_delete_removes_the_deployment_and_its_pending_runs(
    client: Client, gateway: PrefectGateway
) -> None:
    task = (await client.post("task/create", {"schedule": "*/5 * * * *"}))["id"]
    assert task in await gateway.list_task_deployments()
    assert [r for r in await gateway.read_runs(task) if r.state_type == "SCHEDULED"]
    await client.post(f"task/{task}/delete")
    assert task not in await gateway.list_task_deployments()
    assert not [
        r for r in await gateway.read_runs(task) if r.state_type in ("SCHEDULED", "PENDING")
    ]


async def test_prefect_outage_loses_nothing_and_doubles_nothing(
    stack: Stack, client: Client, gateway: PrefectGateway
) -> None:
    before = [(await client.post("task/create", {"schedule": "hourly"}))["id"] for _ in range(3)]
    stack.prefect.stop()
    try:
        during = [
            (await client.post("task/create", {"schedule": "*/10 * * * *"}))["id"] for _ in range(5)
        ]
        await client.post(f"task/{before[0]}/update", {"schedule": "daily"})
        await client.post(f"task/{before[1]}/delete")
        r = await client.http.post(f"/api/v1/task/{before[2]}/trigger", json={})
        assert r.status_code == 503 and r.json()["code"] == "SERVICE_UNAVAILABLE"
        # Reads keep working; the writes are stored.
        assert len((await client.get("task/list"))["items"]) == 7
    finally:
        stack.prefect.start()
    alive = [before[0], before[2], *during]

    async def converged() -> bool:
        deployed = await gateway.list_task_deployments()
        return all(t in deployed for t in alive) and before[1] not in deployed

    await eventually(converged, within=90, every=1)
    for task in alive:
        await assert_next_run_matches(client, gateway, task)
        runs = [r for r in await gateway.read_runs(task, limit=200) if r.state_type == "SCHEDULED"]
        assert max(Counter(r.expected_start_time for r in runs).values()) == 1
    assert not [
        r for r in await gateway.read_runs(before[2]) if not r.scheduled
    ]  # the 503 queued nothing


def test_check_command_agrees(stack: Stack) -> None:
    env = {
        "TASKBOT_DATABASE_URL": stack.settings.database_url,
        "TASKBOT_PREFECT_API_URL": stack.prefect.api_url,
        "TASKBOT_WORK_POOL": stack.settings.work_pool,
        "PATH": "/usr/bin:/bin",
    }
    # Runs of replaced schedules can linger a few seconds (see assert_next_run_matches).
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-m", "api", "check"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode == 0:
            break
        time.sleep(5)
    assert result.returncode == 0, result.stdout
    assert " 0 mismatches" in result.stdout
