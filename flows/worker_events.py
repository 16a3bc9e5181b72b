"""Wake the worker's poll the moment Prefect reports a Scheduled run in its work pool.

Key contracts:
- Prefect's server emits `prefect.flow-run.<state name>` for every state change, with the
  run's work pool among the related resources and the state type in the resource
  labels, so one subscription filtered by pool sees new and rescheduled runs. The event
  does not carry the scheduled time: the wake only triggers a poll, and the poll (with
  its prefetch window) decides what is due. Polling stays the source of truth.
- The subscriber replays about a minute of events on every (re)connect; spurious wakes
  cost one poll each and are harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from uuid import UUID

from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter
from prefect.logging import get_logger

logger = get_logger("taskbot.worker")
_MAX_BACKOFF_SECONDS = 30.0


def scheduled_runs_filter(work_pool_id: UUID) -> EventFilter:
    """Flow-run state events of runs in one work pool."""
    return EventFilter(
        event=EventNameFilter(prefix=["prefect.flow-run."]),
        any_resource=EventAnyResourceFilter(id=[f"prefect.work-pool.{work_pool_id}"]),
    )


async def watch_scheduled_runs(work_pool_id: UUID, wake: Callable[[], None]) -> None:
    """Call `wake` whenever a run in the pool enters a Scheduled-type state, until cancelled."""
    failures = 0
    while True:
        try:
            async with get_events_subscriber(
                filter=scheduled_runs_filter(work_pool_id),
                reconnection_attempts=2,
                reconnect_on_clean_close=True,
            ) as subscriber:
                failures = 0
                async for event in subscriber:
                    if event.resource.get("prefect.state-type") == "SCHEDULED":
                        wake()
        except Exception as exc:
            failures += 1
            # Polling covers the gap, so a lost stream is worth a debug line, not more.
            logger.debug("Event stream for work pool %s lost: %r", work_pool_id, exc)
        await asyncio.sleep(min(_MAX_BACKOFF_SECONDS, 2.0**failures))
