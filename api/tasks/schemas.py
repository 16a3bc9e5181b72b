"""Task shapes on the wire (CONTRACT §2–3): camelCase, unknown keys forbidden, partial updates."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from api.wire import DESCRIPTION_MAX, ID_MAX, NAME_MAX

Name = Annotated[str, Meta(max_length=NAME_MAX)]
Description = Annotated[str, Meta(max_length=DESCRIPTION_MAX)]
RefId = Annotated[str, Meta(max_length=ID_MAX)]
Text191 = Annotated[str, Meta(max_length=NAME_MAX)]
SessionDuration = Annotated[int, Meta(ge=0, le=3_600_000)]
MaxIterations = Annotated[int, Meta(ge=0, le=100_000)]
MaxTime = Annotated[int, Meta(ge=0, le=86_400_000)]
Millis = Annotated[int, Meta(ge=0)]
Timezone = Annotated[str, Meta(max_length=64)]

TaskStatus = Literal["idle", "running"]
TaskOutcome = Literal["pending", "success", "failure"]


class TaskCreate(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """``POST /task/create`` body; every key optional, ``{}`` is valid."""

    name: Name = ""
    description: Description = ""
    bot_id: RefId | None = None
    contact_id: RefId | None = None
    blueprint_id: Text191 | None = None
    schedule: Text191 | None = None
    timezone: Timezone | None = None
    session_duration: SessionDuration | None = None
    max_iterations: MaxIterations | None = None
    max_time: MaxTime | None = None
    expires_at: Millis | None = None
    meta: dict[str, Any] | None = None


class TaskUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """``POST /task/{id}/update`` body: omitted keys keep their value.

    ``meta`` replaces the stored object, unless written ``{"$update": {...}}``, which
    merges into it.
    """

    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    bot_id: RefId | UnsetType | None = UNSET
    contact_id: RefId | UnsetType | None = UNSET
    blueprint_id: Text191 | UnsetType | None = UNSET
    schedule: Text191 | UnsetType | None = UNSET
    timezone: Timezone | UnsetType | None = UNSET
    session_duration: SessionDuration | UnsetType | None = UNSET
    max_iterations: MaxIterations | UnsetType | None = UNSET
    max_time: MaxTime | UnsetType | None = UNSET
    expires_at: Millis | UnsetType | None = UNSET
    meta: dict[str, Any] | UnsetType | None = UNSET


class TaskOut(msgspec.Struct, rename="camel"):
    """The task object of fetch and list; every key always present, unset ones ``null``."""

    id: str
    name: str
    description: str
    bot_id: str | None
    contact_id: str | None
    blueprint_id: str | None
    schedule: str | None
    timezone: str | None
    session_duration: int | None
    max_iterations: int | None
    max_time: int | None
    status: TaskStatus
    outcome: TaskOutcome
    last_run_at: int | None
    next_run_at: int | None
    expires_at: int | None
    meta: dict[str, Any] | None
    created_at: int
    updated_at: int


class TaskExportItem(msgspec.Struct, rename="camel"):
    """One exported task; field order is the CSV column order, ``meta`` last."""

    id: str
    name: str
    description: str
    contact_id: str | None
    bot_id: str | None
    schedule: str | None
    timezone: str | None
    session_duration: int | None
    max_iterations: int | None
    max_time: int | None
    created_at: int
    updated_at: int
    meta: dict[str, Any]
