"""Streamed list bodies (JSONL, CSV) that write as they read.

The first page is read before the response starts, so a bad request (an unknown cursor,
a database that is down) still gets a proper status code. An error after the first byte
is sent in-band as a ``{"type":"error"}`` line, as the contract says.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

import msgspec
import yaml

from api.errors import ApiError
from api.wire import ErrorBody, StreamError, StreamItem

log = logging.getLogger(__name__)

RowT = TypeVar("RowT")

_BATCH = 100


async def primed(rows: AsyncIterator[RowT]) -> AsyncIterator[RowT]:
    """Read the first row now (errors surface as a normal response), then the rest lazily."""
    try:
        first = await anext(rows)
    except StopAsyncIteration:

        async def empty() -> AsyncIterator[RowT]:
            return
            yield

        return empty()

    async def chained() -> AsyncIterator[RowT]:
        yield first
        async for row in rows:
            yield row

    return chained()


async def _batched(
    rows: AsyncIterator[Any], encode: Callable[[list[Any]], bytes]
) -> AsyncIterator[bytes]:
    """Encode rows in small batches; on a failure mid-stream, end with an error line."""
    batch: list[Any] = []
    try:
        async for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH:
                yield encode(batch)
                batch = []
        if batch:
            yield encode(batch)
    except Exception as error:  # the status line is gone: report in-band
        if batch:
            yield encode(batch)
        if isinstance(error, ApiError):
            body = ErrorBody(message=error.message, code=error.code)
        else:
            log.exception("stream failed after the first byte")
            body = ErrorBody(message="An unexpected error occurred", code="GENERIC_ERROR")
        yield msgspec.json.encode(StreamError(data=body)) + b"\n"


def jsonl_body(rows: AsyncIterator[Any], convert: Callable[[Any], Any]) -> AsyncIterator[bytes]:
    """``{"type":"item","data":{...}}`` lines, one per row."""
    encoder = msgspec.json.Encoder()

    def encode(batch: list[Any]) -> bytes:
        buffer = bytearray()
        for row in batch:
            encoder.encode_into(StreamItem(data=convert(row)), buffer, len(buffer))
            buffer.extend(b"\n")
        return bytes(buffer)

    return _batched(rows, encode)


def yaml_text(value: dict[str, Any]) -> str:
    """Block-style YAML without line folding; ``{}`` for an empty mapping."""
    if not value:
        return "{}"
    text = yaml.safe_dump(
        value, default_flow_style=False, sort_keys=False, allow_unicode=True, width=math.inf
    )
    return text.rstrip("\n")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return yaml_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_body(
    rows: AsyncIterator[Any], convert: Callable[[Any], msgspec.Struct]
) -> AsyncIterator[bytes]:
    """A header of the first item's keys (unquoted), then every value double-quoted."""
    state: dict[str, bool] = {"header": False}

    def encode(batch: list[Any]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for row in batch:
            item = convert(row)
            fields: Iterable[str] = msgspec.structs.asdict(item).keys()
            if not state["header"]:
                names = [_wire_name(item, f) for f in fields]
                out.write(",".join(names) + "\n")
                state["header"] = True
            writer.writerow(_csv_cell(getattr(item, f)) for f in item.__struct_fields__)
        return out.getvalue().encode()

    return _batched(rows, encode)


def _wire_name(item: msgspec.Struct, field: str) -> str:
    index = item.__struct_fields__.index(field)
    return item.__struct_encode_fields__[index]
