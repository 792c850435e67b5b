"""``glassworld inspect PATH``: a short, human summary of a dataset folder or a checkpoint file.

A dataset folder is read from its ``manifest.json`` (no video is decoded); a checkpoint through
:func:`worldmodel.checkpoint.load_checkpoint`, the one safe loader (nothing in the file runs). The card summary and
health lines are shared with ``glassworld envs`` (:func:`card_summary`, :func:`health_summary`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .data.format import SPLITS, DatasetError, read_manifest


def health_summary(health: Any) -> str:
    """One phrase for a card's ``health`` (``healthy`` / ``unhealthy: <first problem>``); "unknown" without one."""
    if not health:
        return "unknown"
    if isinstance(health, dict):
        if "healthy" in health:
            problems, warnings = health.get("problems") or [], health.get("warnings") or []
            if not health["healthy"]:
                return "unhealthy: " + (problems[0] if problems else "see the card")
            return "healthy" + (f" ({len(warnings)} warning{'s' * (len(warnings) != 1)})" if warnings else "")
        return json.dumps(health, sort_keys=True)[:80]
    return str(health)


def _fmt(v: Any, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def card_summary(card: dict[str, Any]) -> str:
    """One line: model and preset, data, frame size, training steps and the card's headline test figures."""
    gen = card.get("generator") or {}
    data = gen.get("game") or card.get("source") or card.get("dataset") or "?"
    res = card.get("resolution")
    size = f"{res[0]}x{res[1]}" if isinstance(res, (list, tuple)) and len(res) == 2 else "?"
    parts = [f"{card.get('model', '?')} ({card.get('preset', '?')})", f"{data} {size}",
             f"{card.get('steps', '?')} steps"]
    ev = card.get("eval") or {}
    pos = ev.get("pos_err")
    figures = []
    if isinstance(pos, dict) and pos.get("16") is not None:
        figures.append(f"pos_err@16 {_fmt(pos['16'], 1)} px")
    for key in ("mdr", "miou", "kp_track_err"):
        if ev.get(key) is not None:
            figures.append(f"{key} {_fmt(ev[key])}")
    if figures:
        parts.append(f"{ev.get('split', 'eval')}: " + ", ".join(figures))
    return "; ".join(parts)


def describe_dataset(root: Path) -> str:
    """Source, size, fps, ground truth, videos / frames / identities per split of a dataset folder."""
    m = read_manifest(root)
    videos = m["videos"]
    lines = [f"dataset {root}: {m['source']}, {m['height']}x{m['width']} at {m['fps']:g} fps, "
             f"{m['num_videos']} videos, {m['num_frames']} frames",
             f"ground truth: {', '.join(m.get('ground_truth') or []) or 'none'}"]
    for split in SPLITS:
        names = m["splits"].get(split, [])
        idents = {videos[n].get("identity", n) for n in names}
        frames = sum(videos[n]["frames"] for n in names)
        note = "  <- empty: make more identities (episodes, sprites, files) or use another split" if not names else ""
        lines.append(f"  {split:<5} {len(names):>5} videos  {frames:>7} frames  {len(idents):>5} identities{note}")
    gen = {k: v for k, v in (m.get("generator") or {}).items() if k not in ("out", "in", "sprites_dir")}
    if gen:
        lines.append("made by: " + ", ".join(f"{k}={v}" for k, v in gen.items()))
    return "\n".join(lines)


def describe_checkpoint(path: Path) -> str:
    """Model, preset, step, frame size, actions (shifts, codes and meanings), start frames, card and health."""
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    cfg, info, card = ckpt.get("model_config") or {}, ckpt.get("env_info") or {}, ckpt.get("card") or {}
    h, w = cfg.get("height", "?"), cfg.get("width", "?")
    preset = cfg.get("preset") or card.get("preset", "?")
    lines = [f"checkpoint {path}: {ckpt.get('model', '?')} (preset {preset}), step "
             f"{ckpt.get('step', '?')}, {h}x{w} frames, format version {ckpt.get('version', '?')}"]
    shifts = info.get("shift_names") or []
    meanings = info.get("code_meanings") or []
    lines.append(f"actions: {len(shifts)} shifts ({', '.join(map(str, shifts))}), "
                 f"{cfg.get('num_codes', len(meanings) or '?')} codes")
    if meanings:
        lines.append("codes: " + ", ".join(f"{i}: {m}" for i, m in enumerate(meanings)))
    start = info.get("start_frames")
    if start is not None:
        lines.append(f"start frames: {len(start)}")
    if card:
        lines.append("card: " + card_summary(card))
    lines.append("health: " + health_summary(card.get("health")))
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    """``glassworld inspect PATH``."""
    if len(argv) != 1:
        print("glassworld inspect: give one PATH (a dataset folder or a checkpoint file), e.g. "
              "`glassworld inspect data/tennis64`", file=sys.stderr)
        return 2
    path = Path(argv[0]).expanduser()
    try:
        if path.is_dir():
            print(describe_dataset(path))
        elif path.is_file():
            print(describe_checkpoint(path))
        else:
            raise DatasetError(f"{path} does not exist; give a dataset folder (with manifest.json) or a "
                               "checkpoint file (.pt)")
    except DatasetError as e:
        print(f"glassworld inspect: error: {e}", file=sys.stderr)
        return 2
    return 0
