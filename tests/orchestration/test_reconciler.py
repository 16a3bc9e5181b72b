"""Store first, Prefect second: outages, tombstones, drift and expiry (memory gateway)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from api.accounts.service import AccountService
from api.db.engine import Database, create_engine
from api.errors import ServiceUnavailable
from api.ids import new_id
from api.orchestration.check import check_all
from api.orchestration.projection import DeploymentProjection
from api.orchestration.reconciler import Reconciler
from api.orchestration.repository import SyncRepository
from api.tasks.schemas import TaskCreate, TaskUpdate
from api.tasks.service import TaskService
from deployments.gateway import DeploymentSpec
from deployments.memory_gateway import MemoryGateway
from tests.support.clock import TestClock


@dataclass
class World:
    db: Database
    gateway: MemoryGateway
    tasks: TaskService
    reconciler: Reconciler
    account_id: str
    clock: TestClock


@pytest.fixture
async def world(fresh_database_url: str) -> AsyncIterator[World]:
    db = Database(create_engine(fresh_database_url))
    clock = TestClock()
    gateway = MemoryGateway(clock=clock)
    projection = DeploymentProjection(db, gateway, clock)
    account_id = await AccountService(db, clock).create_account(new_id("acct"))
    yield World(
        db,
        gateway,
        TaskService(db, clock, projection),
        Reconciler(db, gateway, projection, clock, interval=0.1),
        account_id,
        clock,
    )
    await db.dispose()


async def unsynced(world: World) -> int:
    async with world.db.session() as session:
        return await SyncRepository(session).unsynced_count()


async def deployed(world: World) -> dict:
    return await world.gateway.list_task_deployments()


async def test_writes_succeed_while_prefect_is_down_and_converge_later(world: World) -> None:
    world.gateway.available = False
    created = [
        await world.tasks.create(world.account_id, TaskCreate(name=f"t{i}", schedule="hourly"))
        for i in range(5)
    ]
    await world.tasks.update(world.account_id, created[0], TaskUpdate(schedule="daily"))
    await world.tasks.delete(world.account_id, created[1])
    assert await unsynced(world) >= 4
    with pytest.raises(ServiceUnavailable):
        await world.tasks.trigger(world.account_id, created[2])

    world.gateway.available = True
    assert await world.gateway.read_runs(created[2]) == []  # nothing half-done
    report = await world.reconciler.run_pass(full=True)
    assert report.remaining == 0 and report.removed == 1
    assert set(await deployed(world)) == set(created) - {created[1]}
    result = await check_all(world.db, world.gateway, clock=world.clock)
    assert result.mismatches == [] and result.checked == 4


async def test_a_write_during_apply_is_not_lost(world: World) -> None:
    task_id = await world.tasks.create(world.account_id, TaskCreate(schedule="hourly"))
    # An update lands after the projection read version 1 but before it marked it synced:
    # marking only succeeds for the version that was applied.
    async with world.db.session() as session:
        [task] = await SyncRepository(session).tasks([task_id])
    await world.tasks.update(world.account_id, task_id, TaskUpdate(schedule="daily"))
    async with world.db.transaction() as session:
        await SyncRepository(session).mark_synced(task_id, task.sync_version)
    assert await unsynced(world) == 0
    async with world.db.session() as session:
        [fresh] = await SyncRepository(session).tasks([task_id])
    assert fresh.synced_version == fresh.sync_version


async def test_drift_is_repaired(world: World) -> None:
    kept = await world.tasks.create(world.account_id, TaskCreate(schedule="0 9 * * *"))
    await world.gateway.delete_deployment(kept)  # deleted by hand in Prefect
    orphan = DeploymentSpec(
        task_id="task_orphan",
        account_id=world.account_id,
        bot_id=None,
        name="",
        description="",
        schedule=None,
    )
    await world.gateway.apply_deployment(orphan)  # a taskbot deployment with no task
    world.clock.advance(timedelta(minutes=11))  # past the settle window of recent writes
    report = await world.reconciler.run_pass(full=True)
    assert report.recreated == 1 and report.orphans_removed == 1
    assert set(await deployed(world)) >= {kept} and "task_orphan" not in await deployed(world)


async def test_expired_tasks_are_deleted_with_their_deployment(world: World) -> None:
    now_ms = int(world.clock().timestamp() * 1000)
    task_id = await world.tasks.create(
        world.account_id, TaskCreate(schedule="hourly", expires_at=now_ms + 1000)
    )
    assert task_id in await deployed(world)
    world.clock.advance(timedelta(seconds=5))
    report = await world.reconciler.run_pass(full=False)
    assert report.expired == 1 and task_id not in await deployed(world)


async def test_background_loop_converges_after_an_outage(world: World) -> None:
    import asyncio

    world.gateway.available = False
    task_id = await world.tasks.create(world.account_id, TaskCreate(schedule="hourly"))
    await world.reconciler.start()
    try:
        await asyncio.sleep(0.3)
        assert await unsynced(world) == 1
        world.gateway.available = True
        for _ in range(100):
            if task_id in await deployed(world) and await unsynced(world) == 0:
                break
            await asyncio.sleep(0.1)
        assert task_id in await deployed(world)
    finally:
        await world.reconciler.stop()


async def test_a_session_whose_worker_died_is_closed_as_failure(world: World) -> None:
    from sqlalchemy import select, update

    from api.db.models import Execution, Task

    task_id = await world.tasks.create(world.account_id, TaskCreate(schedule="hourly"))
    run_id = await world.gateway.create_flow_run(task_id, idempotency_key="k")
    now_ms = int(world.clock().timestamp() * 1000)
    async with world.db.transaction() as session:
        await session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(status="running", running_flow_run_id=run_id)
        )
        session.add(
            Execution(
                id=new_id("exec"),
                account_id=world.account_id,
                task_id=task_id,
                flow_run_id=run_id,
                slot=f"run:{run_id}",
                kind="trigger",
                phase="running",
                created_at=now_ms,
                updated_at=now_ms,
            )
        )
    world.gateway.set_run_state(run_id, "RUNNING")
    assert (await world.reconciler.run_pass(full=False)).dead_sessions == 0
    world.gateway.set_run_state(run_id, "CRASHED", "Crashed")
    assert (await world.reconciler.run_pass(full=False)).dead_sessions == 1
    async with world.db.session() as session:
        task = await session.get(Task, task_id)
        [execution] = (
            await session.execute(select(Execution).where(Execution.task_id == task_id))
        ).scalars()
    assert task.status == "idle" and task.outcome == "failure" and task.running_flow_run_id is None
    assert execution.outcome == "failure" and "Crashed" in execution.summary


async def test_an_apply_that_races_a_delete_leaves_no_deployment(world: World) -> None:
    from api.db.models import Task

    task_id = await world.tasks.create(world.account_id, TaskCreate(schedule="hourly"))
    async with world.db.session() as session:
        stale = await session.get(Task, task_id)
    # The delete commits (and removes the deployment) while an apply of the old row is
    # still on its way to Prefect.
    await world.tasks.delete(world.account_id, task_id)
    assert task_id not in await deployed(world)
    await world.reconciler.projection.apply(stale)
    assert task_id not in await deployed(world)
