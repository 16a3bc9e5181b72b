"""Benchmark the taskbot worker against a real Prefect server; prints figures, asserts nothing.

    .venv/bin/python -m tests.flows.bench_worker [--api-url URL] [--runs 40] [--latency-runs 20]

Without --api-url a private Prefect server (SQLite) is started, which takes ~40 s here.
Figures:
- engine: CPU seconds per run of Prefect's engine alone, for runs already claimed:
  `before` = `run_flow_async` as Prefect ships it (new clients per run, default result
  storage lookup, suspension observer thread); `after` = `flows.worker_engine`.
- worker: the same N no-op runs through a whole worker, from worker start until all
  are final (wall and CPU): `before` = a minimal BaseWorker whose `run` awaits
  `run_flow_async`; `after` = TaskbotWorker.
- latency: trigger -> Running for ad-hoc runs created one at a time (p50/p99); how late
  runs scheduled 3 s ahead start; a burst of 20 runs that sleep 2 s, created at once,
  from the moment all exist until all are Completed (creating them is timed apart).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import anyio.abc
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import SyncClientContext
from prefect.flow_engine import run_flow_async
from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, temporary_settings
from prefect.states import Pending, Scheduled
from prefect.workers.base import BaseJobConfiguration, BaseWorker, BaseWorkerResult

from flows.worker import TaskbotWorker
from flows.worker_client import create_worker_client, shared_client
from flows.worker_engine import SessionControl, run_session
from flows.worker_flows import import_flow, prepare_flow
from flows.worker_serve import ensure_work_pool, worker_settings
from tests.support.prefect_server import PrefectTestServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOOP = "tests/flows/sample_flows.py:noop"
SLEEPY = "tests/flows/sample_flows.py:sleepy"
FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}


class BaselineResult(BaseWorkerResult):
    """Result of the baseline worker."""


class BaselineWorker(BaseWorker[BaseJobConfiguration, Any, BaselineResult]):
    """The minimal in-process worker: BaseWorker as shipped, `run` awaits `run_flow_async`."""

    type = "taskbot-bench-baseline"
    job_configuration = BaseJobConfiguration

    async def run(
        self,
        flow_run: FlowRun,
        configuration: BaseJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> BaselineResult:
        flow = import_flow(NOOP, PROJECT_ROOT)
        if task_status is not None:
            task_status.started(0)
        await run_flow_async(flow, flow_run=flow_run, return_type="state")
        return BaselineResult(identifier=str(flow_run.id), status_code=0)


async def deploy(client: PrefectClient, pool: str, entrypoint: str) -> UUID:
    name = entrypoint.rsplit(":", 1)[1]
    flow_id = await client.create_flow_from_name(f"worker-test-{name}")
    return await client.create_deployment(
        flow_id=flow_id,
        name=f"{pool}-{name}",
        work_pool_name=pool,
        entrypoint=entrypoint,
        enforce_parameter_schema=False,
    )


async def new_pool(client: PrefectClient, label: str) -> str:
    pool = f"bench-{label}-{uuid4().hex[:6]}"
    await ensure_work_pool(client, pool)
    return pool


async def create_runs(
    client: PrefectClient, deployment: UUID, count: int, parameters: dict[str, Any]
) -> list[UUID]:
    runs = await asyncio.gather(
        *(
            client.create_flow_run_from_deployment(deployment, parameters=parameters)
            for _ in range(count)
        )
    )
    return [run.id for run in runs]


async def wait_final(client: PrefectClient, run_ids: list[UUID]) -> list[FlowRun]:
    while True:
        runs = [await client.read_flow_run(run_id) for run_id in run_ids]
        if all(run.state_type in FINAL for run in runs):
            return runs
        await asyncio.sleep(0.25)


async def bench_engine(client: PrefectClient, count: int) -> dict[str, float]:
    """CPU per run of the engine alone, on runs that are already claimed (Pending)."""
    pool = await new_pool(client, "engine")
    deployment = await deploy(client, pool, NOOP)
    flow = import_flow(NOOP, PROJECT_ROOT)
    results: dict[str, float] = {}

    async def naive(run: FlowRun) -> None:
        await run_flow_async(flow, flow_run=run, return_type="state")

    prepared = prepare_flow(flow, Path(tempfile.gettempdir()))

    async def ours(run: FlowRun) -> None:
        await run_session(prepared, run, SessionControl())

    for label, execute in (("before", naive), ("after", ours)):
        run_ids = await create_runs(client, deployment, count, {})
        runs = []
        for run_id in run_ids:
            await client.set_flow_run_state(run_id, Pending())
            runs.append(await client.read_flow_run(run_id))
        cpu, wall = time.process_time(), time.monotonic()
        if label == "after":
            async with shared_client():
                with SyncClientContext():
                    await run_all(execute, runs)
        else:
            await run_all(execute, runs)
        results[f"engine_{label}_cpu_per_run"] = (time.process_time() - cpu) / count
        results[f"engine_{label}_wall"] = time.monotonic() - wall
        states = {run.state_type for run in await wait_final(client, run_ids)}
        assert states == {StateType.COMPLETED}, states
    return results


async def run_all(execute: Callable[[FlowRun], Awaitable[None]], runs: list[FlowRun]) -> None:
    limit = asyncio.Semaphore(20)

    async def one(run: FlowRun) -> None:
        async with limit:
            await execute(run)

    await asyncio.gather(*(one(run) for run in runs))


async def bench_workers(client: PrefectClient, count: int) -> dict[str, float]:
    """Wall and CPU from worker start until `count` due no-op runs are final."""
    results: dict[str, float] = {}
    for label in ("before", "after"):
        pool = await new_pool(client, label)
        deployment = await deploy(client, pool, NOOP)
        run_ids = await create_runs(client, deployment, count, {})
        if label == "before":
            worker: BaseWorker[Any, Any, Any] = BaselineWorker(pool, prefetch_seconds=5, limit=200)
        else:
            worker = TaskbotWorker(
                pool, prefetch_seconds=5, poll_seconds=1.0, project_root=PROJECT_ROOT
            )
        cpu, wall = time.process_time(), time.monotonic()
        task = asyncio.create_task(worker.start(printer=lambda *args: None))
        runs = await wait_final(client, run_ids)
        results[f"worker_{label}_wall"] = time.monotonic() - wall
        results[f"worker_{label}_cpu_per_run"] = (time.process_time() - cpu) / count
        results[f"worker_{label}_completed"] = sum(
            run.state_type == StateType.COMPLETED for run in runs
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return results


async def bench_latency(client: PrefectClient, count: int) -> dict[str, float]:
    """Trigger -> Running for single ad-hoc runs, and a burst of 20 runs sleeping 2 s."""
    pool = await new_pool(client, "latency")
    noop = await deploy(client, pool, NOOP)
    sleepy = await deploy(client, pool, SLEEPY)
    worker = TaskbotWorker(pool, prefetch_seconds=5, poll_seconds=1.0, project_root=PROJECT_ROOT)
    task = asyncio.create_task(worker.start(printer=lambda *args: None))
    await asyncio.sleep(3)
    latencies = []
    for _ in range(count):
        triggered = datetime.now(UTC)
        run = await client.create_flow_run_from_deployment(noop, parameters={})
        [done] = await wait_final(client, [run.id])
        assert done.start_time is not None
        latencies.append((done.start_time - triggered).total_seconds())
        await asyncio.sleep(0.5)
    lateness = []
    for _ in range(10):
        due = datetime.now(UTC) + timedelta(seconds=3)
        run = await client.create_flow_run_from_deployment(
            noop, parameters={}, state=Scheduled(scheduled_time=due)
        )
        [done] = await wait_final(client, [run.id])
        assert done.start_time is not None
        lateness.append((done.start_time - due).total_seconds())
    started = time.monotonic()
    burst = await create_runs(client, sleepy, 20, {"seconds": 2})
    created = time.monotonic()
    runs = await wait_final(client, burst)
    burst_seconds = time.monotonic() - created
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    latencies.sort()
    return {
        "latency_p50": statistics.median(latencies),
        "latency_p99": latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
        "latency_max": latencies[-1],
        "scheduled_lateness_p50": statistics.median(lateness),
        "scheduled_lateness_max": max(lateness),
        "burst_create_20_seconds": created - started,
        "burst_20x2s_seconds_after_created": burst_seconds,
        "burst_completed": sum(run.state_type == StateType.COMPLETED for run in runs),
    }


async def main(api_url: str, runs: int, latency_runs: int) -> None:
    # The baseline polls every PREFECT_WORKER_QUERY_SECONDS, like `prefect worker start`.
    with worker_settings(api_url), temporary_settings({PREFECT_WORKER_QUERY_SECONDS: 1.0}):
        async with create_worker_client(api_url) as client:
            figures: dict[str, float] = {}
            figures |= await bench_engine(client, runs)
            figures |= await bench_workers(client, runs)
            figures |= await bench_latency(client, latency_runs)
    for key, value in figures.items():
        print(f"{key:32} {value:10.3f}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--api-url")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--latency-runs", type=int, default=20)
    args = parser.parse_args()
    if args.api_url:
        asyncio.run(main(args.api_url, args.runs, args.latency_runs))
        return
    with tempfile.TemporaryDirectory() as home, PrefectTestServer(Path(home)) as server:
        print(f"Prefect server started in {server.last_startup_seconds:.1f} s")
        asyncio.run(main(server.api_url, args.runs, args.latency_runs))


if __name__ == "__main__":
    cli()
