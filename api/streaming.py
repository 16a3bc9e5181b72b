"""Streamed list bodies (JSONL, CSV) that write as they read.

The first page is read before the response starts, so a bad request (an unknown cursor,
a database that is down) still gets a proper status code. An error after the first byte
is sent in-band as a ``{"type":"error"}`` line, as the contract says.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import msgspec
import yaml

from api.errors import ApiError
from api.wire import ErrorBody, StreamError, StreamItem

log = logging.getLogger(__name__)

RowT = TypeVar("RowT")

_BATCH = 100
# libyaml's emitter is ~5x faster than the pure-Python one (CSV export time is dominated
# by YAML); it needs a finite width, so "no folding" is the largest width it accepts.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_NO_FOLDING = 2**31 - 1


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
    text = yaml.dump(
        value,
        Dumper=_YAML_DUMPER,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=_NO_FOLDING,
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
    """A header of the first item's wire keys (unquoted), then every value double-quoted."""
    header_sent = False

    def encode(batch: list[Any]) -> bytes:
        nonlocal header_sent
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for row in batch:
            item = convert(row)
            if not header_sent:
                out.write(",".join(item.__struct_encode_fields__) + "\n")
                header_sent = True
            writer.writerow(_csv_cell(getattr(item, name)) for name in item.__struct_fields__)
        return out.getvalue().encode()

    return _batched(rows, encode)
