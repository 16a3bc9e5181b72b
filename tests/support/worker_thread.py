"""Our in-process worker, run in a thread with its own event loop, as a real worker would."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from flows.environment import (
    SessionEnvironment,
    close_environment,
    install_environment_factory,
)
from flows.worker_serve import serve_worker


class WorkerThread:
    """`serve_worker` for one pool; sessions share ``make_env()``'s environment."""

    def __init__(
        self,
        api_url: str,
        work_pool: str,
        make_env: Callable[[], SessionEnvironment],
        *,
        limit: int = 50,
        grace_seconds: float = 5.0,
    ) -> None:
        self.api_url = api_url
        self.work_pool = work_pool
        self.make_env = make_env
        self.limit = limit
        self.grace_seconds = grace_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        """Start the worker; returns once its loop runs."""

        async def main() -> None:
            install_environment_factory(self.make_env)
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()  # type: ignore[assignment]
            self._ready.set()
            try:
                await serve_worker(
                    api_url=self.api_url,
                    work_pool=self.work_pool,
                    limit=self.limit,
                    poll_seconds=0.5,
                    grace_seconds=self.grace_seconds,
                    session_cleanup=close_environment,
                )
            finally:
                install_environment_factory(None)

        def run() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                asyncio.run(main())

        self._thread = threading.Thread(target=run, name=f"worker-{self.work_pool}", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def stop(self, timeout: float = 60.0) -> None:
        """Cancel the worker (it drains gracefully) and wait for the thread."""
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(timeout)
