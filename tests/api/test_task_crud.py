"""Task create / fetch / update / delete through real HTTP (CONTRACT §1–2)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import Api, Tenant

TASK_KEYS = {
    "id",
    "name",
    "description",
    "botId",
    "contactId",
    "blueprintId",
    "schedule",
    "timezone",
    "sessionDuration",
    "maxIterations",
    "maxTime",
    "status",
    "outcome",
    "lastRunAt",
    "nextRunAt",
    "expiresAt",
    "meta",
    "createdAt",
    "updatedAt",
}


async def create(t: Tenant, body: dict | None = None) -> str:
    r = await t.http.post("/api/v1/task/create", json=body or {})
    assert r.status_code == 200, r.text
    return r.json()["id"]


async def fetch(t: Tenant, task_id: str) -> dict:
    r = await t.http.get(f"/api/v1/task/{task_id}/fetch")
    assert r.status_code == 200, r.text
    return r.json()


def assert_error(r, status: int, code: str, message: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"message", "code"}
    assert body["code"] == code
    if message is not None:
        assert body["message"] == message


async def test_create_empty_body_gives_defaults(tenant: Tenant) -> None:
    r = await tenant.http.post("/api/v1/task/create", json={})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert list(r.json()) == ["id"] and r.json()["id"].startswith("task_")
    task = await fetch(tenant, r.json()["id"])
    assert set(task) == TASK_KEYS
    assert task["name"] == "" and task["description"] == ""
    assert task["status"] == "idle" and task["outcome"] == "pending"
    for key in (
        "botId",
        "contactId",
        "schedule",
        "timezone",
        "sessionDuration",
        "meta",
        "lastRunAt",
        "nextRunAt",
        "expiresAt",
        "maxIterations",
        "maxTime",
    ):
        assert task[key] is None, key
    assert isinstance(task["createdAt"], int) and task["createdAt"] == task["updatedAt"]


async def test_create_full_body_round_trips(tenant: Tenant) -> None:
    bot = (await tenant.http.post("/api/v1/bot/create", json={"name": "b"})).json()["id"]
    contact = (await tenant.http.post("/api/v1/contact/create", json={"name": "c"})).json()["id"]
    body = {
        "name": "Daily digest",
        "description": "Summarise the news",
        "botId": bot,
        "contactId": contact,
        "blueprintId": "bp_1",
        "schedule": "0 9 * * 1-5",
        "timezone": "Europe/Berlin",
        "sessionDuration": 60000,
        "maxIterations": 10,
        "maxTime": 120000,
        "meta": {"team": "data", "n": 3, "flag": True},
    }
    task = await fetch(tenant, await create(tenant, body))
    for key, value in body.items():
        assert task[key] == value, key
    assert task["nextRunAt"] > task["createdAt"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"foo": 1}, '"foo" is not allowed'),
        ({"sessionDuration": 3_600_001}, '"sessionDuration" must be less than or equal to 3600000'),
        ({"sessionDuration": -1}, '"sessionDuration" must be greater than or equal to 0'),
        ({"maxIterations": 100_001}, '"maxIterations" must be less than or equal to 100000'),
        ({"maxTime": 86_400_001}, '"maxTime" must be less than or equal to 86400000'),
        ({"sessionDuration": "10"}, '"sessionDuration" must be a number or null'),
        ({"name": 5}, '"name" must be a string'),
        ({"name": "x" * 192}, '"name" length must be less than or equal to 191 characters long'),
        (
            {"meta": {"_secret": 1}},
            '"meta._secret" is not allowed: meta keys must not start with "_"',
        ),
        ({"meta": []}, '"meta" must be an object or null'),
        ({"schedule": "every day"}, "Invalid schedule"),
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus"}, "Invalid timezone"),
        ({"botId": "bot_nope"}, "Bot not found"),
        ({"contactId": "contact_nope"}, "Contact not found"),
    ],
)
async def test_bad_create_is_400_and_writes_nothing(
    tenant: Tenant, body: dict, message: str
) -> None:
    r = await tenant.http.post("/api/v1/task/create", json=body)
    assert_error(r, 400, "BAD_REQUEST", message)
    listed = (await tenant.http.get("/api/v1/task/list")).json()
    assert listed["items"] == []


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        (b"{bad", {"content-type": "application/json"}, "Invalid JSON body"),
        (b"[1, 2]", {"content-type": "application/json"}, "Request body must be a JSON object"),
        (b'"text"', {"content-type": "application/json"}, "Request body must be a JSON object"),
        (b"", {"content-type": "application/json"}, "Request body must be a JSON object"),
        (b"{}", {"content-type": "text/plain"}, '"Content-Type" must be application/json'),
        (b"{}", {}, '"Content-Type" must be application/json'),
    ],
)
async def test_malformed_bodies(
    tenant: Tenant, content: bytes, headers: dict, message: str
) -> None:
    r = await tenant.http.post("/api/v1/task/create", content=content, headers=headers)
    assert_error(r, 400, "BAD_REQUEST", message)


async def test_request_body_is_bounded(tenant: Tenant) -> None:
    big = b'{"description": "' + b"x" * (1024 * 1024) + b'"}'
    r = await tenant.http.post(
        "/api/v1/task/create", content=big, headers={"content-type": "application/json"}
    )
    assert_error(r, 400, "BAD_REQUEST", "Request body must be at most 1048576 bytes")


async def test_oversized_meta_is_rejected(tenant: Tenant) -> None:
    r = await tenant.http.post("/api/v1/task/create", json={"meta": {"blob": "x" * 70_000}})
    assert_error(r, 400, "BAD_REQUEST", '"meta" must be at most 65536 bytes of JSON')


async def test_blank_schedule_is_stored_as_null(tenant: Tenant) -> None:
    task = await fetch(tenant, await create(tenant, {"schedule": ""}))
    assert task["schedule"] is None and task["nextRunAt"] is None


async def test_update_is_partial(tenant: Tenant) -> None:
    task_id = await create(tenant, {"name": "a", "description": "d", "sessionDuration": 1000})
    before = await fetch(tenant, task_id)
    r = await tenant.http.post(f"/api/v1/task/{task_id}/update", json={"name": "b"})
    assert r.status_code == 200 and r.json() == {"id": task_id}
    after = await fetch(tenant, task_id)
    assert after["name"] == "b" and after["description"] == "d"
    assert after["sessionDuration"] == 1000
    assert after["updatedAt"] >= before["updatedAt"]
    r = await tenant.http.post(f"/api/v1/task/{task_id}/update", json={"sessionDuration": None})
    assert (await fetch(tenant, task_id))["sessionDuration"] is None


async def test_meta_replace_and_merge(tenant: Tenant) -> None:
    task_id = await create(tenant, {"meta": {"a": 1, "b": 2}})
    await tenant.http.post(f"/api/v1/task/{task_id}/update", json={"meta": {"c": 3}})
    assert (await fetch(tenant, task_id))["meta"] == {"c": 3}
    await tenant.http.post(
        f"/api/v1/task/{task_id}/update", json={"meta": {"$update": {"d": 4, "c": 5}}}
    )
    assert (await fetch(tenant, task_id))["meta"] == {"c": 5, "d": 4}
    r = await tenant.http.post(
        f"/api/v1/task/{task_id}/update", json={"meta": {"$update": {"_x": 1}}}
    )
    assert_error(r, 400, "BAD_REQUEST")
    assert (await fetch(tenant, task_id))["meta"] == {"c": 5, "d": 4}


async def test_next_run_is_recomputed_only_when_schedule_or_timezone_sent(
    api: Api, tenant: Tenant
) -> None:
    task_id = await create(tenant, {"schedule": "hourly"})
    first = await fetch(tenant, task_id)
    assert first["nextRunAt"] - first["createdAt"] in range(3_599_000, 3_600_001)
    api.clock.advance(timedelta(minutes=10))
    await tenant.http.post(f"/api/v1/task/{task_id}/update", json={"name": "renamed"})
    assert (await fetch(tenant, task_id))["nextRunAt"] == first["nextRunAt"]
    await tenant.http.post(f"/api/v1/task/{task_id}/update", json={"schedule": "hourly"})
    moved = await fetch(tenant, task_id)
    # Ten minutes on the test clock, plus however long the requests took in real time.
    assert moved["nextRunAt"] - first["nextRunAt"] in range(599_000, 610_001)
    await tenant.http.post(f"/api/v1/task/{task_id}/update", json={"schedule": "never"})
    assert (await fetch(tenant, task_id))["nextRunAt"] is None


async def test_update_validation_changes_nothing(tenant: Tenant) -> None:
    task_id = await create(tenant, {"name": "keep", "schedule": "daily"})
    before = await fetch(tenant, task_id)
    for body in (
        {"schedule": "nope"},
        {"timezone": "Nowhere/City"},
        {"bogus": 1},
        {"botId": "bot_x"},
    ):
        r = await tenant.http.post(f"/api/v1/task/{task_id}/update", json=body)
        assert_error(r, 400, "BAD_REQUEST")
    assert await fetch(tenant, task_id) == before


async def test_delete_then_everything_is_404(api: Api, tenant: Tenant) -> None:
    task_id = await create(tenant, {"schedule": "hourly"})
    r = await tenant.http.post(f"/api/v1/task/{task_id}/delete", json={})
    assert r.status_code == 200 and r.json() == {"id": task_id}
    assert_error(await tenant.http.get(f"/api/v1/task/{task_id}/fetch"), 404, "NOT_FOUND")
    for action in ("update", "trigger", "delete", "cancel"):
        r = await tenant.http.post(f"/api/v1/task/{task_id}/{action}", json={})
        assert_error(r, 404, "NOT_FOUND")
    assert task_id not in await api.gateway.list_task_deployments()


async def test_trigger_and_cancel(api: Api, tenant: Tenant) -> None:
    task_id = await create(tenant, {"schedule": "never"})
    r = await tenant.http.post(f"/api/v1/task/{task_id}/trigger", json={})
    assert r.status_code == 200 and r.json() == {"id": task_id}
    runs = await api.gateway.read_runs(task_id)
    assert len(runs) == 1
    # Triggers within the same UTC minute merge into one run.
    await tenant.http.post(f"/api/v1/task/{task_id}/trigger", json={})
    assert len(await api.gateway.read_runs(task_id)) == 1
    assert (await fetch(tenant, task_id))["nextRunAt"] is None
    r = await tenant.http.post(f"/api/v1/task/{task_id}/cancel", json={})
    assert r.status_code == 200 and r.json() == {"id": task_id}
    assert not any(run.active for run in await api.gateway.read_runs(task_id))
    # Cancel with nothing to cancel is still a 200.
    r = await tenant.http.post(f"/api/v1/task/{task_id}/cancel", json={})
    assert r.status_code == 200


async def test_unknown_ids_are_404(tenant: Tenant) -> None:
    assert_error(await tenant.http.get("/api/v1/task/task_nope/fetch"), 404, "NOT_FOUND")
    for action in ("update", "delete", "trigger", "cancel"):
        assert_error(
            await tenant.http.post(f"/api/v1/task/task_nope/{action}", json={}), 404, "NOT_FOUND"
        )


async def test_delete_trigger_cancel_bodies_must_be_empty_objects(tenant: Tenant) -> None:
    task_id = await create(tenant)
    r = await tenant.http.post(f"/api/v1/task/{task_id}/delete", json={"force": True})
    assert_error(r, 400, "BAD_REQUEST", '"force" is not allowed')
    assert (await fetch(tenant, task_id))["id"] == task_id


async def test_expired_task_is_gone(api: Api, tenant: Tenant) -> None:
    now_ms = int(api.clock().timestamp() * 1000)
    task_id = await create(tenant, {"expiresAt": now_ms + 60_000})
    assert (await fetch(tenant, task_id))["expiresAt"] == now_ms + 60_000
    api.clock.advance(timedelta(minutes=2))
    assert_error(await tenant.http.get(f"/api/v1/task/{task_id}/fetch"), 404, "NOT_FOUND")
    assert (await tenant.http.get("/api/v1/task/list")).json()["items"] == []


async def test_idempotency_key_replays_the_first_response(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "create-once"}
    first = await tenant.http.post("/api/v1/task/create", json={"name": "x"}, headers=headers)
    second = await tenant.http.post("/api/v1/task/create", json={"name": "x"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert second.headers.get("idempotent-replayed") == "true"
    items = (await tenant.http.get("/api/v1/task/list")).json()["items"]
    assert len(items) == 1
    # A different key is a different request.
    third = await tenant.http.post(
        "/api/v1/task/create", json={"name": "x"}, headers={"Idempotency-Key": "other"}
    )
    assert third.json()["id"] != first.json()["id"]


async def test_idempotency_keys_are_per_account(tenant: Tenant, other_tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    a = await tenant.http.post("/api/v1/task/create", json={}, headers=headers)
    b = await other_tenant.http.post("/api/v1/task/create", json={}, headers=headers)
    assert a.json()["id"] != b.json()["id"]


async def test_trigger_over_quota_is_429(api: Api, tenant: Tenant) -> None:
    from sqlalchemy import update

    from api.db.engine import Database, create_engine
    from api.db.models import Account, Task

    busy = await create(tenant)
    idle = await create(tenant)
    db = Database(create_engine(api.database_url))
    try:
        async with db.transaction() as session:
            await session.execute(
                update(Account)
                .where(Account.id == tenant.account_id)
                .values(max_concurrent_sessions=1)
            )
            await session.execute(update(Task).where(Task.id == busy).values(status="running"))
    finally:
        await db.dispose()
    r = await tenant.http.post(f"/api/v1/task/{idle}/trigger", json={})
    assert_error(r, 429, "LIMITS_REACHED", "Concurrent session limit reached (1)")
    assert r.headers["retry-after"] == "30"
    assert await api.gateway.read_runs(idle) == []
    # The running task itself may still be triggered: that run only queues behind it.
    r = await tenant.http.post(f"/api/v1/task/{busy}/trigger", json={})
    assert r.status_code == 200
