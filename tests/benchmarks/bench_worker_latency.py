"""Bot-session worker benchmark: trigger latency, schedule lag and a burst of slow sessions.

    .venv/bin/python -m tests.benchmarks.bench_worker_latency [--parts a,b,c]
        [--triggers 50] [--process-triggers 20] [--scheduled 100] [--burst 200]

Everything runs on loopback: a Prefect server on PostgreSQL (a fresh database, dropped
afterwards; Prefect on SQLite answers 503 under bursts), the task store on PostgreSQL,
the API (``python -m api api``), workers and two fake model servers, each a subprocess.
Prints, with the load average next to each part:

a. trigger → Running: the flow run's ``start_time`` (Prefect's timestamp of its Running
   state) minus the moment the trigger request was sent, p50/p99/max, for triggers sent
   one after another (each once the previous run is Running, 0.3 s apart), with our
   worker (``python -m api worker``) and with Prefect's process worker (``prefect worker
   start --type process``, 1 s polling); the ratio of the medians.
b. schedule lag, our worker only: tasks with a one-shot schedule at the start of a
   minute (at least 40 s ahead); per execution ``startedAt − scheduledFor`` (ms, from the
   API's execution list), p50/p99/max, and how many ran.
c. a fresh ``python -m api worker --limit 200`` subprocess: idle RSS, then ``--burst``
   triggered sessions that each wait 30 s on a slow model: peak RSS (VmHWM), how many
   succeeded, wall time from the first trigger until all finished, worker CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.workers.process import ProcessWorker
from sqlalchemy import func, select

from api.db.engine import Database, create_engine
from api.db.models import Execution
from deployments.gateway import FlowRunInfo
from deployments.prefect_gateway import PrefectGateway
from tests.benchmarks._stack import (
    PROJECT_ROOT,
    Process,
    child_env,
    load,
    memory_kb,
    new_account,
    prefect_server,
    python,
    summary,
    wait_http,
)
from tests.support.databases import postgres_database
from tests.support.prefect_server import free_port

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
SLOW_SECONDS = 30
TRIGGER_GAP = 0.3


@dataclass
class Stack:
    """The servers every part shares, and the environment of API and worker processes."""

    tmp: Path
    prefect_url: str
    store_url: str
    env: dict[str, str]
    db: Database
    gateway: PrefectGateway
    prefect: PrefectClient


class Api:
    """The API over HTTP as one account."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(path, json=body or {})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def get(self, path: str) -> dict[str, Any]:
        response = await self.http.get(path)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def bot(self, model: str) -> str:
        body = {"name": f"bench {model}", "backstory": "Be brief.", "model": model}
        return str((await self.post("bot/create", body))["id"])

    async def tasks(self, count: int, body: dict[str, Any], parallel: int = 8) -> list[str]:
        """Create ``count`` tasks from ``body``, ``parallel`` requests at a time, in order."""
        return await gather_limited(
            [lambda i=i: self._task(body, i) for i in range(count)], parallel
        )

    async def _task(self, body: dict[str, Any], index: int) -> str:
        return str((await self.post("task/create", {"name": f"bench {index}", **body}))["id"])


async def gather_limited(calls: Sequence[Callable[[], Awaitable[Any]]], parallel: int) -> list[Any]:
    """Await every call, at most ``parallel`` at once; results in call order."""
    gate = asyncio.Semaphore(parallel)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(call) for call in calls)))


def header(title: str) -> None:
    print(f"\n== {title}  [{load()}]", flush=True)


@contextlib.asynccontextmanager
async def api_process(stack: Stack, pool: str, pool_type: str) -> AsyncIterator[str]:
    """``python -m api api`` for ``pool`` (of ``pool_type``); yields its base URL."""
    port = free_port()
    env = dict(stack.env, TASKBOT_WORK_POOL=pool, TASKBOT_WORK_POOL_TYPE=pool_type)
    argv = python("-m", "api", "api", "--port", str(port), "--no-migrate")
    process = Process(f"api-{pool}", argv, env, stack.tmp / f"api-{pool}.log", PROJECT_ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_http, f"{url}/health", process)
        yield url
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def worker_process(
    stack: Stack, pool: str, name: str, argv: list[str], env: dict[str, str] | None = None
) -> AsyncIterator[Process]:
    """A worker subprocess; yields it once Prefect lists it online in ``pool``."""
    env = dict(env or stack.env, TASKBOT_WORK_POOL=pool)
    process = Process(name, argv, env, stack.tmp / f"{name}.log", PROJECT_ROOT)
    try:
        started = time.monotonic()
        while True:
            if not process.alive:
                raise RuntimeError(f"{name} exited:\n{process.tail()}")
            with contextlib.suppress(Exception):
                workers = await stack.prefect.read_workers_for_work_pool(pool)
                if any(w.name == name and w.status.value == "ONLINE" for w in workers):
                    break
            if time.monotonic() - started > 120:
                raise TimeoutError(f"{name} not online after 120 s:\n{process.tail()}")
            await asyncio.sleep(0.5)
        print(f"   {name} online after {time.monotonic() - started:.1f} s", flush=True)
        yield process
    finally:
        process.stop(timeout=60)


async def first_run(stack: Stack, task_id: str) -> FlowRunInfo | None:
    runs = await stack.gateway.read_runs(task_id, limit=5)
    return runs[-1] if runs else None


async def wait_run(
    stack: Stack, task_id: str, done: Callable[[FlowRunInfo], bool], timeout: float
) -> FlowRunInfo | None:
    """Poll the task's first flow run until ``done`` holds; None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await first_run(stack, task_id)
        if run is not None and done(run):
            return run
        await asyncio.sleep(0.2)
    return None


def started(run: FlowRunInfo) -> bool:
    return run.start_time is not None or run.state_type in FINAL


async def trigger_latency(stack: Stack, api: Api, task_ids: list[str]) -> dict[str, Any]:
    """Trigger each task in turn; seconds from request to the run's Running timestamp."""
    latencies: list[float] = []
    requests: list[float] = []
    lost: list[str] = []
    for task_id in task_ids:
        sent = datetime.now(UTC)
        t0 = time.perf_counter()
        await api.post(f"task/{task_id}/trigger")
        requests.append((time.perf_counter() - t0) * 1000)
        run = await wait_run(stack, task_id, started, timeout=120)
        if run is None or run.start_time is None:
            lost.append(f"{task_id}: {run.state_name if run else 'no run'}")
        else:
            latencies.append((run.start_time - sent).total_seconds())
        await asyncio.sleep(TRIGGER_GAP)
    finals = [await wait_run(stack, t, lambda r: r.state_type in FINAL, 120) for t in task_ids]
    states = Counter(run.state_name if run else "(not final)" for run in finals)
    return {"latencies": latencies, "requests": requests, "lost": lost, "states": states}


def print_latency(label: str, result: dict[str, Any]) -> None:
    print(f"   {label:7} trigger → Running  {summary(result['latencies'], 's', 2)}")
    print(f"   {label:7} trigger request    {summary(result['requests'])}")
    print(f"   {label:7} final states: {dict(result['states'])}; no start: {result['lost']}")


async def part_a(stack: Stack, token: str, count: int, process_count: int) -> None:
    header(f"a. trigger → Running, {count} triggers (ours), {process_count} (process worker)")
    results: dict[str, dict[str, Any]] = {}
    prefect_cli = str(Path(python()[0]).with_name("prefect"))
    workers = {
        "process": (
            [prefect_cli, "worker", "start", "--pool", "bench-process", "--type", "process"]
            + ["--name", "bench-process", "--install-policy", "never"],
            dict(stack.env, PREFECT_WORKER_QUERY_SECONDS="1"),
        ),
        "ours": (python("-m", "api", "worker", "--poll", "1", "--name", "bench-ours"), stack.env),
    }
    await create_process_pool(stack, "bench-process")
    for label, pool_type, n in (("process", "process", process_count), ("ours", "taskbot", count)):
        pool = f"bench-{label}"
        async with api_process(stack, pool, pool_type) as url:
            api = Api(url, token)
            bot = await api.bot("fast/bench")
            task_ids = await api.tasks(n, {"botId": bot, "sessionDuration": 60_000})
            argv, env = workers[label]
            async with worker_process(stack, pool, f"bench-{label}", argv, env):
                t0 = time.monotonic()
                print(f"   {label}: {load()}", flush=True)
                results[label] = await trigger_latency(stack, api, task_ids)
                print(f"   {label}: {time.monotonic() - t0:.0f} s; {load()}", flush=True)
            await api.http.aclose()
    for label, result in results.items():
        print_latency(label, result)
    ours, process = results["ours"]["latencies"], results["process"]["latencies"]
    if ours and process:
        ratio = statistics.median(process) / statistics.median(ours)
        print(f"   process worker / ours, p50: {ratio:.1f}x")


async def create_process_pool(stack: Stack, name: str) -> None:
    """A process pool whose runs start in the project root, created before the API's.

    The pool the gateway creates has Prefect's default template: no working directory, so
    the process worker runs each flow in a temporary directory, where the relative
    entrypoint ``flows/bot_session.py`` does not exist. An operator sets it, as here.
    """
    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["working_dir"]["default"] = str(PROJECT_ROOT)
    pool = WorkPoolCreate(name=name, type="process", base_job_template=template)
    await stack.prefect.create_work_pool(pool)


async def executions(stack: Stack, task_ids: Sequence[str]) -> tuple[int, int, int]:
    """(started, completed, succeeded) executions of these tasks, from the store."""
    async with stack.db.session() as session:
        row = (
            await session.execute(
                select(
                    func.count(Execution.started_at),
                    func.count(Execution.completed_at),
                    func.count().filter(Execution.outcome == "success"),
                ).where(Execution.task_id.in_(list(task_ids)))  # type: ignore[attr-defined]
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def part_b(stack: Stack, api: Api, count: int) -> None:
    header(f"b. schedule lag, {count} tasks due at the same minute (our worker)")
    bot = await api.bot("fast/bench")
    now = datetime.now(UTC)
    due = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if (due - now).total_seconds() < 40:
        due += timedelta(minutes=1)
    body = {"botId": bot, "schedule": due.strftime("%Y-%m-%dT%H:%M:%SZ"), "sessionDuration": 60_000}
    t0 = time.monotonic()
    task_ids = await api.tasks(count, body)
    created = datetime.now(UTC)
    print(
        f"   created {count} tasks in {time.monotonic() - t0:.1f} s; due {due:%H:%M:%S} UTC, "
        f"{(due - created).total_seconds():.0f} s after the last create",
        flush=True,
    )
    fetched = await api.get(f"task/{task_ids[0]}/fetch")
    print(f"   nextRunAt of the first task: {fetched['nextRunAt']} (due {due.timestamp() * 1000:.0f})")
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
    print(f"   due now; {load()}", flush=True)
    deadline = time.monotonic() + 240
    counts = (0, 0, 0)
    while time.monotonic() < deadline:
        counts = await executions(stack, task_ids)
        if counts[1] >= count:
            break
        await asyncio.sleep(1)
    print(f"   finished waiting {(datetime.now(UTC) - due).total_seconds():.0f} s after due")
    lags: list[float] = []
    per_task = Counter[int]()
    outcomes = Counter[str]()
    for task_id in task_ids:
        items = (await api.get(f"task/{task_id}/execution/list"))["items"]
        per_task[len(items)] += 1
        for item in items:
            outcomes[item["outcome"]] += 1
            if item["startedAt"] is not None and item["scheduledFor"] is not None:
                lags.append(item["startedAt"] - item["scheduledFor"])
    print(f"   startedAt − scheduledFor  {summary(lags, 'ms', 0)}")
    print(
        f"   ran {len(lags)}/{count}; executions per task {dict(per_task)}; outcomes "
        f"{dict(outcomes)}; store (started, completed, succeeded) = {counts}"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def part_c(stack: Stack, api: Api, count: int) -> None:
    header(f"c. worker RSS, {count} concurrent sessions waiting {SLOW_SECONDS} s on the model")
    pool = "bench-ours"
    bot = await api.bot("slow/bench")
    task_ids = await api.tasks(count, {"botId": bot, "sessionDuration": 180_000})
    argv = python("-m", "api", "worker", "--limit", "200", "--name", "bench-burst")
    async with worker_process(stack, pool, "bench-burst", argv) as worker:
        await asyncio.sleep(5)
        idle_kb, startup_hwm_kb = memory_kb(worker.pid, "VmRSS"), memory_kb(worker.pid, "VmHWM")
        Path(f"/proc/{worker.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        cpu0 = cpu_seconds(worker.pid)
        print(f"   before the burst: {load()}", flush=True)
        first = time.monotonic()
        first_ms = time.time() * 1000
        await gather_limited(
            [lambda t=t: api.post(f"task/{t}/trigger") for t in task_ids], parallel=10
        )
        triggered = time.monotonic() - first
        print(f"   {count} triggers answered in {triggered:.1f} s", flush=True)
        deadline = first + 420
        counts = (0, 0, 0)
        all_started: float | None = None
        while time.monotonic() < deadline:
            counts = await executions(stack, task_ids)
            if all_started is None and counts[0] >= count:
                all_started = time.monotonic() - first
            if counts[1] >= count:
                break
            await asyncio.sleep(1)
        wall = time.monotonic() - first
        peak_kb = memory_kb(worker.pid, "VmHWM")
        cpu = cpu_seconds(worker.pid) - cpu0
        print(f"   after the burst: {load()}", flush=True)
        async with stack.db.session() as session:
            starts = (
                await session.execute(
                    select(Execution.started_at).where(
                        Execution.task_id.in_(task_ids)  # type: ignore[attr-defined]
                    )
                )
            ).scalars()
            last_start = max((s for s in starts if s is not None), default=None)
    runs = [await first_run(stack, t) for t in task_ids]
    states = Counter(run.state_name if run else "(no run)" for run in runs)
    print(f"   worker idle RSS before the burst   {idle_kb / 1024:7.0f} MB")
    print(f"   worker peak RSS (VmHWM) in burst   {peak_kb / 1024:7.0f} MB")
    print(f"   worker peak RSS during start-up    {startup_hwm_kb / 1024:7.0f} MB")
    print(f"   succeeded {counts[2]}/{count}; (started, completed) = {counts[:2]}")
    print(f"   Prefect final states {dict(states)}")
    last = f"{(last_start - first_ms) / 1000:.1f} s" if last_start else "n/a"
    print(f"   wall: first trigger → all finished {wall:.1f} s; last session start at {last}")
    print(f"   worker CPU during the burst {cpu:.1f} s ({cpu / count * 1000:.0f} ms per session)")


@contextlib.contextmanager
def fake_models(tmp: Path) -> Iterator[dict[str, str]]:
    """A fast and a slow fake model server; yields the provider variables naming them."""
    env = child_env(tmp)
    servers: list[Process] = []
    variables: dict[str, str] = {}
    try:
        for name, delay in (("fast", 0), ("slow", SLOW_SECONDS)):
            port = free_port()
            argv = python("-m", "tests.support.fake_openai", "--port", str(port))
            argv += ["--delay", str(delay), "--text", "Done: nothing to report."]
            process = Process(f"fake-{name}", argv, env, tmp / f"fake-{name}.log", PROJECT_ROOT)
            servers.append(process)
            wait_http_post(f"http://127.0.0.1:{port}/v1/chat/completions", process)
            upper = name.upper()
            variables[f"TASKBOT_PROVIDER_{upper}_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
            variables[f"TASKBOT_PROVIDER_{upper}_API_KEY"] = "sk-bench"
            variables[f"TASKBOT_PROVIDER_{upper}_TIMEOUT"] = str(SLOW_SECONDS * 4)
            variables[f"TASKBOT_PROVIDER_{upper}_MAX_RETRIES"] = "0"
        yield variables
    finally:
        for process in servers:
            process.stop()


def wait_http_post(url: str, process: Process, timeout: float = 30) -> None:
    """Wait until the server accepts connections (any HTTP answer will do)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive:
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.2)
    raise TimeoutError(f"{process.name} not up:\n{process.tail()}")


async def run(args: argparse.Namespace, tmp: Path, prefect_url: str, store_url: str, models: dict[str, str]) -> None:
    env = child_env(
        tmp,
        PREFECT_API_URL=prefect_url,
        TASKBOT_PREFECT_API_URL=prefect_url,
        TASKBOT_DATABASE_URL=store_url,
        TASKBOT_DATA_DIR=str(tmp / "data"),
        TASKBOT_QUOTA_CONCURRENT_SESSIONS="1000",
        **models,
    )
    db = Database(create_engine(store_url))
    gateway = PrefectGateway(prefect_url, request_timeout=10, deadline=30)
    async with PrefectClient(prefect_url) as prefect:
        stack = Stack(tmp, prefect_url, store_url, env, db, gateway, prefect)
        token = await new_account(store_url, "bench")
        try:
            if "a" in args.parts:
                await part_a(stack, token, args.triggers, args.process_triggers)
            if "b" in args.parts or "c" in args.parts:
                async with api_process(stack, "bench-ours", "taskbot") as url:
                    api = Api(url, token)
                    if "b" in args.parts:
                        argv = python("-m", "api", "worker", "--name", "bench-scheduled")
                        async with worker_process(stack, "bench-ours", "bench-scheduled", argv):
                            await part_b(stack, api, args.scheduled)
                    if "c" in args.parts:
                        await part_c(stack, api, args.burst)
                    await api.http.aclose()
        finally:
            await gateway.aclose()
            await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parts", default="a,b,c", help="which of a, b, c to run")
    parser.add_argument("--triggers", type=int, default=50, help="part a, our worker")
    parser.add_argument("--process-triggers", type=int, default=20, help="part a, process worker")
    parser.add_argument("--scheduled", type=int, default=100, help="part b tasks")
    parser.add_argument("--burst", type=int, default=200, help="part c sessions")
    parser.add_argument("--keep-logs", action="store_true", help="print the log directory, keep it")
    args = parser.parse_args()
    args.parts = set(args.parts.split(","))
    started = time.monotonic()
    print(f"bench_worker_latency: Prefect on PostgreSQL, store on PostgreSQL; {load()}", flush=True)
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
        if args.keep_logs:
            print(f"logs in {tmp}")
        else:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        server = stack.enter_context(prefect_server(tmp, "postgres"))
        print(f"Prefect server up in {server.last_startup_seconds:.1f} s", flush=True)
        store_url = stack.enter_context(postgres_database())
        models = stack.enter_context(fake_models(tmp))
        asyncio.run(run(args, tmp, server.api_url, store_url, models))
    print(f"\ntotal {time.monotonic() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
