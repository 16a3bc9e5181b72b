"""The bot session itself (no Prefect): store, lease, model loop, limits, over both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from api.accounts.service import AccountService
from api.clock import system_clock
from api.db.engine import Database, create_engine
from api.db.models import Account, Bot, Conversation, Execution, Message, Task
from api.ids import new_id
from api.settings import Settings
from flows.environment import SessionEnvironment
from flows.runtime import ModelRegistry, ModelSettings
from flows.session import BotSession, Ending, RunInfo
from tests.support.fake_openai import FakeOpenAI, FakeReply


@pytest.fixture
async def env(database_url: str, fake_openai: FakeOpenAI) -> AsyncIterator[SessionEnvironment]:
    settings = Settings(database_url=database_url, default_session_ms=5_000)
    models = ModelRegistry(
        ModelSettings.from_mapping(
            {
                "providers": {
                    "fake": {
                        "base_url": fake_openai.base_url,
                        "api_key": "k",
                        "max_retries": 0,
                        "timeout": 10,
                    }
                }
            }
        )
    )
    environment = SessionEnvironment(settings, Database(create_engine(database_url)), models)
    yield environment
    await environment.aclose()


async def make_task(env: SessionEnvironment, *, bot: bool = True, **fields) -> Task:
    name = new_id("acct")
    account_id = await AccountService(env.db, system_clock).create_account(name)
    now = int(datetime.now(UTC).timestamp() * 1000)
    async with env.db.transaction() as session:
        bot_id = None
        if bot:
            bot_id = new_id("bot")
            session.add(
                Bot(
                    id=bot_id,
                    account_id=account_id,
                    name="b",
                    description="",
                    backstory="Be brief.",
                    model="fake/test-model",
                    created_at=now,
                    updated_at=now,
                )
            )
        task = Task(
            id=new_id("task"),
            account_id=account_id,
            name="Daily digest",
            description="Summarise",
            bot_id=bot_id,
            meta={"team": "data"},
            created_at=now,
            updated_at=now,
            **fields,
        )
        session.add(task)
    return task


def run_info(scheduled: bool = False, at: datetime | None = None) -> RunInfo:
    return RunInfo(flow_run_id=new_id("fr"), scheduled=scheduled, scheduled_for=at)


async def never_over(_: str) -> bool:
    return False


async def run(
    env: SessionEnvironment, task: Task, info: RunInfo | None = None, run_is_over=never_over
):
    logs: list[str] = []
    result = await BotSession(env, info or run_info(), logs.append, run_is_over).execute(task.id)
    return result, logs


async def rows(env: SessionEnvironment, model, **where):
    async with env.db.session() as session:
        stmt = select(model)
        for key, value in where.items():
            stmt = stmt.where(getattr(model, key) == value)
        return list((await session.execute(stmt)).scalars().all())


async def test_a_run_talks_to_the_bot_and_records_everything(env, fake_openai: FakeOpenAI) -> None:
    task = await make_task(
        env, schedule="hourly", schedule_anchor=int(datetime.now(UTC).timestamp() * 1000)
    )
    fake_openai.script(
        FakeReply.tool_calls(("read_task_details", {})),
        FakeReply.tool_calls(("finish", {"summary": "Digest sent"}), content="Working on it"),
    )
    result, logs = await run(env, task)
    assert result.ending is Ending.COMPLETED and result.summary == "Digest sent"
    [execution] = await rows(env, Execution, task_id=task.id)
    assert (execution.status, execution.outcome, execution.summary) == (
        "idle",
        "success",
        "Digest sent",
    )
    assert execution.kind == "trigger" and execution.conversation_id and execution.completed_at
    [stored] = await rows(env, Task, id=task.id)
    assert stored.status == "idle" and stored.outcome == "success" and stored.last_run_at
    assert stored.running_flow_run_id is None and stored.next_run_at > stored.last_run_at
    [conversation] = await rows(env, Conversation, id=execution.conversation_id)
    assert conversation.task_id == task.id and conversation.bot_id == task.bot_id
    messages = sorted(
        await rows(env, Message, conversation_id=conversation.id), key=lambda m: m.created_at
    )
    assert [m.type for m in messages] == ["instruction", "activity", "bot", "activity"]
    assert messages[0].text.startswith('Task: Daily digest\nSummarise\nMeta: {"team": "data"}')
    assert "Previous run summary: none" in messages[0].text
    # The model saw the backstory as the system prompt and our two tools.
    first = fake_openai.bodies[0]
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert {t["function"]["name"] for t in first["tools"]} == {"read_task_details", "finish"}
    assert any("Digest sent" in line for line in logs)
    # The next run is told how the previous one went.
    fake_openai.script(FakeReply.text("ok"))
    await run(env, task)
    assert "Previous run summary: Digest sent" in fake_openai.bodies[-1]["messages"][1]["content"]


async def test_no_bot_fails_at_once(env) -> None:
    task = await make_task(env, bot=False)
    result, _ = await run(env, task)
    assert result.ending is Ending.FAILED and result.summary == "No bot configured"
    [execution] = await rows(env, Execution, task_id=task.id)
    assert execution.outcome == "failure" and execution.summary == "No bot configured"
    [stored] = await rows(env, Task, id=task.id)
    assert stored.outcome == "failure" and stored.status == "idle" and stored.last_run_at


async def test_slow_model_times_out(env, fake_openai: FakeOpenAI) -> None:
    task = await make_task(env, session_duration=300)
    fake_openai.handler = lambda body: FakeReply.text("late", delay=3)
    result, _ = await run(env, task)
    assert result.ending is Ending.TIMED_OUT
    assert result.summary.startswith("Session time limit reached after 0.3 s")
    [execution] = await rows(env, Execution, task_id=task.id)
    assert execution.outcome == "failure"
    assert (await rows(env, Task, id=task.id))[0].status == "idle"


async def test_max_time_bounds_the_session_too(env, fake_openai: FakeOpenAI) -> None:
    task = await make_task(env, session_duration=60_000, max_time=200)
    fake_openai.handler = lambda body: FakeReply.text("late", delay=3)
    result, _ = await run(env, task)
    assert result.ending is Ending.TIMED_OUT and "0.2 s" in result.summary


async def test_model_error_is_a_readable_failure(env, fake_openai: FakeOpenAI) -> None:
    task = await make_task(env)
    fake_openai.script(FakeReply.error(401, "invalid api key"))
    result, _ = await run(env, task)
    assert result.ending is Ending.FAILED
    assert "401" in result.summary and "invalid api key" in result.summary


async def test_zero_session_duration_is_one_model_turn(env, fake_openai: FakeOpenAI) -> None:
    task = await make_task(env, session_duration=0)
    fake_openai.handler = lambda body: FakeReply.tool_calls(("read_task_details", {}))
    result, _ = await run(env, task)
    assert len(fake_openai.bodies) == 1 and result.ending is Ending.COMPLETED


async def test_max_iterations_bounds_steps(env, fake_openai: FakeOpenAI) -> None:
    task = await make_task(env, max_iterations=3)
    fake_openai.handler = lambda body: FakeReply.tool_calls(("read_task_details", {}))
    result, _ = await run(env, task)
    assert len(fake_openai.bodies) == 3 and "Stopped after 3 model steps" in result.summary


def minute() -> datetime:
    """A whole minute: a run time of ``* * * * *``."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def test_same_scheduled_time_runs_once(env, fake_openai: FakeOpenAI) -> None:
    task = await make_task(env, schedule="* * * * *")
    at = datetime(2030, 1, 1, 9, tzinfo=UTC)
    first, _ = await run(env, task, run_info(scheduled=True, at=at))
    second, _ = await run(env, task, run_info(scheduled=True, at=at))
    assert first.ending is Ending.COMPLETED and second.ending is Ending.DUPLICATE
    assert len(await rows(env, Execution, task_id=task.id)) == 1


async def hold_lease(env: SessionEnvironment, task: Task, holder: str) -> None:
    async with env.db.transaction() as session:
        await session.execute(
            update(Task)
            .where(Task.id == task.id)
            .values(status="running", running_flow_run_id=holder)
        )


async def test_scheduled_run_is_skipped_while_running(env) -> None:
    task = await make_task(env, schedule="* * * * *")
    await hold_lease(env, task, "other-run")
    result, _ = await run(env, task, run_info(scheduled=True, at=minute()))
    assert result.ending is Ending.SKIPPED
    [execution] = await rows(env, Execution, task_id=task.id)
    assert execution.status == "canceled" and execution.summary.startswith("Skipped")
    assert (await rows(env, Task, id=task.id))[0].running_flow_run_id == "other-run"


async def test_trigger_waits_for_the_running_run_and_later_ones_merge(
    env, fake_openai: FakeOpenAI
) -> None:
    task = await make_task(env)
    await hold_lease(env, task, "other-run")
    waiter = asyncio.create_task(run(env, task))
    for _ in range(100):
        if [e for e in await rows(env, Execution, task_id=task.id) if e.phase == "waiting"]:
            break
        await asyncio.sleep(0.05)
    merged, _ = await run(env, task)
    assert merged.ending is Ending.MERGED
    async with env.db.transaction() as session:
        await session.execute(
            update(Task).where(Task.id == task.id).values(status="idle", running_flow_run_id=None)
        )
    result, _ = await asyncio.wait_for(waiter, 20)
    assert result.ending is Ending.COMPLETED
    outcomes = sorted((e.status, e.outcome) for e in await rows(env, Execution, task_id=task.id))
    assert outcomes == [("canceled", "pending"), ("idle", "success")]


async def test_a_dead_runs_lease_is_taken_over(env) -> None:
    task = await make_task(env, schedule="* * * * *")
    await hold_lease(env, task, "crashed-run")

    async def crashed_is_over(flow_run_id: str) -> bool:
        return flow_run_id == "crashed-run"

    result, logs = await run(env, task, run_info(scheduled=True, at=minute()), crashed_is_over)
    assert result.ending is Ending.COMPLETED
    assert any("crashed-run" in line for line in logs)


async def test_quota_of_concurrent_sessions(env) -> None:
    task = await make_task(env)
    async with env.db.transaction() as session:
        await session.execute(
            update(Account).where(Account.id == task.account_id).values(max_concurrent_sessions=1)
        )
    busy = await make_task(env)
    async with env.db.transaction() as session:
        await session.execute(
            update(Task)
            .where(Task.id == busy.id)
            .values(account_id=task.account_id, status="running", running_flow_run_id="x")
        )
    result, _ = await run(env, task)
    assert (
        result.ending is Ending.FAILED and "Concurrent session limit reached (1)" in result.summary
    )


async def test_cancelled_session_closes_its_books(env, fake_openai: FakeOpenAI) -> None:
    task = await make_task(env)
    fake_openai.handler = lambda body: FakeReply.text("slow", delay=5)
    pending = asyncio.create_task(run(env, task))
    for _ in range(100):
        if fake_openai.bodies:
            break
        await asyncio.sleep(0.05)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    [execution] = await rows(env, Execution, task_id=task.id)
    assert execution.status == "canceled" and execution.outcome == "failure"
    [stored] = await rows(env, Task, id=task.id)
    assert stored.status == "idle" and stored.running_flow_run_id is None


async def test_deleted_task(env) -> None:
    task = await make_task(env)
    async with env.db.transaction() as session:
        await session.delete(await session.get(Task, task.id))
    result, _ = await run(env, task)
    assert result.ending is Ending.TASK_GONE


async def test_a_scheduled_run_for_a_replaced_schedule_does_nothing(env) -> None:
    anchor = datetime(2030, 1, 1, 9, tzinfo=UTC)
    task = await make_task(env, schedule="daily", schedule_anchor=int(anchor.timestamp() * 1000))
    stale, _ = await run(env, task, run_info(scheduled=True, at=anchor + timedelta(hours=1)))
    assert stale.ending is Ending.NOT_A_SLOT
    assert await rows(env, Execution, task_id=task.id) == []
    fresh, _ = await run(env, task, run_info(scheduled=True, at=anchor + timedelta(days=1)))
    assert fresh.ending is Ending.COMPLETED
