"""Configuration: one YAML file plus SWITCHYARD_* environment overrides, validated once.

Every key can be overridden from the environment (read by pydantic-settings): nested keys
are joined with a double underscore; lists and mappings are written in YAML, scalars as
plain text, and `null` or an empty value means None:

    SWITCHYARD_SERVER__HTTP_PORT=9000
    SWITCHYARD_ROUTING__THINKING_SHARE=0.3
    SWITCHYARD_MODELS__THINKING='[{model: openai/o4-mini, api_key_env: OPENAI_API_KEY}]'

`SWITCHYARD_DATA_DIR` is short for `SWITCHYARD_SERVER__DATA_DIR`. Defaults work with no
file at all.

YAML is read with YAML 1.2 booleans (only true and false): YAML 1.1 also reads on, off, yes
and no as booleans, which turned `router: off` into False. Where a bool is expected,
pydantic still reads on/off/yes/no as one.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from switchyard.server.errors import ConfigError

ENV_PREFIX = "SWITCHYARD_"
AUTO_MODEL = "switchyard/auto"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Deployment(_Strict):
    """One upstream deployment, in LiteLLM's terms."""

    model: str = Field(description="LiteLLM model string, e.g. 'openai/gpt-4.1-mini'")
    name: str | None = Field(None, description="Public name used to pin it; default: `model`")
    api_base: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="Environment variable holding the key")
    timeout: float = Field(60.0, gt=0, description="Seconds per attempt (never unbounded)")
    context_window: int = Field(128_000, gt=0)
    max_output_tokens: int | None = Field(
        None, gt=0, description="Cap on a request's max_tokens (Claude Code asks for 64000)")
    transport: Literal["auto", "openai", "litellm"] = Field(
        "auto",
        description="'openai': direct OpenAI-compatible HTTP (lean); 'litellm': any provider "
        "through litellm.acompletion; 'auto': openai for OpenAI-compatible providers "
        "(server/upstream/providers.py)",
    )
    responses_api: bool = Field(
        False,
        description="Speaks the OpenAI Responses API natively (OpenAI, Azure): Responses "
        "requests with hosted tools (web_search, file_search, ...) go to its /responses "
        "endpoint after routing and compaction, instead of losing those tools",
    )

    @property
    def public_name(self) -> str:
        return self.name or self.model

    def resolve_api_key(self, environ: Mapping[str, str] = os.environ) -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return environ.get(self.api_key_env) or None
        return None


class Price(_Strict):
    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens (reasoning included)")

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


class ModelsConfig(_Strict):
    thinking: list[Deployment] = Field(
        default_factory=lambda: [Deployment(model="openai/o4-mini", api_key_env="OPENAI_API_KEY",
                                            context_window=200_000, max_output_tokens=100_000)]
    )
    non_thinking: list[Deployment] = Field(
        default_factory=lambda: [Deployment(model="openai/gpt-4.1-mini",
                                            api_key_env="OPENAI_API_KEY",
                                            context_window=1_047_576, max_output_tokens=32_768)]
    )
    backups: list[Deployment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _non_empty_and_unique(self) -> ModelsConfig:
        if not self.thinking or not self.non_thinking:
            raise ValueError("models.thinking and models.non_thinking need at least one deployment")
        names = [d.public_name for d in self.all()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"deployment names must be unique; repeated: {', '.join(dupes)} "
                             "(set `name` to tell them apart)")
        return self

    def all(self) -> list[Deployment]:
        return [*self.thinking, *self.non_thinking, *self.backups]

    def group_of(self) -> dict[str, str]:
        """Public model name -> group ('thinking', 'non_thinking' or 'backups')."""
        out = {}
        for group in ("thinking", "non_thinking", "backups"):
            for d in getattr(self, group):
                out[d.public_name] = group
        return out


class CascadeConfig(_Strict):
    """Cascade mode: the non-thinking model drafts, the escalation scorer decides."""

    escalation_share: float | None = Field(
        None, ge=0, le=1, description="Calibrate to escalate this share; default: checkpoint's")
    checkpoint: Path | None = Field(None, description="Escalation checkpoint; default: bundled")
    score_tool_calls: bool = Field(
        False, description="Score tool-call drafts like text; false: escalate on invalid args")
    second_sample: bool = Field(
        False, description="Draw a second cheap draft; disagreement is a signal (cost logged)")
    verifiers: list[str] = Field(
        default_factory=list, description="outcomes.verifiers (by name) to run on each draft")


class RoutingConfig(_Strict):
    router: str = Field("mlp", description="'mlp' (learned), 'random', 'always', 'never', 'off'")
    checkpoint: Path | None = Field(None, description="Router checkpoint; default: bundled")
    thinking_share: float | None = Field(None, ge=0, le=1,
                                         description="Calibrate the threshold to this share")
    default_group: Literal["thinking", "non_thinking"] = "non_thinking"
    mode: Literal["route", "cascade"] = Field(
        "route", description="'route': decide before the call; 'cascade': draft, then escalate")
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)

    @field_validator("router", mode="before")
    @classmethod
    def _false_is_off(cls, value: Any) -> Any:
        """`router: false` (JSON, or YAML's own false) names the router that is off."""
        return "off" if value is False else value


class CompactionConfig(_Strict):
    enabled: bool = True
    strategy: str = "learned"
    trigger_share: float = Field(0.70, gt=0, le=1)
    target_share: float = Field(0.40, gt=0, le=1)
    abstractive_summary: bool = False
    ledger_share: float = Field(
        0.5, ge=0, le=1,
        description="learned strategy: share of the freed budget placeholders may spend "
        "listing the dropped text's identifiers, paths, numbers and error lines")


class RecallConfig(_Strict):
    enabled: bool = True
    k: int = Field(5, ge=1, le=100)
    token_budget: int = Field(1500, ge=0)
    corpora: list[str] = Field(default_factory=list, description="Named corpora searched too")


class LimitsConfig(_Strict):
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0)
    max_messages: int = Field(5000, gt=0)
    max_total_tokens: int = Field(2_000_000, gt=0)
    max_concurrent_per_key: int = Field(64, gt=0)
    max_requests_per_minute_per_key: int | None = Field(
        None, gt=0, description="Requests per key per minute (fixed windows); None: no limit")


class UpstreamConfig(_Strict):
    num_retries: int = Field(2, ge=0, le=10, description="Retries per deployment")
    backoff_base: float = Field(0.25, ge=0)
    backoff_max: float = Field(8.0, ge=0)
    max_retry_after: float = Field(30.0, ge=0, description="Cap on an honoured retry-after")
    cooldown_failures: int = Field(3, ge=1)
    cooldown_seconds: float = Field(30.0, ge=0)
    fallback_groups: bool = Field(True, description="thinking <-> non_thinking, then backups")
    request_timeout: float = Field(600.0, gt=0, description="Whole-request deadline")


class VerifierConfig(_Strict):
    """One grader run after matching responses (router/verifiers.py); the reference answer
    comes from the request's `expected:<value>` tag or its metadata.expected."""

    name: str
    kind: Literal["numeric", "exact", "regex", "json_schema", "command"]
    tags: list[str] = Field(default_factory=list, description="Requests with any tag; [] = all")
    models: list[str] = Field(default_factory=list,
                              description="Routes (group or model) it applies to; [] = all")
    pattern: str | None = Field(None, description="regex: the pattern to search for")
    json_schema: dict[str, Any] | None = Field(None, description="json_schema: the schema")
    command: list[str] | None = Field(None, description="command: argv; answer on stdin")
    timeout: float = Field(10.0, gt=0, le=600)
    tolerance: float = Field(1e-6, ge=0, description="numeric: absolute tolerance")


class OutcomesConfig(_Strict):
    """Outcomes from live traffic, all off the request path (server/traffic/outcome_service.py)."""

    verifiers: list[VerifierConfig] = Field(default_factory=list)
    shadow_share: float = Field(0.0, ge=0, le=1,
                                description="Share of requests also sent to the other group")
    exploration_share: float = Field(0.0, ge=0, le=1,
                                     description="Share of routed requests sent to a random group")
    max_concurrency: int = Field(4, ge=1, le=256, description="Background verifier/shadow tasks")
    seed: int | None = Field(None, description="Seed for shadow and exploration draws")


class AuthConfig(_Strict):
    mode: Literal["local", "keys"] = Field(
        "local", description="'local': no keys, loopback only; 'keys': Bearer API keys required")
    keys_file: Path | None = Field(None, description="Key store; default: <data_dir>/keys.sqlite")


class ServerSection(_Strict):
    host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    grpc_port: int = Field(50051, ge=0, le=65535)
    data_dir: Path = Field(default_factory=lambda: default_data_dir())
    traffic_log: Path | None = Field(None, description="Default: <data_dir>/traffic.sqlite")
    log_requests: bool = Field(True, description="Write one traffic-log row per request")
    log_bodies: bool = Field(True, description="Keep request bodies in the log (for replay)")
    warm_up: bool = Field(True, description="Ready (/readyz, gRPC health) only after each "
                          "request path ran once; off: ready once loaded")
    before_ready: Literal["wait", "reject"] = Field(
        "wait", description="A request before ready waits, or gets 503 + retry-after")
    ready_timeout_s: float = Field(30.0, gt=0, description="'wait': then 503 after this long")
    database_url: str | None = Field(
        None, pattern=r"^postgres(ql)?://",
        description="PostgreSQL shared by replicas (log, keys, responses, chunks); "
        "default: SQLite files under data_dir")
    redis_url: str | None = Field(
        None, pattern=r"^rediss?://",
        description="Redis shared by replicas: per-key limits and upstream cooldowns")
    workers: int = Field(1, ge=1, le=64, description="HTTP worker processes on one port")

    @property
    def traffic_log_path(self) -> Path:
        return self.traffic_log or self.data_dir / "traffic.sqlite"


class Config(_Strict):
    server: ServerSection = Field(default_factory=ServerSection)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    prices: dict[str, Price] = Field(
        default_factory=lambda: {
            "openai/o4-mini": Price(input=1.10, output=4.40),
            "openai/gpt-4.1-mini": Price(input=0.40, output=1.60),
        }
    )
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    compaction: CompactionConfig = Field(default_factory=CompactionConfig)
    recall: RecallConfig = Field(default_factory=RecallConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    outcomes: OutcomesConfig = Field(default_factory=OutcomesConfig)
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Model names (fnmatch patterns) the config does not know -> a model name "
        "or group it does, e.g. {'claude-*': 'switchyard/auto'} for Claude Code")

    @model_validator(mode="after")
    def _aliases_known(self) -> Config:
        known = {AUTO_MODEL, "thinking", "non_thinking", *self.models.group_of()}
        bad = sorted(t for t in self.aliases.values() if t not in known)
        if bad:
            raise ValueError(f"aliases must point at {AUTO_MODEL}, a group or a configured "
                             f"model; unknown: {', '.join(bad)}")
        return self

    def alias_for(self, model: str) -> str | None:
        """The first alias pattern (in file order) that matches `model`, if any."""
        return next((target for pattern, target in self.aliases.items()
                     if fnmatch.fnmatchcase(model, pattern)), None)

    @model_validator(mode="after")
    def _cascade_verifiers_usable(self) -> Config:
        kinds = {v.name: v.kind for v in self.outcomes.verifiers}
        for name in self.routing.cascade.verifiers:
            if name not in kinds:
                raise ValueError(f"routing.cascade.verifiers: {name!r} is not one of "
                                 f"outcomes.verifiers ({', '.join(sorted(kinds)) or 'none'})")
            if kinds[name] in ("numeric", "exact"):
                raise ValueError(f"routing.cascade.verifiers: {name!r} ({kinds[name]}) needs "
                                 "a reference answer, which a live draft does not have; use "
                                 "regex, json_schema or command")
        return self

    def price_of(self, deployment: Deployment) -> Price:
        """Configured price by public name or model string; unpriced models cost 0 (logged)."""
        return (self.prices.get(deployment.public_name) or self.prices.get(deployment.model)
                or Price(input=0.0, output=0.0))


def default_data_dir() -> Path:
    env = os.environ.get(ENV_PREFIX + "DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "switchyard"


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 booleans: on, off, yes and no stay strings."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YamlLoader)  # safe: _YamlLoader is a SafeLoader


class _EnvSchema(BaseSettings, Config):
    """Config's keys as SWITCHYARD_* variables; only read from, never instantiated."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                      case_sensitive=False, extra="forbid")
    data_dir: Path | None = None  # SWITCHYARD_DATA_DIR, short for SERVER__DATA_DIR


class _EnvSource(EnvSettingsSource):
    """pydantic-settings' env source over a given mapping, with YAML for lists and maps."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(_EnvSchema)
        self.env_vars = {key.lower(): None if value.strip() in ("", "null", "~") else value
                         for key, value in environ.items()}

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        try:
            return read_yaml(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"{field_name}: not YAML ({exc})") from None


def unusable_data_dir(path: Path, exc: Exception) -> ConfigError:
    """The one-line error for a data directory we cannot create or write."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ConfigError(f"cannot use the data directory {path}: {why}; choose a writable "
                       "folder with --data-dir or SWITCHYARD_DATA_DIR")


def load_config(
    path: Path | None = None, environ: Mapping[str, str] = os.environ, **overrides: Any
) -> Config:
    """File, then environment, then keyword overrides (CLI flags), validated once."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = read_yaml(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a YAML mapping at the top level")
        raw = loaded
    _apply_env(raw, environ)
    for dotted, value in overrides.items():
        if value is not None:
            _set_path(raw, dotted.split("."), value)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n" + _describe(exc)) from None


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    try:
        env = _EnvSource(environ)()
    except ValueError as exc:  # pydantic-settings' SettingsError included
        raise ConfigError(f"invalid environment override: {exc}") from None
    data_dir = env.pop("data_dir", None)
    if data_dir is not None:  # the long form wins over the short one
        env.setdefault("server", {}).setdefault("data_dir", data_dir)
    _merge(raw, env)


def _merge(raw: dict[str, Any], env: Mapping[str, Any]) -> None:
    for key, value in env.items():
        if isinstance(value, Mapping) and isinstance(raw.get(key), dict):
            _merge(raw[key], value)
        else:
            raw[key] = value


def _set_path(raw: dict[str, Any], parts: list[str], value: Any) -> None:
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)
