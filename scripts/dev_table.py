#!/usr/bin/env python
"""The development table of ``glassworld world``: one row per world folder, the issue's figures side by side.

    python scripts/dev_table.py WORLD_DIR [WORLD_DIR ...] [--names pong,boxing,...] --out docs/results/dev_table

Each WORLD_DIR is the OUT of ``glassworld world IN OUT`` (``world.pt``, ``world.json``, ``eval_val.json``). Per
world it reads the card and the val evaluation and runs the held-controls check (``scripts/check_controls.py``:
every shift of the grid held for 5 steps from 16 start frames, the mean distance between where the model's own
mask ends and where the grid says it should). Written: ``OUT.json`` (every figure) and ``OUT.md`` (the table).

Columns (val split of each dataset, the clips the world command evaluated):

* ``healthy`` and the problems (``worldmodel/health.py``);
* ``agent found``: share of real frames where the model's mask locates an agent;
* ``shifts explain``: share of the segmented agent's own motion the shift estimates explain (no ground truth);
* ``held-shift err``: the controls check above, px at the 64-px scale (x 64 / the frame's longer side);
* ``pos_err@16``: generated vs ground-truth agent position after 16 steps, px at the 64-px scale (needs ground
  truth); ``mdr``: share of generated frames where the agent is missing;
* ``beats copy``: PSNR where the real video moves, generation vs frame 0 repeated;
* ``minutes``: wall minutes of the whole command (import, settings, training, eval, ship) as recorded in the card.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import torch

from worldmodel.data.format import atomic_write_bytes
from worldmodel.models import load_world_model
from worldmodel.paths import portable_path


def _check_controls():
    """scripts/check_controls.py's function (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location("check_controls", Path(__file__).with_name("check_controls.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.check_controls


def world_row(world_dir: Path, name: str, device: str = "cpu") -> dict[str, Any]:
    """Every figure of one world folder (see the module doc)."""
    card = json.loads((world_dir / "world.json").read_text())
    ev = json.loads((world_dir / "eval_val.json").read_text())
    health = card.get("health") or ev.get("health") or {}
    model = load_world_model(world_dir / "world.pt", device)
    controls = _check_controls()(model)
    scale = 64.0 / max(model.height, model.width)
    held = controls["mean_error_moving_shifts_px"]
    pos = ev.get("pos_err") or {}
    settings = card.get("derived_settings") or {}
    return {
        "name": name, "world": portable_path(world_dir.resolve()), "healthy": health.get("healthy"),
        "problems": health.get("problems", []), "warnings": health.get("warnings", []),
        "agent_found": health.get("agent_found"), "shift_explained": health.get("shift_explained"),
        "held_shift_err_64px": None if held is None else held * scale,
        "pos_err16_64px": None if pos.get("16") is None else pos["16"] * scale, "mdr": ev.get("mdr"),
        "beats_copy": health.get("beats_copy"), "psnr_moving": health.get("psnr_moving"),
        "copy_psnr_moving": health.get("copy_psnr_moving"), "shift_step": health.get("shift_step"),
        "data_motion": health.get("data_motion"), "motion_source": health.get("motion_source"),
        "codes_used": health.get("codes_used"), "miou": ev.get("miou"), "mask_size": settings.get("mask_size"),
        "train_steps": card.get("train_steps"), "minutes": card.get("world_minutes"),
        "budget_min": settings.get("budget_min"), "frame": [model.height, model.width],
    }


def _fmt(v: Any, spec: str = ".2f", pct: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    return f"{v:.0%}" if pct else format(v, spec)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table (one row per world) and each world's problems below it."""
    head = ("| world | healthy | agent found | shifts explain | held-shift err (px@64) | pos_err@16 (px@64) | mdr | "
            "beats copy (moving PSNR, gen / copy) | codes used | mask_size | steps | minutes (budget) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        beats = (f"{_fmt(r['beats_copy'])} ({_fmt(r['psnr_moving'], '.1f')} / {_fmt(r['copy_psnr_moving'], '.1f')})")
        lines.append(
            f"| {r['name']} | {_fmt(r['healthy'])} | {_fmt(r['agent_found'], pct=True)} | "
            f"{_fmt(r['shift_explained'], pct=True)} | {_fmt(r['held_shift_err_64px'])} | "
            f"{_fmt(r['pos_err16_64px'])} | "
            f"{_fmt(r['mdr'])} | {beats} | {_fmt(r['codes_used'], 'd')} | {_fmt(r['mask_size'], '.4f')} | "
            f"{_fmt(r['train_steps'], 'd')} | {_fmt(r['minutes'], '.0f')} ({_fmt(r['budget_min'], '.0f')}) |")
    lines.append("")
    for r in rows:
        for p in r["problems"]:
            lines.append(f"- {r['name']}: problem: {p}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("worlds", nargs="+", type=Path, help="folders made by `glassworld world IN OUT`")
    p.add_argument("--names", help="comma-separated row names (default: the folder names)")
    p.add_argument("--out", required=True, type=Path, help="output stem: writes STEM.json and STEM.md")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    names = a.names.split(",") if a.names else [w.name for w in a.worlds]
    if len(names) != len(a.worlds):
        p.error(f"--names has {len(names)} names for {len(a.worlds)} worlds")
    missing = [str(w) for w in a.worlds if not (w / "world.json").is_file() or not (w / "eval_val.json").is_file()]
    if missing:
        p.error(f"not finished worlds (no world.json / eval_val.json): {missing}; run `glassworld world` on them")
    torch.set_num_threads(1)
    rows = [world_row(w, n, a.device) for w, n in zip(a.worlds, names, strict=True)]
    table = markdown(rows)
    print(table)
    atomic_write_bytes(a.out.with_suffix(".json"), (json.dumps(rows, indent=1) + "\n").encode())
    atomic_write_bytes(a.out.with_suffix(".md"), table.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
