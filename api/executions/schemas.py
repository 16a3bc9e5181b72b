"""Execution shapes on the wire (CONTRACT §5), plus our Prefect-facing fields."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class ExecutionOut(msgspec.Struct, rename="camel"):
    """One run of a task; ``flowRunId`` links it to the Prefect UI."""

    id: str
    task_id: str
    conversation_id: str | None
    name: str
    description: str
    meta: dict[str, Any] | None
    status: Literal["running", "idle", "canceled"]
    outcome: Literal["pending", "success", "failure"]
    summary: str | None
    completed_at: int | None
    created_at: int
    updated_at: int
    flow_run_id: str | None
    kind: str
    scheduled_for: int | None
    started_at: int | None


class ExecutionCancelled(msgspec.Struct, rename="camel"):
    """``POST …/execution/{id}/cancel`` answer."""

    id: str
    task_id: str
