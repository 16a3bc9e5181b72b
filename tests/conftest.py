"""Session-wide fixtures: databases on both backends, the API over real HTTP, accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.accounts.service import AccountService
from api.app import create_app
from api.db.engine import Database, create_engine
from api.ids import new_id
from api.orchestration.projection import DeploymentProjection
from api.settings import Settings
from deployments.memory_gateway import MemoryGateway
from tests.support.api_server import ApiServer
from tests.support.clock import TestClock
from tests.support.databases import postgres_database, sqlite_database

# Fixtures of the loopback model server (fake_openai, fake_openai_server) and of the real
# Prefect server shared by the whole session (prefect_server).
pytest_plugins = ["tests.support.fake_openai", "tests.support.prefect_server"]

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of each backend; every API test runs once per backend."""
    if request.param == "sqlite":
        with sqlite_database(tmp_path_factory.mktemp("sqlite")) as url:
            yield url
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of each backend for one test (for whole-store assertions)."""
    if request.param == "sqlite":
        with sqlite_database(tmp_path) as url:
            yield url
    else:
        with postgres_database() as url:
            yield url


@dataclass
class Api:
    """A running API server and what the tests need to reach into."""

    url: str
    clock: TestClock
    gateway: MemoryGateway
    database_url: str


@pytest.fixture(scope="session")
def api(database_url: str) -> Iterator[Api]:
    """The API (memory gateway) served over real HTTP on loopback."""
    clock = TestClock()
    gateway = MemoryGateway()
    settings = Settings(data_dir=Path("."), database_url=database_url)

    def factory():
        db = Database(create_engine(database_url))
        projection = DeploymentProjection(db, gateway, clock)
        return create_app(settings, projection=projection, db=db, clock=clock)

    server = ApiServer(factory)
    server.start()
    try:
        yield Api(server.url, clock, gateway, database_url)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _real_time(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "api" in request.fixturenames:
        request.getfixturevalue("api").clock.reset()


@dataclass
class Tenant:
    """An account with a token, and an HTTP client that sends it."""

    account_id: str
    token: str
    http: httpx.AsyncClient


async def make_tenant(api: Api) -> AsyncIterator[Tenant]:
    """A fresh account: tests isolate by account, as users do."""
    db = Database(create_engine(api.database_url))
    try:
        accounts = AccountService(db, api.clock)
        name = new_id("test")
        account_id = await accounts.create_account(name)
        token = await accounts.create_token(name)
    finally:
        await db.dispose()
    async with httpx.AsyncClient(
        base_url=api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        yield Tenant(account_id, token, http)


@pytest.fixture
async def tenant(api: Api) -> AsyncIterator[Tenant]:
    """An account of its own for this test."""
    async for t in make_tenant(api):
        yield t


@pytest.fixture
async def other_tenant(api: Api) -> AsyncIterator[Tenant]:
    """A second account, to prove isolation."""
    async for t in make_tenant(api):
        yield t


@pytest.fixture(scope="session", autouse=True)
def _quiet_http_logs() -> None:
    # httpx logs every request at INFO; failures are easier to read without them.
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
