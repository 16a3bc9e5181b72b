"""Tasks on Prefect: what the Prefect gateway adds to API writes, and outage recovery.

    .venv/bin/python -m tests.benchmarks.bench_prefect [--ops 100] [--outage-tasks 1000]
        [--prefect-db postgres|sqlite] [--parts a,b]

A real Prefect server runs on loopback (on PostgreSQL by default: a fresh database,
dropped afterwards), and every API is a uvicorn subprocess over its own SQLite store.
Prints, with the load average next to each part:

a. latency p50/p99 of task create, update (a schedule change) and delete through the
   HTTP API with the real Prefect gateway in the path (``api.bootstrap:app_from_env``,
   reconciler included) vs the in-memory gateway (``memory_app``), requests interleaved
   one by one between the two, and the ratio of each pair. Then how many deployments
   are still in Prefect after every task was deleted (at once, and while the API's
   reconciler runs), and whether the store still holds their tombstones.
b. outage recovery: Prefect stopped, ``--outage-tasks`` tasks created through an API
   with the Prefect gateway and no background reconciler (every answer must be 200,
   every task left out of sync), then Prefect started again and ``Reconciler.run_pass(
   full=True)`` run until nothing is out of sync: seconds and tasks/s from Prefect being
   healthy until the store has nothing out of sync, and until the passes end; whether
   every task has its deployment (``list_task_deployments``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from api.bootstrap import build_orchestration
from api.db.engine import Database, create_engine
from api.db.migrate import upgrade
from api.db.models import DeploymentTombstone
from api.orchestration.repository import SyncRepository
from api.settings import Settings
from deployments.prefect_gateway import PrefectGateway
from tests.benchmarks._stack import (
    PROJECT_ROOT,
    Process,
    child_env,
    load,
    new_account,
    prefect_server,
    python,
    quantile,
    summary,
    wait_http,
)
from tests.support.prefect_server import PrefectTestServer, free_port

SCHEDULES = (
    {"schedule": "hourly"},
    {"schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin"},
    {"schedule": "daily"},
)


def header(title: str) -> None:
    print(f"\n== {title}  [{load()}]", flush=True)


@dataclass
class Api:
    """An API subprocess: an HTTP client for ``/api/v1`` with a token, and its store."""

    http: httpx.AsyncClient
    store: str


@contextlib.asynccontextmanager
async def api_server(tmp: Path, name: str, factory: str, env: dict[str, str]) -> AsyncIterator[Api]:
    """A uvicorn subprocess serving ``factory`` over a fresh SQLite store, as one account."""
    url = f"sqlite+aiosqlite:///{tmp / f'{name}.db'}"
    await asyncio.to_thread(upgrade, url)
    token = await new_account(url, "bench")
    port = free_port()
    argv = python("-m", "uvicorn", "--factory", factory, "--port", str(port))
    argv += ["--log-level", "warning"]
    process = Process(
        f"api-{name}", argv, dict(env, TASKBOT_DATABASE_URL=url), tmp / f"{name}.log", PROJECT_ROOT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_http, f"{base}/health", process)
        async with httpx.AsyncClient(
            base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120
        ) as client:
            yield Api(client, url)
    finally:
        process.stop()


async def timed_post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> tuple[float, Any]:
    """POST, raise on a non-200 answer; (milliseconds, JSON body)."""
    t0 = time.perf_counter()
    response = await client.post(path, json=body)
    elapsed = (time.perf_counter() - t0) * 1000
    response.raise_for_status()
    return elapsed, response.json()


async def part_a(tmp: Path, prefect: PrefectTestServer, ops: int) -> None:
    header(f"a. task create / update / delete latency, {ops} each, Prefect vs memory gateway")
    env = child_env(
        tmp,
        TASKBOT_PREFECT_API_URL=prefect.api_url,
        TASKBOT_WORK_POOL="bench-api",
        TASKBOT_WORK_POOL_TYPE="taskbot",
    )
    async with (
        api_server(tmp, "memory", "tests.benchmarks.memory_app:app_factory", env) as memory,
        api_server(tmp, "prefect", "api.bootstrap:app_from_env", env) as real,
    ):
        clients = {"memory": memory.http, "prefect": real.http}
        ids: dict[str, list[str]] = {"memory": [], "prefect": []}
        times: dict[tuple[str, str], list[float]] = {}

        async def each(op: str, call: Callable[[str, int], Awaitable[float]], n: int) -> None:
            for i in range(n):
                # Alternate which gateway goes first, so neither always follows the other.
                for label in ("memory", "prefect") if i % 2 == 0 else ("prefect", "memory"):
                    times.setdefault((op, label), []).append(await call(label, i))

        async def create(label: str, i: int) -> float:
            body = {"name": f"bench {i}", "description": "benchmark task", "schedule": "hourly"}
            elapsed, answer = await timed_post(clients[label], "task/create", body)
            ids[label].append(answer["id"])
            return elapsed

        async def update(label: str, i: int) -> float:
            body = {"schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin"}
            return (await timed_post(clients[label], f"task/{ids[label][i]}/update", body))[0]

        async def delete(label: str, i: int) -> float:
            return (await timed_post(clients[label], f"task/{ids[label][i]}/delete", {}))[0]

        warm = 5
        for op, call in (("create", create), ("update", update), ("delete", delete)):
            await each(f"warm-{op}", call, warm)
        for label in ids:
            del ids[label][:warm]
        t0 = time.monotonic()
        for op, call in (("create", create), ("update", update), ("delete", delete)):
            await each(op, call, ops)
        print(f"   {6 * ops} timed requests in {time.monotonic() - t0:.1f} s; {load()}")
        for op in ("create", "update", "delete"):
            mem, pre = times[(op, "memory")], times[(op, "prefect")]
            print(f"   {op:6} memory   {summary(mem)}")
            print(f"   {op:6} prefect  {summary(pre)}")
            ratio50 = statistics.median(pre) / statistics.median(mem)
            ratio99 = quantile(pre, 0.99) / quantile(mem, 0.99)
            print(f"   {op:6} prefect / memory: p50 {ratio50:.1f}x  p99 {ratio99:.1f}x")
        await leftovers(prefect, real.store)


async def leftovers(prefect: PrefectTestServer, store: str) -> None:
    """Deployments still in Prefect after every task was deleted: right away, and while
    the API's reconciler runs; whatever is left is removed so part b starts clean."""
    gateway = PrefectGateway(prefect.api_url)
    db = Database(create_engine(store))
    try:
        started = time.monotonic()
        while True:
            left = set(await gateway.list_task_deployments())
            async with db.session() as session:
                tombstoned = set(
                    (await session.execute(select(col(DeploymentTombstone.task_id)))).scalars()
                )
            waited = time.monotonic() - started
            print(
                f"   after {waited:4.0f} s: {len(left)} task deployments left in Prefect "
                f"({len(left & tombstoned)} with a tombstone in the store, "
                f"{len(left - tombstoned)} without one)",
                flush=True,
            )
            if not left or waited > 30:
                break
            await asyncio.sleep(10)
        for task_id in sorted(left):
            await gateway.delete_deployment(task_id)
    finally:
        await gateway.aclose()
        await db.dispose()


async def watch_unsynced(url: str, since: float, done: list[float]) -> None:
    """Append the seconds since ``since`` at which the store first has nothing out of sync."""
    db = Database(create_engine(url))
    try:
        while True:
            async with db.session() as session:
                if await SyncRepository(session).unsynced_count() == 0:
                    done.append(time.monotonic() - since)
                    return
            await asyncio.sleep(0.5)
    finally:
        await db.dispose()


async def unsynced(url: str) -> int:
    db = Database(create_engine(url))
    try:
        async with db.session() as session:
            return await SyncRepository(session).unsynced_count()
    finally:
        await db.dispose()


async def part_b(tmp: Path, prefect: PrefectTestServer, count: int, parallel: int) -> None:
    header(f"b. outage recovery, {count} tasks created while Prefect is down")
    pool = "bench-outage"
    env = child_env(
        tmp,
        TASKBOT_PREFECT_API_URL=prefect.api_url,
        TASKBOT_WORK_POOL=pool,
        TASKBOT_WORK_POOL_TYPE="taskbot",
    )
    prefect.stop()
    print(f"   Prefect stopped (healthy: {prefect.healthy()})", flush=True)
    async with api_server(tmp, "outage", "tests.benchmarks._apps:prefect_app_factory", env) as api:
        gate = asyncio.Semaphore(parallel)
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        task_ids: list[str] = []

        async def create(i: int) -> None:
            body = {"name": f"outage {i}", **SCHEDULES[i % len(SCHEDULES)]}
            async with gate:
                t0 = time.perf_counter()
                response = await api.http.post("task/create", json=body)
                latencies.append((time.perf_counter() - t0) * 1000)
            statuses[response.status_code] += 1
            if response.status_code == 200:
                task_ids.append(response.json()["id"])

        t0 = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(count)))
        elapsed = time.monotonic() - t0
    print(
        f"   created {len(task_ids)} in {elapsed:.1f} s ({parallel} in flight); "
        f"answers {dict(statuses)}; {load()}"
    )
    print(f"   create latency during the outage  {summary(latencies)}")
    print(f"   out of sync in the store: {await unsynced(api.store)}", flush=True)

    restart = time.monotonic()
    prefect.start()
    healthy = time.monotonic()
    print(f"   Prefect healthy again after {healthy - restart:.1f} s; {load()}", flush=True)
    settings = Settings(database_url=api.store, prefect_api_url=prefect.api_url, work_pool=pool)
    parts = build_orchestration(settings, gateway=PrefectGateway(prefect.api_url, work_pool=pool))
    try:
        passes = 0
        applied: list[float] = []
        watcher = asyncio.create_task(watch_unsynced(api.store, healthy, applied))
        while True:
            passes += 1
            t0 = time.monotonic()
            report = await parts.reconciler.run_pass(full=True)
            print(
                f"   pass {passes}: {time.monotonic() - t0:.1f} s, applied {report.applied}, "
                f"recreated {report.recreated}, orphans removed {report.orphans_removed}, "
                f"remaining {report.remaining}, errors {report.errors}",
                flush=True,
            )
            if report.remaining == 0 or passes >= 5:
                break
        converged = time.monotonic() - healthy
        watcher.cancel()
        deployed = await parts.gateway.list_task_deployments()
    finally:
        await parts.stop()
    missing = set(task_ids) - set(deployed)
    if applied:
        print(
            f"   nothing out of sync {applied[0]:.1f} s after Prefect was healthy "
            f"({count / applied[0]:.1f} tasks/s; store polled every 0.5 s)"
        )
    print(
        f"   passes ended {converged:.1f} s after Prefect was healthy ({count / converged:.1f} "
        f"tasks/s; {converged + healthy - restart:.1f} s from restart)"
    )
    print(
        f"   deployments in Prefect: {len(deployed)}; tasks without one: {len(missing)}; {load()}"
    )


async def run(args: argparse.Namespace, tmp: Path, prefect: PrefectTestServer) -> None:
    if "a" in args.parts:
        await part_a(tmp, prefect, args.ops)
    if "b" in args.parts:
        await part_b(tmp, prefect, args.outage_tasks, args.parallel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parts", default="a,b", help="which of a, b to run")
    parser.add_argument("--ops", type=int, default=100, help="part a: requests of each kind")
    parser.add_argument("--outage-tasks", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=25, help="part b: creates in flight")
    parser.add_argument("--prefect-db", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    args.parts = set(args.parts.split(","))
    started = time.monotonic()
    print(f"bench_prefect: Prefect on {args.prefect_db}, stores on SQLite; {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, prefect_server(Path(tmp), args.prefect_db) as server:
        print(f"Prefect server up in {server.last_startup_seconds:.1f} s", flush=True)
        asyncio.run(run(args, Path(tmp), server))
    print(f"\ntotal {time.monotonic() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
