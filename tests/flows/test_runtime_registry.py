"""Provider settings (environment, providers file) and model resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.runtime import (
    DEFAULT_MODEL,
    ChatMessage,
    ModelError,
    ModelRegistry,
    ModelSettings,
    OfflineChatModel,
    OpenAIChatModel,
    ProviderConfig,
    ProviderConfigError,
)
from tests.support.fake_openai import (
    FakeOpenAI,
    FakeReply,
)


def test_nothing_configured_means_only_the_offline_provider() -> None:
    settings = ModelSettings.from_env({})

    assert settings.providers == {}
    assert settings.provider_names == ("offline",)
    assert settings.default_model == DEFAULT_MODEL == "offline/dev"


def test_openai_works_out_of_the_box_from_its_own_variables() -> None:
    settings = ModelSettings.from_env({"OPENAI_API_KEY": "sk-abc"})

    assert settings.providers["openai"] == ProviderConfig(
        name="openai", base_url="https://api.openai.com/v1", api_key="sk-abc"
    )


def test_openai_base_url_variable_is_honoured() -> None:
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}

    assert ModelSettings.from_env(env).providers["openai"].base_url == "http://127.0.0.1:9/v1"


def test_environment_shorthands_define_providers() -> None:
    settings = ModelSettings.from_env(
        {
            "TASKBOT_PROVIDER_OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1",
            "TASKBOT_PROVIDER_OLLAMA_TIMEOUT": "30.5",
            "TASKBOT_PROVIDER_OLLAMA_MAX_RETRIES": "0",
            "TASKBOT_PROVIDER_MY_LOCAL_BASE_URL": "http://127.0.0.1:8000/v1",
            "TASKBOT_PROVIDER_MY_LOCAL_API_KEY_ENV": "LOCAL_KEY",
            "LOCAL_KEY": "local-secret",
        }
    )

    assert settings.providers["ollama"] == ProviderConfig(
        name="ollama", base_url="http://127.0.0.1:11434/v1", timeout=30.5, max_retries=0
    )
    assert settings.providers["my_local"].api_key == "local-secret"
    assert settings.provider_names == ("my_local", "offline", "ollama")


def test_api_key_never_appears_in_repr() -> None:
    settings = ModelSettings.from_env({"OPENAI_API_KEY": "sk-very-secret-key"})

    assert "sk-very-secret-key" not in repr(settings)


def test_yaml_providers_file_with_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(
        "default_model: local/qwen2.5\n"
        "providers:\n"
        "  local:\n"
        "    base_url: http://127.0.0.1:8080/v1\n"
        "    api_key: from-file\n"
        "    timeout: 45\n"
        "  openai:\n"
        "    api_key_env: MY_OPENAI_KEY\n"
    )
    env = {
        "TASKBOT_PROVIDERS_FILE": str(path),
        "TASKBOT_PROVIDER_LOCAL_API_KEY_ENV": "LOCAL_KEY",
        "TASKBOT_PROVIDER_LOCAL_MAX_RETRIES": "5",
        "LOCAL_KEY": "from-env",
        "MY_OPENAI_KEY": "sk-mine",
        "OPENAI_API_KEY": "sk-ignored",
    }

    settings = ModelSettings.from_env(env)

    assert settings.default_model == "local/qwen2.5"
    # Field by field: the file's timeout stays, the environment's key and retries win.
    assert settings.providers["local"] == ProviderConfig(
        name="local",
        base_url="http://127.0.0.1:8080/v1",
        api_key="from-env",
        timeout=45,
        max_retries=5,
    )
    assert settings.providers["openai"].api_key == "sk-mine"


def test_toml_providers_file(tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text('[providers.vllm]\nbase_url = "http://127.0.0.1:8000/v1"\nmax_retries = 1\n')

    settings = ModelSettings.from_env({"TASKBOT_PROVIDERS_FILE": str(path)})

    assert settings.providers["vllm"].max_retries == 1


def test_default_model_variable_overrides_the_policy() -> None:
    env = {"OPENAI_API_KEY": "k", "TASKBOT_DEFAULT_MODEL": "openai/gpt-4o-mini"}

    assert ModelSettings.from_env(env).default_model == "openai/gpt-4o-mini"


@pytest.mark.parametrize(
    ("file_text", "message"),
    [
        (
            "providers:\n  x:\n    base_url: http://h\n    api-key: k\n",
            "provider 'x': Object contains unknown field `api-key`",
        ),
        (
            "providers:\n  x:\n    base_url: http://h\n    timeout: 0\n",
            "provider 'x': Expected `float` > 0.0 - at `$.timeout`",
        ),
        ("providers: [1]\n", "Expected `object`, got `array`"),
        ("providers: {x: {base_url: [unclosed\n", "invalid providers file"),
    ],
)
def test_invalid_providers_file_is_rejected_with_the_path(
    tmp_path: Path, file_text: str, message: str
) -> None:
    path = tmp_path / "providers.yml"
    path.write_text(file_text)

    with pytest.raises(ProviderConfigError, match=f"invalid providers file {path}") as caught:
        ModelSettings.from_env({"TASKBOT_PROVIDERS_FILE": str(path)})
    assert message in str(caught.value)


def test_providers_file_needs_a_known_suffix(tmp_path: Path) -> None:
    path = tmp_path / "providers.ini"
    path.write_text("")

    with pytest.raises(ProviderConfigError, match=r"\.yaml, \.yml, \.toml or \.json"):
        ModelSettings.from_env({"TASKBOT_PROVIDERS_FILE": str(path)})


def test_missing_providers_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ProviderConfigError, match="cannot read providers file"):
        ModelSettings.from_env({"TASKBOT_PROVIDERS_FILE": str(tmp_path / "absent.yaml")})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TASKBOT_PROVIDER_X_TIMEOUT": "soon"}, "invalid settings for provider 'x'"),
        ({"TASKBOT_PROVIDER_X_TIMEOT": "1"}, "unrecognised variable TASKBOT_PROVIDER_X_TIMEOT"),
        ({"TASKBOT_PROVIDER_X_API_KEY": "k"}, "provider 'x' needs a base_url"),
        (
            {"TASKBOT_PROVIDER_X_BASE_URL": "http://h", "TASKBOT_PROVIDER_X_API_KEY_ENV": "NOPE"},
            "environment variable NOPE is not set",
        ),
        ({"TASKBOT_PROVIDER_OFFLINE_BASE_URL": "http://h"}, "'offline' is reserved"),
        ({"TASKBOT_DEFAULT_MODEL": "gpt-4o"}, "default model: Model name 'gpt-4o' is malformed"),
        ({"TASKBOT_DEFAULT_MODEL": "ollama/llama3.1"}, "unknown provider 'ollama'"),
    ],
)
def test_invalid_environment_is_rejected(env: dict[str, str], message: str) -> None:
    with pytest.raises(ProviderConfigError, match=message):
        ModelSettings.from_env(env)


def test_from_mapping_validates_like_the_file() -> None:
    with pytest.raises(
        ProviderConfigError, match=r"provider 'x': Expected `int` >= 0 - at `\$.max_retries`"
    ):
        ModelSettings.from_mapping(
            {"providers": {"x": {"base_url": "http://h", "max_retries": -1}}}
        )


def test_no_model_resolves_to_the_offline_development_model() -> None:
    registry = ModelRegistry()

    model = registry.resolve(None)

    assert isinstance(model, OfflineChatModel)
    assert model.name == "offline/dev"
    assert registry.resolve("  ").name == "offline/dev"
    assert registry.model_name(None) == "offline/dev"


@pytest.mark.parametrize("name", ["gpt-4o-mini", "/gpt-4o", "openai/", " / "])
def test_malformed_model_name(name: str) -> None:
    registry = ModelRegistry(ModelSettings.from_env({"OPENAI_API_KEY": "k"}))

    with pytest.raises(ModelError) as caught:
        registry.resolve(name)

    assert caught.value.kind == "config"
    assert "expected 'provider/model'" in caught.value.message
    assert "configured providers: offline, openai" in caught.value.message


def test_unknown_provider_lists_the_configured_ones() -> None:
    registry = ModelRegistry(ModelSettings.from_env({}))

    with pytest.raises(ModelError) as caught:
        registry.resolve("openai/gpt-4o-mini")

    assert caught.value.message == (
        "Model 'openai/gpt-4o-mini' uses unknown provider 'openai' (configured providers: offline)"
    )


async def test_provider_names_are_case_insensitive_and_models_may_contain_slashes() -> None:
    env = {"TASKBOT_PROVIDER_ROUTER_BASE_URL": "http://127.0.0.1:9/v1"}
    async with ModelRegistry(ModelSettings.from_env(env)) as registry:
        model = registry.resolve("Router/meta-llama/llama-3.1-8b")

        assert isinstance(model, OpenAIChatModel)
        assert model.name == "router/meta-llama/llama-3.1-8b"


async def test_configured_provider_end_to_end(
    tmp_path: Path,
    fake_openai: FakeOpenAI,
) -> None:
    path = tmp_path / "providers.json"
    path.write_text(f'{{"providers": {{"local": {{"base_url": "{fake_openai.base_url}"}}}}}}')
    fake_openai.script(FakeReply.text("from the fake"))
    settings = ModelSettings.from_env({"TASKBOT_PROVIDERS_FILE": str(path)})

    async with ModelRegistry(settings) as registry:
        reply = await registry.resolve("local/qwen2.5").complete([ChatMessage.user("Hi")])

    assert reply.text == "from the fake"
    [request] = fake_openai.requests
    assert request.body["model"] == "qwen2.5"
    # A keyless provider still sends a placeholder bearer, never the operator's OpenAI key.
    assert request.headers["authorization"] == "Bearer no-key"
