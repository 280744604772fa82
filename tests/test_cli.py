"""The top-level CLI: help, version, and the traffic-log commands."""

from __future__ import annotations

from pathlib import Path

from switchyard.core.trafficlog.schema import TrafficRecord
from switchyard.server.cli.main import app
from switchyard.server.traffic.writer import TrafficLog
from typer.testing import CliRunner


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "route", "compact", "index", "search", "train-router",
                    "replay", "keys", "log"):
        assert command in result.output


def test_log_path_and_export(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    log_path = tmp_path / "data" / "traffic.sqlite"  # the autouse fixture's data dir
    log = TrafficLog(log_path)
    log.write_sync(TrafficRecord("r1", "s1", "test", prompt_tokens=3))
    log.close()
    runner = CliRunner()
    assert runner.invoke(app, ["log", "path"]).output.strip() == str(log_path)
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["log", "export", "--parquet", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported 1 rows" in result.output
    assert pq.read_table(out).column("prompt_tokens").to_pylist() == [3]


def test_export_without_a_log_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["log", "export", "--parquet", str(tmp_path / "x.parquet"),
                                      "--log", str(tmp_path / "missing.sqlite")])
    assert result.exit_code == 1 and "no traffic log at" in result.output + str(result.stderr)
