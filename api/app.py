"""The application factory: builds engines, services and handlers, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from litestar import Litestar, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from api.accounts.service import AccountService
from api.auth import auth_middleware, provide_account_id
from api.bots.controller import BotController
from api.bots.service import BotService
from api.clock import Clock, system_clock
from api.contacts.controller import ContactController
from api.contacts.service import ContactService
from api.conversations.controller import ConversationController
from api.conversations.service import ConversationService, MessageService
from api.db.engine import Database, create_engine
from api.error_handlers import handle_exception
from api.executions.service import ExecutionService
from api.idempotency import IdempotencyMiddleware, IdempotencyStore
from api.quotas import quota_defaults
from api.routing import validate_json_body
from api.settings import Settings
from api.tasks.controller import TaskController
from api.tasks.projection import TaskProjection
from api.tasks.service import TaskService


class Background(Protocol):
    """Something that lives as long as the app (the reconciler and its resources)."""

    async def start(self) -> None:
        """Begin (called at start-up)."""

    async def stop(self) -> None:
        """End and release resources (called at shutdown)."""


@get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    """Liveness probe (no auth)."""
    return {"status": "ok"}


def create_app(
    settings: Settings,
    *,
    projection: TaskProjection,
    db: Database | None = None,
    clock: Clock = system_clock,
    background: Sequence[Background] = (),
) -> Litestar:
    """Build the API over ``settings``; tests pass their own collaborators.

    ``background`` objects are started and stopped with the app; a ``db`` passed in is
    left open for its owner to close.
    """
    database = db or Database(create_engine(settings.database_url, echo=settings.sql_echo))
    tasks = TaskService(database, clock, projection, quota_defaults(settings))
    bots = BotService(database, clock, projection)
    contacts = ContactService(database, clock, projection)
    executions = ExecutionService(database, clock, projection)
    conversations = ConversationService(database, clock)
    messages = MessageService(database, clock)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        for service in background:
            await service.start()
        try:
            yield
        finally:
            for service in reversed(background):
                await service.stop()
            if db is None:
                await database.dispose()

    app = Litestar(
        route_handlers=[
            health,
            TaskController,
            BotController,
            ContactController,
            ConversationController,
        ],
        dependencies={
            "account_id": Provide(provide_account_id),
            "tasks": Provide(lambda: tasks, use_cache=True, sync_to_thread=False),
            "bots": Provide(lambda: bots, use_cache=True, sync_to_thread=False),
            "contacts": Provide(lambda: contacts, use_cache=True, sync_to_thread=False),
            "executions": Provide(lambda: executions, use_cache=True, sync_to_thread=False),
            "conversations": Provide(lambda: conversations, use_cache=True, sync_to_thread=False),
            "messages": Provide(lambda: messages, use_cache=True, sync_to_thread=False),
        },
        middleware=[auth_middleware(), IdempotencyMiddleware()],
        exception_handlers={Exception: handle_exception},
        before_request=validate_json_body,
        request_max_body_size=settings.max_request_bytes,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="taskbot",
            version="1.0.0",
            description="ChatBotKit-compatible Task API; tasks run as Prefect deployments.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="API token")
                }
            ),
            security=[{"bearer": []}],
        ),
    )
    app.state.accounts = AccountService(database, clock)
    app.state.idempotency = IdempotencyStore(database)
    app.state.clock = clock
    app.state.db = database
    app.state.max_request_bytes = settings.max_request_bytes
    return app
