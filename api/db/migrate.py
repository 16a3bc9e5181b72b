"""Schema migrations (Alembic), applied programmatically by the CLI and the tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

_SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our migration scripts and the given database."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    # ConfigParser interpolation would choke on "%" in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """:func:`upgrade` from inside a running event loop (env.py runs its own loop)."""
    await asyncio.to_thread(upgrade, database_url, revision)
