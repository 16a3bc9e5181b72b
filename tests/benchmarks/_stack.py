"""Shared plumbing of the benchmarks that run real servers: processes, databases, figures.

Every server is a subprocess on loopback with its output in a log file, so the process
that measures pays none of their CPU, and their peak RSS can be read from /proc.
Children get the caller's environment minus every ``PREFECT_*`` variable (a developer's
Prefect profile must not leak in), plus a private ``PREFECT_HOME``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import asyncpg
import httpx

from api.accounts.service import AccountService
from api.clock import system_clock
from api.db.engine import Database, create_engine
from api.ids import new_id
from tests.support.databases import ADMIN_URL
from tests.support.prefect_server import PrefectTestServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def load() -> str:
    """The machine's load averages (1, 5, 15 min), to print next to figures."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by nearest rank (p99 of 100 values is the 99th smallest)."""
    ordered = sorted(values)
    rank = math.ceil(q * len(ordered) - 1e-9)
    return ordered[min(len(ordered), max(1, rank)) - 1]


def summary(values: Sequence[float], unit: str = "ms", digits: int = 1) -> str:
    """``p50 … p99 … max …`` of ``values``; ``n/a`` when empty."""
    if not values:
        return "n/a (no samples)"
    p50 = statistics.median(values)
    return (
        f"p50 {p50:8.{digits}f} {unit}  p99 {quantile(values, 0.99):8.{digits}f} {unit}  "
        f"max {max(values):8.{digits}f} {unit}  (n={len(values)})"
    )


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process: ours without ``PREFECT_*``, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home / "prefect-client"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Process:
    """One child process, started in its own session, its output appended to ``log``."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path
    ) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.popen.pid

    @property
    def alive(self) -> bool:
        """Whether the child still runs."""
        return self.popen.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit status."""
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                # Its own session: kill the child's group (flow-run subprocesses too).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode

    def tail(self, lines: int = 30) -> str:
        """The end of the child's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def python(*args: str) -> list[str]:
    """argv running this interpreter with ``args``."""
    return [sys.executable, *args]


def wait_http(url: str, process: Process, timeout: float = 90.0) -> float:
    """Block until ``url`` answers 200; seconds waited. Raises with the log tail on failure."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not process.alive:
            raise RuntimeError(f"{process.name} exited during start-up:\n{process.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError(f"{process.name} not ready after {timeout} s:\n{process.tail()}")


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def empty_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards); yields its asyncpg URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def prefect_server(home: Path, backend: str) -> Iterator[PrefectTestServer]:
    """A Prefect server on ``postgres`` (a fresh database) or ``sqlite``, Prefect's own
    scheduler intervals (60 s, recent deployments 5 s), stopped afterwards."""
    extra = {"PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "5"}
    with contextlib.ExitStack() as stack:
        if backend == "postgres":
            url = stack.enter_context(empty_postgres_database("taskbot_bench_prefect"))
            extra["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = url
        elif backend != "sqlite":
            raise ValueError(f"unknown Prefect backend {backend!r}")
        server = PrefectTestServer(
            home / "prefect-server", scheduler_loop_seconds=60, extra_env=extra
        )
        stack.callback(server.stop)
        server.start()
        yield server


async def new_account(database_url: str, label: str) -> str:
    """A fresh account in the store; returns its bearer token."""
    db = Database(create_engine(database_url))
    try:
        accounts = AccountService(db, system_clock)
        name = new_id(label)
        await accounts.create_account(name)
        return await accounts.create_token(name)
    finally:
        await db.dispose()


def memory_kb(pid: int, field: str) -> int:
    """A ``Vm*`` field of /proc/PID/status in kB (-1 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1
