"""API apps for benchmarks, configured from ``TASKBOT_*`` like the real one.

``prefect_app_factory`` is the production wiring (real Prefect gateway) without the
background reconciler, so a benchmark can run and time reconcile passes itself.
"""

from __future__ import annotations

from litestar import Litestar

from api.app import create_app
from api.bootstrap import Orchestration, build_orchestration
from api.settings import Settings


class _Resources:
    """Closes the gateway and the database pool at shutdown; starts nothing."""

    def __init__(self, parts: Orchestration) -> None:
        self.parts = parts

    async def start(self) -> None:
        """Nothing runs in the background."""

    async def stop(self) -> None:
        """Release the gateway's client and the database pool."""
        await self.parts.gateway.aclose()
        await self.parts.db.dispose()


def prefect_app_factory() -> Litestar:
    """Factory for ``uvicorn --factory``: the Prefect gateway in the path, no reconciler."""
    settings = Settings.from_env()
    parts = build_orchestration(settings)
    return create_app(
        settings, projection=parts.projection, db=parts.db, background=[_Resources(parts)]
    )
