"""What a bot session needs from its process: the store, the models, the orchestrator.

Built on first use from ``TASKBOT_*`` settings (a Prefect process worker runs one flow per
process) or installed by our in-process worker, which shares one environment among all
its sessions. One per event loop: database pools and HTTP clients belong to a loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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


EnvironmentFactory = Callable[[], SessionEnvironment]

_factory: EnvironmentFactory | None = None
_by_loop: dict[asyncio.AbstractEventLoop, SessionEnvironment] = {}


def install_environment_factory(factory: EnvironmentFactory | None) -> None:
    """Build session environments with ``factory`` (the worker's or a test's settings).

    A factory, not an instance: each event loop that runs sessions gets its own.
    """
    global _factory
    _factory = factory


def session_environment() -> SessionEnvironment:
    """The running loop's environment: from the installed factory, else from ``TASKBOT_*``."""
    loop = asyncio.get_running_loop()
    env = _by_loop.get(loop)
    if env is None:
        env = (
            _factory()
            if _factory is not None
            else SessionEnvironment.from_settings(Settings.from_env())
        )
        _by_loop[loop] = env
    return env


async def close_environment() -> None:
    """Close and forget the running loop's environment, if it has one."""
    env = _by_loop.pop(asyncio.get_running_loop(), None)
    if env is not None:
        await env.aclose()
