"""Bot shapes on the wire (CONTRACT §6)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from api.wire import DESCRIPTION_MAX, NAME_MAX

Name = Annotated[str, Meta(max_length=NAME_MAX)]
Text = Annotated[str, Meta(max_length=DESCRIPTION_MAX)]
Backstory = Annotated[str, Meta(max_length=65_536)]
Short = Annotated[str, Meta(max_length=NAME_MAX)]
Visibility = Annotated[str, Meta(max_length=32)]


class BotCreate(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """``POST /bot/create`` body. ``model`` is ``provider/model`` (see the README)."""

    name: Name = ""
    description: Text = ""
    backstory: Backstory = ""
    model: Short | None = None
    dataset_id: Short | None = None
    skillset_id: Short | None = None
    privacy: bool | None = None
    moderation: bool | None = None
    visibility: Visibility | None = None
    meta: dict[str, Any] | None = None


class BotUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """``POST /bot/{id}/update`` body: omitted keys keep their value."""

    name: Name | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    backstory: Backstory | UnsetType = UNSET
    model: Short | UnsetType | None = UNSET
    dataset_id: Short | UnsetType | None = UNSET
    skillset_id: Short | UnsetType | None = UNSET
    privacy: bool | UnsetType | None = UNSET
    moderation: bool | UnsetType | None = UNSET
    visibility: Visibility | UnsetType | None = UNSET
    meta: dict[str, Any] | UnsetType | None = UNSET


class BotOut(msgspec.Struct, rename="camel"):
    """The bot object of fetch and list."""

    id: str
    name: str
    description: str
    backstory: str
    model: str | None
    dataset_id: str | None
    skillset_id: str | None
    privacy: bool | None
    moderation: bool | None
    visibility: str | None
    meta: dict[str, Any] | None
    created_at: int
    updated_at: int
