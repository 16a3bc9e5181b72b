"""The ``taskbot`` command line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from api.accounts.service import AccountService
from api.clock import system_clock
from api.db.engine import Database, create_engine
from api.db.migrate import upgrade
from api.errors import ApiError
from api.settings import Settings

T = TypeVar("T")

app = typer.Typer(help="taskbot: run AI bots on a schedule, on Prefect.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
account_app = typer.Typer(help="Accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(account_app, name="account")
app.add_typer(token_app, name="token")


def _settings() -> Settings:
    return Settings.from_env()


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(create_engine(settings.database_url))
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except ApiError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(2) from None


@app.command("api")
def api_command(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    migrate: Annotated[bool, typer.Option(help="Apply migrations first.")] = True,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (and its reconciler)."""
    import uvicorn

    settings = _settings()
    if migrate:
        upgrade(settings.database_url)
    uvicorn.run(
        "api.bootstrap:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface the API binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    prefect_port: Annotated[int, typer.Option(help="Prefect server (and UI) port.")] = 4200,
) -> None:
    """Run everything locally: Prefect server (embedded PostgreSQL), API, reconciler, worker."""
    from api.serve import serve

    serve(_settings(), host=host, port=port, prefect_port=prefect_port)


@app.command("worker")
def worker_command(
    limit: Annotated[int, typer.Option(help="Sessions run at once.")] = 200,
    poll: Annotated[float, typer.Option(help="Seconds between polls for runs.")] = 1.0,
    grace: Annotated[float, typer.Option(help="Seconds running sessions get on stop.")] = 60.0,
    name: Annotated[str | None, typer.Option(help="Worker name shown in Prefect.")] = None,
) -> None:
    """Run bot sessions: a Prefect worker that runs flow runs in this process."""
    from flows.environment import close_environment
    from flows.worker_serve import run_until_signalled, serve_worker

    settings = _settings()
    if not settings.prefect_api_url:
        typer.echo("error: set TASKBOT_PREFECT_API_URL (or PREFECT_API_URL)", err=True)
        raise typer.Exit(2)
    # SIGINT/SIGTERM drain: no new runs, running sessions get the grace period.
    run_until_signalled(
        serve_worker(
            api_url=settings.prefect_api_url,
            work_pool=settings.work_pool,
            limit=limit,
            poll_seconds=poll,
            grace_seconds=grace,
            name=name,
            session_cleanup=close_environment,
        )
    )
    typer.echo("worker stopped")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply schema migrations up to REVISION (default: head)."""
    settings = _settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@account_app.command("create")
def account_create(name: str) -> None:
    """Create an account named NAME."""
    settings = _settings()
    account_id = _with_db(
        settings, lambda db: AccountService(db, system_clock).create_account(name)
    )
    typer.echo(account_id)


@token_app.command("create")
def token_create(
    account: Annotated[str, typer.Option("--account", help="Account name.")],
) -> None:
    """Create a bearer token for ACCOUNT and print it (it is shown only once)."""
    settings = _settings()
    token = _with_db(settings, lambda db: AccountService(db, system_clock).create_token(account))
    typer.echo(token)


@app.command("sync")
def sync_command() -> None:
    """Converge every task's Prefect deployment now (a full reconcile pass)."""
    from api.bootstrap import build_orchestration

    async def run() -> None:
        parts = build_orchestration(_settings())
        try:
            report = await parts.reconciler.run_pass(full=True)
        finally:
            await parts.gateway.aclose()
            await parts.db.dispose()
        typer.echo(
            f"applied {report.applied}, removed {report.removed}, expired {report.expired}, "
            f"recreated {report.recreated}, orphans removed {report.orphans_removed}, "
            f"still out of sync {report.remaining}"
        )

    asyncio.run(run())


@app.command("check")
def check_command() -> None:
    """Verify nextRunAt against Prefect's earliest scheduled run for every task."""
    from api.bootstrap import build_orchestration
    from api.orchestration.check import check_all

    async def run() -> int:
        parts = build_orchestration(_settings())
        try:
            result = await check_all(parts.db, parts.gateway)
        finally:
            await parts.gateway.aclose()
            await parts.db.dispose()
        for line in result.mismatches:
            typer.echo(line)
        typer.echo(f"checked {result.checked} tasks, {len(result.mismatches)} mismatches")
        return 1 if result.mismatches else 0

    raise typer.Exit(asyncio.run(run()))


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app()
