"""Shapes shared by every resource on the wire, and msgspec error wording.

msgspec reports validation failures in its own words (``Expected `int` <= 5 - at
`$.x```); the contract wants ``"x" must be less than or equal to 5``. The translation
lives here, once.
"""

from __future__ import annotations

import re
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")

ID_MAX = 64
NAME_MAX = 191
DESCRIPTION_MAX = 16_384
META_MAX_BYTES = 64 * 1024
TAKE_MAX = 100


class ErrorBody(msgspec.Struct):
    """Every error response: ``{"message", "code"}``."""

    message: str
    code: str


class IdResponse(msgspec.Struct):
    """Create/update/delete/trigger/cancel answer: ``{"id"}`` and nothing else."""

    id: str


class Page(msgspec.Struct, Generic[T]):
    """One page of a list; ``cursor`` is the last item's id, omitted when empty."""

    items: list[T]
    cursor: str | msgspec.UnsetType = msgspec.UNSET


class StreamItem(msgspec.Struct, Generic[T], kw_only=True):
    """One JSONL line of a list stream: ``{"type":"item","data":{...}}``."""

    type: str = "item"
    data: T


class StreamError(msgspec.Struct, kw_only=True):
    """An error that happens after a stream has started, sent in-band."""

    type: str = "error"
    data: ErrorBody


class EmptyBody(msgspec.Struct, forbid_unknown_fields=True):
    """The ``{}`` body of delete, trigger and cancel."""


_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")
_BOUND = re.compile(r"Expected `(?P<type>[^`]+)` (?P<op><=|>=|<|>) (?P<n>-?[\d.]+)")
_LENGTH = re.compile(r"Expected `(?P<type>[^`]+)` of length (?P<op><=|>=) (?P<n>\d+)")
_TYPE = re.compile(r"Expected `(?P<type>[^`]+)`, got `(?P<got>[^`]+)`")
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")

_OPS = {
    "<=": "less than or equal to",
    ">=": "greater than or equal to",
    "<": "less than",
    ">": "greater than",
}
_TYPE_WORDS = {
    "int": "a number",
    "float": "a number",
    "str": "a string",
    "bool": "a boolean",
    "object": "an object",
    "array": "an array",
}


def _type_words(spec: str) -> str:
    parts = [p.strip() for p in spec.split("|") if p.strip() != "null"]
    words = [_TYPE_WORDS.get(p, p) for p in parts]
    text = " or ".join(dict.fromkeys(words))
    return f"{text} or null" if "null" in spec else text


def field_from_path(path: str) -> str:
    """``$.meta.a`` → ``meta.a``; ``$.items[0]`` → ``items[0]``."""
    return path.lstrip(".")


def describe_validation_error(message: str, field: str | None = None) -> str:
    """Rewrite a msgspec validation message in the contract's words.

    ``field`` is the dotted field name when the caller already knows it (Litestar
    splits it off); otherwise it is read from msgspec's `` - at `$.x``` suffix.
    """
    path_match = _PATH.search(message)
    if path_match:
        field = field or field_from_path(path_match.group("path"))
        message = message[: path_match.start()]
    if m := _UNKNOWN.fullmatch(message):
        unknown = m.group("field")
        return f'"{f"{field}." if field else ""}{unknown}" is not allowed'
    name = f'"{field}"' if field else "Request body"
    if m := _LENGTH.fullmatch(message):
        op = _OPS[m.group("op")]
        return f"{name} length must be {op} {m.group('n')} characters long"
    if m := _BOUND.fullmatch(message):
        return f"{name} must be {_OPS[m.group('op')]} {m.group('n')}"
    if m := _TYPE.fullmatch(message):
        if not field:
            return "Request body must be a JSON object"
        return f"{name} must be {_type_words(m.group('type'))}"
    return f"{name}: {message}" if field else message


def decode_error_message(error: msgspec.ValidationError | msgspec.DecodeError) -> str:
    """The contract message for a failed ``msgspec`` decode of a request body."""
    if isinstance(error, msgspec.ValidationError):
        return describe_validation_error(str(error))
    return "Invalid JSON body"


def encode(value: Any) -> bytes:
    """JSON bytes of a Struct or builtin value."""
    return msgspec.json.encode(value)
