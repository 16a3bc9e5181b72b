"""Resolve a bot's ``model`` to a ``ChatModel``, sharing one client per provider."""

from __future__ import annotations

from types import TracebackType

from openai import AsyncOpenAI

from flows.runtime.errors import ModelError
from flows.runtime.model import ChatModel
from flows.runtime.offline_model import OfflineChatModel
from flows.runtime.openai_model import OpenAIChatModel, create_openai_client
from flows.runtime.providers import OFFLINE_PROVIDER, ModelSettings, split_model_name


class ModelRegistry:
    """The configured providers, resolved on demand; one per worker process and event loop.

    Clients are created on first use and reused by every session (their connection pools
    belong to the event loop that first used them), and closed by :meth:`aclose`.
    """

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()
        self._clients: dict[str, AsyncOpenAI] = {}
        self._closed = False

    @property
    def provider_names(self) -> tuple[str, ...]:
        """Every provider a model name may use, ``offline`` included."""
        return self.settings.provider_names

    def model_name(self, model: str | None) -> str:
        """The model a bot actually uses: its own, or the default when it has none."""
        return model.strip() if model and model.strip() else self.settings.default_model

    def resolve(self, model: str | None) -> ChatModel:
        """The chat model for a bot's ``model`` (``None`` → the default model).

        Raises ``ModelError`` (kind ``config``) for a malformed name or unknown provider.
        """
        name = self.model_name(model)
        provider, model_id = split_model_name(name, self.provider_names)
        if provider == OFFLINE_PROVIDER:
            return OfflineChatModel(model_id)
        config = self.settings.providers.get(provider)
        if config is None:
            raise ModelError(
                f"Model {name!r} uses unknown provider {provider!r} "
                f"(configured providers: {', '.join(self.provider_names)})",
                kind="config",
                model=name,
            )
        if self._closed:
            raise ModelError(
                f"Model {name} is unavailable: the model registry is closed",
                kind="config",
                model=name,
            )
        client = self._clients.get(provider)
        if client is None:
            client = self._clients[provider] = create_openai_client(config)
        return OpenAIChatModel(client, config, model_id)

    async def aclose(self) -> None:
        """Close every provider client; later ``resolve`` calls for them fail."""
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    async def __aenter__(self) -> ModelRegistry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
