"""``taskbot check``: the API's ``nextRunAt`` must be what Prefect will do."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.clock import Clock, from_ms, system_clock, to_ms
from api.db.engine import Database
from api.orchestration.repository import SyncRepository
from api.tasks.service import current_next_run
from deployments.gateway import Gateway

# Prefect stores expected start times to the microsecond, we store ms: allow 1 s.
TOLERANCE_MS = 1000
# Prefect's scheduler creates runs at most this far ahead (its MAX_SCHEDULED_TIME):
# a later nextRunAt has no Prefect run yet, and that is right.
SCHEDULER_HORIZON_MS = 100 * 24 * 3600 * 1000


@dataclass
class CheckResult:
    """How many tasks were compared and a line per mismatch."""

    checked: int = 0
    mismatches: list[str] = field(default_factory=list)


async def check_all(
    db: Database, gateway: Gateway, *, clock: Clock = system_clock, batch: int = 200
) -> CheckResult:
    """Compare every task's ``next_run_at`` with its deployment's earliest scheduled run."""
    result = CheckResult()
    after: str | None = None
    while True:
        async with db.session() as session:
            repo = SyncRepository(session)
            ids = list(await repo.all_ids(after, batch))
            tasks = list(await repo.tasks(ids)) if ids else []
        if not ids:
            return result
        for task in sorted(tasks, key=lambda t: t.id):
            result.checked += 1
            prefect_next = await gateway.next_scheduled_time(task.id)
            prefect_ms = to_ms(prefect_next) if prefect_next is not None else None
            ours = current_next_run(task, clock())
            beyond_horizon = ours is not None and ours > to_ms(clock()) + SCHEDULER_HORIZON_MS
            same = (
                (ours is None and prefect_ms is None)
                or (beyond_horizon and prefect_ms is None)
                or (
                    ours is not None
                    and prefect_ms is not None
                    and abs(ours - prefect_ms) <= TOLERANCE_MS
                )
            )
            if not same:
                mine = from_ms(ours).isoformat() if ours is not None else "none"
                theirs = prefect_next.isoformat() if prefect_next is not None else "none"
                result.mismatches.append(f"{task.id}: nextRunAt {mine}, Prefect {theirs}")
        after = ids[-1]
