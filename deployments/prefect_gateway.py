"""The Prefect gateway: the only module in taskbot that talks to the Prefect API.

Key contracts (Prefect 3.9.1 behaviour this module relies on or works around):
- `POST /deployments/` is an upsert that deletes every schedule and creates new ones with
  new ids. The scheduler's run idempotency key is `scheduled {deployment} {schedule id}
  {time}`, so a new schedule id re-creates runs for slots that already have one (a run a
  worker has already picked up is not deleted). So we create a deployment once, then
  update it with PATCH and change its schedule with `PATCH /schedules/{id}`: same id.
- Every PATCH of a deployment or of its schedule deletes the deployment's *future*
  auto-scheduled runs that have not started; `POST /deployments/{id}/schedule` then
  refills them at once (same schedule id, same keys) instead of waiting for the scheduler
  loop. We only PATCH what differs, so re-applying an unchanged task changes nothing.
- `PATCH /deployments/{id}` with `schedules: []` does *not* remove slugged schedules;
  removing a schedule takes `DELETE /schedules/{id}` (which also deletes its runs).
- Flow-run idempotency keys are unique per *flow*, and every task deployment shares the
  `bot-session` flow: keys are scoped to the task (`scoped_idempotency_key`).
- Deleting a deployment deletes its Scheduled runs but leaves Pending ones (a worker has
  them) and keeps `deployment_id` on old runs (no foreign key): we cancel the leftovers
  by that id afterwards.
- The scheduler reads a schedule and inserts its runs in two transactions, so a change
  can land in between and leave runs of the old schedule behind: we prune after each
  change, and once more `repair_delay` seconds later, when that insert has landed.
- The Prefect client retries by itself (up to 5 times, sleeping 2**n s) reading global
  settings on every request; we turn that off for our client and retry with stamina
  within a bounded deadline instead, so a dead server fails in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import httpx
import stamina
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import (
    DeploymentScheduleCreate,
    DeploymentUpdate,
    WorkPoolCreate,
)
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    DeploymentFilterTags,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import DeploymentResponse, SetStateStatus
from prefect.client.schemas.schedules import SCHEDULE_TYPES, NoSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.context import SettingsContext, get_settings_context
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectException
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES
from prefect.states import Cancelled, Cancelling, Scheduled, to_state_create

from deployments.gateway import (
    ACTIVE_STATE_TYPES,
    AUTO_SCHEDULED_TAG,
    DEFAULT_WORK_POOL,
    DEFAULT_WORK_POOL_TYPE,
    ENTRYPOINT,
    FLOW_NAME,
    SCHEDULE_SLUG,
    TASKBOT_TAG,
    DeploymentInfo,
    DeploymentNotFound,
    DeploymentSpec,
    FlowRunInfo,
    GatewayError,
    GatewayUnavailable,
    Schedule,
    is_slot,
    plain_utc,
    scoped_idempotency_key,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)
_PAGE = 200  # PREFECT_SERVER_API_DEFAULT_LIMIT: the largest page Prefect accepts
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BULK = 50  # the server's BULK_OPERATION_LIMIT for bulk_delete / bulk_set_state
_STARTED = (StateType.PENDING, StateType.RUNNING, StateType.PAUSED)


class PrefectGateway:
    """Gateway over one long-lived PrefectClient for an explicit API URL."""

    def __init__(
        self,
        api_url: str,
        *,
        work_pool: str = DEFAULT_WORK_POOL,
        work_pool_type: str = DEFAULT_WORK_POOL_TYPE,
        api_key: str | None = None,
        request_timeout: float = 3.0,
        deadline: float = 8.0,
        attempts: int = 4,
        repair_delay: float | None = 3.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.work_pool = work_pool
        self.work_pool_type = work_pool_type
        self._api_key = api_key
        self._request_timeout = request_timeout
        self._deadline = deadline
        self._retry = stamina.AsyncRetryingCaller(
            attempts=attempts, timeout=deadline, wait_initial=0.1, wait_max=1.0, wait_jitter=0.2
        ).on(is_transient)
        # Snapshot the ambient settings once, with Prefect's own retries off and our URL
        # in place, and enter them around every call (a context var, not global state).
        current = get_settings_context()
        self._profile = current.profile
        self._settings = current.settings.copy_with_update(
            updates={PREFECT_CLIENT_MAX_RETRIES: 0, PREFECT_API_URL: self.api_url}
        )
        self._client: PrefectClient | None = None
        self._client_lock = asyncio.Lock()
        self._flow_id: UUID | None = None
        # After a change, one more repair pass once the scheduler's in-flight pass (which
        # may have read the old schedule) has landed; debounced per task.
        self._repair_delay = repair_delay
        self._repairs: dict[str, asyncio.Task[None]] = {}

    # Public API -------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        """Create the work pool and the `bot-session` flow if they are missing."""
        await self._call(self._ensure_ready)

    async def apply_deployment(self, spec: DeploymentSpec) -> str:
        """Create or update the task's deployment in place; return the deployment id."""

        async def apply(client: PrefectClient) -> tuple[str, bool]:
            try:
                return await self._apply(client, spec)
            except (ObjectAlreadyExists, httpx.HTTPStatusError) as exc:
                # Creating answers 404 for a missing work pool and 409 for a missing flow:
                # Prefect lost them (a deleted pool, a reset database). Recreate, retry once.
                if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code != 404:
                    raise
                self._flow_id = None
                return await self._apply(client, spec)

        deployment_id, changed = await self._call(apply)
        if changed:
            self._repair_later(spec.task_id)
        return deployment_id

    async def delete_deployment(self, task_id: str) -> None:
        """Delete the deployment and its not-yet-started runs; missing is a no-op."""

        async def delete(client: PrefectClient) -> None:
            deployment = await _read_deployment(client, task_id)
            if deployment is None:
                return
            # The server deletes Scheduled runs in the same transaction, so no further
            # scheduled run can start once this returns.
            with contextlib.suppress(ObjectNotFound):
                await client.delete_deployment(deployment.id)
            # Leftovers: Pending runs a worker holds, runs awaiting a concurrency slot,
            # and anything the scheduler inserted while we deleted.
            leftovers = await _read_runs_paged(
                client,
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
                    ),
                ),
            )
            # run_count > 0 means a retry of a run already in progress: let it finish.
            await _cancel_runs(client, [run for run in leftovers if run.run_count == 0])

        await self._call(delete)

    async def create_flow_run(
        self,
        task_id: str,
        *,
        idempotency_key: str,
        parameters: Mapping[str, Any] | None = None,
        scheduled_time: datetime | None = None,
    ) -> str:
        """Create an ad-hoc run (now, or at `scheduled_time`); the same key gives the same run."""

        async def create(client: PrefectClient) -> str:
            deployment = await _read_deployment(client, task_id)
            if deployment is None:
                raise DeploymentNotFound(task_id)
            run = await client.create_flow_run_from_deployment(
                deployment.id,
                parameters={"task_id": task_id, **(parameters or {})},
                state=Scheduled(scheduled_time=scheduled_time),
                idempotency_key=scoped_idempotency_key(task_id, idempotency_key),
            )
            return str(run.id)

        return await self._call(create)

    async def cancel_runs(self, task_id: str) -> list[str]:
        """Cancel the task's running and queued runs; future schedule slots stay."""

        async def cancel(client: PrefectClient) -> list[str]:
            runs = await _read_task_runs(
                client,
                task_id,
                FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(
                            any_=[
                                StateType.SCHEDULED,
                                StateType.PENDING,
                                StateType.RUNNING,
                                StateType.PAUSED,
                            ]
                        )
                    )
                ),
            )
            now = datetime.now(UTC)
            return await _cancel_runs(client, [r for r in runs if not _is_future_slot(r, now)])

        return await self._call(cancel)

    async def cancel_run(self, flow_run_id: str) -> bool:
        """Cancel one run if it has not finished; whether Prefect accepted it."""

        async def cancel(client: PrefectClient) -> bool:
            try:
                run = await client.read_flow_run(UUID(flow_run_id))
            except (ObjectNotFound, ValueError):
                return False
            if run.state_type is None or run.state_type.value not in ACTIVE_STATE_TYPES:
                return False
            return bool(await _cancel_runs(client, [run]))

        return await self._call(cancel)

    async def repair_runs(self, task_id: str) -> list[str]:
        """Remove future auto runs that duplicate a slot or are no slot; return their ids."""

        async def repair(client: PrefectClient) -> list[str]:
            deployment = await _read_deployment(client, task_id)
            return await _prune_future_runs(client, deployment) if deployment else []

        return await self._call(repair)

    async def read_runs(self, task_id: str, *, limit: int = 50) -> list[FlowRunInfo]:
        """The task's runs, latest expected start first."""

        async def read(client: PrefectClient) -> list[FlowRunInfo]:
            runs = await _read_task_runs(
                client, task_id, None, sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit
            )
            return [_run_info(task_id, run) for run in runs]

        return await self._call(read)

    async def read_run(self, flow_run_id: str) -> FlowRunInfo | None:
        """One run by id, or None when Prefect has no such run."""

        async def read(client: PrefectClient) -> FlowRunInfo | None:
            try:
                run = await client.read_flow_run(UUID(flow_run_id))
            except (ObjectNotFound, ValueError):
                return None
            task_id = str((run.parameters or {}).get("task_id", ""))
            return _run_info(task_id, run)

        return await self._call(read)

    async def next_scheduled_time(
        self, task_id: str, *, after: datetime | None = None
    ) -> datetime | None:
        """Expected start of the earliest auto-scheduled run after `after` (default now)."""

        async def read(client: PrefectClient) -> datetime | None:
            runs = await _read_task_runs(
                client,
                task_id,
                FlowRunFilter(
                    # A Pending auto run is a slot a worker has picked up ahead of time.
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
                    ),
                    tags=FlowRunFilterTags(all_=[AUTO_SCHEDULED_TAG]),
                    expected_start_time=FlowRunFilterExpectedStartTime(
                        after_=after or datetime.now(UTC)
                    ),
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                limit=1,
            )
            start = runs[0].expected_start_time if runs else None
            return plain_utc(start) if start else None

        return await self._call(read)

    async def list_task_deployments(self) -> dict[str, DeploymentInfo]:
        """Every deployment of `bot-session` tagged `taskbot`, keyed by task id."""

        async def read(client: PrefectClient) -> dict[str, DeploymentInfo]:
            found: dict[str, DeploymentInfo] = {}
            offset = 0
            while True:
                page = await client.read_deployments(
                    flow_filter=_flow_filter(),
                    deployment_filter=DeploymentFilter(
                        tags=DeploymentFilterTags(all_=[TASKBOT_TAG])
                    ),
                    limit=_PAGE,
                    offset=offset,
                )
                found.update((d.name, _deployment_info(d)) for d in page)
                if len(page) < _PAGE:
                    return found
                offset += len(page)

        return await self._call(read)

    async def aclose(self) -> None:
        """Cancel pending repairs and close the HTTP client; the gateway is not used afterwards."""
        repairs, self._repairs = list(self._repairs.values()), {}
        for repair in repairs:
            repair.cancel()
        await asyncio.gather(*repairs, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            with self._settings_context():
                await client.__aexit__(None, None, None)

    # Plumbing ---------------------------------------------------------------------

    def _repair_later(self, task_id: str) -> None:
        if self._repair_delay is None:
            return
        pending = self._repairs.pop(task_id, None)
        if pending is not None:
            pending.cancel()
        repair = asyncio.create_task(self._repair_after_delay(task_id, self._repair_delay))
        self._repairs[task_id] = repair
        repair.add_done_callback(functools.partial(self._forget_repair, task_id))

    def _forget_repair(self, task_id: str, done: asyncio.Task[None]) -> None:
        if self._repairs.get(task_id) is done:
            del self._repairs[task_id]

    async def _repair_after_delay(self, task_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            removed = await self.repair_runs(task_id)
        except GatewayError as exc:
            # Best effort: the reconciler's periodic repair pass catches up later.
            logger.warning("Deferred run repair of task %s failed: %s", task_id, exc)
            return
        if removed:
            logger.info("Removed %d raced scheduler runs of task %s", len(removed), task_id)

    async def _call(self, operation: Callable[[PrefectClient], Awaitable[T]]) -> T:
        """Run one gateway operation with retries, a deadline and our error mapping."""
        try:
            async with asyncio.timeout(self._deadline):
                with self._settings_context():
                    client = await self._get_client()
                    return await self._retry(operation, client)
        except TimeoutError as exc:
            raise GatewayUnavailable(
                f"Prefect API at {self.api_url} did not answer within {self._deadline} s"
            ) from exc
        except httpx.HTTPStatusError as exc:
            if is_transient(exc):
                raise GatewayUnavailable(
                    f"Prefect API at {self.api_url} answered {exc.response.status_code}"
                ) from exc
            raise GatewayError(
                f"Prefect API refused {exc.request.method} {exc.request.url.path}: "
                f"{exc.response.status_code} {exc.response.text[:500]}"
            ) from exc
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"Prefect API at {self.api_url} unreachable: {exc!r}") from exc
        except PrefectException as exc:
            raise GatewayError(f"Prefect API error: {exc}") from exc

    @contextlib.contextmanager
    def _settings_context(self) -> Iterator[None]:
        with SettingsContext(profile=self._profile, settings=self._settings):
            yield

    async def _get_client(self) -> PrefectClient:
        async with self._client_lock:
            if self._client is None:
                timeout = httpx.Timeout(
                    self._request_timeout, connect=min(self._request_timeout, 2.0)
                )
                client = PrefectClient(
                    self.api_url,
                    api_key=self._api_key,
                    httpx_settings={
                        "timeout": timeout,
                        # No transport-level connect retries either: stamina owns retrying.
                        "transport": httpx.AsyncHTTPTransport(
                            retries=0,
                            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
                        ),
                    },
                )
                await client.__aenter__()
                self._client = client
            return self._client

    async def _ensure_ready(self, client: PrefectClient) -> UUID:
        try:
            await client.read_work_pool(self.work_pool)
        except ObjectNotFound:
            template = await asyncio.to_thread(_default_base_job_template, self.work_pool_type)
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_work_pool(
                    WorkPoolCreate(
                        name=self.work_pool,
                        type=self.work_pool_type,
                        base_job_template=template,
                    )
                )
        self._flow_id = await client.create_flow_from_name(FLOW_NAME)
        await _ensure_zombie_automation(client)
        return self._flow_id

    async def _apply(self, client: PrefectClient, spec: DeploymentSpec) -> tuple[str, bool]:
        """Upsert in place; return the deployment id and whether an existing one changed."""
        flow_id = self._flow_id or await self._ensure_ready(client)
        existing = await _read_deployment(client, spec.task_id)
        changed = False
        if existing is None:
            deployment_id = await client.create_deployment(
                flow_id=flow_id,
                name=spec.task_id,
                schedules=_schedule_creates(spec.schedule),
                parameters=spec.parameters,
                description=spec.deployment_description,
                tags=spec.tags,
                work_pool_name=self.work_pool,
                entrypoint=ENTRYPOINT,
                paused=False,
                enforce_parameter_schema=False,
            )
        else:
            deployment_id = existing.id
            update = _deployment_update(existing, spec, self.work_pool)
            if update is not None:
                if "work_pool_name" in update.model_fields_set:
                    # Prefect answers 500, not 404, to a PATCH naming a missing pool; and a
                    # deployment loses its pool name exactly when its pool was deleted.
                    await self._ensure_ready(client)
                await client.update_deployment(deployment_id, update)
            schedule_changed = await _sync_schedule(client, existing, spec.schedule)
            changed = update is not None or schedule_changed
        if spec.schedule is not None:
            # What the scheduler service would do on its next loop, done now, so the
            # earliest run exists (and nextRunAt can be read) when apply returns.
            await client.request(
                "POST", "/deployments/{id}/schedule", path_params={"id": deployment_id}, json={}
            )
        if changed:
            await _prune_future_runs(client, await client.read_deployment(deployment_id))
        return str(deployment_id), changed


def is_transient(exc: Exception) -> bool:
    """Whether retrying may help: connection trouble, timeouts, 408/429 and 5xx answers."""
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status >= 500 or status in (408, 429)
    return False


ZOMBIE_AUTOMATION = "taskbot: crash bot sessions whose worker died"
# Prefect's engine sends a heartbeat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY (180 s by
# default); three missed in a row means the process running the session is gone.
ZOMBIE_AFTER = timedelta(seconds=3 * 180 + 30)


async def _ensure_zombie_automation(client: PrefectClient) -> None:
    """Make Prefect mark a bot-session run Crashed when its heartbeats stop.

    A worker that dies (OOM, SIGKILL, a lost machine) cannot report anything; this is
    Prefect's own remedy for such "zombie" runs, limited to our flow. The reconciler then
    sees the Crashed run and records the failure in the task store.
    """
    if await client.read_automations_by_name(ZOMBIE_AUTOMATION):
        return
    trigger = EventTrigger(
        after={"prefect.flow-run.heartbeat"},
        expect={
            "prefect.flow-run.heartbeat",
            "prefect.flow-run.Completed",
            "prefect.flow-run.Failed",
            "prefect.flow-run.Cancelled",
            "prefect.flow-run.Crashed",
        },
        match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
        match_related=ResourceSpecification(
            {"prefect.resource.role": "flow", "prefect.resource.name": FLOW_NAME}
        ),
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=ZOMBIE_AFTER,
    )
    action = ChangeFlowRunState(
        state=StateType.CRASHED,
        message="The worker running this bot session stopped sending heartbeats.",
    )
    await client.create_automation(
        AutomationCore(name=ZOMBIE_AUTOMATION, trigger=trigger, actions=[action])
    )


def _default_base_job_template(work_pool_type: str) -> dict[str, Any]:
    """The registered worker type's default job template, or {} (workers fill it in)."""
    from prefect.workers.base import BaseWorker

    worker_class = BaseWorker.get_worker_class_from_type(work_pool_type)
    return worker_class.get_default_base_job_template() if worker_class else {}


def _flow_filter() -> FlowFilter:
    return FlowFilter(name=FlowFilterName(any_=[FLOW_NAME]))


async def _read_deployment(client: PrefectClient, task_id: str) -> DeploymentResponse | None:
    try:
        return await client.read_deployment_by_name(f"{FLOW_NAME}/{task_id}")
    except ObjectNotFound:
        return None


async def _read_task_runs(
    client: PrefectClient,
    task_id: str,
    flow_run_filter: FlowRunFilter | None,
    *,
    sort: FlowRunSort | None = None,
    limit: int | None = None,
) -> list[FlowRun]:
    """Runs of the task's current deployment (joined by name, so one request a page)."""
    return await _read_runs_paged(
        client,
        flow_filter=_flow_filter(),
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[task_id])),
        flow_run_filter=flow_run_filter,
        sort=sort,
        limit=limit,
    )


async def _read_runs_paged(
    client: PrefectClient, *, limit: int | None = None, **filters: Any
) -> list[FlowRun]:
    """All matching runs, or the first `limit`: Prefect answers 422 to pages over 200."""
    runs: list[FlowRun] = []
    while limit is None or len(runs) < limit:
        size = _PAGE if limit is None else min(_PAGE, limit - len(runs))
        page = await client.read_flow_runs(limit=size, offset=len(runs), **filters)
        runs.extend(page)
        if len(page) < size:
            break
    return runs


def _is_future_slot(run: FlowRun, now: datetime) -> bool:
    """An auto-scheduled run not yet due belongs to the schedule, not to the queue."""
    return (
        run.auto_scheduled
        and run.state_type == StateType.SCHEDULED
        and run.expected_start_time is not None
        and run.expected_start_time > now
    )


async def _cancel_runs(client: PrefectClient, runs: list[FlowRun]) -> list[str]:
    """Cancel runs in bulk; return the ids Prefect accepted (others moved on meanwhile)."""
    # Runs that may own infrastructure go through Cancelling, so their worker stops them.
    started = [r.id for r in runs if r.state_type in _STARTED]
    waiting = [r.id for r in runs if r.state_type not in _STARTED]
    return [
        *await _bulk_set_state(client, started, Cancelling()),
        *await _bulk_set_state(client, waiting, Cancelled()),
    ]


async def _bulk_set_state(
    client: PrefectClient, run_ids: list[UUID], state: State[Any]
) -> list[str]:
    accepted: list[str] = []
    for chunk in _chunks(run_ids):
        # Prefect 3.9.1's server has bulk endpoints that its client does not wrap yet.
        response = await client.request(
            "POST",
            "/flow_runs/bulk_set_state",  # type: ignore[arg-type]
            json={
                "flow_runs": _ids_filter(chunk),
                "state": to_state_create(state).model_dump(mode="json"),
                "limit": _BULK,
            },
        )
        results = response.json()["results"]
        accepted += [
            r["flow_run_id"] for r in results if r["status"] == SetStateStatus.ACCEPT.value
        ]
    return accepted


async def _bulk_delete(client: PrefectClient, run_ids: list[UUID]) -> list[str]:
    deleted: list[str] = []
    for chunk in _chunks(run_ids):
        response = await client.request(
            "POST",
            "/flow_runs/bulk_delete",  # type: ignore[arg-type]
            json={"flow_runs": _ids_filter(chunk), "limit": _BULK},
        )
        deleted += [str(run_id) for run_id in response.json()["deleted"]]
    return deleted


def _ids_filter(run_ids: list[UUID]) -> dict[str, Any]:
    return FlowRunFilter(id=FlowRunFilterId(any_=run_ids)).model_dump(
        mode="json", exclude_unset=True
    )


def _chunks(run_ids: list[UUID]) -> Iterator[list[UUID]]:
    for start in range(0, len(run_ids), _BULK):
        yield run_ids[start : start + _BULK]


def _schedule_creates(schedule: Schedule | None) -> list[DeploymentScheduleCreate]:
    if schedule is None:
        return []
    return [DeploymentScheduleCreate(schedule=schedule, active=True, slug=SCHEDULE_SLUG)]


def _deployment_update(
    existing: DeploymentResponse, spec: DeploymentSpec, work_pool: str
) -> DeploymentUpdate | None:
    """The fields that differ from the spec (schedules apart), or None when none do."""
    wanted: dict[str, Any] = {
        "description": spec.deployment_description,
        "tags": spec.tags,
        "parameters": spec.parameters,
        "work_pool_name": work_pool,
        "entrypoint": ENTRYPOINT,
        "paused": False,
    }
    current: dict[str, Any] = {
        "description": existing.description or "",
        "tags": existing.tags,
        "parameters": existing.parameters,
        "work_pool_name": existing.work_pool_name,
        "entrypoint": existing.entrypoint,
        "paused": existing.paused,
    }
    changed = {key: value for key, value in wanted.items() if current[key] != value}
    if "tags" in changed and sorted(current["tags"]) == sorted(wanted["tags"]):
        del changed["tags"]
    return DeploymentUpdate(**changed) if changed else None


async def _sync_schedule(
    client: PrefectClient, existing: DeploymentResponse, wanted: Schedule | None
) -> bool:
    """Make the deployment's schedules exactly [wanted], ours updated in place; True if changed."""
    ours = None
    changed = False
    for schedule in existing.schedules:
        # We are the only owner of task deployments: foreign schedules are drift.
        if schedule.slug == SCHEDULE_SLUG and wanted is not None:
            ours = schedule
        else:
            await client.delete_deployment_schedule(existing.id, schedule.id)
            changed = True
    if wanted is None:
        return changed
    if ours is None:
        await client.create_deployment_schedules(existing.id, _schedule_creates(wanted))
        return True
    if not ours.active or not same_schedule(ours.schedule, wanted):
        await client.update_deployment_schedule(existing.id, ours.id, active=True, schedule=wanted)
        return True
    return changed


async def _prune_future_runs(client: PrefectClient, deployment: DeploymentResponse) -> list[str]:
    """Remove future auto runs that duplicate a slot or are no slot of the current schedule.

    Duplicates: the scheduler's idempotency key embeds the slot time *as written in the
    schedule's timezone*, so a new timezone re-creates a slot whose old run a worker has
    already picked up. They are cancelled, not deleted: the row keeps its key, so the
    scheduler cannot insert the slot a third time before it passes.
    Strays: the scheduler read the previous schedule and inserted its runs after our
    change. They are deleted, as Prefect deletes replaced runs: a cancelled row would keep
    its key and so block that slot if the task ever goes back to the old schedule.
    """
    schedule = _our_schedule(deployment)
    runs = await _read_runs_paged(
        client,
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
            tags=FlowRunFilterTags(all_=[AUTO_SCHEDULED_TAG]),
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(
                    any_=[
                        StateType.SCHEDULED,
                        StateType.PENDING,
                        StateType.RUNNING,
                        StateType.PAUSED,
                    ]
                )
            ),
            expected_start_time=FlowRunFilterExpectedStartTime(after_=datetime.now(UTC)),
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
    )
    # A run that has started keeps its slot; otherwise the oldest run of a slot does.
    runs.sort(key=lambda r: (r.state_type == StateType.SCHEDULED, r.created or _EPOCH))
    taken: set[datetime] = set()
    strays: list[UUID] = []
    duplicates: list[FlowRun] = []
    for run in runs:
        slot = run.expected_start_time
        if slot is None:
            continue
        if run.state_type != StateType.SCHEDULED:
            taken.add(slot)
        elif schedule is None or not await is_slot(schedule, slot):
            strays.append(run.id)
        elif slot in taken:
            duplicates.append(run)
        else:
            taken.add(slot)
    return [*await _bulk_delete(client, strays), *await _cancel_runs(client, duplicates)]


def _our_schedule(deployment: DeploymentResponse) -> Schedule | None:
    """The deployment's taskbot schedule, if it has an active one."""
    for schedule in deployment.schedules:
        if schedule.slug == SCHEDULE_SLUG and schedule.active:
            if isinstance(schedule.schedule, NoSchedule):
                return None
            return schedule.schedule
    return None


def same_schedule(current: SCHEDULE_TYPES, wanted: Schedule) -> bool:
    """Whether a stored schedule already equals the wanted one (as Prefect serialises it)."""
    return type(current) is type(wanted) and (
        current.model_dump(mode="json") == wanted.model_dump(mode="json")
    )


def _deployment_info(deployment: DeploymentResponse) -> DeploymentInfo:
    ours = next((s for s in deployment.schedules if s.slug == SCHEDULE_SLUG), None)
    return DeploymentInfo(
        task_id=deployment.name,
        deployment_id=str(deployment.id),
        tags=frozenset(deployment.tags),
        schedule_id=str(ours.id) if ours is not None else None,
        schedule=_our_schedule(deployment),
        paused=bool(deployment.paused),
        updated=_plain(deployment.updated),
    )


def _plain(moment: datetime | None) -> datetime | None:
    return plain_utc(moment) if moment is not None else None


def _run_info(task_id: str, run: FlowRun) -> FlowRunInfo:
    return FlowRunInfo(
        id=str(run.id),
        task_id=str(run.parameters.get("task_id", task_id)),
        state_type=run.state_type.value if run.state_type else "SCHEDULED",
        state_name=run.state_name or "",
        expected_start_time=_plain(run.expected_start_time),
        start_time=_plain(run.start_time),
        end_time=_plain(run.end_time),
        scheduled=run.auto_scheduled,
        idempotency_key=run.idempotency_key,
    )
