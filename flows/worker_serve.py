"""Run a taskbot worker from our own CLI: explicit settings, the work pool, graceful stop.

`serve_worker` stops when its task is cancelled: the first cancellation drains
gracefully, a second one (during the drain) cuts the grace period short. Signals are
the caller's; `run_until_signalled` maps SIGINT/SIGTERM to exactly that.

Key contract: `asyncio.run` turns only Ctrl-C into a cancellation, and a second Ctrl-C
into a KeyboardInterrupt that abandons the drain; SIGTERM, by default, ends the process
at once, leaving its runs Running in Prefect. A worker process must handle both.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.context import SettingsContext, get_settings_context
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.logging import get_logger
from prefect.settings import (
    PREFECT_API_KEY,
    PREFECT_API_URL,
    PREFECT_CLIENT_MAX_RETRIES,
)

from flows.worker import DEFAULT_GRACE_SECONDS, DEFAULT_LIMIT, WORKER_TYPE, TaskbotWorker
from flows.worker_client import create_worker_client

DEFAULT_WORK_POOL = "taskbot"
DEFAULT_POLL_SECONDS = 1.0
# Scheduled runs are claimed this early, so they start on time even with a slow poll.
DEFAULT_PREFETCH_SECONDS = 5.0
logger = get_logger("taskbot.worker")


@contextlib.contextmanager
def worker_settings(
    api_url: str, *, api_key: str | None = None, client_retries: int = 5
) -> Iterator[None]:
    """Prefect settings for a worker talking to `api_url`, as a context (not global state)."""
    current = get_settings_context()
    settings = current.settings.copy_with_update(
        updates={PREFECT_API_URL: api_url.rstrip("/"), PREFECT_CLIENT_MAX_RETRIES: client_retries}
    )
    if api_key is not None:
        settings = settings.copy_with_update(updates={PREFECT_API_KEY: api_key})
    with SettingsContext(profile=current.profile, settings=settings):
        yield


async def ensure_work_pool(client: PrefectClient, name: str) -> None:
    """Create the work pool with type `taskbot` and its default job template if missing."""
    try:
        pool = await client.read_work_pool(name)
    except ObjectNotFound:
        template = TaskbotWorker.get_default_base_job_template()
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(
                WorkPoolCreate(name=name, type=WORKER_TYPE, base_job_template=template)
            )
        return
    if pool.type != WORKER_TYPE:
        # Prefect cannot change a pool's type; the worker still runs its flow runs.
        logger.warning("Work pool %r has type %r, not %r", name, pool.type, WORKER_TYPE)


async def serve_worker(
    *,
    api_url: str,
    work_pool: str = DEFAULT_WORK_POOL,
    limit: int = DEFAULT_LIMIT,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    prefetch_seconds: float = DEFAULT_PREFETCH_SECONDS,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    name: str | None = None,
    project_root: Path | None = None,
    api_key: str | None = None,
    create_pool: bool = True,
    watch_events: bool = True,
    session_cleanup: Callable[[], Awaitable[None]] | None = None,
    printer: Callable[..., None] = logger.info,
) -> None:
    """Run a taskbot worker for `work_pool` at `api_url` until cancelled (see module doc)."""
    with worker_settings(api_url, api_key=api_key):
        if create_pool:
            async with create_worker_client() as client:
                await ensure_work_pool(client, work_pool)
        worker = TaskbotWorker(
            work_pool,
            name=name,
            prefetch_seconds=prefetch_seconds,
            create_pool_if_not_found=create_pool,
            limit=limit,
            poll_seconds=poll_seconds,
            grace_seconds=grace_seconds,
            project_root=project_root,
            watch_events=watch_events,
            session_cleanup=session_cleanup,
        )
        await worker.start(printer=printer)


def run_until_signalled(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` (e.g. `serve_worker(...)`) on a new event loop until it ends or is stopped.

    Every SIGINT or SIGTERM cancels it: the first asks for a graceful stop, the next
    ones cut it short. Call from the main thread.
    """

    async def guarded() -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("run_until_signalled needs a running task")
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        try:
            await main
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(guarded())
