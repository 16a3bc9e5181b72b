"""Persistence rows (SQLModel ``table=True``): storage only, never built from raw input.

Timestamps are epoch milliseconds (UTC by definition) in BIGINT columns: exact, index
friendly, identical on SQLite and PostgreSQL, and what the wire carries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite.
JsonType = JSON().with_variant(JSONB(), "postgresql")


def _ms(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(BigInteger, nullable=nullable, index=index))


def _json() -> Any:
    return Field(default=None, sa_column=Column(JsonType, nullable=True))


def _fk(target: str, ondelete: str, *, nullable: bool = True) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            String(64), ForeignKey(target, ondelete=ondelete), nullable=nullable, index=True
        ),
    )


class Account(SQLModel, table=True):
    """A tenant: every other row belongs to exactly one account."""

    __tablename__ = "account"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(sa_column=Column(String(191), unique=True, nullable=False))
    # Quotas; NULL means the operator's default (TASKBOT_QUOTA_*).
    max_concurrent_sessions: int | None = None
    max_conversations_per_day: int | None = None
    created_at: int = _ms()


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_token"

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = _fk("account.id", "CASCADE", nullable=False)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: int = _ms()


class Bot(SQLModel, table=True):
    """A bot: the model and system prompt a task's runs talk to."""

    __tablename__ = "bot"
    __table_args__ = (Index("ix_bot_account_page", "account_id", "created_at", "id"),)

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = _fk("account.id", "CASCADE", nullable=False)
    name: str = Field(default="", sa_column=Column(String(191), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    backstory: str = Field(default="", sa_column=Column(Text, nullable=False))
    model: str | None = Field(default=None, sa_column=Column(String(191), nullable=True))
    dataset_id: str | None = Field(default=None, max_length=191)
    skillset_id: str | None = Field(default=None, max_length=191)
    privacy: bool | None = None
    moderation: bool | None = None
    visibility: str | None = Field(default=None, max_length=32)
    meta: dict[str, Any] | None = _json()
    created_at: int = _ms()
    updated_at: int = _ms()


class Contact(SQLModel, table=True):
    """A contact: the person a task works for."""

    __tablename__ = "contact"
    __table_args__ = (Index("ix_contact_account_page", "account_id", "created_at", "id"),)

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = _fk("account.id", "CASCADE", nullable=False)
    name: str = Field(default="", sa_column=Column(String(191), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    fingerprint: str | None = Field(default=None, max_length=191)
    email: str | None = Field(default=None, max_length=191)
    phone: str | None = Field(default=None, max_length=64)
    nick: str | None = Field(default=None, max_length=191)
    meta: dict[str, Any] | None = _json()
    created_at: int = _ms()
    updated_at: int = _ms()


class Task(SQLModel, table=True):
    """A task: a bot, a schedule and a session time limit.

    ``schedule_anchor`` is the instant interval schedules count from (set whenever
    ``schedule``/``timezone`` are written). ``sync_version``/``synced_version`` track the
    Prefect projection: the task is out of sync while they differ.
    """

    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_account_page", "account_id", "created_at", "id"),
        Index("ix_task_unsynced", "synced_version", "sync_version"),
        # meta.k=v filters are JSONB containment on PostgreSQL (see db/queries.py).
        Index(
            "ix_task_meta",
            "meta",
            postgresql_using="gin",
            postgresql_ops={"meta": "jsonb_path_ops"},
        ),
    )

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = _fk("account.id", "CASCADE", nullable=False)
    name: str = Field(default="", sa_column=Column(String(191), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    bot_id: str | None = _fk("bot.id", "SET NULL")
    contact_id: str | None = _fk("contact.id", "CASCADE")
    blueprint_id: str | None = Field(default=None, max_length=191)
    schedule: str | None = Field(default=None, sa_column=Column(String(191), nullable=True))
    timezone: str | None = Field(default=None, max_length=64)
    schedule_anchor: int | None = _ms(nullable=True)
    session_duration: int | None = None
    max_iterations: int | None = None
    max_time: int | None = None
    status: str = Field(default="idle", max_length=16)
    outcome: str = Field(default="pending", max_length=16)
    last_run_at: int | None = _ms(nullable=True)
    next_run_at: int | None = _ms(nullable=True)
    expires_at: int | None = _ms(nullable=True, index=True)
    meta: dict[str, Any] | None = _json()
    # The flow run that holds ``status: running`` (a lease a dead worker cannot keep).
    running_flow_run_id: str | None = Field(default=None, max_length=64)
    sync_version: int = Field(default=1)
    synced_version: int = Field(default=0)
    created_at: int = _ms()
    updated_at: int = _ms()


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed for 24 h."""

    __tablename__ = "idempotency_record"

    account_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=255)
    method: str = Field(max_length=8)
    path: str = Field(max_length=1024)
    # NULL until the first request finishes: a claim that concurrent duplicates wait on.
    status_code: int | None = None
    content_type: str | None = Field(default=None, max_length=128)
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: int = _ms(index=True)


class DeploymentTombstone(SQLModel, table=True):
    """A deleted task whose Prefect deployment may still exist.

    Written in the same transaction as the delete, removed once the deployment is gone:
    a crash or a Prefect outage between the two can never leave a deployment running
    for a task that no longer exists.
    """

    __tablename__ = "deployment_tombstone"

    task_id: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(max_length=64)
    created_at: int = _ms()


class Conversation(SQLModel, table=True):
    """One conversation of a bot; a task run opens one."""

    __tablename__ = "conversation"
    __table_args__ = (Index("ix_conversation_account_page", "account_id", "created_at", "id"),)

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = _fk("account.id", "CASCADE", nullable=False)
    bot_id: str | None = _fk("bot.id", "SET NULL")
    contact_id: str | None = _fk("contact.id", "SET NULL")
    task_id: str | None = _fk("task.id", "SET NULL")
    name: str = Field(default="", sa_column=Column(String(191), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    meta: dict[str, Any] | None = _json()
    created_at: int = _ms()
    updated_at: int = _ms()


class Message(SQLModel, table=True):
    """One message of a conversation (``user``, ``bot``, ``instruction``, ``activity``…)."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_conversation_page", "conversation_id", "created_at", "id"),)

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = _fk("account.id", "CASCADE", nullable=False)
    conversation_id: str = _fk("conversation.id", "CASCADE", nullable=False)
    type: str = Field(max_length=32)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    meta: dict[str, Any] | None = _json()
    created_at: int = _ms()
    updated_at: int = _ms()


class Execution(SQLModel, table=True):
    """One run of a task: what it was for, how it went, and its Prefect flow run.

    ``slot`` makes runs idempotent: ``schedule:<scheduled ms>`` for scheduled runs (one
    per task and scheduled time, however many flow runs Prefect made for it) and
    ``run:<flow run id>`` for the rest. ``phase`` is the internal life cycle
    (waiting → running → done); the wire shows ``status``.
    """

    __tablename__ = "execution"
    __table_args__ = (
        Index("ix_execution_task_page", "task_id", "created_at", "id"),
        Index("ux_execution_task_slot", "task_id", "slot", unique=True),
    )

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = _fk("account.id", "CASCADE", nullable=False)
    task_id: str = _fk("task.id", "CASCADE", nullable=False)
    conversation_id: str | None = _fk("conversation.id", "SET NULL")
    flow_run_id: str | None = Field(default=None, max_length=64, index=True)
    slot: str = Field(max_length=96)
    kind: str = Field(max_length=16)
    phase: str = Field(default="running", max_length=16)
    name: str = Field(default="", sa_column=Column(String(191), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    meta: dict[str, Any] | None = _json()
    status: str = Field(default="running", max_length=16)
    outcome: str = Field(default="pending", max_length=16)
    summary: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    scheduled_for: int | None = _ms(nullable=True)
    started_at: int | None = _ms(nullable=True)
    completed_at: int | None = _ms(nullable=True)
    created_at: int = _ms()
    updated_at: int = _ms()
