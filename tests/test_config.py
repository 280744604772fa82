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


def test_env_overrides_nest_parse_and_ignore_other_variables(tmp_path: Path) -> None:
    env = {"SWITCHYARD_SERVER__HTTP_PORT": "9000", "switchyard_upstream__num_retries": "4",
           "SWITCHYARD_ROUTING__THINKING_SHARE": "null", "SWITCHYARD_RECALL__CORPORA": "[a, b]",
           "SWITCHYARD_PRICES__FAKE__INPUT": "2.5", "SWITCHYARD_PRICES__FAKE__OUTPUT": "5",
           "SWITCHYARD_API_KEY": "belongs to the CLI", "SWITCHYARD_TRAJECTORIES": "/data",
           "OTHER__SERVER__HTTP_PORT": "1"}
    path = tmp_path / "c.yaml"
    path.write_text("server: {http_port: 9001, grpc_port: 7001}\nrouting: {thinking_share: 0.2}\n")
    config = load_config(path, environ=env)
    assert (config.server.http_port, config.server.grpc_port) == (9000, 7001)  # env over file
    assert config.upstream.num_retries == 4 and config.routing.thinking_share is None
    assert config.recall.corpora == ["a", "b"] and config.prices["fake"].output == 5.0


def test_long_data_dir_variable_wins_over_the_short_one(tmp_path: Path) -> None:
    env = {"SWITCHYARD_DATA_DIR": str(tmp_path / "short"),
           "SWITCHYARD_SERVER__DATA_DIR": str(tmp_path / "long")}
    assert load_config(None, environ=env).server.data_dir == tmp_path / "long"


@pytest.mark.parametrize(("env", "needle"), [
    ({"SWITCHYARD_SERVER__HTTP_PORTT": "1"}, "server.http_portt"),
    ({"SWITCHYARD_SERVER__HTTP_PORT": "abc"}, "server.http_port"),
    ({"SWITCHYARD_MODELS__THINKING": "[{model: "}, "invalid environment override"),
])
def test_bad_env_override_has_a_clear_message(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ=env)
    assert needle in info.value.message


@pytest.mark.parametrize("text", ["routing: {router: off}", "routing: {router: false}"])
def test_router_off_in_yaml_is_the_off_router(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text + "\ncompaction: {enabled: off}\nrecall: {enabled: yes}\n")
    config = load_config(path, environ={})
    assert config.routing.router == "off"
    assert config.compaction.enabled is False and config.recall.enabled is True


@pytest.mark.parametrize("word", ["on", "no", "yes", "off"])
def test_yaml_one_one_booleans_stay_names_where_a_name_is_expected(tmp_path: Path,
                                                                   word: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"compaction: {{strategy: {word}}}\nrecall: {{corpora: [{word}]}}\n")
    config = load_config(path, environ={"SWITCHYARD_ROUTING__ROUTER": word})
    assert config.compaction.strategy == word and config.recall.corpora == [word]
    assert config.routing.router == word


def test_router_off_from_yaml_serves(tmp_path: Path) -> None:
    from switchyard.router import load_router
    from switchyard.router.baselines import OffRouter

    path = tmp_path / "c.yaml"
    path.write_text("routing:\n  router: off\n")
    assert isinstance(load_router(load_config(path, environ={}).routing.router), OffRouter)
