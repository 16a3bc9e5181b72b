"""The taskbot worker: a Prefect worker type that runs flow runs in-process, many at once.

Each claimed flow run becomes an asyncio task on the worker's session loop, executed by
Prefect's own flow engine (`flows.worker_engine`), so a bot session costs a coroutine,
not a process. The same deployments still run on any standard Prefect worker.

Key contracts (Prefect 3.9.1 `BaseWorker` behaviour relied on or changed here):
- Discovery: Prefect finds worker types by importing the modules named in the
  `prefect.collections` entry-point group; defining a `BaseWorker` subclass registers it
  under its `type`. So importing this module is what makes `--type taskbot` work.
- BaseWorker crashes a run ("failed to submit") on any error between claiming it
  (Pending) and starting it, e.g. a 503 from a busy SQLite server, and an error from its
  deployment lookup escapes into the runs task group. `_submit_run` is replaced: nothing
  escapes it, and a run whose flow never began goes back to Scheduled (AwaitingRetry)
  on a transient API error, or is Crashed with the reason otherwise.
- BaseWorker tracks a run for cancellation only while submitting it, and cancels only
  runs that have not started. Here a run is tracked for its whole session, and a
  Cancelling run is stopped in-process and ends Cancelled.
- Fewer writes per run than BaseWorker: no Submitting state and no worker labels on the
  run. On SQLite the labels PATCH (read, then write) collided with nearly every other
  write and was retried hundreds of times per 40 runs, doubling the time to start them.
- BaseWorker polls every PREFECT_WORKER_QUERY_SECONDS (10 s) and stops the worker after
  repeated failures. Here polling runs every `poll_seconds`, backs off on errors without
  giving up, and Prefect's event stream wakes it as soon as a run is scheduled.
- Prefect's client retries 408/429/502/503 and dropped connections with exponential
  backoff (PREFECT_CLIENT_MAX_RETRIES, 5 by default) for every call made here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Self, cast
from uuid import UUID

import anyio
import anyio.abc
import httpx
from prefect._internal.observers import FlowRunCancellingObserver
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import Flow as APIFlow
from prefect.client.schemas.objects import FlowRun, State, WorkPool
from prefect.client.schemas.responses import DeploymentResponse, WorkerFlowRunResponse
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter
from prefect.exceptions import Abort, ObjectNotFound
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, get_current_settings
from prefect.states import Scheduled
from prefect.utilities.engine import propose_state
from prefect.utilities.services import start_client_metrics_server, stop_client_metrics_server
from prefect.workers.base import (
    BaseJobConfiguration,
    BaseVariables,
    BaseWorker,
    BaseWorkerResult,
)
from pydantic import PrivateAttr

from flows.worker_client import shared_client
from flows.worker_engine import (
    CANCELLED_ON_REQUEST,
    SessionControl,
    SessionNotStarted,
    run_session,
)
from flows.worker_events import watch_scheduled_runs
from flows.worker_flows import FlowLoader, UnsupportedFlowError
from flows.worker_sessions import SessionLoop

WORKER_TYPE = "taskbot"
DEFAULT_LIMIT = 200
DEFAULT_GRACE_SECONDS = 60.0
# After the grace period, how long cancelled sessions get to record their final state.
FINALIZE_SECONDS = 30.0
LOG_FLUSH_SECONDS = 5.0
# How often to look for Cancelling runs while the event stream is down.
CANCELLATION_POLL_SECONDS = 10.0
# A run that could not start for a transient reason is put back this many times at most.
MAX_REQUEUES = 5
_MAX_BACKOFF_SECONDS = 30.0
_MIN_POLL_GAP_SECONDS = 0.05


class TaskbotVariables(BaseVariables):
    """Job variables a deployment may set; in-process runs ignore `command` and `env`."""


class TaskbotJobConfiguration(BaseJobConfiguration):
    """A flow run's job configuration; an in-process run needs only the flow's entrypoint."""

    _entrypoint: str | None = PrivateAttr(default=None)

    @property
    def entrypoint(self) -> str | None:
        """The deployment's flow entrypoint, e.g. `flows/bot_session.py:bot_session`."""
        return self._entrypoint

    @classmethod
    async def resolve_for_flow_run(
        cls,
        flow_run: FlowRun,
        *,
        client: PrefectClient,
        work_pool: WorkPool,
        worker_name: str,
        worker_id: UUID | None = None,
        deployment: DeploymentResponse | None = None,
    ) -> Self:
        """Build the configuration from the pool's template and job variables.

        Unlike the base class this does not read the flow from the API: the worker
        imports the flow itself, and each request counts when starting many runs.
        """
        if deployment is None and flow_run.deployment_id is not None:
            deployment = await client.read_deployment(flow_run.deployment_id)
        values: dict[str, Any] = dict(deployment.job_variables or {}) if deployment else {}
        values.update(flow_run.job_variables or {})
        configuration = cast(
            Self,
            await cls.from_template_and_values(
                base_job_template=work_pool.base_job_template, values=values, client=client
            ),
        )
        configuration.prepare_for_flow_run(
            flow_run,
            deployment=deployment,
            work_pool=work_pool,
            worker_name=worker_name,
            worker_id=worker_id,
        )
        return configuration

    def prepare_for_flow_run(
        self,
        flow_run: FlowRun,
        deployment: DeploymentResponse | None = None,
        flow: APIFlow | None = None,
        work_pool: WorkPool | None = None,
        worker_name: str | None = None,
        worker_id: UUID | None = None,
    ) -> None:
        """Stamp labels, name and entrypoint; no environment or command, as nothing is spawned."""
        self._related_objects = {"deployment": deployment, "flow": flow, "flow-run": flow_run}
        self.labels = {
            **self._base_flow_run_labels(flow_run),
            **self._base_work_pool_labels(work_pool),
            **self._base_worker_name_label(worker_name),
            **self._base_flow_labels(flow),
            **self._base_deployment_labels(deployment),
            **self.labels,
        }
        self.name = self.name or flow_run.name
        self._entrypoint = deployment.entrypoint if deployment is not None else None


class TaskbotWorkerResult(BaseWorkerResult):
    """How a session ended: status 0 once Prefect has recorded the run's outcome."""


class TaskbotWorker(BaseWorker[TaskbotJobConfiguration, TaskbotVariables, TaskbotWorkerResult]):
    """Runs each flow run of its work pool as an asyncio task, through Prefect's engine.

    Stopping (cancel `start()` or call `stop()`) takes no new runs, gives running sessions
    `grace_seconds` to finish, then cancels the rest; every run ends in a final state.
    Sessions run on one thread's event loop; `session_cleanup` runs there after the last.
    """

    type = WORKER_TYPE
    job_configuration = TaskbotJobConfiguration
    job_configuration_variables = TaskbotVariables
    _description = "Runs flow runs in-process as asyncio tasks, many per worker (taskbot)."
    _documentation_url = ""
    _logo_url = ""

    def __init__(
        self,
        work_pool_name: str,
        work_queues: list[str] | None = None,
        name: str | None = None,
        prefetch_seconds: float | None = None,
        create_pool_if_not_found: bool = True,
        limit: int | None = None,
        heartbeat_interval_seconds: int | None = None,
        *,
        base_job_template: dict[str, Any] | None = None,
        poll_seconds: float | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        project_root: Path | None = None,
        watch_events: bool = True,
        session_cleanup: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(
            work_pool_name,
            work_queues,
            name,
            prefetch_seconds,
            create_pool_if_not_found,
            limit if limit is not None else DEFAULT_LIMIT,
            heartbeat_interval_seconds,
            base_job_template=base_job_template,
        )
        self.poll_seconds: float = (
            poll_seconds if poll_seconds is not None else PREFECT_WORKER_QUERY_SECONDS.value()
        )
        self.grace_seconds = grace_seconds
        self.watch_events = watch_events
        results_path = Path(get_current_settings().results.local_storage_path)
        self._flows = FlowLoader(project_root or Path.cwd(), results_path)
        self._session_loop = SessionLoop(on_close=session_cleanup)
        self._sessions: dict[UUID, SessionControl] = {}
        self._active: set[UUID] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pool_known = asyncio.Event()
        self._requeues: dict[UUID, int] = {}

    @property
    def active_runs(self) -> int:
        """Flow runs this worker is claiming or running right now."""
        return len(self._active)

    def stop(self) -> None:
        """Ask a started worker to stop (from its event loop); `start()` then drains and returns."""
        self._stopping.set()

    # Lifecycle ---------------------------------------------------------------------

    async def setup(self) -> None:
        """Start the session loop, then set up as any worker (client, sync with the API)."""
        await self._session_loop.start()
        # Entered first, so the base class's `get_client()` (and everything else on this
        # loop) gets this client, and it closes last.
        await self._exit_stack.enter_async_context(shared_client())
        await super().setup()

    async def teardown(self, *exc_info: Any) -> None:
        """Tear down as any worker, stop the session loop (after its sessions), flush logs."""
        try:
            await super().teardown(*exc_info)
        finally:
            await self._session_loop.aclose(grace_seconds=FINALIZE_SECONDS)
            # Sessions log through Prefect's process-wide log worker: flush it now, while
            # the API is surely up, rather than at interpreter exit.
            flushed = APILogWorker.drain_all(timeout=LOG_FLUSH_SECONDS, at_exit=False)
            await cast(Awaitable[Any], flushed)

    async def start(
        self,
        run_once: bool = False,
        with_healthcheck: bool = False,
        printer: Callable[..., None] = print,
    ) -> None:
        """Poll for runs and execute them until stopped or cancelled, then drain.

        A first cancellation drains gracefully; one during the drain cuts the grace
        period short. With `run_once`, poll once and wait for those runs to finish.
        """
        with self._healthcheck(with_healthcheck):
            async with self:
                start_client_metrics_server()
                try:
                    await self._serve(run_once, printer)
                finally:
                    try:
                        await self._drain(wait_all=run_once)
                    finally:
                        stop_client_metrics_server()
        printer(f"Worker {self.name!r} stopped!")

    @contextlib.contextmanager
    def _healthcheck(self, enabled: bool) -> Iterator[None]:
        if not enabled:
            yield
            return
        # The same (private) helper BaseWorker.start uses for its healthcheck.
        from prefect.workers.server import _run_healthcheck_server

        with _run_healthcheck_server(
            lambda: self.is_worker_still_polling(query_interval_seconds=self.poll_seconds)
        ):
            yield

    async def _serve(self, run_once: bool, printer: Callable[..., None]) -> None:
        if run_once:
            await self.get_and_submit_flow_runs()
            return
        async with anyio.create_task_group() as loops:
            loops.start_soon(self._poll_loop)
            loops.start_soon(self._heartbeat_loop)
            if self.watch_events:
                loops.start_soon(self._event_loop)
            self._started_event = await self._emit_worker_started_event()
            printer(f"Worker {self.name!r} started!")
            await self._stopping.wait()
            loops.cancel_scope.cancel()

    async def _drain(self, *, wait_all: bool) -> None:
        """Take no new runs; wait out the grace period; cancel what is left and let it record.

        With `wait_all` (run once), the runs already fetched are still claimed and run,
        and the wait has no limit.
        """
        if not wait_all:
            self._stopping.set()
        reason = (
            "Cancelled: the worker shut down before the session finished "
            f"(grace period {self.grace_seconds:g} s)."
        )
        try:
            await wait_event(self._idle, None if wait_all else self.grace_seconds)
        finally:
            # Also reached on a second cancellation: cut the grace period short.
            self._stopping.set()
            for control in list(self._sessions.values()):
                self._session_loop.call_soon(partial(control.cancel, reason))
            await wait_event(self._idle, FINALIZE_SECONDS)

    # Finding runs ------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self.get_and_submit_flow_runs()
                failures = 0
            except Exception as exc:
                failures += 1
                self._logger.warning("Polling for runs failed (%d in a row): %r", failures, exc)
            delay = self.poll_seconds * 2**failures if failures else self.poll_seconds
            await asyncio.sleep(_MIN_POLL_GAP_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(delay, _MAX_BACKOFF_SECONDS))

    async def _heartbeat_loop(self) -> None:
        while True:
            # Until the first sync succeeds the worker cannot poll: retry it sooner.
            synced = self._has_successfully_synced
            await asyncio.sleep(self.heartbeat_interval_seconds if synced else self.poll_seconds)
            try:
                await self._sync_and_initialize()
            except Exception as exc:
                self._logger.warning("Worker heartbeat failed: %r", exc)

    async def _event_loop(self) -> None:
        # The pool's id is known after the first successful sync with the API.
        await self._pool_known.wait()
        await watch_scheduled_runs(self.work_pool.id, self._wake.set)

    def _record_work_pool_snapshot(self, work_pool: WorkPool) -> None:
        super()._record_work_pool_snapshot(work_pool)
        self._pool_known.set()

    # Running one flow run ----------------------------------------------------------

    async def _submit_scheduled_flow_runs(
        self, flow_run_response: list[WorkerFlowRunResponse]
    ) -> list[FlowRun]:
        """Start a `_submit_run` task per run (base class), counting them active at once."""
        submitted = await super()._submit_scheduled_flow_runs(flow_run_response)
        # The base class only schedules the tasks: mark them before any can start, so a
        # drain that begins now waits for them.
        for flow_run in submitted:
            self._active.add(flow_run.id)
        if self._active:
            self._idle.clear()
        return submitted

    async def _submit_run(self, flow_run: FlowRun) -> None:
        """Claim, start and supervise one flow run; never raises, always frees its slot."""
        try:
            await self._claim_and_run(flow_run)
        except Exception:
            self._logger.exception("Unexpected error while running flow run %s", flow_run.id)
        finally:
            self._release_limit_slot(flow_run.id)
            self._submitting_flow_run_ids.discard(flow_run.id)
            if self._cancelling_observer is not None:
                self._cancelling_observer.remove_in_flight_flow_run_id(flow_run.id)
            self._active.discard(flow_run.id)
            if not self._active:
                self._idle.set()

    async def _claim_and_run(self, flow_run: FlowRun) -> None:
        if self._stopping.is_set():
            return  # fetched just before the stop: leave it Scheduled for the next worker
        deployment = await self._read_deployment(flow_run)
        if deployment is None or not await self._propose_pending_state(flow_run):
            return
        try:
            configuration = await self.job_configuration.resolve_for_flow_run(
                flow_run,
                client=self.client,
                work_pool=self.work_pool,
                worker_name=self.name,
                worker_id=self.backend_id,
                deployment=deployment,
            )
            if not await self._wait_for_start(flow_run):
                message = "The worker stopped before the run's scheduled time."
                await self._reschedule(flow_run, message, flow_run.expected_start_time)
                return
            await self.run(flow_run, configuration)
        except Abort as exc:
            self._logger.info("Prefect aborted flow run %s: %s", flow_run.id, exc)
        except Exception as exc:
            await self._requeue_or_crash(flow_run, exc)
        else:
            self._requeues.pop(flow_run.id, None)

    async def run(
        self,
        flow_run: FlowRun,
        configuration: TaskbotJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> TaskbotWorkerResult:
        """Run the flow run's session on the session loop and wait until it has ended."""
        if configuration.entrypoint is None:
            raise UnsupportedFlowError(f"flow run {flow_run.id} has no deployment entrypoint")
        flow = await self._flows.load(configuration.entrypoint)
        control = SessionControl()
        self._sessions[flow_run.id] = control
        try:
            outcome = self._session_loop.submit(partial(run_session, flow, flow_run, control))
            if task_status is not None:
                task_status.started(0)
            state = await self._await_session(outcome, control)
        finally:
            self._sessions.pop(flow_run.id, None)
        self._logger.debug("Flow run %s ended %s", flow_run.id, state.type.value)
        return TaskbotWorkerResult(identifier=str(flow_run.id), status_code=0)

    async def _await_session(
        self, outcome: asyncio.Future[State[Any]], control: SessionControl
    ) -> State[Any]:
        try:
            return await asyncio.shield(outcome)
        except asyncio.CancelledError:
            # The worker is being torn down without a drain: stop the session, and give
            # it time to record that, rather than abandoning it Running.
            self._session_loop.call_soon(
                partial(control.cancel, "Cancelled: the worker was stopped.")
            )
            await asyncio.wait({outcome}, timeout=FINALIZE_SECONDS)
            raise

    async def _setup_cancellation_observer(self) -> None:
        """Watch the pool for Cancelling runs, whatever PREFECT_WORKER_ENABLE_CANCELLATION says.

        Prefect turns the observer on only with that setting (off by default), as its
        process workers leave running runs to the runner in the flow's own process. Here
        the worker is that process: it is the only way a cancel reaches a session.
        """
        if self._cancelling_observer is not None or self._work_pool is None:
            return
        observer = FlowRunCancellingObserver(
            on_cancelling=self._on_cancelling,
            polling_interval=CANCELLATION_POLL_SECONDS,
            event_filter=EventFilter(
                event=EventNameFilter(name=["prefect.flow-run.Cancelling"]),
                any_resource=EventAnyResourceFilter(id=[f"prefect.work-pool.{self._work_pool.id}"]),
            ),
        )
        try:
            self._cancelling_observer = await self._exit_stack.enter_async_context(observer)
        except Exception as exc:
            self._logger.warning("Could not watch for cancelled runs: %r", exc)

    def _on_cancelling(self, flow_run_id: UUID) -> None:
        if self._runs_task_group is None:
            raise RuntimeError("worker is not set up")  # the observer retries later
        self._runs_task_group.start_soon(self._cancel_run, flow_run_id)

    async def _cancel_run(self, flow_run_id: UUID) -> None:
        """Stop a Cancelling run: cancel its session here, or let the base class handle it."""
        control = self._sessions.get(flow_run_id)
        if control is not None:
            self._session_loop.call_soon(partial(control.cancel, CANCELLED_ON_REQUEST))
            return
        await super()._cancel_run(flow_run_id)

    # Helpers -----------------------------------------------------------------------

    async def _read_deployment(self, flow_run: FlowRun) -> DeploymentResponse | None:
        """The run's deployment; None (and the run handled) when it cannot be run now."""
        if flow_run.deployment_id is None:
            await self._propose_crashed_state(flow_run, "The taskbot worker runs deployments only.")
            return None
        try:
            return await self.client.read_deployment(flow_run.deployment_id)
        except ObjectNotFound:
            await self._mark_flow_run_as_cancelled(
                flow_run,
                state_updates={"message": f"Deployment {flow_run.deployment_id} no longer exists."},
            )
        except Exception as exc:
            # Not claimed yet: the run stays Scheduled and the next poll tries again.
            self._logger.warning("Could not read deployment of flow run %s: %r", flow_run.id, exc)
        return None

    async def _wait_for_start(self, flow_run: FlowRun) -> bool:
        """Wait for the run's start time (runs are prefetched); False if the worker stops first."""
        start = flow_run.expected_start_time
        delay = (start - datetime.now(UTC)).total_seconds() if start is not None else 0.0
        if delay <= 0:
            return not self._stopping.is_set()
        return not await wait_event(self._stopping, delay)

    async def _requeue_or_crash(self, flow_run: FlowRun, exc: Exception) -> None:
        """A run whose flow never began: back to the queue if retrying may help, else Crashed."""
        cause = exc.cause if isinstance(exc, SessionNotStarted) else exc
        attempts = self._requeues.get(flow_run.id, 0)
        # No cause: the engine stopped short without an error; as the flow never began,
        # another try is safe.
        retry = cause is None or (isinstance(cause, Exception) and is_transient(cause))
        if retry and attempts < MAX_REQUEUES:
            self._requeues[flow_run.id] = attempts + 1
            delay = timedelta(seconds=min(2.0 ** (attempts + 1), _MAX_BACKOFF_SECONDS))
            message = f"The worker could not start the run ({cause!r}); retrying."
            self._logger.warning("Flow run %s: %s", flow_run.id, message)
            await self._reschedule(
                flow_run, message, datetime.now(UTC) + delay, name="AwaitingRetry"
            )
            return
        self._requeues.pop(flow_run.id, None)
        self._logger.error("Flow run %s could not start: %r", flow_run.id, cause)
        await self._propose_crashed_state(
            flow_run, f"The worker could not start the run: {cause!r}"
        )

    async def _reschedule(
        self, flow_run: FlowRun, message: str, when: datetime | None, name: str = "Scheduled"
    ) -> None:
        """Put a claimed run that never began back in the queue, unless it moved on meanwhile."""
        try:
            current = await self.client.read_flow_run(flow_run.id)
            if current.state is None or not current.state.is_pending():
                return  # cancelled or taken over meanwhile: not ours to put back
            state: State[Any] = Scheduled(scheduled_time=when, name=name, message=message)
            await propose_state(self.client, state, flow_run_id=flow_run.id)
        except Exception:
            self._logger.exception("Could not put flow run %s back in the queue", flow_run.id)


async def wait_event(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait for `event` at most `seconds` (None: forever); True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


def is_transient(exc: Exception) -> bool:
    """Whether an error from Prefect's API may go away on retry (network, 408/429/5xx)."""
    if isinstance(exc, httpx.TransportError | TimeoutError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status >= 500 or status in (408, 429)
    return False
