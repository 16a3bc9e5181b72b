"""Settings, read once from ``TASKBOT_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path(".data")


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know about its environment.

    Built by :meth:`from_env` in exactly one place (the CLI / ASGI entry point) and passed
    down explicitly; nothing reads the environment at import time.
    """

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    prefect_api_url: str | None = None
    work_pool: str = "taskbot"
    # "taskbot" runs sessions on our in-process worker; "process" on Prefect's own workers.
    work_pool_type: str = "taskbot"
    # The reconciler converges out-of-sync tasks this often (seconds).
    reconcile_interval: float = 15.0
    default_session_ms: int = 600_000
    # Per-account quotas when the account row sets none.
    quota_concurrent_sessions: int = 200
    quota_conversations_per_day: int = 10_000
    max_request_bytes: int = 1024 * 1024
    sql_echo: bool = False

    def __post_init__(self) -> None:
        if not self.database_url:
            url = f"sqlite+aiosqlite:///{(self.data_dir / 'taskbot.db').resolve()}"
            object.__setattr__(self, "database_url", url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``TASKBOT_*`` variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("TASKBOT_DATA_DIR", str(DEFAULT_DATA_DIR)))
        return cls(
            data_dir=data_dir,
            database_url=normalize_database_url(env.get("TASKBOT_DATABASE_URL", "")),
            prefect_api_url=env.get("TASKBOT_PREFECT_API_URL") or env.get("PREFECT_API_URL"),
            work_pool=env.get("TASKBOT_WORK_POOL", "taskbot"),
            work_pool_type=env.get("TASKBOT_WORK_POOL_TYPE", "taskbot"),
            reconcile_interval=float(env.get("TASKBOT_RECONCILE_INTERVAL", "15")),
            default_session_ms=int(env.get("TASKBOT_DEFAULT_SESSION_MS", "600000")),
            quota_concurrent_sessions=int(env.get("TASKBOT_QUOTA_CONCURRENT_SESSIONS", "200")),
            quota_conversations_per_day=int(
                env.get("TASKBOT_QUOTA_CONVERSATIONS_PER_DAY", "10000")
            ),
            sql_echo=env.get("TASKBOT_SQL_ECHO", "") in {"1", "true", "yes"},
        )


def normalize_database_url(url: str) -> str:
    """Map plain ``postgresql://`` and ``sqlite://`` URLs to their async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url
