"""The official ChatBotKit Python SDK, pointed at our base URL, works unchanged."""

from __future__ import annotations

from chatbotkit import ChatBotKit  # type: ignore[import-untyped]

from tests.conftest import Api, Tenant


async def test_sdk_round_trip(api: Api, tenant: Tenant) -> None:
    async with ChatBotKit(token=tenant.token, base_url=api.url) as cbk:
        bot = await cbk.bot.create({"name": "sdk bot", "backstory": "be brief"})
        contact = await cbk.contact.create({"name": "sdk contact"})
        created = await cbk.task.create(
            {
                "name": "sdk task",
                "botId": bot.id,
                "contactId": contact.id,
                "schedule": "daily",
                "timezone": "Europe/Berlin",
                "meta": {"source": "sdk"},
            }
        )
        task = await cbk.task.fetch(created.id)
        assert task.name == "sdk task" and task.bot_id == bot.id and task.next_run_at
        await cbk.task.update(created.id, {"description": "updated", "meta": {"$update": {"v": 2}}})
        task = await cbk.task.fetch(created.id)
        assert task.description == "updated" and task.meta == {"source": "sdk", "v": 2}

        page = await cbk.task.list({"take": 10, "meta": {"source": "sdk"}})
        assert [item.id for item in page.items] == [created.id] and page.cursor == created.id
        streamed = [item async for item in cbk.task.list({"botId": bot.id}).stream()]
        assert [item.data.id for item in streamed] == [created.id]
        exported = [item async for item in cbk.task.export().stream()]
        assert exported[0].data.id == created.id
        assert (await cbk.task.export({"take": 5})).items[0].id == created.id

        assert (await cbk.task.trigger(created.id)).id == created.id
        assert (await cbk.task.cancel(created.id)).id == created.id
        contact_tasks = (
            await cbk.contact.task.list(contact.id) if hasattr(cbk.contact, "task") else None
        )
        if contact_tasks is not None:
            assert [item.id for item in contact_tasks.items] == [created.id]
        assert (await cbk.task.delete(created.id)).id == created.id
        try:
            await cbk.task.fetch(created.id)
        except Exception as error:  # the SDK raises APIError with our code
            assert getattr(error, "status_code", None) == 404
            assert getattr(error, "code", None) == "NOT_FOUND"
        else:
            raise AssertionError("fetch of a deleted task must fail")
