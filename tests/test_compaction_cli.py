"""`switchyard compact` and `train-compactor` through typer's CliRunner."""

from __future__ import annotations

import json

import typer
from switchyard.server.cli.compaction import register
from typer.testing import CliRunner


def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def big_history() -> list[dict]:
    msgs = [{"role": "system", "content": "agent"}, {"role": "user", "content": "fix foo_bar"}]
    for i in range(10):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"c{i}", "type": "function",
             "function": {"name": "cat", "arguments": f'{{"path": "f{i}.py"}}'}}]})
        msgs.append({"role": "tool", "tool_call_id": f"c{i}",
                     "content": "\n".join(f"line_{i}_{j} = {j}" for j in range(80))})
    return msgs


def test_compact_prints_messages_and_stats(tmp_path) -> None:
    path = tmp_path / "h.json"
    for payload in ({"messages": big_history()}, big_history()):
        path.write_text(json.dumps(payload))
        for strategy in ("learned", "truncate"):
            res = CliRunner().invoke(app(), ["compact", "--input", str(path), "--budget", "2500",
                                             "--strategy", strategy])
            assert res.exit_code == 0, res.output
            out = json.loads(res.stdout)
            assert out["stats"]["tokens_after"] <= 2500 < out["stats"]["tokens_before"]
            assert out["stats"]["strategy"] == strategy
            assert out["messages"][0] == {"role": "system", "content": "agent"}


def test_compact_bad_input(tmp_path) -> None:
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"messages": [{"role": "robot", "content": "x"}]}))
    res = CliRunner().invoke(app(), ["compact", "--input", str(path), "--budget", "100"])
    assert res.exit_code != 0 and "role must be one of" in str(res.exception)
    path.write_text("not json")
    res = CliRunner().invoke(app(), ["compact", "--input", str(path), "--budget", "100"])
    assert res.exit_code != 0 and "cannot read JSON" in res.output


def test_train_compactor_writes_checkpoint(tmp_path) -> None:
    data = tmp_path / "data" / "tau-bench"
    data.mkdir(parents=True)
    trajs = []
    for k in range(12):
        traj = [{"role": "system", "content": "airline agent"},
                {"role": "user", "content": f"my id is user_{k}_77 and booking ABC{k}12"}]
        for j in range(4):
            traj.append({"role": "assistant", "content": f"checking flight HAT{j}{k}0"})
            traj.append({"role": "user", "content": f"ok, also order_{j}_{k} please"})
        traj.append({"role": "assistant", "content": f"done for user_{k}_77, ABC{k}12"})
        trajs.append({"task_id": k, "trial": 0, "reward": 1.0, "traj": traj})
    (data / "log.json").write_text(json.dumps(trajs))
    out = tmp_path / "ck" / "scorer.json"
    res = CliRunner().invoke(app(), ["train-compactor", "--out", str(out), "--data",
                                     str(tmp_path / "data"), "--epochs", "2"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and out.with_suffix(".safetensors").is_file()
    assert "val_auc" in res.stdout


def test_a_budget_below_the_minimum_is_a_clean_error_for_a_real_user(tmp_path) -> None:
    """Run as a user would (a fresh process, no test hooks): one line naming the minimum,
    exit 1, no traceback."""
    import subprocess
    import sys

    path = tmp_path / "h.json"
    path.write_text(json.dumps(big_history()))
    code = "from switchyard.server.cli.main import main; main()"
    res = subprocess.run([sys.executable, "-c", code, "compact", "--input", str(path),
                          "--budget", "10"], check=False, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "Error: budget of 10 tokens is below" in res.stderr
