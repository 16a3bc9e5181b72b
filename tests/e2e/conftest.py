"""The whole stack for end-to-end tests: a real Prefect server, the API over HTTP (with the
real Prefect gateway and its reconciler), our worker, and the loopback model server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from api.accounts.service import AccountService
from api.bootstrap import build_api
from api.clock import system_clock
from api.db.engine import Database, create_engine
from api.ids import new_id
from api.settings import Settings
from deployments.prefect_gateway import PrefectGateway
from flows.environment import SessionEnvironment
from flows.runtime import ModelRegistry, ModelSettings
from tests.support.api_server import ApiServer
from tests.support.databases import sqlite_database
from tests.support.fake_openai import FakeOpenAI
from tests.support.prefect_server import PrefectTestServer
from tests.support.worker_thread import WorkerThread


@dataclass
class Stack:
    """Everything an end-to-end test talks to."""

    api_url: str
    settings: Settings
    prefect: PrefectTestServer
    fake: FakeOpenAI
    worker: WorkerThread


def model_settings(fake: FakeOpenAI) -> ModelSettings:
    """The loopback model server as provider ``fake``."""
    return ModelSettings.from_mapping(
        {
            "providers": {
                "fake": {"base_url": fake.base_url, "api_key": "sk-e2e-test-key", "max_retries": 0}
            }
        }
    )


@pytest.fixture(scope="session")
def stack(
    prefect_server: PrefectTestServer,
    fake_openai_server: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """API + worker on a fresh SQLite store and their own work pool of the shared server."""
    with sqlite_database(tmp_path_factory.mktemp("e2e")) as url:
        settings = Settings(
            database_url=url,
            prefect_api_url=prefect_server.api_url,
            work_pool=f"e2e-{secrets.token_hex(3)}",
            reconcile_interval=1.0,
            default_session_ms=20_000,
        )

        def api_factory():
            gateway = PrefectGateway(
                prefect_server.api_url,
                work_pool=settings.work_pool,
                work_pool_type=settings.work_pool_type,
            )
            return build_api(settings, gateway=gateway)

        def env_factory() -> SessionEnvironment:
            return SessionEnvironment(
                settings,
                Database(create_engine(url)),
                ModelRegistry(model_settings(fake_openai_server)),
            )

        api = ApiServer(api_factory)
        api.start()
        worker = WorkerThread(prefect_server.api_url, settings.work_pool, env_factory)
        worker.start()
        try:
            yield Stack(api.url, settings, prefect_server, fake_openai_server, worker)
        finally:
            worker.stop()
            api.stop()


@dataclass
class Client:
    """An account of the stack and an HTTP client that sends its token."""

    account_id: str
    http: httpx.AsyncClient
    stack: Stack

    async def post(self, path: str, body: dict | None = None) -> dict:
        r = await self.http.post(f"/api/v1/{path}", json=body or {})
        assert r.status_code == 200, r.text
        return r.json()

    async def get(self, path: str, **params) -> dict:
        r = await self.http.get(f"/api/v1/{path}", params=params)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
async def client(stack: Stack, fake_openai: FakeOpenAI) -> AsyncIterator[Client]:
    """A fresh account on the stack (the model server's script reset for this test)."""
    db = Database(create_engine(stack.settings.database_url))
    try:
        accounts = AccountService(db, system_clock)
        name = new_id("e2e")
        account_id = await accounts.create_account(name)
        token = await accounts.create_token(name)
    finally:
        await db.dispose()
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        yield Client(account_id, http, stack)
