"""Contact shapes on the wire (CONTRACT §6)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from api.wire import DESCRIPTION_MAX, NAME_MAX

Name = Annotated[str, Meta(max_length=NAME_MAX)]
Text = Annotated[str, Meta(max_length=DESCRIPTION_MAX)]
Short = Annotated[str, Meta(max_length=NAME_MAX)]
Phone = Annotated[str, Meta(max_length=64)]


class ContactCreate(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """``POST /contact/create`` body."""

    name: Name = ""
    description: Text = ""
    fingerprint: Short | None = None
    email: Short | None = None
    phone: Phone | None = None
    nick: Short | None = None
    meta: dict[str, Any] | None = None


class ContactUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """``POST /contact/{id}/update`` body: omitted keys keep their value."""

    name: Name | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    fingerprint: Short | UnsetType | None = UNSET
    email: Short | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    nick: Short | UnsetType | None = UNSET
    meta: dict[str, Any] | UnsetType | None = UNSET


class ContactOut(msgspec.Struct, rename="camel"):
    """The contact object of fetch and list."""

    id: str
    name: str
    description: str
    fingerprint: str | None
    email: str | None
    phone: str | None
    nick: str | None
    meta: dict[str, Any] | None
    created_at: int
    updated_at: int
