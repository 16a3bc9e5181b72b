"""The taskbot worker against a real Prefect server: runs in-process, many at once, stops cleanly.

Every test gets its own work pool (of type taskbot) and deployments of the sample flows,
so tests share the session's Prefect server without seeing each other's runs. Timing
assertions are generous sanity bounds only; `bench_worker.py` measures.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from prefect._internal.plugins.collections import safe_load_entrypoints
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.states import Cancelling, Scheduled
from prefect.workers.base import BaseWorker

from flows.worker import TaskbotJobConfiguration, TaskbotWorker, TaskbotWorkerResult
from flows.worker_client import create_worker_client
from flows.worker_serve import ensure_work_pool, serve_worker, worker_settings
from tests.support.prefect_server import PrefectTestServer, shared_prefect_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FLOWS = ("noop", "sleepy", "failing", "whoami", "rendezvous", "sync_flow")
FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}


class Pool:
    """A fresh work pool with one deployment per sample flow, and a client to drive it."""

    def __init__(self, api_url: str, client: PrefectClient, name: str) -> None:
        self.api_url = api_url
        self.client = client
        self.name = name
        self.deployments: dict[str, UUID] = {}

    async def deploy(self, key: str, entrypoint: str, flow_name: str) -> UUID:
        flow_id = await self.client.create_flow_from_name(flow_name)
        deployment_id = await self.client.create_deployment(
            flow_id=flow_id,
            name=f"{self.name}-{key}",
            work_pool_name=self.name,
            entrypoint=entrypoint,
            enforce_parameter_schema=False,
        )
        self.deployments[key] = deployment_id
        return deployment_id

    async def trigger(
        self, key: str, parameters: dict[str, Any] | None = None, at: datetime | None = None
    ) -> UUID:
        run = await self.client.create_flow_run_from_deployment(
            self.deployments[key], parameters=parameters or {}, state=Scheduled(scheduled_time=at)
        )
        return run.id

    async def wait(
        self, run_ids: Iterable[UUID], states: set[StateType], within: float = 60.0
    ) -> list[FlowRun]:
        """Poll until every run is in one of `states`, for at most `within` seconds."""
        ids = list(run_ids)
        deadline = time.monotonic() + within
        while True:
            runs = [await self.client.read_flow_run(run_id) for run_id in ids]
            if all(run.state_type in states for run in runs):
                return runs
            if time.monotonic() > deadline:
                found = [(run.name, run.state_type, run.state_name) for run in runs]
                raise AssertionError(f"runs not in {states} after {within} s: {found}")
            await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
def prefect_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> PrefectTestServer:
    """The test session's one Prefect server (shared with the other suites)."""
    return shared_prefect_server(request.config, tmp_path_factory)


@pytest.fixture
async def pool(prefect_server: PrefectTestServer) -> AsyncIterator[Pool]:
    """A new taskbot pool with the sample flows deployed, on the session's Prefect server."""
    name = f"worker-test-{uuid4().hex[:8]}"
    async with create_worker_client(prefect_server.api_url) as client:
        await ensure_work_pool(client, name)
        created = Pool(prefect_server.api_url, client, name)
        for fn in SAMPLE_FLOWS:
            flow_name = "worker-test-" + fn.replace("_flow", "")
            await created.deploy(fn, f"tests/flows/sample_flows.py:{fn}", flow_name)
        yield created


@asynccontextmanager
async def running_worker(pool: Pool, **options: Any) -> AsyncIterator[TaskbotWorker]:
    """A started TaskbotWorker for the pool; stopped (gracefully) on exit."""
    options.setdefault("poll_seconds", 0.5)
    options.setdefault("prefetch_seconds", 5)
    options.setdefault("project_root", PROJECT_ROOT)
    worker_class = options.pop("worker_class", TaskbotWorker)
    with worker_settings(pool.api_url):
        worker = worker_class(pool.name, **options)
        task = asyncio.create_task(worker.start(printer=lambda *args: None))
        await wait_until(lambda: worker._has_successfully_synced, task)
        try:
            yield worker
        finally:
            worker.stop()
            await asyncio.wait_for(task, 120)


async def wait_until(predicate: Any, task: asyncio.Task[Any], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if task.done():
            task.result()
        assert time.monotonic() < deadline, "worker did not sync with Prefect"
        await asyncio.sleep(0.05)


def max_overlap(runs: list[FlowRun]) -> int:
    """The largest number of runs that were Running at the same instant (server times)."""
    edges: list[tuple[datetime, int]] = []
    for run in runs:
        assert run.start_time is not None and run.end_time is not None
        edges += [(run.start_time, 1), (run.end_time, -1)]
    current = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        peak = max(peak, current)
    return peak


# Discovery -------------------------------------------------------------------------


def test_worker_type_is_registered_and_loadable_as_a_collection() -> None:
    assert BaseWorker.get_worker_class_from_type("taskbot") is TaskbotWorker
    assert "taskbot" in BaseWorker.get_all_available_worker_types()
    # What `prefect worker start --type taskbot` does with our entry point installed.
    entry = EntryPoint(name="taskbot", value="flows.worker", group="prefect.collections")
    loaded = safe_load_entrypoints(EntryPoints([entry]))
    assert not isinstance(loaded["taskbot"], Exception)
    template = TaskbotWorker.get_default_base_job_template()
    assert set(template) == {"job_configuration", "variables"}
    assert TaskbotWorker.job_configuration is TaskbotJobConfiguration


async def test_prefect_cli_runs_the_taskbot_worker_type(pool: Pool, tmp_path: Path) -> None:
    # A dist-info directory on the path is how an installed package declares entry points:
    # this one declares exactly the line pyproject.toml adds.
    dist = tmp_path / "site" / "taskbot_worker_probe-0.0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: taskbot-worker-probe\n")
    (dist / "entry_points.txt").write_text("[prefect.collections]\ntaskbot = flows.worker\n")
    run_id = await pool.trigger("noop", {"value": 1})
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(dist.parent), str(PROJECT_ROOT)]),
        "PREFECT_API_URL": pool.api_url,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    cli = Path(sys.executable).with_name("prefect")
    process = await asyncio.create_subprocess_exec(
        *[str(cli), "worker", "start", "--pool", pool.name, "--type", "taskbot", "--run-once"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, output.decode(errors="replace")
    [run] = await pool.wait([run_id], FINAL)
    assert run.state_type == StateType.COMPLETED
    assert "Worker 'TaskbotWorker" in output.decode(errors="replace")


# Running ---------------------------------------------------------------------------


async def test_ad_hoc_run_completes_in_the_worker_process(pool: Pool, tmp_path: Path) -> None:
    marker = tmp_path / "whoami.txt"
    async with running_worker(pool):
        run_id = await pool.trigger("whoami", {"path": str(marker)})
        [run] = await pool.wait([run_id], FINAL)
    assert run.state_type == StateType.COMPLETED
    pid, thread = marker.read_text().split(" ", 1)
    assert int(pid) == os.getpid()
    assert thread == "taskbot-sessions"


async def test_concurrent_sessions_run_side_by_side(pool: Pool) -> None:
    # All due before the worker starts, so its first poll claims them together.
    run_ids = [await pool.trigger("sleepy", {"seconds": 2}) for _ in range(20)]
    started = time.monotonic()
    async with running_worker(pool):
        runs = await pool.wait(run_ids, FINAL, within=90)
        elapsed = time.monotonic() - started
    assert {run.state_type for run in runs} == {StateType.COMPLETED}
    # One after another would take 40 s; side by side it takes a few (bench_worker.py).
    assert elapsed < 30


async def test_twenty_sessions_are_running_at_the_same_time(pool: Pool, tmp_path: Path) -> None:
    # Each run waits until all 20 have checked in: they complete only if they overlap.
    parameters = {"directory": str(tmp_path), "expected": 20, "within": 60}
    run_ids = [await pool.trigger("rendezvous", parameters) for _ in range(20)]
    async with running_worker(pool):
        runs = await pool.wait(run_ids, FINAL, within=90)
    assert {run.state_type for run in runs} == {StateType.COMPLETED}


async def test_concurrency_limit_is_respected(pool: Pool) -> None:
    async with running_worker(pool, limit=3):
        run_ids = [await pool.trigger("sleepy", {"seconds": 1}) for _ in range(8)]
        runs = await pool.wait(run_ids, FINAL, within=90)
    assert {run.state_type for run in runs} == {StateType.COMPLETED}
    assert max_overlap(runs) <= 3


async def test_failing_flow_ends_failed(pool: Pool) -> None:
    async with running_worker(pool):
        run_id = await pool.trigger("failing", {"message": "model unavailable"})
        [run] = await pool.wait([run_id], FINAL)
    assert run.state_type == StateType.FAILED
    assert run.state is not None and "model unavailable" in (run.state.message or "")


async def test_flow_that_cannot_run_in_process_crashes_with_the_reason(pool: Pool) -> None:
    await pool.deploy("missing", "tests/flows/no_such_module.py:nothing", "worker-test-noop")
    async with running_worker(pool):
        sync_run = await pool.trigger("sync_flow")
        missing_run = await pool.trigger("missing")
        runs = await pool.wait([sync_run, missing_run], FINAL)
    assert [run.state_type for run in runs] == [StateType.CRASHED, StateType.CRASHED]
    assert "async flows only" in (runs[0].state.message or "")  # type: ignore[union-attr]


async def test_scheduled_run_starts_on_time(pool: Pool) -> None:
    async with running_worker(pool, prefetch_seconds=10):
        due = datetime.now(UTC) + timedelta(seconds=4)
        run_id = await pool.trigger("noop", at=due)
        [run] = await pool.wait([run_id], FINAL)
    assert run.state_type == StateType.COMPLETED
    assert run.start_time is not None
    lateness = (run.start_time - due).total_seconds()
    assert -0.6 < lateness < 2.0


async def test_event_stream_starts_runs_without_waiting_for_a_poll(pool: Pool) -> None:
    # With a 60 s poll, only the event stream can start the run within the bound.
    async with running_worker(pool, poll_seconds=60):
        await asyncio.sleep(1.0)  # let the subscription connect
        run_id = await pool.trigger("noop")
        [run] = await pool.wait([run_id], FINAL, within=30)
    assert run.state_type == StateType.COMPLETED
    assert run.start_time is not None and run.created is not None
    assert (run.start_time - run.created).total_seconds() < 15


class FlakyStartWorker(TaskbotWorker):
    """Fails to start each flow run once with a network error, as a busy API would make it."""

    type = "taskbot-test-flaky"
    failed: set[UUID] = set()

    async def run(
        self,
        flow_run: FlowRun,
        configuration: TaskbotJobConfiguration,
        task_status: Any = None,
    ) -> TaskbotWorkerResult:
        if flow_run.id not in self.failed:
            self.failed.add(flow_run.id)
            raise httpx.ConnectError("simulated: the API went away")
        return await super().run(flow_run, configuration, task_status)


async def test_run_that_failed_to_start_is_put_back_and_runs(pool: Pool) -> None:
    async with running_worker(pool, worker_class=FlakyStartWorker):
        run_id = await pool.trigger("noop")
        [run] = await pool.wait([run_id], FINAL, within=60)
    assert run.state_type == StateType.COMPLETED
    history = await pool.client.read_flow_run_states(run_id)
    assert "AwaitingRetry" in [state.name for state in history]


# Cancelling and stopping -----------------------------------------------------------


async def test_cancelling_a_running_session_ends_it_cancelled(pool: Pool) -> None:
    async with running_worker(pool):
        run_id = await pool.trigger("sleepy", {"seconds": 120})
        await pool.wait([run_id], {StateType.RUNNING})
        await pool.client.set_flow_run_state(run_id, Cancelling(), force=True)
        [run] = await pool.wait([run_id], FINAL, within=60)
    assert run.state_type == StateType.CANCELLED


async def test_graceful_stop_lets_short_sessions_finish_and_cancels_long_ones(pool: Pool) -> None:
    async with running_worker(pool, grace_seconds=3) as worker:
        long_run = await pool.trigger("sleepy", {"seconds": 120})
        short_run = await pool.trigger("sleepy", {"seconds": 1})
        await pool.wait([long_run, short_run], {StateType.RUNNING})
        worker.stop()
        started = time.monotonic()
    stopped_in = time.monotonic() - started
    long, short = await pool.wait([long_run, short_run], FINAL, within=5)
    assert short.state_type == StateType.COMPLETED
    assert long.state_type == StateType.CANCELLED
    assert long.state is not None and "grace period 3 s" in (long.state.message or "")
    assert 2.5 < stopped_in < 40


async def test_stopping_puts_claimed_runs_that_have_not_started_back(pool: Pool) -> None:
    due = datetime.now(UTC) + timedelta(seconds=8)
    async with running_worker(pool, prefetch_seconds=30) as worker:
        run_id = await pool.trigger("noop", at=due)
        await pool.wait([run_id], {StateType.PENDING})  # claimed early (prefetch)
        worker.stop()
    [run] = await pool.wait([run_id], {StateType.SCHEDULED}, within=5)
    assert run.expected_start_time == due
    async with running_worker(pool, prefetch_seconds=30):
        [run] = await pool.wait([run_id], FINAL)
    assert run.state_type == StateType.COMPLETED


async def test_sigterm_stops_a_worker_process_gracefully(pool: Pool, tmp_path: Path) -> None:
    script = (
        "from pathlib import Path\n"
        "from flows.worker_serve import run_until_signalled, serve_worker\n"
        f"run_until_signalled(serve_worker(api_url={pool.api_url!r}, "
        f"work_pool={pool.name!r}, grace_seconds=2, project_root=Path({str(PROJECT_ROOT)!r})))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env |= {"PYTHONPATH": str(PROJECT_ROOT), "PREFECT_HOME": str(tmp_path / "prefect-home")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        run_id = await pool.trigger("sleepy", {"seconds": 120})
        await pool.wait([run_id], {StateType.RUNNING}, within=120)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, output.decode(errors="replace")
    [run] = await pool.wait([run_id], FINAL, within=5)
    assert run.state_type == StateType.CANCELLED
    assert run.state is not None and "grace period 2 s" in (run.state.message or "")


async def test_serve_worker_creates_its_pool_and_drains_on_cancellation(
    prefect_server: PrefectTestServer,
) -> None:
    name = f"worker-serve-{uuid4().hex[:8]}"
    api_url = prefect_server.api_url
    serving = asyncio.create_task(
        serve_worker(api_url=api_url, work_pool=name, grace_seconds=60, project_root=PROJECT_ROOT)
    )
    async with create_worker_client(api_url) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                work_pool = await client.read_work_pool(name)
                break
            except Exception:
                assert time.monotonic() < deadline and not serving.done()
                await asyncio.sleep(0.2)
        assert work_pool.type == "taskbot"
        created = Pool(api_url, client, name)
        await created.deploy("sleepy", "tests/flows/sample_flows.py:sleepy", "worker-test-sleepy")
        run_id = await created.trigger("sleepy", {"seconds": 120})
        await created.wait([run_id], {StateType.RUNNING})
        serving.cancel()  # first cancellation: drain with a 60 s grace period
        await asyncio.sleep(0.5)
        assert not serving.done()
        serving.cancel()  # second cancellation: cut the grace period short
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(serving, 60)
        [run] = await created.wait([run_id], FINAL, within=5)
    assert run.state_type == StateType.CANCELLED
