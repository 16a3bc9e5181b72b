"""The session loop: one thread with its own event loop, where all of a worker's sessions run.

Key contracts:
- Prefect's flow engine installs a SIGTERM handler that raises `TerminationSignal` when
  it runs on the main thread (`capture_sigterm`), which would land at an arbitrary point
  of a shared event loop and defeat graceful shutdown. Off the main thread it installs
  nothing, so sessions run here and the host keeps its own signal handling.
- Some engine steps block their event loop (synchronous API calls); here they cannot
  stall the worker's polling, heartbeats or a host's HTTP server.
- One API client (async and sync) is entered once in this loop and reaches every
  session through Prefect's client contexts: the engine otherwise builds a client, and
  an SSL context, several times per run.
- Session tasks run in a copy of this loop's context, not the caller's, so they see
  those clients and the settings the loop started with.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from prefect.context import SettingsContext, SyncClientContext, get_settings_context
from prefect.logging import get_logger
from prefect.settings import PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED

from flows.worker_client import shared_client

T = TypeVar("T")
logger = get_logger("taskbot.worker")


class SessionLoop:
    """A daemon thread running an event loop and the API clients its sessions share.

    `on_close` runs on this loop after the last session, to release what sessions
    cached for the loop (database pools, HTTP clients).
    """

    def __init__(
        self,
        name: str = "taskbot-sessions",
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._on_close = on_close
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._context: contextvars.Context | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._close_timeout = 10.0

    @property
    def running(self) -> bool:
        """Whether the loop is up and accepts sessions."""
        return self._loop is not None and self._stop is not None and not self._stop.is_set()

    async def start(self) -> None:
        """Start the thread (in a copy of the caller's context) and wait until it is ready."""
        if self._thread is not None:
            raise RuntimeError("session loop already started")
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._thread_main, ready), name=self.name, daemon=True
        )
        self._thread.start()
        await ready

    def submit(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Future[T]:
        """Start `factory()` as a task on the loop; the returned future is the caller's."""
        loop = self._require_loop()
        spawned = asyncio.run_coroutine_threadsafe(self._spawn(factory), loop)
        return asyncio.wrap_future(spawned)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run a plain callback on the loop's thread (to touch session state safely)."""
        self._require_loop().call_soon_threadsafe(callback)

    async def aclose(self, grace_seconds: float = 10.0) -> None:
        """Stop the loop: leftover sessions get `grace_seconds` to finish, then are cancelled."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        self._close_timeout = grace_seconds
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join)
        self._thread = None

    # On the session thread ---------------------------------------------------------

    def _thread_main(self, ready: asyncio.Future[None]) -> None:
        caller = ready.get_loop()
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:
            if ready.done():
                logger.exception("Session loop %r failed", self.name)
            else:
                caller.call_soon_threadsafe(_settle, ready, exc)

    async def _main(self, ready: asyncio.Future[None]) -> None:
        self._stop = asyncio.Event()
        current = get_settings_context()
        # No API version check when entering the sync client: it would make starting the
        # loop depend on the API being up (the worker copes with that on its own).
        settings = current.settings.copy_with_update(
            updates={PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED: False}
        )
        with SettingsContext(profile=current.profile, settings=settings):
            async with shared_client():
                # For the sync client Prefect asks for on every run (result storage).
                with SyncClientContext():
                    self._context = contextvars.copy_context()
                    self._loop = asyncio.get_running_loop()
                    ready.get_loop().call_soon_threadsafe(_settle, ready, None)
                    await self._stop.wait()
                    await self._finish_tasks()
                    if self._on_close is not None:
                        await self._on_close()
        self._loop = None

    async def _spawn(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if self._context is None or self._stop is None or self._stop.is_set():
            raise RuntimeError("session loop is not running")
        task = asyncio.get_running_loop().create_task(factory(), context=self._context.copy())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await task

    async def _finish_tasks(self) -> None:
        pending = set(self._tasks)
        if not pending:
            return
        _, pending = await asyncio.wait(pending, timeout=self._close_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=self._close_timeout)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("session loop is not running")
        return self._loop


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
