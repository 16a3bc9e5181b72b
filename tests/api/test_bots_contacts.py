"""Bots and contacts (CONTRACT §6), and what deleting them does to tasks."""

from __future__ import annotations

from tests.api.test_task_crud import assert_error, create, fetch
from tests.conftest import Api, Tenant

BOT_KEYS = {
    "id",
    "name",
    "description",
    "backstory",
    "model",
    "meta",
    "createdAt",
    "updatedAt",
    "datasetId",
    "skillsetId",
    "privacy",
    "moderation",
    "visibility",
}
CONTACT_KEYS = {
    "id",
    "name",
    "description",
    "fingerprint",
    "email",
    "phone",
    "nick",
    "meta",
    "createdAt",
    "updatedAt",
}


async def test_bot_crud(tenant: Tenant) -> None:
    r = await tenant.http.post(
        "/api/v1/bot/create",
        json={
            "name": "Helper",
            "backstory": "You are helpful.",
            "model": "offline/echo",
            "privacy": True,
            "visibility": "private",
            "meta": {"k": "v"},
        },
    )
    assert r.status_code == 200 and list(r.json()) == ["id"]
    bot_id = r.json()["id"]
    assert bot_id.startswith("bot_")
    bot = (await tenant.http.get(f"/api/v1/bot/{bot_id}/fetch")).json()
    assert set(bot) == BOT_KEYS
    assert bot["backstory"] == "You are helpful." and bot["model"] == "offline/echo"
    await tenant.http.post(
        f"/api/v1/bot/{bot_id}/update", json={"name": "Renamed", "meta": {"$update": {"x": 1}}}
    )
    bot = (await tenant.http.get(f"/api/v1/bot/{bot_id}/fetch")).json()
    assert bot["name"] == "Renamed" and bot["meta"] == {"k": "v", "x": 1}
    assert_error(
        await tenant.http.post("/api/v1/bot/create", json={"nope": 1}),
        400,
        "BAD_REQUEST",
        '"nope" is not allowed',
    )
    listed = (await tenant.http.get("/api/v1/bot/list")).json()
    assert [b["id"] for b in listed["items"]] == [bot_id]


async def test_contact_crud(tenant: Tenant) -> None:
    r = await tenant.http.post(
        "/api/v1/contact/create", json={"name": "Ada", "email": "ada@example.org", "nick": "ada"}
    )
    contact_id = r.json()["id"]
    assert contact_id.startswith("contact_")
    contact = (await tenant.http.get(f"/api/v1/contact/{contact_id}/fetch")).json()
    assert set(contact) == CONTACT_KEYS and contact["email"] == "ada@example.org"
    await tenant.http.post(f"/api/v1/contact/{contact_id}/update", json={"phone": "+100"})
    assert (await tenant.http.get(f"/api/v1/contact/{contact_id}/fetch")).json()["phone"] == "+100"
    r = await tenant.http.get("/api/v1/contact/list", headers={"Accept": "application/jsonl"})
    assert r.text.count("\n") == 1


async def test_deleting_a_bot_keeps_its_tasks(api: Api, tenant: Tenant) -> None:
    bot_id = (await tenant.http.post("/api/v1/bot/create", json={})).json()["id"]
    task_id = await create(tenant, {"botId": bot_id})
    assert f"bot:{bot_id}" in (await api.gateway.list_task_deployments())[task_id].tags
    r = await tenant.http.post(f"/api/v1/bot/{bot_id}/delete", json={})
    assert r.json() == {"id": bot_id}
    assert (await fetch(tenant, task_id))["botId"] is None
    assert f"bot:{bot_id}" not in (await api.gateway.list_task_deployments())[task_id].tags
    assert_error(await tenant.http.get(f"/api/v1/bot/{bot_id}/fetch"), 404, "NOT_FOUND")


async def test_deleting_a_contact_deletes_its_tasks(api: Api, tenant: Tenant) -> None:
    contact_id = (await tenant.http.post("/api/v1/contact/create", json={})).json()["id"]
    doomed = await create(tenant, {"contactId": contact_id, "schedule": "hourly"})
    kept = await create(tenant)
    assert doomed in await api.gateway.list_task_deployments()
    await tenant.http.post(f"/api/v1/contact/{contact_id}/delete", json={})
    assert_error(await tenant.http.get(f"/api/v1/task/{doomed}/fetch"), 404, "NOT_FOUND")
    assert doomed not in await api.gateway.list_task_deployments()
    assert (await fetch(tenant, kept))["id"] == kept
