"""The seam between the task store and the orchestrator that runs tasks (Prefect).

The store is the source of truth; the orchestrator holds a projection of it. Services
commit first and then tell the projection what changed. A projection never raises for
an unreachable orchestrator on writes: it records the task as out of sync for the
reconciler instead, so a committed write is never answered with a 5xx.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from api.db.models import Task


class TaskProjection(Protocol):
    """What task services need from the orchestrator."""

    async def push(self, task_ids: Sequence[str]) -> None:
        """Apply the current state of these tasks (best effort; failures are retried later)."""

    async def remove(self, tasks: Sequence[tuple[str, str]]) -> None:
        """Remove the projection of deleted (account_id, task_id) pairs (best effort)."""

    async def trigger(self, task: Task) -> None:
        """Queue one run of ``task`` now; raises ``ServiceUnavailable`` when it cannot."""

    async def cancel(self, task: Task) -> None:
        """Cancel the task's running and queued runs; raises ``ServiceUnavailable``."""

    async def cancel_run(self, flow_run_id: str) -> None:
        """Cancel one flow run; raises ``ServiceUnavailable``."""
