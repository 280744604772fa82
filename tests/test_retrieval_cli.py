"""`switchyard index` / `switchyard search` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from switchyard.server.cli.retrieval import register
from typer.testing import CliRunner


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "users.py").write_text("def load_user(uid):\n    raise KeyError(uid)\n")
    (root / "notes.md").write_text("Deploy with make release after tests pass.\n")
    return root


def test_index_then_search(app: typer.Typer, repo: Path, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    result = runner.invoke(app, ["index", str(repo), "--namespace", "code", "--no-dense",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2 chunks, 2 new" in result.output
    result = runner.invoke(app, ["search", "load_user", "-n", "code", "--mode", "grep"])
    assert result.exit_code == 0, result.output
    assert "users.py:1" in result.output and "[grep#1]" in result.output
    result = runner.invoke(app, ["search", "KeyError", "-n", "code", "--mode", "bm25",
                                 "--json", "-k", "1"])
    hits = json.loads(result.output)
    assert [(h["source"], h["ranks"]) for h in hits] == [("users.py", {"bm25": 1})]
    result = runner.invoke(app, ["search", "raise\\s+\\w+Error", "-n", "code", "--mode",
                                 "grep", "--regex", "--data-dir", str(tmp_path / "data")])
    assert "users.py:2" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["search", "", "-n", "code"], "empty query"),
    (["search", "x", "-n", "missing"], "no chunks in namespace"),
    (["search", "(x", "-n", "code", "--mode", "grep", "--regex"], "invalid regular"),
    (["search", "x", "-n", "code", "--mode", "fuzzy"], "unknown mode"),
    (["search", "x", "-n", "code", "-k", "0"], "k must be"),
])
def test_bad_input_exits_with_code_2(app: typer.Typer, repo: Path, tmp_path: Path,
                                     args: list[str], message: str) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, ["index", str(repo), "-n", "code", "--no-dense", *data]
                         ).exit_code == 0
    result = runner.invoke(app, [*args, *data])
    assert result.exit_code == 2
    assert message in result.output
