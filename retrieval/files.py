"""Files into chunks for `Index.index_path`: walk a tree, honour .gitignore, cut line windows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .chunk import Chunk, chunk_id

MAX_FILE_BYTES = 1 << 20  # bigger files are data or generated code, not worth indexing
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv"})


@dataclass(frozen=True)
class ChunkingParams:
    max_lines: int = 40
    max_chars: int = 2_000


def iter_files(root: Path) -> Iterator[Path]:
    """Files under root (or root itself), skipping what .gitignore files along the way ignore."""
    import pathspec

    root = Path(root)
    if root.is_file():
        yield root
        return
    specs: list[tuple[Path, pathspec.PathSpec]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        specs = [(base, spec) for base, spec in specs if base in here.parents or base == here]
        ignore_file = here / ".gitignore"
        if ignore_file.is_file():
            lines = ignore_file.read_text(errors="replace").splitlines()
            specs.append((here, pathspec.GitIgnoreSpec.from_lines(lines)))

        def ignored(path: Path, is_dir: bool, specs: list = specs) -> bool:
            for base, spec in specs:
                rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
                if spec.match_file(rel):
                    return True
            return False

        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not ignored(here / d, True)
        )
        for name in sorted(filenames):
            path = here / name
            if not ignored(path, False):
                yield path


def read_text(path: Path) -> str | None:
    """The file's text, or None for binary, unreadable or oversized files."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def chunk_file(text: str, source: str, namespace: str,
               params: ChunkingParams = ChunkingParams()) -> list[Chunk]:
    """Consecutive line windows (no overlap), cut at max_lines or max_chars."""
    chunks: list[Chunk] = []
    lines = text.splitlines(keepends=True)
    start = 0
    while start < len(lines):
        end, size = start, 0
        while end < len(lines) and end - start < params.max_lines:
            if size + len(lines[end]) > params.max_chars and end > start:
                break
            size += len(lines[end])
            end += 1
        body = "".join(lines[start:end])[: params.max_chars * 4]
        if body.strip():
            chunks.append(Chunk(
                id=chunk_id(namespace, body, source, start + 1), namespace=namespace,
                text=body, source=source, start_line=start + 1,
            ))
        start = end
    return chunks
