"""Validation and merging of the free-form ``meta`` object."""

from __future__ import annotations

from typing import Any

import msgspec

from api.errors import BadRequest
from api.wire import META_MAX_BYTES

MERGE_KEY = "$update"


def check_meta(meta: dict[str, Any] | None, field: str = "meta") -> dict[str, Any] | None:
    """Reject reserved keys (leading ``_`` or ``$``) and oversized objects; return ``meta``."""
    if meta is None:
        return None
    for key in meta:
        if key.startswith("_"):
            raise BadRequest(f'"{field}.{key}" is not allowed: meta keys must not start with "_"')
        if key.startswith("$"):
            raise BadRequest(f'"{field}.{key}" is not allowed')
    size = len(msgspec.json.encode(meta))
    if size > META_MAX_BYTES:
        raise BadRequest(f'"{field}" must be at most {META_MAX_BYTES} bytes of JSON')
    return meta


def apply_meta_update(
    stored: dict[str, Any] | None, sent: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The new meta of an update: ``{"$update": {...}}`` merges, anything else replaces."""
    if sent is not None and MERGE_KEY in sent:
        if len(sent) != 1:
            raise BadRequest(f'"meta.{MERGE_KEY}" must be the only key of "meta"')
        patch = sent[MERGE_KEY]
        if not isinstance(patch, dict):
            raise BadRequest(f'"meta.{MERGE_KEY}" must be an object')
        check_meta(patch, f"meta.{MERGE_KEY}")
        return check_meta({**(stored or {}), **patch})
    return check_meta(sent)
