"""One bot session (CONTRACT §5), independent of Prefect so it can be reasoned about alone.

Order of a run: dedupe on (task, slot) → take the running lease (a scheduled run skips
when the task is busy, a triggered one waits; one waiter per task, later ones merge) →
quota → conversation and instructions → the model loop, bounded by the session's time
and steps → record the execution, release the lease with outcome and ``nextRunAt``.
Whatever happens, the lease is released and the execution closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from api.clock import to_ms
from api.db.models import Bot, Execution, Task
from api.ids import new_id
from api.quotas import quota_defaults
from api.tasks.service import schedule_of
from flows.environment import SessionEnvironment
from flows.instructions import instructions, task_details
from flows.loop import LoopResult, run_loop
from flows.runtime import ChatMessage, ModelError
from flows.session_store import DONE, SessionStore

# A triggered run waiting for the running one re-checks this often (seconds).
WAIT_POLL = 1.0
# Steps when neither maxIterations nor a one-turn session bounds them; time still does.
STEP_CAP = 1000


class Ending(enum.Enum):
    """How a session ended, as Prefect should show it."""

    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    DUPLICATE = "duplicate"
    MERGED = "merged"
    TASK_GONE = "task_gone"
    NOT_A_SLOT = "not_a_slot"


@dataclass(frozen=True)
class RunInfo:
    """The flow run this session executes."""

    flow_run_id: str
    scheduled: bool
    scheduled_for: datetime | None


@dataclass
class SessionResult:
    """What the flow reports to Prefect."""

    ending: Ending
    summary: str
    execution_id: str | None = None
    conversation_id: str | None = None
    transcript: tuple[tuple[str, str], ...] = ()
    task_name: str = ""


Log = Callable[[str], None]
RunIsOver = Callable[[str], Awaitable[bool]]


class BotSession:
    """Runs one flow run of the ``bot-session`` flow for one task."""

    def __init__(
        self, env: SessionEnvironment, run: RunInfo, log: Log, run_is_over: RunIsOver
    ) -> None:
        self.env = env
        self.run = run
        self.log = log
        self.run_is_over = run_is_over
        self.store = SessionStore(env.db)
        self._last_ms = 0

    def _now_ms(self) -> int:
        # Strictly increasing, so messages stored in one millisecond keep their order.
        self._last_ms = max(self._last_ms + 1, to_ms(self.env.clock()))
        return self._last_ms

    async def execute(self, task_id: str) -> SessionResult:
        """Run the session for ``task_id``; never leaves the task ``running``."""
        loaded = await self.store.load(task_id)
        if loaded is None:
            return SessionResult(Ending.TASK_GONE, f"Task {task_id} no longer exists")
        task, bot = loaded
        if self.run.scheduled and not is_slot(task, self.run.scheduled_for):
            # A run Prefect's scheduler made for a schedule the task no longer has (it
            # can race a schedule change): not a run of this task any more.
            summary = "Not a run time of the task's current schedule; nothing to do"
            self.log(summary)
            return SessionResult(Ending.NOT_A_SLOT, summary, task_name=task.name)
        execution = self._new_execution(task)
        if not await self.store.open_execution(execution):
            return SessionResult(
                Ending.DUPLICATE,
                "Another run already handles this scheduled time",
                task_name=task.name,
            )
        waited = await self._take_lease(task, execution)
        if waited is not None:
            return waited
        try:
            return await self._run_claimed(task, bot, execution)
        except BaseException:
            # Cancelled (worker shutdown, a cancel request) or an unexpected error: close
            # the books before the exception goes on.
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self._close(task, execution, "failure", "The run was canceled", canceled=True)
                )
            raise

    def _new_execution(self, task: Task) -> Execution:
        now_ms = self._now_ms()
        if self.run.scheduled and self.run.scheduled_for is not None:
            slot = f"schedule:{to_ms(self.run.scheduled_for)}"
        else:
            slot = f"run:{self.run.flow_run_id}"
        return Execution(
            id=new_id("exec"),
            account_id=task.account_id,
            task_id=task.id,
            flow_run_id=self.run.flow_run_id,
            slot=slot,
            kind="schedule" if self.run.scheduled else "trigger",
            phase="running",
            name=task.name,
            description=task.description,
            status="running",
            outcome="pending",
            scheduled_for=to_ms(self.run.scheduled_for) if self.run.scheduled_for else None,
            created_at=now_ms,
            updated_at=now_ms,
        )

    async def _take_lease(self, task: Task, execution: Execution) -> SessionResult | None:
        """Claim ``status: running``; ``None`` once claimed, else how the run ended."""
        if await self._claim(task):
            return None
        if self.run.scheduled:
            summary = "Skipped: the previous run of this task was still going"
            await self._end_unstarted(execution, summary)
            self.log(summary)
            return SessionResult(Ending.SKIPPED, summary, execution.id, task_name=task.name)
        waiting = await self.store.waiting_execution(task.id, other_than=execution.id)
        if waiting is not None:
            summary = f"Merged into run {waiting.id}, which starts when the current run ends"
            await self._end_unstarted(execution, summary)
            self.log(summary)
            return SessionResult(Ending.MERGED, summary, execution.id, task_name=task.name)
        await self.store.set_phase(execution.id, "waiting", self._now_ms())
        self.log("The task is running; this run starts when that run ends")
        # The lease lives in the database (the running session may be in another
        # process), so there is no in-process event to wait on: poll it.
        while not await self._claim(task):  # noqa: ASYNC110
            await asyncio.sleep(WAIT_POLL)
        await self.store.set_phase(execution.id, "running", self._now_ms())
        return None

    async def _claim(self, task: Task) -> bool:
        if await self.store.claim(task.id, self.run.flow_run_id, self._now_ms()):
            return True
        holder = await self.store.lease_holder(task.id)
        if holder is not None and holder != self.run.flow_run_id and await self.run_is_over(holder):
            # The holder's flow run ended without releasing (its worker died): take over.
            self.log(f"Releasing the lease of finished flow run {holder}")
            await self.store.release(
                task.id,
                holder,
                outcome="failure",
                next_run_at=task.next_run_at,
                now_ms=self._now_ms(),
            )
            return await self.store.claim(task.id, self.run.flow_run_id, self._now_ms())
        return False

    async def _end_unstarted(self, execution: Execution, summary: str) -> None:
        now_ms = self._now_ms()
        await self.store.update_execution(
            execution.id,
            phase=DONE,
            status="canceled",
            summary=summary,
            completed_at=now_ms,
            updated_at=now_ms,
        )

    async def _run_claimed(
        self, task: Task, bot: Bot | None, execution: Execution
    ) -> SessionResult:
        started = self.env.clock()
        await self.store.update_execution(
            execution.id, started_at=to_ms(started), updated_at=self._now_ms()
        )
        usage = await self.store.usage(task.account_id, started, quota_defaults(self.env.settings))
        refusal = usage.refusal(including_self=True)
        if refusal is not None:
            result = LoopResult(refusal[0], success=False)
            return await self._finish(task, execution, None, result, Ending.FAILED)
        if bot is None:
            result = LoopResult("No bot configured", success=False)
            return await self._finish(task, execution, None, result, Ending.FAILED)
        conversation_id = await self.store.create_conversation(task, self._now_ms())
        await self.store.update_execution(
            execution.id, conversation_id=conversation_id, updated_at=self._now_ms()
        )
        previous = await self.store.previous_summary(task.id, other_than=execution.id)
        run_at = self.run.scheduled_for or started
        text = instructions(task, run_at, previous)
        await self._emit(task, conversation_id, "instruction", text, None)
        history = [ChatMessage.user(text)]
        if bot.backstory:
            history.insert(0, ChatMessage.system(bot.backstory))
        result = LoopResult("")
        budget_ms = self._budget_ms(task)
        try:
            model = self.env.models.resolve(bot.model)
            async with asyncio.timeout(budget_ms / 1000):
                await run_loop(
                    model,
                    history,
                    max_steps=self._max_steps(task),
                    details=task_details(task, run_at),
                    emit=lambda kind, body, meta: self._emit(
                        task, conversation_id, kind, body, meta
                    ),
                    result=result,
                )
        except TimeoutError:
            result.success = False
            result.summary = f"Session time limit reached after {budget_ms / 1000:g} s" + (
                f"; last progress: {result.summary}" if result.summary else ""
            )
            return await self._finish(task, execution, conversation_id, result, Ending.TIMED_OUT)
        except ModelError as error:
            result.success = False
            result.summary = error.message
            return await self._finish(task, execution, conversation_id, result, Ending.FAILED)
        ending = Ending.COMPLETED if result.success else Ending.FAILED
        return await self._finish(task, execution, conversation_id, result, ending)

    def _budget_ms(self, task: Task) -> int:
        budget = (
            task.session_duration if task.session_duration else self.env.settings.default_session_ms
        )
        if task.max_time:
            budget = min(budget, task.max_time)
        return budget

    def _max_steps(self, task: Task) -> int:
        if task.session_duration == 0:
            return 1
        return task.max_iterations or STEP_CAP

    async def _emit(
        self, task: Task, conversation_id: str, kind: str, text: str, meta: dict[str, Any] | None
    ) -> None:
        await self.store.add_messages(
            task.account_id, conversation_id, [(kind, text, meta)], self._now_ms()
        )
        self.log(f"[{kind}] {text}")

    async def _finish(
        self,
        task: Task,
        execution: Execution,
        conversation_id: str | None,
        result: LoopResult,
        ending: Ending,
    ) -> SessionResult:
        outcome = "success" if result.success else "failure"
        await self._close(task, execution, outcome, result.summary)
        self.log(f"Session {outcome}: {result.summary}")
        return SessionResult(
            ending,
            result.summary,
            execution.id,
            conversation_id,
            tuple(result.transcript),
            task.name,
        )

    async def _close(
        self,
        task: Task,
        execution: Execution,
        outcome: str,
        summary: str,
        *,
        canceled: bool = False,
    ) -> None:
        now = self.env.clock()
        now_ms = self._now_ms()
        await self.store.update_execution(
            execution.id,
            phase=DONE,
            status="canceled" if canceled else "idle",
            outcome=outcome,
            summary=summary,
            completed_at=now_ms,
            updated_at=now_ms,
        )
        upcoming = schedule_of(task).next_run_after(now)
        await self.store.release(
            task.id,
            self.run.flow_run_id,
            outcome=outcome,
            next_run_at=to_ms(upcoming) if upcoming else None,
            now_ms=now_ms,
        )


def is_slot(task: Task, when: datetime | None) -> bool:
    """Whether ``when`` is a run time of the task's current schedule (to the second)."""
    if when is None:
        return False
    upcoming = schedule_of(task).next_run_after(when - timedelta(seconds=1))
    return upcoming is not None and abs((upcoming - when).total_seconds()) < 1


def transcript_markdown(result: SessionResult, task_id: str) -> str:
    """The run's transcript and summary as Markdown, for the Prefect UI."""
    lines = [f"# {result.task_name or task_id}", ""]
    lines.append(f"**Outcome:** {result.ending.value} — {result.summary}")
    if result.execution_id:
        lines.append(f"**Execution:** `{result.execution_id}`")
    if result.conversation_id:
        lines.append(f"**Conversation:** `{result.conversation_id}`")
    lines.append("")
    for kind, text in result.transcript:
        label = "Bot" if kind == "bot" else "Tool"
        lines.append(f"**{label}:** {text}")
        lines.append("")
    return "\n".join(lines)
