"""The model runtime of bot sessions: provider-neutral messages and tools, chat models
(OpenAI-compatible providers and the offline development model) and their registry.

The bot-session flow needs only what is exported here::

    registry = ModelRegistry(ModelSettings.from_env())   # once per worker
    model = registry.resolve(bot.model)                   # per session; ModelError if bad
    reply = await model.complete(history, tools)          # per step; ModelError on failure
    history.append(reply.message)
"""

from flows.runtime.errors import ModelError, ModelErrorKind, ProviderConfigError
from flows.runtime.messages import ChatMessage, ModelReply, Role, ToolCall, ToolSpec, Usage
from flows.runtime.model import ChatModel
from flows.runtime.offline_model import OFFLINE_BANNER, OfflineChatModel
from flows.runtime.openai_model import OpenAIChatModel
from flows.runtime.providers import (
    DEFAULT_MODEL,
    OFFLINE_PROVIDER,
    ModelSettings,
    ProviderConfig,
    load_providers_file,
    split_model_name,
)
from flows.runtime.registry import ModelRegistry

__all__ = [
    "DEFAULT_MODEL",
    "OFFLINE_BANNER",
    "OFFLINE_PROVIDER",
    "ChatMessage",
    "ChatModel",
    "ModelError",
    "ModelErrorKind",
    "ModelRegistry",
    "ModelReply",
    "ModelSettings",
    "OfflineChatModel",
    "OpenAIChatModel",
    "ProviderConfig",
    "ProviderConfigError",
    "Role",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "load_providers_file",
    "split_model_name",
]
