"""End to end: API → Prefect → our worker → the bot session → the API again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.e2e.conftest import Client
from tests.support.fake_openai import FakeOpenAI, FakeReply


async def eventually(
    probe: Callable[[], Awaitable[Any]], within: float = 60, every: float = 0.3
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s (last: {value!r})")
        await asyncio.sleep(every)


async def finished_executions(c: Client, task_id: str, count: int = 1) -> list[dict]:
    async def probe() -> list[dict] | None:
        items = (await c.get(f"task/{task_id}/execution/list"))["items"]
        done = [e for e in items if e["completedAt"] is not None]
        return done if len(done) >= count else None

    return await eventually(probe)


async def flow_run(c: Client, flow_run_id: str) -> Any:
    with temporary_settings({PREFECT_API_URL: c.stack.prefect.api_url}):
        async with get_client() as prefect:
            return await prefect.read_flow_run(UUID(flow_run_id))


async def make_bot(c: Client, model: str = "fake/test") -> str:
    return (
        await c.post("bot/create", {"name": "e2e bot", "backstory": "Be brief.", "model": model})
    )["id"]


async def test_trigger_runs_a_session(client: Client, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        FakeReply.tool_calls(("read_task_details", {})),
        FakeReply.tool_calls(("finish", {"summary": "All done"}), content="Finishing"),
    )
    bot = await make_bot(client)
    task = (await client.post("task/create", {"name": "E2E digest", "botId": bot}))["id"]
    assert (await client.post(f"task/{task}/trigger")) == {"id": task}
    [execution] = await finished_executions(client, task)
    assert (execution["status"], execution["outcome"], execution["summary"]) == (
        "idle",
        "success",
        "All done",
    )
    assert execution["kind"] == "trigger" and execution["flowRunId"]
    fetched = await client.get(f"task/{task}/fetch")
    assert fetched["status"] == "idle" and fetched["outcome"] == "success" and fetched["lastRunAt"]
    assert fetched["nextRunAt"] is None
    messages = await client.get(
        f"conversation/{execution['conversationId']}/message/list", order="asc"
    )
    assert [m["type"] for m in messages["items"]] == ["instruction", "activity", "bot", "activity"]
    run = await eventually(lambda: _final(client, execution["flowRunId"]))
    assert run.state.type.value == "COMPLETED" and run.name.startswith("E2E digest · ")


async def _final(c: Client, flow_run_id: str) -> Any:
    run = await flow_run(c, flow_run_id)
    return run if run.state and run.state.is_final() else None


async def test_no_bot_fails(client: Client) -> None:
    task = (await client.post("task/create", {"name": "botless"}))["id"]
    await client.post(f"task/{task}/trigger")
    [execution] = await finished_executions(client, task)
    assert execution["outcome"] == "failure" and execution["summary"] == "No bot configured"
    run = await eventually(lambda: _final(client, execution["flowRunId"]))
    assert run.state.type.value == "FAILED"


async def test_slow_model_times_out(client: Client, fake_openai: FakeOpenAI) -> None:
    fake_openai.handler = lambda body: FakeReply.text("too late", delay=10)
    bot = await make_bot(client)
    task = (
        await client.post("task/create", {"name": "slow", "botId": bot, "sessionDuration": 1500})
    )["id"]
    await client.post(f"task/{task}/trigger")
    [execution] = await finished_executions(client, task)
    assert execution["outcome"] == "failure" and "time limit" in execution["summary"]
    run = await eventually(lambda: _final(client, execution["flowRunId"]))
    assert run.state.name == "TimedOut" and run.state.type.value == "FAILED"
    assert (await client.get(f"task/{task}/fetch"))["status"] == "idle"


async def test_two_triggers_in_one_minute_are_one_run(
    client: Client, fake_openai: FakeOpenAI
) -> None:
    fake_openai.handler = lambda body: FakeReply.text("ok")
    bot = await make_bot(client)
    task = (await client.post("task/create", {"name": "twice", "botId": bot}))["id"]
    # Near the end of a UTC minute the two triggers could straddle it; wait it out.
    if time.time() % 60 > 55:
        await asyncio.sleep(61 - time.time() % 60)
    await client.post(f"task/{task}/trigger")
    await client.post(f"task/{task}/trigger")
    await finished_executions(client, task)
    await asyncio.sleep(2)
    assert len((await client.get(f"task/{task}/execution/list"))["items"]) == 1


async def test_every_minute_task_runs_on_its_own(client: Client, fake_openai: FakeOpenAI) -> None:
    fake_openai.handler = lambda body: FakeReply.text("tick")
    bot = await make_bot(client)
    task = (
        await client.post("task/create", {"name": "cron", "botId": bot, "schedule": "* * * * *"})
    )["id"]
    expected = (await client.get(f"task/{task}/fetch"))["nextRunAt"]
    [execution] = await asyncio.wait_for(finished_executions(client, task), 100)
    assert execution["kind"] == "schedule" and execution["outcome"] == "success"
    assert execution["scheduledFor"] == expected
    # Started close to its time (generous bound: a loaded CI machine).
    assert execution["startedAt"] - expected < 20_000
    fetched = await client.get(f"task/{task}/fetch")
    assert fetched["nextRunAt"] > expected


async def test_delete_during_a_run(client: Client, fake_openai: FakeOpenAI) -> None:
    fake_openai.handler = lambda body: FakeReply.tool_calls(
        ("finish", {"summary": "finished anyway"}), delay=3
    )
    bot = await make_bot(client)
    task = (
        await client.post("task/create", {"name": "doomed", "botId": bot, "schedule": "hourly"})
    )["id"]
    await client.post(f"task/{task}/trigger")
    await eventually(lambda: _status(client, task, "running"))
    await client.post(f"task/{task}/delete")
    r = await client.http.get(f"/api/v1/task/{task}/fetch")
    assert r.status_code == 404
    # The run in progress finishes; nothing else of the task is left in Prefect.
    with temporary_settings({PREFECT_API_URL: client.stack.prefect.api_url}):
        async with get_client() as prefect:
            from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

            deployments = await prefect.read_deployments(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[task]))
            )
    assert deployments == []


async def _status(c: Client, task_id: str, status: str) -> bool:
    return (await c.get(f"task/{task_id}/fetch"))["status"] == status
