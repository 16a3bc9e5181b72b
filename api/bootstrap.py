"""Production wiring: settings → database, Prefect gateway, projection, reconciler, app."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Litestar

from api.app import create_app
from api.clock import Clock, system_clock
from api.db.engine import Database, create_engine
from api.orchestration.projection import DeploymentProjection
from api.orchestration.reconciler import Reconciler
from api.settings import Settings
from deployments.gateway import Gateway
from deployments.prefect_gateway import PrefectGateway


@dataclass
class Orchestration:
    """The store, the gateway and what keeps them in step."""

    db: Database
    gateway: Gateway
    projection: DeploymentProjection
    reconciler: Reconciler

    async def start(self) -> None:
        """Start reconciling in the background."""
        await self.reconciler.start()

    async def stop(self) -> None:
        """Stop reconciling, close the gateway and the database pool."""
        await self.reconciler.stop()
        await self.gateway.aclose()
        await self.db.dispose()


def build_orchestration(
    settings: Settings, *, gateway: Gateway | None = None, clock: Clock = system_clock
) -> Orchestration:
    """Database + Prefect gateway + projection + reconciler for ``settings``."""
    db = Database(create_engine(settings.database_url, echo=settings.sql_echo))
    if gateway is None:
        if not settings.prefect_api_url:
            raise RuntimeError("TASKBOT_PREFECT_API_URL (or PREFECT_API_URL) must be set")
        gateway = PrefectGateway(
            settings.prefect_api_url,
            work_pool=settings.work_pool,
            work_pool_type=settings.work_pool_type,
        )
    projection = DeploymentProjection(db, gateway, clock)
    reconciler = Reconciler(db, gateway, projection, clock, interval=settings.reconcile_interval)
    return Orchestration(db, gateway, projection, reconciler)


def build_api(
    settings: Settings, *, gateway: Gateway | None = None, clock: Clock = system_clock
) -> Litestar:
    """The API with its reconciler running in-process."""
    parts = build_orchestration(settings, gateway=gateway, clock=clock)
    return create_app(
        settings, projection=parts.projection, db=parts.db, clock=clock, background=[parts]
    )


def app_from_env() -> Litestar:
    """Factory for ASGI servers (``uvicorn --factory api.bootstrap:app_from_env``)."""
    return build_api(Settings.from_env())
