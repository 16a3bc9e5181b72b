"""Bot-session worker benchmark: trigger latency, schedule lag and a burst of slow sessions.

    .venv/bin/python -m tests.benchmarks.bench_worker_latency [--parts a,b,c]
        [--triggers 50] [--process-triggers 15] [--scheduled 100] [--burst 200]

Everything runs on loopback: a Prefect server on PostgreSQL (a fresh database, dropped
afterwards; Prefect on SQLite answers 503 under bursts), the task store on PostgreSQL,
the API (``python -m api api``, reconciler included), workers and two fake model
servers, each a subprocess. Prints, with the load average next to each part:

a. trigger → Running: the flow run's ``start_time`` (Prefect's timestamp of its Running
   state) minus the moment the trigger request was sent, p50/p99/max, for triggers sent
   one after another (each once the previous run is Running, 0.3 s apart), with Prefect's
   process worker (``prefect worker start --type process``, 1 s polling) and then with
   our worker (``python -m api worker``); the ratio of the medians.
b. schedule lag, our worker only: tasks with a one-shot schedule at the start of a
   minute (at least 40 s ahead); per execution ``startedAt − scheduledFor`` (ms, from the
   API's execution list), p50/p99/max, and how many ran; also the flow runs' Running
   timestamp minus their scheduled time (Prefect's view of the same lag).
c. a fresh ``python -m api worker --limit 200`` subprocess: idle RSS, then ``--burst``
   tasks triggered while the pool's queue is paused and released at once, each session
   waiting 30 s on a slow model: peak RSS (VmHWM), the most sessions seen running at
   once, how many succeeded, wall time from release until all finished, worker CPU.

A trigger answered 503 (Prefect too slow for the API's deadline) is retried after 1 s, as
the API asks; such answers are counted and printed.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.workers.process import ProcessWorker
from sqlalchemy import func, select
from sqlmodel import col

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
OURS_POOL = "bench-ours"
PROCESS_POOL = "bench-process"


@dataclass
class Stack:
    """The servers every part shares, and the environment of API and worker processes."""

    tmp: Path
    env: dict[str, str]
    db: Database
    gateway: PrefectGateway
    prefect: PrefectClient


@dataclass
class Api:
    """The API over HTTP as one account; counts triggers answered 503."""

    http: httpx.AsyncClient
    unavailable: int = 0
    bots: dict[str, str] = field(default_factory=dict)

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

    async def trigger(self, task_id: str) -> None:
        """Trigger a run; on 503 wait 1 s and retry (triggers in one minute merge)."""
        for _ in range(30):
            response = await self.http.post(f"task/{task_id}/trigger", json={})
            if response.status_code != 503:
                response.raise_for_status()
                return
            self.unavailable += 1
            await asyncio.sleep(1)
        response.raise_for_status()

    async def bot(self, model: str) -> str:
        """One bot per model, created on first use."""
        if model not in self.bots:
            body = {"name": f"bench {model}", "backstory": "Be brief.", "model": model}
            self.bots[model] = str((await self.post("bot/create", body))["id"])
        return self.bots[model]

    async def tasks(self, count: int, body: dict[str, Any], parallel: int = 8) -> list[str]:
        """Create ``count`` tasks from ``body``, ``parallel`` requests at a time, in order."""
        return await gather_limited([partial(self._task, body, i) for i in range(count)], parallel)

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
async def api_process(stack: Stack, token: str, pool: str, pool_type: str) -> AsyncIterator[Api]:
    """``python -m api api`` for ``pool`` (of ``pool_type``), as the account of ``token``."""
    port = free_port()
    env = dict(stack.env, TASKBOT_WORK_POOL=pool, TASKBOT_WORK_POOL_TYPE=pool_type)
    argv = python("-m", "api", "api", "--port", str(port), "--no-migrate")
    process = Process(f"api-{pool}", argv, env, stack.tmp / f"api-{pool}.log", PROJECT_ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_http, f"{url}/health", process)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"{url}/api/v1", headers=headers, timeout=60) as c:
            yield Api(c)
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
    """The task's earliest flow run (each task here has one)."""
    runs = await stack.gateway.read_runs(task_id, limit=5)
    return runs[-1] if runs else None


async def wait_run(
    stack: Stack, task_id: str, done: Callable[[FlowRunInfo], bool], within: float
) -> FlowRunInfo | None:
    """Poll the task's first flow run until ``done`` holds; None after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        run = await first_run(stack, task_id)
        if run is not None and done(run):
            return run
        await asyncio.sleep(0.2)
    return None


def started(run: FlowRunInfo) -> bool:
    return run.start_time is not None or run.state_type in FINAL


async def trigger_latency(stack: Stack, api: Api, label: str, count: int) -> list[float]:
    """Trigger ``count`` fresh tasks in turn; print and return request → Running seconds."""
    bot = await api.bot("fast/bench")
    task_ids = await api.tasks(count, {"botId": bot, "sessionDuration": 60_000})
    print(f"   {label}: {count} triggers; {load()}", flush=True)
    t0 = time.monotonic()
    latencies: list[float] = []
    requests: list[float] = []
    lost: list[str] = []
    for task_id in task_ids:
        sent = datetime.now(UTC)
        t1 = time.perf_counter()
        await api.trigger(task_id)
        requests.append((time.perf_counter() - t1) * 1000)
        run = await wait_run(stack, task_id, started, within=120)
        if run is None or run.start_time is None:
            lost.append(f"{task_id}: {run.state_name if run else 'no run'}")
        else:
            latencies.append((run.start_time - sent).total_seconds())
        await asyncio.sleep(TRIGGER_GAP)
    elapsed = time.monotonic() - t0
    finals = [await wait_run(stack, t, lambda r: r.state_type in FINAL, 120) for t in task_ids]
    states = Counter(run.state_name if run else "(not final)" for run in finals)
    print(f"   {label:7} trigger → Running  {summary(latencies, 's', 2)}")
    print(f"   {label:7} trigger request    {summary(requests)}")
    print(
        f"   {label:7} final states {dict(states)}; no start {lost}; 503 answers "
        f"{api.unavailable}; {elapsed:.0f} s; {load()}",
        flush=True,
    )
    return latencies


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


async def part_a_process(stack: Stack, token: str, count: int) -> list[float]:
    """Part a with Prefect's process worker (its own API, pool of type ``process``)."""
    await create_process_pool(stack, PROCESS_POOL)
    prefect_cli = str(Path(python()[0]).with_name("prefect"))
    argv = [prefect_cli, "worker", "start", "--pool", PROCESS_POOL, "--type", "process"]
    argv += ["--name", "bench-process", "--install-policy", "never"]
    env = dict(stack.env, PREFECT_WORKER_QUERY_SECONDS="1")
    async with (
        api_process(stack, token, PROCESS_POOL, "process") as api,
        worker_process(stack, PROCESS_POOL, "bench-process", argv, env),
    ):
        return await trigger_latency(stack, api, "process", count)


@dataclass(frozen=True)
class Tally:
    """Executions of a set of tasks, from the store."""

    total: int
    started: int
    completed: int
    succeeded: int
    tasks_done: int

    @property
    def running(self) -> int:
        """Sessions started and not finished."""
        return self.started - self.completed


async def executions(stack: Stack, task_ids: Sequence[str]) -> Tally:
    """Count the executions of these tasks."""
    async with stack.db.session() as session:
        row = (
            await session.execute(
                select(
                    func.count(),
                    func.count(col(Execution.started_at)),
                    func.count(col(Execution.completed_at)),
                    func.count().filter(col(Execution.outcome) == "success"),
                    func.count(func.distinct(col(Execution.task_id))).filter(
                        col(Execution.completed_at).is_not(None)
                    ),
                ).where(col(Execution.task_id).in_(list(task_ids)))
            )
        ).one()
    return Tally(*(int(value) for value in row))


async def part_b(
    stack: Stack, api: Api, count: int, meanwhile: Callable[[float], Awaitable[int]] | None
) -> None:
    """Schedule lag; ``meanwhile(deadline)`` may use the wait until 15 s before due."""
    header(f"b. schedule lag, {count} tasks due at the same minute (our worker)")
    bot = await api.bot("fast/bench")
    now = datetime.now(UTC)
    due = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if (due - now).total_seconds() < 40:
        due += timedelta(minutes=1)
    body = {"botId": bot, "schedule": due.strftime("%Y-%m-%dT%H:%M:%SZ"), "sessionDuration": 60_000}
    t0 = time.monotonic()
    task_ids = await api.tasks(count, body)
    left = (due - datetime.now(UTC)).total_seconds()
    print(
        f"   created {count} tasks in {time.monotonic() - t0:.1f} s; due {due:%H:%M:%S} UTC, "
        f"{left:.0f} s after the last create",
        flush=True,
    )
    fetched = await api.get(f"task/{task_ids[0]}/fetch")
    next_run = (fetched["nextRunAt"] - due.timestamp() * 1000) / 1000
    print(f"   nextRunAt of the first task − due: {next_run:.0f} s")
    if meanwhile is not None:
        made = await meanwhile(time.monotonic() + left - 15)
        left = (due - datetime.now(UTC)).total_seconds()
        print(f"   {made} of part c's tasks created meanwhile; {left:.0f} s left", flush=True)
    await asyncio.sleep(max(0.0, left))
    print(f"   due now; {load()}", flush=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        tally = await executions(stack, task_ids)
        if tally.tasks_done >= count and tally.running == 0:
            break
        await asyncio.sleep(1)
    print(f"   all finished {(datetime.now(UTC) - due).total_seconds():.0f} s after due; {load()}")
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
    running: list[float] = []
    for task_id in task_ids:
        run = await first_run(stack, task_id)
        if run is not None and run.start_time and run.expected_start_time:
            running.append((run.start_time - run.expected_start_time).total_seconds() * 1000)
    print(f"   startedAt − scheduledFor          {summary(lags, 'ms', 0)}")
    print(f"   flow run Running − scheduled time {summary(running, 'ms', 0)}")
    print(
        f"   ran {len(lags)}/{count}; executions per task {dict(per_task)}; outcomes "
        f"{dict(outcomes)}; store {tally}"
    )


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def set_paused(stack: Stack, pool: str, paused: bool) -> None:
    """Pause or resume every work queue of ``pool`` (a paused queue hands out no runs)."""
    for queue in await stack.prefect.read_work_queues(work_pool_name=pool):
        await stack.prefect.update_work_queue(queue.id, is_paused=paused)


async def part_c(stack: Stack, api: Api, task_ids: list[str]) -> None:
    """Idle and peak RSS of a fresh worker running ``task_ids`` (slow sessions) at once.

    The triggers go in while the pool's queues are paused, then the queues are resumed:
    otherwise triggering 200 tasks through an API whose Prefect is busy starting the
    first ones takes longer than a session, and the sessions never all overlap.
    """
    count = len(task_ids)
    header(f"c. worker RSS, {count} concurrent sessions waiting {SLOW_SECONDS} s on the model")
    argv = python("-m", "api", "worker", "--limit", "200", "--name", "bench-burst")
    async with worker_process(stack, OURS_POOL, "bench-burst", argv) as worker:
        await asyncio.sleep(5)
        idle_kb, startup_hwm_kb = memory_kb(worker.pid, "VmRSS"), memory_kb(worker.pid, "VmHWM")
        reset_peak(worker.pid)
        cpu0 = cpu_seconds(worker.pid)
        await set_paused(stack, OURS_POOL, True)
        api.unavailable = 0
        t0 = time.monotonic()
        await gather_limited([partial(api.trigger, t) for t in task_ids], parallel=10)
        print(
            f"   {count} triggers (queue paused) answered in {time.monotonic() - t0:.1f} s, "
            f"{api.unavailable} answers 503; {load()}",
            flush=True,
        )
        first = time.monotonic()
        first_ms = time.time() * 1000
        await set_paused(stack, OURS_POOL, False)
        deadline = first + 300
        most = 0
        while time.monotonic() < deadline:
            tally = await executions(stack, task_ids)
            most = max(most, tally.running)
            if tally.tasks_done >= count and tally.running == 0:
                break
            await asyncio.sleep(1)
        wall = time.monotonic() - first
        peak_kb = memory_kb(worker.pid, "VmHWM")
        cpu = cpu_seconds(worker.pid) - cpu0
        print(f"   after the burst: {load()}", flush=True)
        async with stack.db.session() as session:
            starts = (
                await session.execute(
                    select(col(Execution.started_at)).where(col(Execution.task_id).in_(task_ids))
                )
            ).scalars()
            last_start = max((s for s in starts if s is not None), default=None)
    runs = [await first_run(stack, t) for t in task_ids]
    states = Counter(run.state_name if run else "(no run)" for run in runs)
    print(f"   worker idle RSS before the burst   {idle_kb / 1024:7.0f} MB")
    print(f"   worker peak RSS (VmHWM) in burst   {peak_kb / 1024:7.0f} MB")
    print(f"   worker peak RSS during start-up    {startup_hwm_kb / 1024:7.0f} MB")
    print(f"   most sessions running at once (1 s samples): {most}")
    print(f"   {tally.succeeded} executions succeeded ({count} tasks); store {tally}")
    print(f"   Prefect states of the first run of each task {dict(states)}")
    last = f"{(last_start - first_ms) / 1000:.1f} s" if last_start else "n/a"
    print(f"   wall: queue resumed → all finished {wall:.1f} s; last session start at {last}")
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
            wait_listening(f"http://127.0.0.1:{port}/v1/chat/completions", process)
            upper = name.upper()
            variables[f"TASKBOT_PROVIDER_{upper}_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
            variables[f"TASKBOT_PROVIDER_{upper}_API_KEY"] = "sk-bench"
            variables[f"TASKBOT_PROVIDER_{upper}_TIMEOUT"] = str(SLOW_SECONDS * 4)
            variables[f"TASKBOT_PROVIDER_{upper}_MAX_RETRIES"] = "0"
        yield variables
    finally:
        for process in servers:
            process.stop()


def wait_listening(url: str, process: Process, timeout: float = 30) -> None:
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


async def run(args: argparse.Namespace, tmp: Path, urls: dict[str, str]) -> None:
    """The parts asked for, in order, as one store account."""
    prefect_url, store_url = urls["prefect"], urls["store"]
    env = child_env(
        tmp,
        PREFECT_API_URL=prefect_url,
        TASKBOT_PREFECT_API_URL=prefect_url,
        TASKBOT_DATABASE_URL=store_url,
        TASKBOT_DATA_DIR=str(tmp / "data"),
        TASKBOT_QUOTA_CONCURRENT_SESSIONS="1000",
        **{key: value for key, value in urls.items() if key.startswith("TASKBOT_")},
    )
    db = Database(create_engine(store_url))
    gateway = PrefectGateway(prefect_url, request_timeout=10, deadline=30)
    async with PrefectClient(prefect_url) as prefect:
        stack = Stack(tmp, env, db, gateway, prefect)
        token = await new_account(store_url, "bench")
        try:
            await run_parts(stack, token, args)
        finally:
            await gateway.aclose()
            await db.dispose()


async def run_parts(stack: Stack, token: str, args: argparse.Namespace) -> None:
    """a (process worker, then ours), b and c; ours and b share one API and worker."""
    process: list[float] = []
    if "a" in args.parts:
        header(f"a. trigger → Running, {args.process_triggers} / {args.triggers} triggers")
        process = await part_a_process(stack, token, args.process_triggers)
    async with api_process(stack, token, OURS_POOL, "taskbot") as api:
        burst: list[str] = []

        async def prepare_burst(until: float | None) -> int:
            """Create part c's tasks, 20 at a time, until done or past ``until``."""
            made = len(burst)
            body = {"botId": await api.bot("slow/bench"), "sessionDuration": 180_000}
            while len(burst) < args.burst and (until is None or time.monotonic() < until):
                burst.extend(await api.tasks(min(20, args.burst - len(burst)), body))
            return len(burst) - made

        if "a" in args.parts or "b" in args.parts:
            argv = python("-m", "api", "worker", "--poll", "1", "--name", "bench-ours")
            async with worker_process(stack, OURS_POOL, "bench-ours", argv):
                if "a" in args.parts:
                    ours = await trigger_latency(stack, api, "ours", args.triggers)
                    if ours and process:
                        ratio = statistics.median(process) / statistics.median(ours)
                        print(f"   process worker / ours, trigger → Running p50: {ratio:.1f}x")
                if "b" in args.parts:
                    meanwhile = prepare_burst if "c" in args.parts else None
                    await part_b(stack, api, args.scheduled, meanwhile)
        if "c" in args.parts:
            await prepare_burst(None)
            await part_c(stack, api, burst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parts", default="a,b,c", help="which of a, b, c to run")
    parser.add_argument("--triggers", type=int, default=50, help="part a, our worker")
    parser.add_argument("--process-triggers", type=int, default=15, help="part a, process worker")
    parser.add_argument("--scheduled", type=int, default=100, help="part b tasks")
    parser.add_argument("--burst", type=int, default=200, help="part c sessions")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
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
        urls = {"prefect": server.api_url, "store": stack.enter_context(postgres_database())}
        urls |= stack.enter_context(fake_models(tmp))
        asyncio.run(run(args, tmp, urls))
    print(f"\ntotal {time.monotonic() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
