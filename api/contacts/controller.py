"""``/api/v1/contact/…`` routes (CONTRACT §6), including a contact's task list."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Response

from api.contacts.schemas import ContactCreate, ContactOut, ContactUpdate
from api.contacts.service import ContactService
from api.routing import errors, list_response
from api.tasks.controller import task_filters
from api.tasks.schemas import TaskOut
from api.tasks.service import TaskService
from api.wire import EmptyBody, IdResponse, Page


class ContactController(Controller):
    """Contacts: the people tasks work for."""

    path = "/api/v1/contact"
    tags = ["contact"]

    @post("/create", status_code=200, responses=errors(400))
    async def create(
        self, data: ContactCreate, contacts: ContactService, account_id: str
    ) -> IdResponse:
        """Create a contact."""
        return IdResponse(id=await contacts.create(account_id, data))

    @get("/list", responses=errors(400))
    async def list(
        self, request: Request[Any, Any, Any], contacts: ContactService, account_id: str
    ) -> Response[Page[ContactOut]]:
        """List contacts: a JSON page, or all pages as JSONL."""
        return await list_response(request, contacts, account_id)

    @get("/{contact_id:str}/fetch", responses=errors(404))
    async def fetch(self, contact_id: str, contacts: ContactService, account_id: str) -> ContactOut:
        """Fetch one contact."""
        return await contacts.fetch(account_id, contact_id)

    @post("/{contact_id:str}/update", status_code=200, responses=errors(400, 404))
    async def update(
        self, contact_id: str, data: ContactUpdate, contacts: ContactService, account_id: str
    ) -> IdResponse:
        """Update a contact partially."""
        return IdResponse(id=await contacts.update(account_id, contact_id, data))

    @post("/{contact_id:str}/delete", status_code=200, responses=errors(400, 404))
    async def delete(
        self, contact_id: str, data: EmptyBody, contacts: ContactService, account_id: str
    ) -> IdResponse:
        """Delete a contact and every task of it."""
        return IdResponse(id=await contacts.delete(account_id, contact_id))

    @get("/{contact_id:str}/task/list", responses=errors(400, 404))
    async def tasks(
        self,
        request: Request[Any, Any, Any],
        contact_id: str,
        contacts: ContactService,
        tasks: TaskService,
        account_id: str,
    ) -> Response[Page[TaskOut]]:
        """The tasks of one contact, in the task list envelope."""
        await contacts.get(account_id, contact_id)
        filters = task_filters(
            request.query_params.get("botId"), None, request.query_params.get("status")
        )
        filters["contact_id"] = (contact_id,)
        return await list_response(request, tasks, account_id, filters)
