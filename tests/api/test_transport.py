"""Auth, methods, unknown routes and account isolation (CONTRACT §1)."""

from __future__ import annotations

import httpx

from tests.api.test_task_crud import assert_error, create
from tests.conftest import Api, Tenant


async def test_missing_and_bad_tokens_are_401(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as anonymous:
        assert_error(await anonymous.get("/api/v1/task/list"), 401, "NOT_AUTHENTICATED")
        r = await anonymous.get("/api/v1/task/list", headers={"Authorization": "Bearer nope"})
        assert_error(r, 401, "NOT_AUTHENTICATED")
        r = await anonymous.post(
            "/api/v1/task/create", json={}, headers={"Authorization": "Basic x"}
        )
        assert_error(r, 401, "NOT_AUTHENTICATED")


async def test_wrong_method_is_405(tenant: Tenant) -> None:
    assert_error(await tenant.http.get("/api/v1/task/create"), 405, "METHOD_NOT_ALLOWED")
    assert_error(await tenant.http.post("/api/v1/task/list", json={}), 405, "METHOD_NOT_ALLOWED")
    assert_error(await tenant.http.delete("/api/v1/task/task_x/fetch"), 405, "METHOD_NOT_ALLOWED")
    assert_error(
        await tenant.http.put("/api/v1/task/task_x/update", json={}), 405, "METHOD_NOT_ALLOWED"
    )


async def test_unknown_route_is_404(tenant: Tenant) -> None:
    assert_error(await tenant.http.get("/api/v1/nothing"), 404, "NOT_FOUND")


async def test_other_accounts_tasks_do_not_exist(tenant: Tenant, other_tenant: Tenant) -> None:
    bot = (await other_tenant.http.post("/api/v1/bot/create", json={})).json()["id"]
    contact = (await other_tenant.http.post("/api/v1/contact/create", json={})).json()["id"]
    theirs = await create(other_tenant, {"botId": bot, "contactId": contact})
    assert_error(await tenant.http.get(f"/api/v1/task/{theirs}/fetch"), 404, "NOT_FOUND")
    for action in ("update", "delete", "trigger", "cancel"):
        assert_error(
            await tenant.http.post(f"/api/v1/task/{theirs}/{action}", json={}), 404, "NOT_FOUND"
        )
    assert_error(await tenant.http.get(f"/api/v1/bot/{bot}/fetch"), 404, "NOT_FOUND")
    assert_error(await tenant.http.get(f"/api/v1/contact/{contact}/fetch"), 404, "NOT_FOUND")
    assert_error(await tenant.http.get(f"/api/v1/contact/{contact}/task/list"), 404, "NOT_FOUND")
    # Their bot and contact cannot be referenced either.
    r = await tenant.http.post("/api/v1/task/create", json={"botId": bot})
    assert_error(r, 400, "BAD_REQUEST", "Bot not found")
    r = await tenant.http.post("/api/v1/task/create", json={"contactId": contact})
    assert_error(r, 400, "BAD_REQUEST", "Contact not found")
    for path in (
        "/api/v1/task/list",
        "/api/v1/task/export",
        "/api/v1/bot/list",
        "/api/v1/contact/list",
    ):
        assert (await tenant.http.get(path)).json()["items"] == []
    # Their cursor means nothing here.
    r = await tenant.http.get("/api/v1/task/list", params={"cursor": theirs})
    assert_error(r, 400, "BAD_REQUEST")
    # And the owner still sees it, unchanged.
    assert (await other_tenant.http.get(f"/api/v1/task/{theirs}/fetch")).status_code == 200
