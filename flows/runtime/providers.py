"""Provider settings: which OpenAI-compatible endpoints exist, read once from env and a file.

Precedence, lowest first, merged field by field per provider:
1. ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` (so ``openai/...`` works out of the box);
2. the file named by ``TASKBOT_PROVIDERS_FILE`` (YAML, TOML or JSON);
3. ``TASKBOT_PROVIDER_<NAME>_<FIELD>`` variables.
The ``offline`` provider is built in and cannot be configured.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec
import msgspec.json
import msgspec.toml
import msgspec.yaml

from flows.runtime.errors import ModelError, ProviderConfigError

OFFLINE_PROVIDER = "offline"
# The policy for bots whose `model` is null: the offline development model, so a fresh
# install runs end to end without a key. Operators override it with TASKBOT_DEFAULT_MODEL.
DEFAULT_MODEL = "offline/dev"
OPENAI_PROVIDER = "openai"
OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 2

_PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_ENV_PREFIX = "TASKBOT_PROVIDER_"
_ENV_FIELD = re.compile(
    r"^TASKBOT_PROVIDER_([A-Z0-9_]+?)_(BASE_URL|API_KEY_ENV|API_KEY|TIMEOUT|MAX_RETRIES)$"
)


class ProviderEntry(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One provider as the operator writes it; unset fields fall through to lower layers."""

    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0)] = DEFAULT_TIMEOUT_S
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = DEFAULT_MAX_RETRIES


class ProvidersDocument(msgspec.Struct, forbid_unknown_fields=True):
    """The providers file: ``{providers: {name: ProviderEntry}, default_model: ...}``.

    Entries stay raw here and are validated one by one, because msgspec's error path for a
    dict value (``$.providers[...]``) would not say which provider is wrong.
    """

    providers: dict[str, dict[str, Any]] = {}
    default_model: str | None = None


@dataclass(frozen=True)
class ProviderConfig:
    """A resolved OpenAI-compatible provider; the key is kept out of ``repr`` and logs."""

    name: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES


def split_model_name(model: str, configured: tuple[str, ...] = ()) -> tuple[str, str]:
    """Split ``provider/model`` (the model part may itself contain ``/``)."""
    provider, sep, name = model.strip().partition("/")
    if not sep or not provider.strip() or not name.strip():
        listed = ", ".join(configured) if configured else OFFLINE_PROVIDER
        raise ModelError(
            f"Model name {model!r} is malformed: expected 'provider/model', e.g. "
            f"'{DEFAULT_MODEL}' (configured providers: {listed})",
            kind="config",
            model=model,
        )
    return provider.strip().lower(), name.strip()


@dataclass(frozen=True)
class ModelSettings:
    """The configured providers and the default model; validated at construction."""

    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    default_model: str = DEFAULT_MODEL

    def __post_init__(self) -> None:
        if OFFLINE_PROVIDER in self.providers:
            raise ProviderConfigError(f"provider name {OFFLINE_PROVIDER!r} is reserved")
        try:
            provider, _ = split_model_name(self.default_model, self.provider_names)
        except ModelError as exc:
            raise ProviderConfigError(f"default model: {exc.message}") from None
        if provider not in self.provider_names:
            raise ProviderConfigError(
                f"default model {self.default_model!r} uses unknown provider {provider!r} "
                f"(configured providers: {', '.join(self.provider_names)})"
            )

    @property
    def provider_names(self) -> tuple[str, ...]:
        """Every usable provider, the built-in offline one included, sorted."""
        return tuple(sorted({OFFLINE_PROVIDER, *self.providers}))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> ModelSettings:
        """Build from a mapping shaped like the providers file; ``environ`` serves api_key_env."""
        try:
            document = msgspec.convert(data, ProvidersDocument)
        except msgspec.ValidationError as exc:
            raise ProviderConfigError(f"invalid provider settings: {exc}") from None
        return _build(document, "provider settings", environ or {})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModelSettings:
        """Read ``OPENAI_*``, ``TASKBOT_PROVIDERS_FILE``, ``TASKBOT_PROVIDER_*`` and
        ``TASKBOT_DEFAULT_MODEL`` (``environ`` defaults to ``os.environ``)."""
        env = os.environ if environ is None else environ
        path = env.get("TASKBOT_PROVIDERS_FILE")
        document = load_providers_file(Path(path)) if path else ProvidersDocument()
        if env.get("TASKBOT_DEFAULT_MODEL"):
            document.default_model = env["TASKBOT_DEFAULT_MODEL"]
        source = f"providers file {path}" if path else "provider settings"
        return _build(document, source, env, below=_openai_layer(env), above=_env_layer(env))


def load_providers_file(path: Path) -> ProvidersDocument:
    """Decode and validate a providers file; the format follows the file's suffix."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProviderConfigError(f"cannot read providers file {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return msgspec.toml.decode(raw, type=ProvidersDocument)
        if suffix == ".json":
            return msgspec.json.decode(raw, type=ProvidersDocument)
        if suffix in {".yaml", ".yml"}:
            return msgspec.yaml.decode(raw, type=ProvidersDocument)
    except msgspec.DecodeError as exc:
        # ValidationError is a DecodeError: both name the offending path, e.g. `$.providers.x`.
        raise ProviderConfigError(f"invalid providers file {path}: {exc}") from None
    raise ProviderConfigError(f"providers file {path} must end in .yaml, .yml, .toml or .json")


Layer = dict[str, dict[str, Any]]


def _openai_layer(env: Mapping[str, str]) -> Layer:
    """The out-of-the-box ``openai`` provider from the official SDK's own variables."""
    entry: dict[str, Any] = {}
    if env.get("OPENAI_BASE_URL"):
        entry["base_url"] = env["OPENAI_BASE_URL"]
    if env.get("OPENAI_API_KEY"):
        entry["api_key_env"] = "OPENAI_API_KEY"
    return {OPENAI_PROVIDER: entry} if entry else {}


def _env_layer(env: Mapping[str, str]) -> Layer:
    """``TASKBOT_PROVIDER_<NAME>_<FIELD>`` variables; an unrecognised one is a typo."""
    layer: Layer = {}
    for key, value in env.items():
        if not key.startswith(_ENV_PREFIX):
            continue
        match = _ENV_FIELD.match(key)
        if match is None:
            raise ProviderConfigError(
                f"unrecognised variable {key}: expected {_ENV_PREFIX}<NAME>_"
                "{BASE_URL,API_KEY,API_KEY_ENV,TIMEOUT,MAX_RETRIES}"
            )
        name, field_name = match.group(1).lower(), match.group(2).lower()
        layer.setdefault(name, {})[field_name] = value
    return layer


def _build(
    document: ProvidersDocument,
    source: str,
    env: Mapping[str, str],
    *,
    below: Layer | None = None,
    above: Layer | None = None,
) -> ModelSettings:
    """Merge the layers (``below``, the file, ``above``) per provider and field, then resolve."""
    file_layer: Layer = {}
    for name, fields in document.providers.items():
        try:
            entry = msgspec.convert(fields, ProviderEntry)
        except msgspec.ValidationError as exc:
            raise ProviderConfigError(f"invalid {source}: provider {name!r}: {exc}") from None
        # omit_defaults: only the fields the file sets, so lower layers still show through.
        file_layer[name] = msgspec.to_builtins(entry)
    merged: Layer = {}
    for layer in (below or {}, file_layer, above or {}):
        for name, fields in layer.items():
            current = merged.setdefault(name.lower(), {})
            # A key and a key variable are one setting: a higher layer's choice of either
            # replaces the lower layer's, or a file's literal key would beat an env override.
            if {"api_key", "api_key_env"} & fields.keys():
                current.pop("api_key", None)
                current.pop("api_key_env", None)
            current.update(fields)
    providers = {name: _resolve(name, fields, env) for name, fields in sorted(merged.items())}
    return ModelSettings(providers=providers, default_model=document.default_model or DEFAULT_MODEL)


def _resolve(name: str, fields: Mapping[str, Any], env: Mapping[str, str]) -> ProviderConfig:
    """Validate one merged provider (env values arrive as strings, hence ``strict=False``)."""
    if not _PROVIDER_NAME.match(name):
        raise ProviderConfigError(f"invalid provider name {name!r}: use a-z, 0-9, '_', '.', '-'")
    if name == OFFLINE_PROVIDER:
        raise ProviderConfigError(f"provider name {OFFLINE_PROVIDER!r} is reserved")
    try:
        entry = msgspec.convert(fields, ProviderEntry, strict=False)
    except msgspec.ValidationError as exc:
        raise ProviderConfigError(f"invalid settings for provider {name!r}: {exc}") from None
    base_url = entry.base_url or (OPENAI_BASE_URL if name == OPENAI_PROVIDER else None)
    if not base_url:
        raise ProviderConfigError(f"provider {name!r} needs a base_url")
    api_key = entry.api_key
    if api_key is None and entry.api_key_env:
        api_key = env.get(entry.api_key_env)
        if not api_key:
            raise ProviderConfigError(
                f"provider {name!r}: environment variable {entry.api_key_env} is not set"
            )
    return ProviderConfig(
        name=name,
        base_url=base_url,
        api_key=api_key,
        timeout=entry.timeout,
        max_retries=entry.max_retries,
    )
