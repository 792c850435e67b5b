"""Check the RAM agent positions of ``glassworld data atari`` against the agent's pixels on fresh episodes.

Usage::

    OMP_NUM_THREADS=1 python scripts/atari_ground_truth.py --episodes 3 --max-steps 600 --seed 1 \\
        [--games Pong Freeway ...] [--out docs/results/atari_ground_truth.json]

For every game whose preset has an agent colour (``GamePreset.pixels``) it records episodes at the crop's own size
(frames = native pixels), locates the agent by its colour and compares the sprite's bounding-box centre with the RAM
position (:func:`worldmodel.data.atari_truth.check_agent`). Prints a Markdown table (errors in native px; agent
size at 64x64 in output px) and optionally writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from worldmodel.data.atari import GAME_PRESETS, AtariConfig, AtariRecorder, display_name
from worldmodel.data.atari_truth import check_agent


def check_game(rom: str, episodes: int, max_steps: int, seed: int) -> dict:
    """Record ``episodes`` episodes of game ``rom`` and check its RAM positions; returns the summary numbers."""
    preset = GAME_PRESETS[rom]
    assert preset.pixels is not None and preset.agent is not None
    top, bottom, left, right = preset.crop
    rec = AtariRecorder(AtariConfig(game=rom, size=(bottom - top, right - left), max_steps=max_steps, seed=seed))
    eps = [rec.record(i) for i in range(episodes)]
    rec.close()
    frames = np.concatenate([e.frames for e in eps])
    ram = np.concatenate([e.ram for e in eps])
    chk = check_agent(frames, ram, preset.agent, preset.pixels, preset.crop)
    s = chk.summary()
    s["signed_median_u"] = float(np.median(chk.err_u)) if len(chk.err_u) else float("nan")
    s["signed_median_v"] = float(np.median(chk.err_v)) if len(chk.err_v) else float("nan")
    s["range_u"] = float(np.ptp(chk.pos[:, 0]))
    s["range_v"] = float(np.ptp(chk.pos[:, 1]))
    w, h = preset.agent_native_px or preset.pixels.size
    s["size_64"] = [round(w * 64 / (right - left), 1), round(h * 64 / (bottom - top), 1)]
    s["ram_bytes"] = preset.agent.ram_bytes()
    return s


def table(results: dict[str, dict]) -> str:
    """Markdown table of :func:`check_game` results."""
    lines = ["| game | agent | axes | size at 64x64 (W x H px) | RAM bytes | median / p95 err u (px) | "
             "median / p95 err v (px) | frames (visible, clean u / v) | pos in sprite box |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rom, s in results.items():
        p = GAME_PRESETS[rom]
        axes = "+".join(a for a, m in (("x", p.agent.u.moves), ("y", p.agent.v.moves)) if m)
        eu = f"{s['median_u']:.2f} / {s['p95_u']:.2f}" if p.agent.u.moves else "fixed (n/a)"
        ev = f"{s['median_v']:.2f} / {s['p95_v']:.2f}" if p.agent.v.moves else "fixed (n/a)"
        if not p.agent.u.moves:
            eu = f"fixed: {s['median_u']:.2f} / {s['p95_u']:.2f}"
        if not p.agent.v.moves:
            ev = f"fixed: {s['median_v']:.2f} / {s['p95_v']:.2f}"
        lines.append(f"| {display_name(rom)} | {p.agent_desc} | {axes} | {s['size_64'][0]} x {s['size_64'][1]} | "
                     f"{', '.join(f'ram[{b}]' for b in s['ram_bytes'])} | {eu} | {ev} | "
                     f"{s['frames']} ({s['visible']}, {s['n_u']} / {s['n_v']}) | {100 * s['inside']:.1f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", nargs="*", default=None, help="ROM ids (default: every preset with an agent colour)")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    args = ap.parse_args(argv)
    games = args.games or [g for g, p in GAME_PRESETS.items() if p.pixels is not None]
    results = {}
    for g in games:
        results[g] = check_game(g, args.episodes, args.max_steps, args.seed)
        print(g, json.dumps(results[g]), file=sys.stderr, flush=True)
    print(table(results))
    if args.out is not None:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
