"""Build .mypy_tree/switchyard/: one symlink per package that pyproject maps into the namespace.

mypy cannot follow setuptools' package-dir mapping through an editable install, so it reads
the packages from this tree instead ([tool.mypy] mypy_path). Run before `mypy`; .ci/run does.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / ".mypy_tree"


def main() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shutil.rmtree(TREE, ignore_errors=True)
    mapped = setuptools["package-dir"]
    for package, folder in sorted(mapped.items()):
        parts = package.split(".")
        if any(".".join(parts[:i]) in mapped for i in range(1, len(parts))):
            continue  # a subpackage: its folder sits inside its parent's, linked already
        link = TREE.joinpath(*parts)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT / folder, target_is_directory=True)


if __name__ == "__main__":
    main()
