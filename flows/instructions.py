"""What a bot is told at the start of a run, and the tools it may call."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from api.db.models import Task
from flows.runtime import ToolSpec

READ_TASK = ToolSpec(
    name="read_task_details",
    description="Read the details of the task you are working on (name, description, "
    "meta, schedule, timezone and the time of this run).",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
)
FINISH = ToolSpec(
    name="finish",
    description="Finish the task. Call this once you are done, with a short summary of "
    "what you did and found; the session ends after it.",
    parameters={
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "What was done, in a few sentences."},
            "success": {
                "type": "boolean",
                "description": "false if the task could not be completed.",
            },
        },
        "required": ["summary"],
        "additionalProperties": False,
    },
)
TOOLS = (READ_TASK, FINISH)


def local_time(task: Task, at: datetime) -> str:
    """``at`` as wall-clock time in the task's timezone: ``2026-03-10 09:00 (Europe/Berlin)``."""
    zone = task.timezone or "UTC"
    return f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"


def task_details(task: Task, run_at: datetime) -> str:
    """The JSON the ``read_task_details`` tool returns."""
    return json.dumps(
        {
            "name": task.name,
            "description": task.description,
            "meta": task.meta or {},
            "schedule": task.schedule,
            "timezone": task.timezone or "UTC",
            "runTime": local_time(task, run_at),
        },
        ensure_ascii=False,
    )


def instructions(task: Task, run_at: datetime, previous_summary: str | None) -> str:
    """The instruction message of a run (CONTRACT §5 step 3)."""
    lines = [f"Task: {task.name or task.id}"]
    if task.description:
        lines.append(task.description)
    if task.meta:
        lines.append(f"Meta: {json.dumps(task.meta, ensure_ascii=False, sort_keys=True)}")
    lines.append(f"Run time: {local_time(task, run_at)}")
    lines.append(f"Previous run summary: {previous_summary or 'none (this is the first run)'}")
    lines.append(
        "Work through the task. When you are done, call the finish tool with a short summary."
    )
    return "\n".join(lines)
