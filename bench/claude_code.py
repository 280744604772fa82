"""Claude Code (npm `@anthropic-ai/claude-code`) finishes a task through Switchyard.

Starts the fake upstream and `switchyard serve` with the one config line a Claude Code user
adds (`aliases: {"claude-*": "switchyard/auto"}`), runs the real binary non-interactively
with only ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY set, and asks it to write a file: the fake
model calls Claude Code's Write tool (scripted in the prompt), Claude Code writes the file and
sends the tool result back, the model answers. The task finished if `claude -p` exited 0
with an answer, the file holds the text, and every request it sent was answered 2xx and
logged (endpoint `http.messages`, body kept for replay).

    npm i --prefix /tmp/claude @anthropic-ai/claude-code
    python bench/claude_code.py [--claude PATH] [--router mlp]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.proxy import fake_upstream_process, proxy_process, write_results

ALIASES = {"aliases": {"claude-*": "switchyard/auto"}}
PROOF, PROOF_TEXT = "proof.txt", "written by Claude Code through Switchyard\n"
NPM_BINARY = Path("/tmp/claude/node_modules/@anthropic-ai/claude-code-linux-x64/claude")


def find_claude(given: str | None) -> Path | None:
    """The native binary: npm's postinstall copies it over bin/claude.exe; without it, the
    platform package holds it."""
    for candidate in (given, os.environ.get("CLAUDE_BIN"), shutil.which("claude"),
                      str(NPM_BINARY)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def task(workdir: Path) -> str:
    args = {"file_path": str(workdir / PROOF), "content": PROOF_TEXT}
    return f"Write the proof file: call Write with {json.dumps(args)}"


def run_claude(claude: Path, port: int, workdir: Path,
               timeout: float) -> tuple[int, str, str, float]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir.parent),
           "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_API_KEY": "unused",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        done = subprocess.run([str(claude), "-p", task(workdir), "--allowedTools", "Write"],
                              cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, "", f"timed out after {timeout:.0f} s", time.monotonic() - started
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def logged(log: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(log)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute(
        "SELECT endpoint, requested_model, model, status, http_status, stream, "
        "request_json IS NOT NULL AS has_body FROM requests ORDER BY created_at")]
    db.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claude", help="path to the claude binary (default: PATH, npm)")
    parser.add_argument("--router", default="mlp")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    claude = find_claude(args.claude)
    if claude is None:
        sys.exit("Error: no claude binary; install it with "
                 "`npm i --prefix /tmp/claude @anthropic-ai/claude-code` or pass --claude")
    version = subprocess.run([str(claude), "--version"], capture_output=True, text=True,
                             check=False, timeout=60).stdout.strip()
    with fake_upstream_process() as upstream_port, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        with proxy_process(upstream_port, args.router, data_dir, ALIASES) as port:
            workdir = Path(tmp) / "home" / "work"
            rc, out, err, seconds = run_claude(claude, port, workdir, args.timeout)
        rows = logged(data_dir / "traffic.sqlite")
        proof = workdir / PROOF
        written = proof.is_file() and proof.read_text() == PROOF_TEXT
    ok_rows = [r for r in rows if r["status"] == "ok" and r["has_body"]
               and r["endpoint"] == "http.messages"]
    finished = (rc == 0 and bool(out.strip()) and written and bool(rows)
                and len(ok_rows) == len(rows))
    print(f"claude {version}: exit {rc} in {seconds:.1f} s; answer: {out.strip()[:200]!r}")
    if err.strip():
        print(f"stderr: {err.strip()[:500]}")
    for r in rows:
        print(f"  {r['endpoint']:14} {r['requested_model']:>18} -> {r['model'] or '-':12} "
              f"{r['status']:6} http {r['http_status'] or 200} stream={bool(r['stream'])}")
    print(f"task finished: {finished} (file written: {written}; {len(ok_rows)}/{len(rows)} "
          "requests 2xx, logged, replayable)")
    path = write_results("claude_code", {
        "claude_version": version, "router": args.router, "exit_code": rc,
        "file_written": written, "seconds": round(seconds, 2), "answer": out.strip()[:500],
        "requests": rows, "finished": finished})
    print(f"wrote {path}")
    sys.exit(0 if finished else 1)


if __name__ == "__main__":
    main()
