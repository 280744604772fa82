"""Time to ready and first-call latencies of a fresh `switchyard serve`.

    .venv/bin/python bench/ready.py [--history-tokens 30000] [--router mlp]

Starts the fake upstream and `switchyard serve` in their own processes (loopback), then
prints: seconds to /healthz (alive) and to /readyz 200 (warm), and, on new clients right
after ready, the latency of the first short chat, of the first ~30k-token agent history
(real SWE-agent steps) compacted 4x, and of the first Recall over what that compaction
stored. Targets (issue 17): 100 ms, 500 ms and 200 ms. Writes bench/results/ready.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from proxy import BODY, ROOT, fake_upstream_process, free_port, write_results
from switchyard.compaction.trajectories import load_all
from switchyard.core.tokens import count_tokens


def agent_history(tokens: int) -> list[dict[str, Any]]:
    """Real SWE-agent messages (system, task, then steps) up to about `tokens` tokens."""
    trajectories = sorted((t for t in load_all() if t.source == "swe-agent"),
                          key=lambda t: -len(t.messages))
    out: list[dict[str, Any]] = []
    used = 0
    for traj in trajectories:
        for m in traj.messages:
            if m.role not in ("system", "user", "assistant") or not m.content:
                continue
            if out and m.role == "system":
                continue
            out.append({"role": m.role, "content": m.content})
            used += count_tokens(m.content)
            if used >= tokens:
                out.append({"role": "user", "content": "Which file did we change first?"})
                return out
    return out


def wait_status(url: str, status: int, t0: float, timeout: float = 300) -> float:
    """Seconds from `t0` until `url` answers `status`."""
    while time.monotonic() - t0 < timeout:
        try:
            if httpx.get(url, timeout=2).status_code == status:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer {status} within {timeout} s")


def first_calls(http_port: int, grpc_port: int, history: list[dict[str, Any]],
                history_tokens: int) -> dict[str, float]:
    import grpc
    from switchyard.v1 import gateway_pb2 as pb
    from switchyard.v1 import gateway_pb2_grpc as pb_grpc

    url = f"http://127.0.0.1:{http_port}/v1/chat/completions"
    out: dict[str, float] = {}
    with httpx.Client(timeout=60) as client:  # a new client: a new connection
        t0 = time.perf_counter()
        client.post(url, json=BODY).raise_for_status()
        out["first_short_chat_ms"] = (time.perf_counter() - t0) * 1000
    with httpx.Client(timeout=60) as client:
        headers = {"x-switchyard-session-id": "bench-ready",
                   "x-switchyard-compact-budget": str(history_tokens // 4)}
        t0 = time.perf_counter()
        r = client.post(url, json={"model": "switchyard/auto", "messages": history},
                        headers=headers)
        r.raise_for_status()
        out["first_history_4x_ms"] = (time.perf_counter() - t0) * 1000
        out["history_compacted_to"] = float(r.headers.get("x-switchyard-tokens-after", 0) or 0)
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = pb_grpc.GatewayStub(channel)
        t0 = time.perf_counter()
        reply = stub.Recall(pb.RecallRequest(query="where is the failing test", k=10,
                                             namespaces=["bench-ready"]))
        out["first_recall_ms"] = (time.perf_counter() - t0) * 1000
        out["recall_hits"] = float(len(reply.hits))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--history-tokens", type=int, default=30_000)
    ap.add_argument("--router", default="mlp")
    args = ap.parse_args()
    history = agent_history(args.history_tokens)
    tokens = sum(count_tokens(m["content"]) for m in history)
    with fake_upstream_process() as upstream, tempfile.TemporaryDirectory() as tmp:
        http_port, grpc_port = free_port(), free_port()
        base = f"http://127.0.0.1:{upstream}/v1"
        config = {
            "server": {"http_port": http_port, "grpc_port": grpc_port, "data_dir": tmp},
            "models": {"thinking": [{"model": "openai/fake-think", "api_base": base,
                                     "context_window": 200_000}],
                       "non_thinking": [{"model": "openai/fake-fast", "api_base": base,
                                         "context_window": 200_000}]},
            "routing": {"router": args.router},
        }
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "switchyard.server.cli.main", "serve",
                                 "--config", str(path)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            root = f"http://127.0.0.1:{http_port}"
            figures: dict[str, Any] = {"alive_s": wait_status(root + "/healthz", 200, t0)}
            figures["ready_s"] = wait_status(root + "/readyz", 200, t0)
            figures["warm_up_ms"] = httpx.get(root + "/readyz").json()["warm_up_ms"]
            figures.update(first_calls(http_port, grpc_port, history, tokens))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    figures["history_tokens"] = tokens
    print(f"alive (/healthz) after {figures['alive_s']:.2f} s; ready (/readyz) after "
          f"{figures['ready_s']:.2f} s; warm-up steps (ms) {figures['warm_up_ms']}")
    print(f"first short chat {figures['first_short_chat_ms']:.0f} ms (target 100)")
    print(f"first {tokens}-token history at a 4x budget {figures['first_history_4x_ms']:.0f} ms "
          f"(target 500)")
    print(f"first Recall {figures['first_recall_ms']:.0f} ms, {figures['recall_hits']:.0f} hits "
          f"(target 200)")
    print(f"wrote {write_results('ready', figures)}")


if __name__ == "__main__":
    main()
