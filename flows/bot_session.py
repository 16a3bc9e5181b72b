"""The ``bot-session`` Prefect flow: one run of a task, visible in the Prefect UI.

Key contracts:
- Parameters are ``{"task_id": …}`` only; everything else is read from the task store
  when the run starts (a run keeps the configuration it started with).
- The flow run is renamed ``<task name> · <scheduled time>``; each bot message goes to the
  run's logs; a Markdown artifact holds the transcript and summary.
- A session that hits its time limit ends the run as ``TimedOut`` (a Failed state); a
  failed session ends it Failed; skipped, merged and duplicate runs end Completed with a
  message that says so.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.states import Completed, Failed

from deployments.gateway import FLOW_NAME
from flows.environment import session_environment
from flows.instructions import local_time
from flows.session import BotSession, Ending, RunInfo, SessionResult, transcript_markdown

FINAL_STATE_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})


@flow(name=FLOW_NAME, persist_result=False, log_prints=False, validate_parameters=True)
async def bot_session(task_id: str) -> State[Any]:
    """Open a conversation with the task's bot and work through the task's instructions."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("bot-session must run as a Prefect flow run")
    flow_run = context.flow_run
    # An async flow always runs on the async engine, whose client is the async one.
    client = cast(PrefectClient, context.client)
    logger = get_run_logger()
    env = session_environment()

    async def run_is_over(flow_run_id: str) -> bool:
        try:
            other = await client.read_flow_run(UUID(flow_run_id))
        except Exception:  # unknown id or an unreachable server: assume it still runs
            return False
        return other.state_type is not None and other.state_type.value in FINAL_STATE_TYPES

    run = RunInfo(
        flow_run_id=str(flow_run.id),
        scheduled=bool(flow_run.auto_scheduled),
        scheduled_for=flow_run.expected_start_time,
    )
    session = BotSession(env, run, logger.info, run_is_over)
    loaded = await session.store.load(task_id)
    if loaded is not None:
        task, _bot = loaded
        when = run.scheduled_for or env.clock()
        name = f"{task.name or task.id} · {local_time(task, when)}"
        await client.update_flow_run(flow_run.id, name=name[:255])
    result = await session.execute(task_id)
    if result.execution_id is not None:
        await acreate_markdown_artifact(
            transcript_markdown(result, task_id),
            description=f"Transcript of task {task_id}, execution {result.execution_id}",
        )
    return _final_state(result)


def _final_state(result: SessionResult) -> State[Any]:
    data = {
        "executionId": result.execution_id,
        "outcome": result.ending.value,
        "summary": result.summary,
    }
    if result.ending is Ending.TIMED_OUT:
        return Failed(name="TimedOut", message=result.summary, data=data)
    if result.ending is Ending.FAILED:
        return Failed(message=result.summary, data=data)
    return Completed(message=result.summary, data=data)
