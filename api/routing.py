"""Conventions every controller shares: documented errors, POST-only mutations, formats."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec
from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response, Stream

from api.errors import BadRequest
from api.listing import Format, build_list_query, negotiate
from api.resources import ResourceService
from api.streaming import csv_body, jsonl_body, primed
from api.wire import ErrorBody, Page, decode_error_message


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a route can answer (always 401 too)."""
    descriptions = {
        400: "Bad request: invalid JSON, unknown key, out-of-range value",
        401: "Missing or unknown bearer token",
        404: "Unknown id, or an id of another account",
        429: "Account quota or rate limit reached (see Retry-After)",
        503: "A dependency is down; nothing was changed",
    }
    return {
        code: ResponseSpec(data_container=ErrorBody, description=descriptions[code])
        for code in sorted({401, *codes})
    }


async def validate_json_body(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: every POST body is a JSON object of the route's exact shape.

    Litestar converts bodies leniently (``"10"`` would become ``10``); the contract wants
    wrong types rejected, so the body is decoded strictly here first, with msgspec's
    error rewritten in the contract's words. Litestar's own decode then cannot fail.
    """
    if request.method != "POST":
        return
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise BadRequest('"Content-Type" must be application/json')
    field = request.route_handler.parsed_data_field
    if field is None:
        return
    body = await request.body()
    try:
        msgspec.json.decode(body, type=field.annotation, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        if not body.strip():
            raise BadRequest("Request body must be a JSON object") from None
        raise BadRequest(decode_error_message(error)) from None


def page_response(items: list[Any], cursor_of: Callable[[Any], str]) -> Response[Page[Any]]:
    """The JSON envelope ``{"items", "cursor"}``; no cursor when the page is empty."""
    page: Page[Any] = Page(items=items)
    if items:
        page.cursor = cursor_of(items[-1])
    return Response(page, media_type="application/json")


async def stream_response(
    fmt: Format, rows: AsyncIterator[Any], convert: Callable[[Any], Any]
) -> Response[Any]:
    """A JSONL or CSV stream of ``rows``; the first page is read before the status line."""
    first_rows = await primed(rows)
    if fmt is Format.CSV:
        return Stream(csv_body(first_rows, convert), media_type="text/csv")
    return Stream(jsonl_body(first_rows, convert), media_type="application/jsonl")


async def list_response(
    request: Request[Any, Any, Any],
    service: ResourceService[Any, Any],
    account_id: str,
    filters: Mapping[str, Any] | None = None,
) -> Response[Page[Any]]:
    """A list route: a JSON page or a JSONL stream of every page, meta filters included."""
    fmt = negotiate(request.headers.get("accept"), (Format.JSON, Format.JSONL))
    query = build_list_query(request.query_params, stream=fmt is not Format.JSON, filters=filters)
    if fmt is Format.JSON:
        rows = await service.page(account_id, query)
        return page_response([service.to_out(r) for r in rows], lambda item: item.id)
    return await stream_response(fmt, service.stream(account_id, query), service.to_out)
