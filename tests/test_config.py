from pathlib import Path

import pytest
from switchyard.server.config import load_config
from switchyard.server.errors import ConfigError


def test_defaults_work_without_a_file() -> None:
    config = load_config(None, environ={})
    assert config.server.http_port == 8080 and config.server.grpc_port == 50051
    assert config.models.thinking and config.models.non_thinking
    assert config.upstream.request_timeout < 6000  # never LiteLLM's 6000 s default
    assert all(d.timeout <= 600 for d in config.models.all())


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("server: {http_port: 9001}\nrouting: {thinking_share: 0.2}\n")
    env = {"SWITCHYARD_ROUTING__THINKING_SHARE": "0.3", "SWITCHYARD_DATA_DIR": str(tmp_path),
           "SWITCHYARD_MODELS__BACKUPS": "[{model: openai/gpt-4o-mini, api_key_env: K}]"}
    config = load_config(path, environ=env, **{"server.grpc_port": 7000})
    assert config.server.http_port == 9001
    assert config.routing.thinking_share == 0.3
    assert config.server.data_dir == tmp_path
    assert config.server.grpc_port == 7000
    assert config.models.backups[0].model == "openai/gpt-4o-mini"


@pytest.mark.parametrize("text,needle", [
    ("server: {http_port: abc}", "server.http_port"),
    ("routing: {thinking_share: 3}", "routing.thinking_share"),
    ("serverr: {}", "serverr"),
    ("models: {thinking: []}", "at least one deployment"),
    ("- a list", "YAML mapping"),
    ("server: {http_port: [", "cannot read config file"),
])
def test_bad_config_has_a_clear_message(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert needle in info.value.message


def test_duplicate_deployment_names_rejected() -> None:
    with pytest.raises(ConfigError, match="repeated: openai/x"):
        load_config(None, environ={}, **{
            "models.thinking": [{"model": "openai/x"}],
            "models.non_thinking": [{"model": "openai/x"}]})


def test_secret_keys_are_not_printed() -> None:
    config = load_config(None, environ={}, **{
        "models.thinking": [{"model": "openai/x", "api_key": "sk-secret-123"}]})
    assert "sk-secret-123" not in repr(config)
    assert config.models.thinking[0].resolve_api_key() == "sk-secret-123"
