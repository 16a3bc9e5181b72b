"""Chat models behind any OpenAI-compatible endpoint, through the official ``openai`` client.

Key contracts:
- One ``AsyncOpenAI`` per provider is shared by every session (see ``ModelRegistry``); a
  model object is a cheap view of it, so concurrent sessions reuse one connection pool.
- Retries on 408/409/429/5xx, connection errors and timeouts are the client's own
  (exponential backoff honouring ``Retry-After``), bounded by the provider's ``max_retries``.
- Every ``openai`` exception leaves ``complete`` as a ``ModelError`` whose message is one
  line with the API key redacted; the original exception is dropped (``from None``)
  because its request object carries the ``Authorization`` header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI, omit
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)

from flows.runtime.errors import ModelError, ModelErrorKind
from flows.runtime.messages import ChatMessage, ModelReply, ToolCall, ToolSpec, Usage
from flows.runtime.providers import ProviderConfig

# Keyless local servers (Ollama, llama.cpp, vLLM) ignore the bearer token, but the client
# refuses to start without one and would otherwise fall back to reading OPENAI_API_KEY.
NO_API_KEY = "no-key"
_DETAIL_LIMIT = 300
_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_-]{3})[A-Za-z0-9_*-]{6,}")


def create_openai_client(config: ProviderConfig) -> AsyncOpenAI:
    """The provider's client: its base URL, key, per-attempt timeout and retry budget."""
    return AsyncOpenAI(
        api_key=config.api_key or NO_API_KEY,
        base_url=config.base_url,
        timeout=config.timeout,
        max_retries=config.max_retries,
    )


class OpenAIChatModel:
    """One model of an OpenAI-compatible provider, e.g. ``openai/gpt-4o-mini``."""

    def __init__(self, client: AsyncOpenAI, config: ProviderConfig, model: str) -> None:
        self._client = client
        self._config = config
        self._model = model

    @property
    def name(self) -> str:
        """``provider/model``."""
        return f"{self._config.name}/{self._model}"

    @property
    def client(self) -> AsyncOpenAI:
        """The provider's shared client."""
        return self._client

    async def complete(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> ModelReply:
        """One chat completion with function tools; failures become ``ModelError``."""
        try:
            completion = await self._client.chat.completions.create(
                model=self._model,
                messages=[to_wire_message(m) for m in messages],
                # Some servers reject an empty tools list; leave the field out instead.
                tools=[to_wire_tool(t) for t in tools] if tools else omit,
            )
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        return self._reply(completion)

    def _reply(self, completion: ChatCompletion) -> ModelReply:
        """Turn the provider's first choice into a ``ModelReply``."""
        if not completion.choices:
            raise ModelError(
                f"Model {self.name} failed: the provider returned no choices",
                kind="response",
                model=self.name,
            )
        choice = completion.choices[0]
        message = choice.message
        calls: list[ToolCall] = []
        for index, call in enumerate(message.tool_calls or ()):
            # Some local servers omit call ids; the id only has to be unique in this turn.
            call_id = call.id or f"call_{index}"
            if call.type == "function":
                calls.append(
                    ToolCall.from_json(call_id, call.function.name, call.function.arguments)
                )
            else:
                calls.append(
                    ToolCall(id=call_id, name=call.custom.name, raw_arguments=call.custom.input)
                )
        usage = None
        if completion.usage is not None:
            usage = Usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        return ModelReply(
            model=self.name,
            text=message.content if message.content is not None else message.refusal,
            tool_calls=tuple(calls),
            finish_reason=choice.finish_reason,
            usage=usage,
        )

    def _error(self, exc: openai.OpenAIError) -> ModelError:
        """A readable, key-free ``ModelError`` for any exception of the ``openai`` client."""
        attempts = self._config.max_retries + 1
        tried = f" ({attempts} attempts)" if attempts > 1 else ""
        if isinstance(exc, openai.APITimeoutError):
            message = f"Model {self.name} timed out after {self._config.timeout:g} s{tried}"
            return ModelError(message, kind="timeout", model=self.name)
        if isinstance(exc, openai.APIConnectionError):
            cause = f": {_one_line(str(exc.__cause__))}" if exc.__cause__ is not None else ""
            origin = _origin(self._config.base_url)
            message = f"Model {self.name} failed: cannot reach {origin}{cause}{tried}"
            return ModelError(self._redact(message), kind="connection", model=self.name)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = f"Model {self.name} failed: {status} {_status_detail(exc)}"
            return ModelError(
                self._redact(message),
                kind=_status_kind(status),
                model=self.name,
                status_code=status,
            )
        message = f"Model {self.name} failed: {type(exc).__name__}: {_one_line(str(exc))}"
        return ModelError(self._redact(message), kind="response", model=self.name)

    def _redact(self, text: str) -> str:
        """Remove the provider's key, and anything shaped like an OpenAI key, from ``text``."""
        key = self._config.api_key
        # A very short "key" (a placeholder such as "x") would blank out ordinary words.
        if key and len(key) >= _MIN_SECRET_LENGTH:
            text = text.replace(key, "***")
        return _KEY_LIKE.sub(r"\1***", text)


_MIN_SECRET_LENGTH = 8


def to_wire_message(message: ChatMessage) -> ChatCompletionMessageParam:
    """A ``ChatMessage`` in the Chat Completions wire format."""
    content = message.content
    if message.role == "system":
        return {"role": "system", "content": content or ""}
    if message.role == "user":
        return {"role": "user", "content": content or ""}
    if message.role == "tool":
        return {
            "role": "tool",
            "content": content or "",
            "tool_call_id": message.tool_call_id or "",
        }
    wire: ChatCompletionAssistantMessageParam = {"role": "assistant", "content": content}
    if message.tool_calls:
        wire["tool_calls"] = [_wire_tool_call(call) for call in message.tool_calls]
    return wire


def to_wire_tool(tool: ToolSpec) -> ChatCompletionFunctionToolParam:
    """A ``ToolSpec`` as a Chat Completions function tool."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _wire_tool_call(call: ToolCall) -> ChatCompletionMessageFunctionToolCallParam:
    """A past tool call, replayed exactly as the model sent it."""
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json()},
    }


def _status_kind(status: int) -> ModelErrorKind:
    """Classify an HTTP status, so the flow can tell bad credentials from an outage."""
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server"
    return "request"


def _status_detail(exc: openai.APIStatusError) -> str:
    """The provider's own error message, else the HTTP reason phrase."""
    body = exc.body
    if isinstance(body, dict):
        detail = body.get("message") or body.get("error") or body.get("detail")
        if isinstance(detail, str) and detail.strip():
            return _one_line(detail)
    # Error pages from proxies are HTML: the reason phrase reads better than markup.
    if isinstance(body, str) and body.strip() and not body.lstrip().startswith("<"):
        return _one_line(body)
    return exc.response.reason_phrase or "error"


def _one_line(text: str) -> str:
    """Collapse whitespace and cap the length, so a summary stays one readable line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _DETAIL_LIMIT else flat[: _DETAIL_LIMIT - 1] + "…"


def _origin(base_url: str) -> str:
    """Scheme, host and port of ``base_url``: never its path, query or credentials."""
    url = urlsplit(base_url)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.hostname}{port}"
