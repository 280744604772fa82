"""Every third-party module the packages import is declared in pyproject.toml, as a
dependency or in an extra (not `dev`: an installed switchyard must not need test tools)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    bare = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert bare, requirement
    return re.sub(r"[-_.]+", "-", bare.group(0)).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [reqs for name, reqs in project.get("optional-dependencies", {}).items()
              if name != "dev"]
    return {_name(r) for reqs in [project["dependencies"], *extras] for r in reqs}


def package_folders() -> list[Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return [ROOT / folder for folder in config["package-dir"].values()]


def imported_top_levels() -> dict[str, str]:
    """Top-level module -> one file importing it (absolute imports only)."""
    found: dict[str, str] = {}
    for folder in package_folders():
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared() -> None:
    owners = importlib.metadata.packages_distributions()
    wanted = declared()
    missing = []
    for module, where in sorted(imported_top_levels().items()):
        if module in sys.stdlib_module_names or module in ("switchyard", "__future__"):
            continue
        # an optional extra that is not installed (numba) is known by its module's name
        dists = {_name(d) for d in owners.get(module, [])} or {_name(module)}
        if not dists & wanted:
            missing.append(f"{module} (imported in {where}; provided by "
                           f"{', '.join(sorted(dists))})")
    assert not missing, "declare in pyproject.toml: " + "; ".join(missing)
