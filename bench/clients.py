"""Real agent clients against Switchyard and the fake upstream: does each finish a task?

Runs the Codex CLI binary from npm (`npm i @openai/codex@0.171 --prefix /tmp/codex`)
non-interactively, `codex exec "..."`, configured exactly as docs/clients.md says
(`wire_api = "responses"`), against `switchyard serve` on tests/fake_upstream.py: a text task
and a tool round trip on Chat Completions deployments (Codex's web_search left out), and a
text task on deployments marked `responses_api: true` (web_search passed through). A task
passes when the client exits 0 with the upstream's answer, every request it sent was answered
2xx, and every one is in the traffic log with its request body, convertible for replay.

    python bench/clients.py [--codex /tmp/codex/node_modules/.bin/codex]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.proxy import fake_upstream_process, proxy_process, write_results

CODEX_CONFIG = """model = "switchyard/auto"
model_provider = "switchyard"

[model_providers.switchyard]
name = "Switchyard"
base_url = "http://127.0.0.1:{port}/v1"
wire_api = "responses"
env_key = "SWITCHYARD_API_KEY"
"""
# The fake upstream calls the first tool when the last message mentions a tool, and answers
# "The tool returned: ..." once it sees the tool's output: two requests, one tool round trip.
# "hosted": deployments marked responses_api: true, so Codex's web_search goes through to the
# fake's own /v1/responses, which names the hosted tools it was offered.
TASKS = {"text": "say hello", "tool": "use a tool to list the files here",
         "hosted": "say hello"}
EXPECTED = {"text": "You said:", "tool": "The tool returned:",
            "hosted": "Native answer with web_search"}
SETUPS = (({}, ("text", "tool")), ({"responses_api": True}, ("hosted",)))


@dataclass
class Run:
    client: str
    task: str
    passed: bool
    exit_code: int
    seconds: float
    requests: int
    non_2xx: int
    replayable: int
    detail: str


def find_codex(given: str | None) -> str | None:
    for candidate in (given, os.environ.get("CODEX_BIN"), shutil.which("codex"),
                      "/tmp/codex/node_modules/.bin/codex"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def run_codex(codex: str, port: int, task: str, log: Path, workdir: Path) -> Run:
    home = workdir / "codex-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(CODEX_CONFIG.format(port=port))
    project = workdir / "project"
    project.mkdir(exist_ok=True)
    (project / "README.md").write_text("demo\n")
    env = {**os.environ, "CODEX_HOME": str(home), "SWITCHYARD_API_KEY": "unused"}
    before = _row_count(log)
    started = time.monotonic()
    proc = subprocess.run([codex, "exec", "--skip-git-repo-check", TASKS[task]], cwd=project,
                          env=env, capture_output=True, text=True, timeout=180, check=False)
    seconds = time.monotonic() - started
    rows = _rows(log)[before:]
    non_2xx = sum(1 for r in rows if not 200 <= r["http_status"] < 300)
    replayable = sum(1 for r in rows if _replayable(r))
    answered = EXPECTED[task] in proc.stdout
    passed = (proc.returncode == 0 and answered and rows and non_2xx == 0
              and replayable == len(rows))
    tail = (proc.stderr.strip().splitlines() or [""])[-1]
    return Run("codex", task, bool(passed), proc.returncode, round(seconds, 2), len(rows),
               non_2xx, replayable, "" if passed else tail[:300])


def _rows(log: Path) -> list[dict]:
    if not log.exists():
        return []
    db = sqlite3.connect(log)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY created_at")]
    finally:
        db.close()


def _row_count(log: Path) -> int:
    return len(_rows(log))


def _replayable(row: dict) -> bool:
    from switchyard.server.traffic.replay_requests import replay_body

    try:
        replay_body(row["endpoint"], row["request_json"] or "")
    except ValueError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codex", help="Codex CLI binary (default: CODEX_BIN, PATH, /tmp/codex)")
    args = parser.parse_args()
    codex = find_codex(args.codex)
    if codex is None:
        sys.exit("Error: no codex binary; install it with "
                 "`npm i @openai/codex@0.171 --prefix /tmp/codex` or pass --codex")
    version = subprocess.run([codex, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    runs = []
    with fake_upstream_process() as upstream_port, tempfile.TemporaryDirectory() as tmp:
        for i, (deployment, tasks) in enumerate(SETUPS):
            data = Path(tmp) / f"data{i}"
            with proxy_process(upstream_port, "off", data, deployment=deployment) as port:
                runs += [run_codex(codex, port, task, data / "traffic.sqlite",
                                   Path(tmp) / task) for task in tasks]
    print(f"{version} through Switchyard (fake upstream)")
    for r in runs:
        status = "PASS" if r.passed else "FAIL"
        print(f"  {status} {r.client} {r.task:<5} exit={r.exit_code} {r.seconds:6.2f}s "
              f"requests={r.requests} non_2xx={r.non_2xx} replayable={r.replayable} "
              f"{r.detail}")
    out = write_results("clients", {"client_versions": {"codex": version},
                                    "runs": [asdict(r) for r in runs]})
    print(f"wrote {out}")
    sys.exit(0 if all(r.passed for r in runs) else 1)


if __name__ == "__main__":
    main()
