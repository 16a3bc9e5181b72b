"""The generated OpenAPI schema describes every route with real shapes and errors."""

from __future__ import annotations

import httpx

from tests.conftest import Api


async def test_schema_lists_every_route_with_errors(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as http:
        schema = (await http.get("/schema/openapi.json")).json()
        docs = await http.get("/schema/swagger")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = schema["paths"]
    for path in (
        "/api/v1/task/create",
        "/api/v1/task/list",
        "/api/v1/task/export",
        "/api/v1/task/{task_id}/fetch",
        "/api/v1/task/{task_id}/update",
        "/api/v1/task/{task_id}/delete",
        "/api/v1/task/{task_id}/trigger",
        "/api/v1/task/{task_id}/cancel",
        "/api/v1/bot/create",
        "/api/v1/contact/{contact_id}/task/list",
    ):
        assert path in paths, path
    create = paths["/api/v1/task/create"]["post"]
    assert (
        "200" in create["responses"]
        and "400" in create["responses"]
        and "401" in create["responses"]
    )
    body = create["requestBody"]["content"]["application/json"]["schema"]
    ref = body["$ref"].rsplit("/", 1)[-1]
    props = schema["components"]["schemas"][ref]["properties"]
    assert {"sessionDuration", "botId", "meta", "schedule"} <= set(props)
    assert props["sessionDuration"]["maximum"] == 3_600_000
    assert "404" in paths["/api/v1/task/{task_id}/fetch"]["get"]["responses"]
    assert "503" in paths["/api/v1/task/{task_id}/trigger"]["post"]["responses"]
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
