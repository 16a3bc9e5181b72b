"""What a bot session needs from its process: the store, the models, the orchestrator.

Built on first use from ``TASKBOT_*`` settings (a Prefect process worker runs one flow per
process) or installed by our in-process worker, which shares one environment among all
its sessions. One per event loop: database pools and HTTP clients belong to a loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from api.clock import Clock, system_clock
from api.db.engine import Database, create_engine
from api.settings import Settings
from deployments.gateway import Gateway
from flows.runtime import ModelRegistry, ModelSettings


@dataclass
class SessionEnvironment:
    """Shared, long-lived collaborators of bot sessions."""

    settings: Settings
    db: Database
    models: ModelRegistry
    gateway: Gateway | None = None
    clock: Clock = system_clock

    @classmethod
    def from_settings(
        cls, settings: Settings, *, gateway: Gateway | None = None
    ) -> SessionEnvironment:
        """Build from settings (the model providers come from the environment too)."""
        return cls(
            settings=settings,
            db=Database(create_engine(settings.database_url)),
            models=ModelRegistry(ModelSettings.from_env()),
            gateway=gateway,
        )

    async def aclose(self) -> None:
        """Close model clients and the database pool (not the gateway: its owner does)."""
        await self.models.aclose()
        await self.db.dispose()


_installed: dict[asyncio.AbstractEventLoop, SessionEnvironment] = {}


def install_environment(env: SessionEnvironment) -> None:
    """Make ``env`` the environment of sessions on the running loop."""
    _installed[asyncio.get_running_loop()] = env


def uninstall_environment() -> SessionEnvironment | None:
    """Forget the running loop's environment (the caller closes it)."""
    return _installed.pop(asyncio.get_running_loop(), None)


def session_environment() -> SessionEnvironment:
    """The running loop's environment, built from the process environment if none is installed."""
    loop = asyncio.get_running_loop()
    env = _installed.get(loop)
    if env is None:
        env = SessionEnvironment.from_settings(Settings.from_env())
        _installed[loop] = env
    return env
