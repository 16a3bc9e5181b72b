"""An API app over ``TASKBOT_DATABASE_URL`` with the in-memory gateway, for benchmarks.

Store and HTTP costs are measured without Prefect in the path; ``bench_prefect.py``
measures the difference Prefect makes.
"""

from __future__ import annotations

from litestar import Litestar

from api.app import create_app
from api.clock import system_clock
from api.db.engine import Database, create_engine
from api.orchestration.projection import DeploymentProjection
from api.settings import Settings
from deployments.memory_gateway import MemoryGateway


def app_factory() -> Litestar:
    """Factory for ``uvicorn --factory``."""
    settings = Settings.from_env()
    db = Database(create_engine(settings.database_url))
    projection = DeploymentProjection(db, MemoryGateway(), system_clock)
    return create_app(settings, projection=projection, db=db)
