"""Paths as written into results, summaries and model cards: no machine's absolute paths in what gets committed.

:func:`portable_path` writes a path relative to the repository when it is inside it (``runs/x``), or beside it
(``../data/tennis64``), and under the home folder as ``~/...``; anything else stays as given.
:func:`portable_paths` applies that to every absolute path in a JSON-like object, prose included (eval reasons
name the folders they looked in).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_ABS = re.compile(r"(?<![\w.~/:])/[\w.-]+(?:/[\w.*+-]+)+")  # an absolute path inside text (not a URL's //host)


def portable_path(path: str | os.PathLike | None) -> str | None:
    """``/abs/repo/runs/x`` -> ``runs/x``; ``/abs/data/t`` beside the repo -> ``../data/t``; ``$HOME/.cache/x`` ->
    ``~/.cache/x``; relative and other paths unchanged (None stays None)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_absolute():
        return str(path)
    p = Path(os.path.normpath(p))
    for base, prefix in ((REPO, ""), (REPO.parent, "../")):
        try:
            rel = p.relative_to(base)
        except ValueError:
            continue
        return prefix + str(rel) if str(rel) != "." else (prefix.rstrip("/") or ".")
    try:
        return "~/" + str(p.relative_to(Path.home()))
    except (ValueError, RuntimeError):
        return str(path)


def portable_text(text: str) -> str:
    """Every absolute path inside ``text`` made portable (:func:`portable_path`)."""
    return _ABS.sub(lambda m: portable_path(m.group(0)) or m.group(0), text)


def portable_paths(obj: Any) -> Any:
    """A copy of a JSON-like object (dicts, lists, strings) with every absolute path made portable."""
    if isinstance(obj, str):
        return portable_text(obj)
    if isinstance(obj, dict):
        return {k: portable_paths(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(portable_paths(v) for v in obj)
    return obj
