"""The wheel puts one top-level name into site-packages: `switchyard`, beside other software."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_holds_only_the_switchyard_namespace(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=120)
    [wheel] = tmp_path.glob("switchyard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"switchyard", wheel.name.split("-py")[0] + ".dist-info"}
    for shipped in ("switchyard/router/checkpoints/default.json",
                    "switchyard/compaction/checkpoints/scorer.json",
                    "switchyard/v1/gateway_pb2_grpc.py", "switchyard/v1/gateway.proto"):
        assert shipped in names
    assert not any(n.startswith("switchyard/__init__") for n in names)  # a namespace package


def test_proto_plus_and_our_stubs_import_side_by_side() -> None:
    # proto-plus owns the top-level module `proto`; our generated stubs must not claim it.
    code = ("import proto, switchyard.v1.gateway_pb2_grpc as g; "
            "assert proto.Message and g.GatewayServicer; print(proto.__file__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO.parent, timeout=60)
    assert "site-packages" in out.stdout
