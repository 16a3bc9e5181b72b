"""A real Prefect server in a subprocess, for tests.

Key contracts:
- The server gets its own PREFECT_HOME and SQLite file, and none of the caller's
  `PREFECT_*` variables, so a developer's profile can never leak into a test run.
- stop() then start() reuses the same port and the same database: outage tests see the
  server come back with everything it had, at the address the gateway already uses.
- Start-up is dominated by importing Prefect's server (~11 s of CPU on two cores), plus
  ~10 s of Alembic migrations for a fresh database. Start it once per test session, and
  give it a template: a copy of a database migrated by an earlier run of the same Prefect
  version (the session fixture keeps one in the temp directory).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import pytest

_HOST = "127.0.0.1"


def free_port() -> int:
    """Ask the kernel for a free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_environment(
    home: Path, *, scheduler_loop_seconds: float, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment for the server process: the caller's, minus Prefect settings, plus ours."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            # Both scheduler loops short, so runs of a new or changed deployment appear
            # within about a second even without the gateway's explicit scheduling call.
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": str(scheduler_loop_seconds),
            "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": str(
                scheduler_loop_seconds
            ),
        }
    )
    env.update(extra or {})
    return env


class PrefectTestServer:
    """`prefect server start` on a loopback port, with a private home and database."""

    def __init__(
        self,
        home: Path,
        *,
        port: int | None = None,
        scheduler_loop_seconds: float = 1.0,
        extra_env: Mapping[str, str] | None = None,
        startup_timeout: float = 120.0,
        template_db: Path | None = None,
    ) -> None:
        self.home = home
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.template_db = template_db
        self.last_startup_seconds: float | None = None
        self._env = server_environment(
            home, scheduler_loop_seconds=scheduler_loop_seconds, extra=extra_env
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._save_template = False

    @property
    def api_url(self) -> str:
        """The API base URL a Prefect client should be given."""
        return f"http://{_HOST}:{self.port}/api"

    @property
    def log_path(self) -> Path:
        """Where the server's stdout and stderr go (appended across restarts)."""
        return self.home / "server.log"

    @property
    def db_path(self) -> Path:
        """The server's SQLite database file."""
        return self.home / "prefect.db"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, *, wait: bool = True) -> PrefectTestServer:
        """Start the server (a no-op while it runs); by default wait until it is healthy."""
        if not self.running:
            self.home.mkdir(parents=True, exist_ok=True)
            self._started_at = time.monotonic()
            if not self.db_path.exists() and self.template_db is not None:
                if self.template_db.exists():
                    shutil.copyfile(self.template_db, self.db_path)
                else:
                    self._save_template = True
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    [
                        *_prefect_command(),
                        "server",
                        "start",
                        "--host",
                        _HOST,
                        "--port",
                        str(self.port),
                        "--no-ui",
                        "--analytics-off",
                    ],
                    env=self._env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Own process group: a Ctrl-C in the test run does not race our stop().
                    start_new_session=True,
                )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Block until /api/health answers, or raise with the end of the server log."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"Prefect server exited during start-up:\n{self._log_tail()}")
            if self.healthy():
                self.last_startup_seconds = time.monotonic() - self._started_at
                if self._save_template:
                    self._save_template = False
                    self._snapshot_template()
                return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"Prefect server not healthy after {self.startup_timeout} s:\n{self._log_tail()}"
        )

    def healthy(self) -> bool:
        """Whether the server answers its health check right now."""
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, *, timeout: float = 15.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> PrefectTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _snapshot_template(self) -> None:
        """Keep a copy of the freshly migrated database for the next session's server."""
        assert self.template_db is not None
        partial = self.template_db.with_suffix(f".{os.getpid()}.partial")
        # Only a cache: if the copy fails, the next session migrates from scratch.
        with contextlib.suppress(sqlite3.Error, OSError):
            # SQLite's online backup is consistent while the server keeps writing.
            with (
                contextlib.closing(sqlite3.connect(self.db_path)) as source,
                contextlib.closing(sqlite3.connect(partial)) as target,
            ):
                source.backup(target)
            os.replace(partial, self.template_db)
        partial.unlink(missing_ok=True)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _prefect_command() -> list[str]:
    """The `prefect` CLI of the running interpreter's environment."""
    script = Path(sys.executable).with_name("prefect")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "prefect"]


_SHARED = pytest.StashKey[PrefectTestServer]()


def shared_prefect_server(
    config: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> PrefectTestServer:
    """The test session's one Prefect server, started on first use and stopped at the end.

    Kept in the pytest config, not in a module global, so every fixture that asks for it
    (in any conftest or test module) gets the same server.
    """
    server = config.stash.get(_SHARED, None)
    if server is None:
        version = importlib.metadata.version("prefect")
        server = PrefectTestServer(
            tmp_path_factory.mktemp("prefect-home"),
            template_db=Path(tempfile.gettempdir()) / f"taskbot-prefect-{version}-template.db",
        )
        config.stash[_SHARED] = server
        config.add_cleanup(server.stop)
    return server.start()


@pytest.fixture(scope="session")
def prefect_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> PrefectTestServer:
    """One real Prefect server for the whole test session (started on first use)."""
    return shared_prefect_server(request.config, tmp_path_factory)
