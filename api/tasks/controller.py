"""``/api/v1/task/…`` routes (CONTRACT §2–3): parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.response import Response

from api.errors import BadRequest
from api.executions.schemas import ExecutionCancelled, ExecutionOut
from api.executions.service import ExecutionService
from api.listing import Format, build_list_query, negotiate, split_csv
from api.routing import errors, list_response, page_response, stream_response
from api.tasks.schemas import TaskCreate, TaskExportItem, TaskOut, TaskUpdate
from api.tasks.service import TaskService, to_export
from api.wire import EmptyBody, IdResponse, Page

ExportFormats = (Format.JSON, Format.JSONL, Format.CSV)
_STATUS = {"idle", "running", "canceled"}


def task_filters(bot_id: str | None, contact_id: str | None, status: str | None) -> dict[str, Any]:
    """Column filters of a task list request."""
    if status is not None and status not in _STATUS:
        raise BadRequest('"status" must be one of idle, running')
    return {"bot_id": split_csv(bot_id), "contact_id": split_csv(contact_id), "status": status}


class TaskController(Controller):
    """Tasks: a bot, a schedule and a session time limit."""

    path = "/api/v1/task"
    tags = ["task"]

    @post("/create", status_code=200, responses=errors(400))
    async def create(self, data: TaskCreate, tasks: TaskService, account_id: str) -> IdResponse:
        """Create a task; ``{}`` is a valid body."""
        return IdResponse(id=await tasks.create(account_id, data))

    @get("/list", responses=errors(400))
    async def list(
        self,
        request: Request[Any, Any, Any],
        tasks: TaskService,
        account_id: str,
        take: int | None = Parameter(default=None, description="Page size, clamped to 1…100"),
        order: str | None = Parameter(default=None, description="asc or desc (default)"),
        cursor: str | None = Parameter(default=None, description="id of the last item seen"),
        bot_id: str | None = Parameter(query="botId", default=None, description="comma = any of"),
        contact_id: str | None = Parameter(query="contactId", default=None),
        status: str | None = Parameter(default=None, description="idle or running"),
    ) -> Response[Page[TaskOut]]:
        """List tasks: a JSON page, or all pages as JSONL (``Accept: application/jsonl``).

        ``meta.KEY=VALUE`` and ``meta[KEY]=VALUE`` filter by meta equality.
        """
        filters = task_filters(bot_id, contact_id, status)
        return await list_response(request, tasks, account_id, filters)

    @get("/export", responses=errors(400))
    async def export(
        self,
        request: Request[Any, Any, Any],
        tasks: TaskService,
        account_id: str,
        take: int | None = Parameter(default=None),
        order: str | None = Parameter(default=None),
        cursor: str | None = Parameter(default=None),
    ) -> Response[Page[TaskExportItem]]:
        """Export tasks as a JSON page, or all of them as JSONL or CSV."""
        fmt = negotiate(request.headers.get("accept"), ExportFormats)
        query = build_list_query(request.query_params, stream=fmt is not Format.JSON)
        if fmt is Format.JSON:
            rows = await tasks.page(account_id, query)
            return page_response([to_export(r) for r in rows], lambda item: item.id)
        return await stream_response(fmt, tasks.stream(account_id, query), to_export)

    @get("/{task_id:str}/fetch", responses=errors(404))
    async def fetch(self, task_id: str, tasks: TaskService, account_id: str) -> TaskOut:
        """Fetch one task."""
        return await tasks.fetch(account_id, task_id)

    @post("/{task_id:str}/update", status_code=200, responses=errors(400, 404))
    async def update(
        self, task_id: str, data: TaskUpdate, tasks: TaskService, account_id: str
    ) -> IdResponse:
        """Update a task partially; ``meta: {"$update": {...}}`` merges."""
        return IdResponse(id=await tasks.update(account_id, task_id, data))

    @post("/{task_id:str}/delete", status_code=200, responses=errors(400, 404))
    async def delete(
        self, task_id: str, data: EmptyBody, tasks: TaskService, account_id: str
    ) -> IdResponse:
        """Delete a task: future runs stop, runs not yet started are cancelled."""
        return IdResponse(id=await tasks.delete(account_id, task_id))

    @post("/{task_id:str}/trigger", status_code=200, responses=errors(400, 404, 429, 503))
    async def trigger(
        self, task_id: str, data: EmptyBody, tasks: TaskService, account_id: str
    ) -> IdResponse:
        """Queue one run now (triggers within one UTC minute merge into one run)."""
        return IdResponse(id=await tasks.trigger(account_id, task_id))

    @get("/{task_id:str}/execution/list", responses=errors(400, 404))
    async def executions(
        self,
        request: Request[Any, Any, Any],
        task_id: str,
        tasks: TaskService,
        executions: ExecutionService,
        account_id: str,
    ) -> Response[Page[ExecutionOut]]:
        """The runs of one task, newest first: a JSON page or all pages as JSONL."""
        await tasks.get(account_id, task_id)
        return await list_response(request, executions, account_id, {"task_id": task_id})

    @post(
        "/{task_id:str}/execution/{execution_id:str}/cancel",
        status_code=200,
        responses=errors(400, 404, 503),
    )
    async def cancel_execution(
        self,
        task_id: str,
        execution_id: str,
        data: EmptyBody,
        tasks: TaskService,
        executions: ExecutionService,
        account_id: str,
    ) -> ExecutionCancelled:
        """Cancel one run of the task (a finished one is left as it is)."""
        await tasks.get(account_id, task_id)
        await executions.cancel(account_id, task_id, execution_id)
        return ExecutionCancelled(id=execution_id, task_id=task_id)

    @post("/{task_id:str}/cancel", status_code=200, responses=errors(400, 404, 503))
    async def cancel(
        self, task_id: str, data: EmptyBody, tasks: TaskService, account_id: str
    ) -> IdResponse:
        """Cancel the task's running and queued runs."""
        return IdResponse(id=await tasks.cancel(account_id, task_id))
