"""Listing, filters, streams and export (CONTRACT §3)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from tests.api.test_task_crud import assert_error, create
from tests.conftest import Tenant


async def make_tasks(t: Tenant, n: int, **body) -> list[str]:
    return [await create(t, {"name": f"t{i:03}", **body}) for i in range(n)]


async def walk(t: Tenant, **params) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        page = (await t.http.get("/api/v1/task/list", params=query)).json()
        if not page["items"]:
            assert "cursor" not in page
            return ids
        assert page["cursor"] == page["items"][-1]["id"]
        ids += [item["id"] for item in page["items"]]
        cursor = page["cursor"]


async def test_pages_walk_every_task_once_in_order(tenant: Tenant) -> None:
    created = await make_tasks(tenant, 7)
    assert await walk(tenant, take=3) == list(reversed(created))
    assert await walk(tenant, take=2, order="asc") == created
    assert await walk(tenant, take=3, order="sideways") == list(reversed(created))


async def test_take_is_clamped(tenant: Tenant) -> None:
    await make_tasks(tenant, 3)
    assert (
        len((await tenant.http.get("/api/v1/task/list", params={"take": 0})).json()["items"]) == 1
    )
    assert (
        len((await tenant.http.get("/api/v1/task/list", params={"take": -5})).json()["items"]) == 1
    )
    assert (
        len((await tenant.http.get("/api/v1/task/list", params={"take": 1000})).json()["items"])
        == 3
    )
    r = await tenant.http.get("/api/v1/task/list", params={"take": "many"})
    assert_error(r, 400, "BAD_REQUEST")


async def test_default_page_is_100(tenant: Tenant) -> None:
    await make_tasks(tenant, 105)
    page = (await tenant.http.get("/api/v1/task/list")).json()
    assert len(page["items"]) == 100


async def test_filters(tenant: Tenant) -> None:
    b1 = (await tenant.http.post("/api/v1/bot/create", json={})).json()["id"]
    b2 = (await tenant.http.post("/api/v1/bot/create", json={})).json()["id"]
    c1 = (await tenant.http.post("/api/v1/contact/create", json={})).json()["id"]
    t1 = await create(
        tenant, {"botId": b1, "meta": {"team": "data", "on": True, "n": 3, "deep": {"k": "v"}}}
    )
    t2 = await create(
        tenant, {"botId": b2, "contactId": c1, "meta": {"team": "ops", "on": False, "n": "3"}}
    )
    t3 = await create(tenant, {"meta": {"team": "true"}})

    async def ids(params) -> set[str]:
        r = await tenant.http.get("/api/v1/task/list", params=params)
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]}

    assert await ids({"botId": b1}) == {t1}
    assert await ids({"botId": f"{b1},{b2}"}) == {t1, t2}
    assert await ids({"contactId": c1}) == {t2}
    assert await ids({"status": "idle"}) == {t1, t2, t3}
    assert await ids({"status": "running"}) == set()
    assert await ids({"meta.team": "data"}) == {t1}
    assert await ids({"meta[team]": "ops"}) == {t2}
    assert await ids({"meta.on": "true"}) == {t1}
    assert await ids({"meta.on": "false"}) == {t2}
    assert await ids({"meta.team": "true"}) == set()  # a boolean filter never matches a string
    assert await ids({"meta.n": "3"}) == {t1, t2}
    assert await ids({"meta.deep.k": "v"}) == {t1}
    assert await ids({"meta[deep.k]": "v"}) == {t1}
    assert await ids({"meta.team": "data", "botId": b2}) == set()


async def test_jsonl_streams_every_page(tenant: Tenant) -> None:
    created = await make_tasks(tenant, 130)
    r = await tenant.http.get("/api/v1/task/list", headers={"Accept": "application/jsonl"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/jsonl")
    lines = r.text.splitlines(keepends=True)
    assert all(line.endswith("\n") for line in lines)
    items = [json.loads(line) for line in lines]
    assert all(set(i) == {"type", "data"} and i["type"] == "item" for i in items)
    assert [i["data"]["id"] for i in items] == list(reversed(created))
    assert lines[0].startswith('{"type":"item","data":{"id":')
    r = await tenant.http.get(
        "/api/v1/task/list",
        params={"take": 105, "order": "asc"},
        headers={"Accept": "application/jsonl"},
    )
    assert [json.loads(x)["data"]["id"] for x in r.text.splitlines()] == created[:105]


async def test_empty_results(tenant: Tenant) -> None:
    r = await tenant.http.get("/api/v1/task/list")
    assert r.json() == {"items": []}
    r = await tenant.http.get("/api/v1/task/list", headers={"Accept": "application/jsonl"})
    assert r.status_code == 200 and r.content == b""
    r = await tenant.http.get("/api/v1/task/export", headers={"Accept": "text/csv"})
    assert (
        r.status_code == 200
        and r.content == b""
        and r.headers["content-type"].startswith("text/csv")
    )


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "text/csv"])
async def test_unsupported_accept_on_list(tenant: Tenant, accept: str) -> None:
    assert_error(
        await tenant.http.get("/api/v1/task/list", headers={"Accept": accept}), 400, "BAD_REQUEST"
    )


async def test_accept_defaults_to_json(tenant: Tenant) -> None:
    await create(tenant)
    for accept in ("*/*", "application/json; charset=utf-8", "application/json, text/plain"):
        r = await tenant.http.get("/api/v1/task/list", headers={"Accept": accept})
        assert r.status_code == 200 and "items" in r.json()


EXPORT_KEYS = [
    "id",
    "name",
    "description",
    "contactId",
    "botId",
    "schedule",
    "timezone",
    "sessionDuration",
    "maxIterations",
    "maxTime",
    "createdAt",
    "updatedAt",
    "meta",
]


async def test_export_json_and_jsonl(tenant: Tenant) -> None:
    await create(tenant, {"name": "a", "meta": None})
    await create(tenant, {"name": "b", "meta": {"x": 1}})
    page = (await tenant.http.get("/api/v1/task/export")).json()
    assert [list(item) for item in page["items"]] == [EXPORT_KEYS, EXPORT_KEYS]
    assert page["items"][0]["meta"] == {"x": 1} and page["items"][1]["meta"] == {}
    r = await tenant.http.get("/api/v1/task/export", headers={"Accept": "application/jsonl"})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [line["data"]["name"] for line in lines] == ["b", "a"]


async def test_export_csv_bytes(tenant: Tenant) -> None:
    task_id = await create(
        tenant,
        {
            "name": 'He said "hi"',
            "description": "line1\nline2, with comma",
            "sessionDuration": 1000,
            "meta": {"team": "data", "tags": ["a", "b"], "long": "y" * 120},
        },
    )
    other = await create(tenant, {"name": "plain"})
    r = await tenant.http.get(
        "/api/v1/task/export", params={"order": "asc"}, headers={"Accept": "text/csv"}
    )
    assert r.headers["content-type"].startswith("text/csv")
    text = r.text
    header, rest = text.split("\n", 1)
    assert header == ",".join(EXPORT_KEYS)
    assert text.endswith("\n")
    rows = list(csv.reader(io.StringIO(rest)))
    assert [row[0] for row in rows] == [task_id, other]
    first = dict(zip(EXPORT_KEYS, rows[0], strict=True))
    assert first["name"] == 'He said "hi"'
    assert first["contactId"] == "" and first["sessionDuration"] == "1000"
    assert yaml.safe_load(first["meta"]) == {"team": "data", "tags": ["a", "b"], "long": "y" * 120}
    assert "long: " + "y" * 120 in first["meta"]  # no line folding
    assert dict(zip(EXPORT_KEYS, rows[1], strict=True))["meta"] == "{}"
    # Every value quoted, quotes doubled, numbers as digits.
    second_line = rest.split("\n")[0] if '"\n' not in rest else None
    raw_rows = text.split("\n")
    assert f'"{task_id}","He said ""hi"""' in text
    assert raw_rows[-2].startswith(f'"{other}","plain","","",""')
    assert second_line is None or second_line.startswith('"')


async def test_export_meta_filter_and_take(tenant: Tenant) -> None:
    for i in range(5):
        await create(tenant, {"meta": {"even": i % 2 == 0}})
    r = await tenant.http.get(
        "/api/v1/task/export", params={"meta.even": "true"}, headers={"Accept": "application/jsonl"}
    )
    assert len(r.text.splitlines()) == 3
    r = await tenant.http.get(
        "/api/v1/task/export", params={"take": 2}, headers={"Accept": "text/csv"}
    )
    assert len(r.text.splitlines()) == 3  # header + 2


async def test_contact_task_list(tenant: Tenant) -> None:
    contact = (await tenant.http.post("/api/v1/contact/create", json={})).json()["id"]
    mine = await create(tenant, {"contactId": contact})
    await create(tenant)
    page = (await tenant.http.get(f"/api/v1/contact/{contact}/task/list")).json()
    assert [item["id"] for item in page["items"]] == [mine] and page["cursor"] == mine
    r = await tenant.http.get(
        f"/api/v1/contact/{contact}/task/list", headers={"Accept": "application/jsonl"}
    )
    assert [json.loads(x)["data"]["id"] for x in r.text.splitlines()] == [mine]
    assert_error(await tenant.http.get("/api/v1/contact/contact_nope/task/list"), 404, "NOT_FOUND")
