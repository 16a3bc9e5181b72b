"""Opaque, unguessable resource ids with a type prefix (``task_…``, ``bot_…``)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
# 22 base-62 characters carry ~131 bits of randomness: unguessable, and short enough to read.
_LENGTH = 22


def new_id(prefix: str) -> str:
    """Return a fresh id such as ``task_3kTMd9...``."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
    return f"{prefix}_{body}"
