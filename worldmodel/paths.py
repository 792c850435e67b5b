"""Paths as written into results, summaries and model cards: relative to the repository (or the working
directory) when they are inside it, so committed JSON and cards carry no machine's absolute paths."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def portable_path(path: str | os.PathLike | None) -> str | None:
    """``path`` relative to the repository root when inside it, else relative to the working directory when
    inside that, else as given (None stays None). ``/abs/repo/runs/x`` -> ``runs/x``."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_absolute():
        return str(path)
    resolved = p.resolve()
    for base in (REPO, Path.cwd().resolve()):
        try:
            return str(resolved.relative_to(base))
        except ValueError:
            continue
    return str(path)
