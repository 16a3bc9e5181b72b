"""OpenAI-compatible chat models through the real ``openai`` client, over HTTP, against the fake."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flows.runtime import (
    ChatMessage,
    ModelError,
    ModelRegistry,
    ModelSettings,
    OpenAIChatModel,
    ToolCall,
    ToolSpec,
)
from tests.support.fake_openai import (
    FakeOpenAI,
    FakeReply,
    FakeToolCall,
)

API_KEY = "sk-test-0123456789abcdefSECRET"
FINISH = ToolSpec(
    name="finish",
    description="End the session with a summary.",
    parameters={
        "type": "object",
        "properties": {"summary": {"type": "string"}},
        "required": ["summary"],
    },
)


def registry_for(base_url: str, **provider: Any) -> ModelRegistry:
    """A registry with one provider ``fake``; short timeouts and retries keep tests quick."""
    settings = {"base_url": base_url, "api_key": API_KEY, "timeout": 5, "max_retries": 2}
    settings.update(provider)
    return ModelRegistry(ModelSettings.from_mapping({"providers": {"fake": settings}}))


@pytest.fixture
async def registry(fake_openai: FakeOpenAI) -> AsyncIterator[ModelRegistry]:
    """A registry whose ``fake`` provider is the fake server."""
    async with registry_for(fake_openai.base_url) as registry:
        yield registry


async def test_text_reply(fake_openai: FakeOpenAI, registry: ModelRegistry) -> None:
    fake_openai.script(FakeReply.text("Hello there."))
    model = registry.resolve("fake/test-model")

    reply = await model.complete([ChatMessage.system("Be brief."), ChatMessage.user("Hi")])

    assert model.name == "fake/test-model"
    assert reply.text == "Hello there."
    assert reply.tool_calls == ()
    assert reply.finish_reason == "stop"
    assert reply.model == "fake/test-model"
    assert reply.usage is not None and reply.usage.total_tokens == 15
    [request] = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == "test-model"
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert "tools" not in request.body


async def test_tool_call_reply_is_parsed(
    fake_openai: FakeOpenAI,
    registry: ModelRegistry,
) -> None:
    fake_openai.script(
        FakeReply.tool_calls(
            FakeToolCall("finish", {"summary": "All done"}, id="call_a"),
            FakeToolCall("lookup", '{"query": "unterminated', id="call_b"),
            content="Finishing.",
        )
    )

    reply = await registry.resolve("fake/test-model").complete([ChatMessage.user("Go")], [FINISH])

    assert reply.finish_reason == "tool_calls"
    assert reply.text == "Finishing."
    assert reply.tool_calls == (
        ToolCall(id="call_a", name="finish", arguments={"summary": "All done"}),
        ToolCall(id="call_b", name="lookup", raw_arguments='{"query": "unterminated'),
    )
    assert reply.tool_calls[0].arguments_valid
    assert not reply.tool_calls[1].arguments_valid


async def test_tools_and_tool_history_are_sent_in_openai_format(
    fake_openai: FakeOpenAI,
    registry: ModelRegistry,
) -> None:
    fake_openai.script(FakeReply.text("ok"))
    call = ToolCall(id="call_1", name="finish", arguments={"summary": "x"})
    history = [
        ChatMessage.user("Do it"),
        ChatMessage.assistant(None, (call,)),
        ChatMessage.tool("call_1", "finished"),
    ]

    await registry.resolve("fake/test-model").complete(history, [FINISH])

    body = fake_openai.bodies[0]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "finish",
                "description": "End the session with a summary.",
                "parameters": FINISH.parameters,
            },
        }
    ]
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "finish", "arguments": '{"summary":"x"}'},
                }
            ],
        },
        {"role": "tool", "content": "finished", "tool_call_id": "call_1"},
    ]


async def test_reply_message_round_trips_into_history(
    fake_openai: FakeOpenAI,
    registry: ModelRegistry,
) -> None:
    fake_openai.script(FakeReply.tool_calls(("finish", "not json")), FakeReply.text("ok"))
    model = registry.resolve("fake/test-model")
    first = await model.complete([ChatMessage.user("Go")], [FINISH])

    history = [ChatMessage.user("Go"), first.message, ChatMessage.tool("call_1_finish", "bad")]
    await model.complete(history, [FINISH])

    replayed = fake_openai.bodies[1]["messages"][1]
    # Invalid arguments are replayed verbatim, so the model sees exactly what it sent.
    assert replayed["tool_calls"][0]["function"]["arguments"] == "not json"


async def test_rate_limit_is_retried_honouring_retry_after(
    fake_openai: FakeOpenAI,
    registry: ModelRegistry,
) -> None:
    fake_openai.script(FakeReply.error(429, "slow down", retry_after=0.05), FakeReply.text("ok"))

    reply = await registry.resolve("fake/test-model").complete([ChatMessage.user("Hi")])

    assert reply.text == "ok"
    assert len(fake_openai.requests) == 2


async def test_server_error_is_retried(
    fake_openai: FakeOpenAI,
    registry: ModelRegistry,
) -> None:
    fake_openai.script(FakeReply.error(500, "upstream exploded"), FakeReply.text("ok"))

    reply = await registry.resolve("fake/test-model").complete([ChatMessage.user("Hi")])

    assert reply.text == "ok"
    assert len(fake_openai.requests) == 2


async def test_persistent_server_error_becomes_readable_model_error(
    fake_openai: FakeOpenAI,
    registry: ModelRegistry,
) -> None:
    fake_openai.handler = lambda body: FakeReply.error(500, "upstream exploded", retry_after=0.01)

    with pytest.raises(ModelError) as caught:
        await registry.resolve("fake/test-model").complete([ChatMessage.user("Hi")])

    assert caught.value.message == "Model fake/test-model failed: 500 upstream exploded"
    assert caught.value.kind == "server"
    assert caught.value.status_code == 500
    assert caught.value.__cause__ is None
    assert len(fake_openai.requests) == 3  # the first attempt and max_retries=2


async def test_authentication_error_is_not_retried_and_hides_the_key(
    fake_openai: FakeOpenAI,
    registry: ModelRegistry,
) -> None:
    fake_openai.script(FakeReply.error(401, f"Incorrect API key provided: {API_KEY}"))

    with pytest.raises(ModelError) as caught:
        await registry.resolve("fake/test-model").complete([ChatMessage.user("Hi")])

    error = caught.value
    assert error.kind == "auth"
    assert error.message.startswith("Model fake/test-model failed: 401 Incorrect API key provided")
    assert API_KEY not in str(error)
    assert "SECRET" not in repr(error.args)
    assert len(fake_openai.requests) == 1


async def test_key_shaped_strings_are_redacted_even_when_not_ours(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeReply.error(403, "key sk-proj-abcdefghijklmnop is revoked"))
    async with registry_for(fake_openai.base_url) as registry:
        with pytest.raises(ModelError) as caught:
            await registry.resolve("fake/m").complete([ChatMessage.user("Hi")])

    assert caught.value.message == "Model fake/m failed: 403 key sk-pro*** is revoked"


async def test_timeout_becomes_model_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.handler = lambda body: FakeReply.text("too late", delay=2)
    async with registry_for(fake_openai.base_url, timeout=0.2, max_retries=0) as registry:
        with pytest.raises(ModelError) as caught:
            await registry.resolve("fake/slow").complete([ChatMessage.user("Hi")])

    assert caught.value.message == "Model fake/slow timed out after 0.2 s"
    assert caught.value.kind == "timeout"


async def test_timeouts_are_retried_and_counted(fake_openai: FakeOpenAI) -> None:
    fake_openai.handler = lambda body: FakeReply.text("too late", delay=2)
    async with registry_for(fake_openai.base_url, timeout=0.2, max_retries=1) as registry:
        with pytest.raises(ModelError) as caught:
            await registry.resolve("fake/slow").complete([ChatMessage.user("Hi")])

    assert caught.value.message == "Model fake/slow timed out after 0.2 s (2 attempts)"
    assert len(fake_openai.requests) == 2


async def test_unreachable_provider_becomes_model_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    async with registry_for(f"http://user:pw@127.0.0.1:{port}/v1", max_retries=0) as registry:
        with pytest.raises(ModelError) as caught:
            await registry.resolve("fake/m").complete([ChatMessage.user("Hi")])

    assert caught.value.kind == "connection"
    assert caught.value.message.startswith(
        f"Model fake/m failed: cannot reach http://127.0.0.1:{port}"
    )
    assert "pw" not in caught.value.message


async def test_empty_choices_become_model_error(
    fake_openai: FakeOpenAI,
    registry: ModelRegistry,
) -> None:
    fake_openai.script(FakeReply(body={"id": "x", "object": "chat.completion", "choices": []}))

    with pytest.raises(ModelError) as caught:
        await registry.resolve("fake/m").complete([ChatMessage.user("Hi")])

    assert caught.value.message == "Model fake/m failed: the provider returned no choices"
    assert caught.value.kind == "response"


async def test_sessions_share_one_client_and_run_concurrently(
    fake_openai: FakeOpenAI,
    registry: ModelRegistry,
) -> None:
    fake_openai.handler = lambda body: FakeReply.text(body["messages"][0]["content"], delay=0.3)
    models = [registry.resolve("fake/m") for _ in range(20)]
    assert all(isinstance(m, OpenAIChatModel) for m in models)
    assert len({id(m.client) for m in models if isinstance(m, OpenAIChatModel)}) == 1

    replies = await asyncio.gather(
        *(m.complete([ChatMessage.user(f"session {i}")]) for i, m in enumerate(models))
    )

    assert [r.text for r in replies] == [f"session {i}" for i in range(20)]
    assert fake_openai.max_in_flight == 20


async def test_closed_registry_refuses_provider_models(fake_openai: FakeOpenAI) -> None:
    registry = registry_for(fake_openai.base_url)
    registry.resolve("fake/m")
    await registry.aclose()

    with pytest.raises(ModelError, match="registry is closed"):
        registry.resolve("fake/m")
