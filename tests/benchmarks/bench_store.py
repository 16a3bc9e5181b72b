"""Store benchmark: fetch and list-page latency with 100k tasks, and full exports.

Prints first page vs a page at depth 90k (keyset pagination should make them cost the
same), fetch latency, and JSONL/CSV export time and the API process's peak RSS.

    python -m tests.benchmarks.bench_store [--tasks 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert, text

from api.accounts.service import AccountService
from api.clock import system_clock
from api.db.engine import Database, create_engine
from api.db.migrate import upgrade
from api.db.models import Task
from api.ids import new_id
from tests.support.api_server import free_port


async def seed(url: str, count: int) -> tuple[str, list[str]]:
    """One account with ``count`` tasks (bulk insert); returns the token and ids, oldest first."""
    db = Database(create_engine(url))
    accounts = AccountService(db, system_clock)
    name = new_id("bench")
    account_id = await accounts.create_account(name)
    token = await accounts.create_token(name)
    base = int(time.time() * 1000) - count
    ids = [new_id("task") for _ in range(count)]
    rows = [
        {
            "id": task_id,
            "account_id": account_id,
            "name": f"task {i}",
            "description": 'benchmark task with a "quoted" word, and a comma',
            "schedule": "hourly" if i % 2 else "0 9 * * 1-5",
            "timezone": "Europe/Berlin" if i % 3 == 0 else None,
            "schedule_anchor": base + i,
            "session_duration": 60_000,
            "status": "idle",
            "outcome": "pending",
            "next_run_at": base + i + 3_600_000_000,
            "meta": {"team": f"team-{i % 10}", "index": i, "flag": i % 2 == 0},
            "sync_version": 1,
            "synced_version": 1,
            "created_at": base + i,
            "updated_at": base + i,
        }
        for i, task_id in enumerate(ids)
    ]
    async with db.transaction() as session:
        for start in range(0, count, 5000):
            await session.execute(insert(Task), rows[start : start + 5000])
    # Fresh planner statistics, as a live database would have (autovacuum runs later).
    async with db.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("ANALYZE"))
    await db.dispose()
    return token, ids


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb(pid: int) -> float:
    """Current resident set size (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def timed(client: httpx.AsyncClient, path: str, n: int, **kw: object) -> list[float]:
    """Latencies in ms of ``n`` sequential GETs."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await client.get(path, **kw)  # type: ignore[arg-type]
        r.raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(values: list[float]) -> str:
    """p50 / p99 in ms."""
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"p50 {statistics.median(values):7.2f} ms  p99 {p99:7.2f} ms"


async def measure(url: str, token: str, ids: list[str], pid: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as client:
        await timed(client, "/api/v1/task/list", 5)  # warm up
        sample = random.Random(7).sample(ids, 200)
        fetch: list[float] = []
        for task_id in sample:
            fetch += await timed(client, f"/api/v1/task/{task_id}/fetch", 1)
        first = await timed(client, "/api/v1/task/list", 100)
        # Newest first: the item 90,000 places down the list is ids[-90000].
        deep_cursor = ids[-90_000]
        deep = await timed(client, "/api/v1/task/list", 100, params={"cursor": deep_cursor})
        filtered = await timed(client, "/api/v1/task/list", 50, params={"meta.team": "team-3"})
        print(f"fetch                     {summary(fetch)}")
        print(f"list first page (100)     {summary(first)}")
        print(f"list page at depth 90k    {summary(deep)}")
        print(f"list meta filter page     {summary(filtered)}")
        ratio = statistics.median(deep) / statistics.median(first)
        print(f"depth-90k / first page    {ratio:.2f}x (keyset: ~1x expected)")
        idle = current_rss_mb(pid)
        print(f"API process RSS idle      {idle:.0f} MB")
        for accept, label in (("application/jsonl", "JSONL"), ("text/csv", "CSV")):
            reset_peak(pid)
            t0 = time.perf_counter()
            size = 0
            lines = 0
            first_byte = None
            async with client.stream("GET", "/api/v1/task/export", headers={"Accept": accept}) as r:
                async for chunk in r.aiter_bytes():
                    if first_byte is None:
                        first_byte = time.perf_counter() - t0
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            elapsed = time.perf_counter() - t0
            print(
                f"export {label:5} {len(ids)} tasks: {elapsed:6.2f} s, first byte "
                f"{(first_byte or 0) * 1000:.0f} ms, {size / 1e6:.1f} MB, {lines} lines, "
                f"peak RSS {peak_rss_mb(pid):.0f} MB (idle {idle:.0f} MB)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        upgrade(url)
        t0 = time.perf_counter()
        token, ids = asyncio.run(seed(url, args.tasks))
        seeded = time.perf_counter() - t0
        print(f"backend {url.split('://')[0]}; seeded {args.tasks} tasks in {seeded:.1f} s")
        port = free_port()
        env = dict(os.environ, TASKBOT_DATABASE_URL=url)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "tests.benchmarks.memory_app:app_factory",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{base}/health").raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            asyncio.run(measure(base, token, ids, server.pid))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
