#!/usr/bin/env python
"""Do the actions of a world model do what they say? Hold every (shift, code) pair from real start frames.

    python scripts/check_controls.py CHECKPOINT [--starts 16] [--hold 5] [--device cpu] [--out controls.json]

For every shift of the model's grid and every local code, ``--starts`` rollouts start from frames of the
checkpoint's start bank (the same frames for every pair) and hold that action for ``--hold`` steps. The agent's
position is the centroid of the model's agent mask (``segment`` on the start frame, the rendered mask after the
last step), as in the environments. Reported (JSON, and a table on stdout):

* per shift: the asked displacement (``hold`` x the grid shift, px), the expected one (asked, shortened where it
  would carry the agent out of the world's ``agent_box``, as the dream does: a paddle at the wall stays there), the
  measured mean displacement over starts and codes, its difference from the expected one, and the share of
  rollouts where the agent was lost (no mask);
* per code, at the no-move shift: the mean displacement, and how different the last frames are from those of
  the other codes (mean absolute difference in grey levels, 0-255): do the codes change anything? And the agent's
  look: a crop centred on the agent (12x8 px at a 64-px frame, as eval's agent_look), how much it changed from the
  start frame's agent crop (``agent_crop_change``) and how much it differs from the other codes' agent crops at the
  same place (``agent_crop_diff_vs_other_codes``), both in grey levels: does a code do something visible to the
  agent?
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from worldmodel.agent_look import DEFAULT_CROP_64, crop_boxes
from worldmodel.data.format import atomic_write_bytes
from worldmodel.metrics import kept_in_box, locate_agent
from worldmodel.models import load_world_model
from worldmodel.paths import portable_path


@torch.no_grad()
def check_controls(model, starts: int = 16, hold: int = 5, seed: int = 0) -> dict:
    """Hold every (shift, code) pair for ``hold`` steps from ``starts`` start-bank frames; see the module doc."""
    bank = model.start_frames
    if bank is None or len(bank) == 0:
        raise ValueError("the checkpoint has no start frames (env_info.start_frames); retrain or re-ship it")
    grid = model.shift_grid.float().cpu()  # (S, 2) px
    names = list(model.shift_names)
    n_shift, n_code = len(grid), int(model.num_codes)
    rng = np.random.default_rng(seed)
    pick = torch.as_tensor(rng.choice(len(bank), size=min(starts, len(bank)), replace=False))
    frames = bank[pick].to(model.device)  # (n, 3, H, W) uint8
    n = len(frames)
    # rows ordered (shift, code, start)
    shift_ids = torch.arange(n_shift).repeat_interleave(n_code * n)
    code_ids = torch.arange(n_code).repeat_interleave(n).repeat(n_shift)
    x = frames.repeat(n_shift * n_code, 1, 1, 1)
    start_mask = model.segment(frames[:, None].float() / 255.0)[:, 0].float().cpu()  # (n, 1, H, W)
    p0, v0 = locate_agent(start_mask)  # (n, 2), (n,)
    state = model.start(x)
    frame = mask = None
    for _ in range(hold):
        frame, mask, state = model.step(state, shift_ids.to(model.device), code_ids.to(model.device))
    p1, v1 = locate_agent(mask.float().cpu())  # (R, 2), (R,)
    p0r, v0r = p0.repeat(n_shift * n_code, 1), v0.repeat(n_shift * n_code)
    ok = (v0r & v1).view(n_shift, n_code, n)
    disp = (p1 - p0r).reshape(n_shift, n_code, n, 2)
    img = (frame.float().cpu() * 255).reshape(n_shift, n_code, n, -1)

    def mean_disp(sel: torch.Tensor, d: torch.Tensor) -> list[float] | None:
        return d[sel].mean(0).tolist() if bool(sel.any()) else None

    shifts = []
    for s in range(n_shift):
        asked = hold * grid[s]  # (2,) px
        # where the agent should end: asked, shortened at the edges of the world's agent_box (as step does)
        box = getattr(model, "agent_box", None)
        each = kept_in_box(asked.expand(n, 2).to(p0.device), p0, v0, box).cpu()  # (n, 2)
        sel = ok[s]  # (codes, starts)
        expected = each.expand(n_code, n, 2)[sel].mean(0).tolist() if bool(sel.any()) else asked.tolist()
        measured = mean_disp(sel, disp[s])
        shifts.append({"shift": names[s], "asked_px": asked.tolist(), "expected_px": expected, "measured_px": measured,
                       "error_px": None if measured is None else float(np.hypot(measured[0] - expected[0],
                                                                                 measured[1] - expected[1])),
                       "lost": float(1 - ok[s].float().mean())})
    still = 0  # the grid's first shift is "none"
    crops = _agent_crops(model, frames, frame.reshape(n_shift, n_code, n, *frame.shape[1:])[still],
                         p1.view(n_shift, n_code, n, 2)[still], p0, v0)  # (start, codes) crops, (n,) valid
    codes = []
    for c in range(n_code):
        others = [k for k in range(n_code) if k != c]
        diff = (img[still, c][None] - img[still, others]).abs().mean().item() if others else 0.0
        codes.append({"code": c, "meaning": model.code_meanings[c] if model.code_meanings else None,
                      "displacement_px": mean_disp(ok[still, c], disp[still, c]), "frame_diff_vs_other_codes": diff,
                      **_crop_change(crops, c)})
    moving = [r["error_px"] for r in shifts[1:] if r["error_px"] is not None]
    return {"hold": hold, "starts": n, "shifts": shifts, "codes": codes,
            "mean_error_moving_shifts_px": float(np.mean(moving)) if moving else None}


def _agent_crops(model, frames: torch.Tensor, last: torch.Tensor, p_last: torch.Tensor, p0: torch.Tensor,
                 v0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Agent crops in grey levels: of the start frames (n, h, w) and of each code's last frame (K, n, h, w), the
    latter centred on where the agent ended (else where it started); and which starts had an agent (n,)."""
    h, w = frames.shape[-2:]
    scale = max(h, w) / 64
    size = torch.tensor([[round(DEFAULT_CROP_64[0] * scale), round(DEFAULT_CROP_64[1] * scale)]])
    grey0 = frames.float().cpu().mean(1)  # (n, H, W) 0-255
    greys = last.float().cpu().mean(2) * 255  # (K, n, H, W)
    b0 = crop_boxes(p0, size.expand(len(p0), 2), h, w)
    start = torch.stack([grey0[i, t:t + hh, l:l + ww] for i, (t, l, hh, ww) in enumerate(b0.tolist())])
    ends = []
    for c in range(greys.shape[0]):
        pc = torch.where(torch.isfinite(p_last[c]).all(1, keepdim=True), p_last[c], p0)
        bc = crop_boxes(pc, size.expand(len(pc), 2), h, w)
        ends.append(torch.stack([greys[c, i, t:t + hh, l:l + ww] for i, (t, l, hh, ww) in enumerate(bc.tolist())]))
    return start, torch.stack(ends), v0


def _crop_change(crops: tuple[torch.Tensor, torch.Tensor, torch.Tensor], c: int) -> dict[str, float | None]:
    start, ends, valid = crops
    if not bool(valid.any()):
        return {"agent_crop_change": None, "agent_crop_diff_vs_other_codes": None}
    others = [k for k in range(len(ends)) if k != c]
    change = (ends[c][valid] - start[valid]).abs().mean().item()
    vs = (ends[c][valid][None] - ends[others][:, valid]).abs().mean().item() if others else 0.0
    return {"agent_crop_change": change, "agent_crop_diff_vs_other_codes": vs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="world-model checkpoint (glassworld train or envs/checkpoints/*.pt)")
    p.add_argument("--starts", type=int, default=16, help="start frames per action")
    p.add_argument("--hold", type=int, default=5, help="steps each action is held")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON file for the results")
    a = p.parse_args(argv)
    if a.starts < 1 or a.hold < 1:
        p.error("--starts and --hold must be >= 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(a.threads)
    model = load_world_model(a.checkpoint, a.device)
    result = {"checkpoint": portable_path(Path(a.checkpoint).resolve()),
              **check_controls(model, a.starts, a.hold, a.seed)}
    for r in result["shifts"]:
        m = r["measured_px"]
        print(f"{r['shift']:>11}: expected ({r['expected_px'][0]:+5.1f}, {r['expected_px'][1]:+5.1f}) px, measured "
              + ("lost" if m is None else f"({m[0]:+5.1f}, {m[1]:+5.1f})") + f", lost {r['lost']:.0%}")
    for r in result["codes"]:
        d = r["displacement_px"]
        print(f"code {r['code']}" + (f" ({r['meaning']})" if r["meaning"] else "") + ": no-move displacement "
              + ("lost" if d is None else f"({d[0]:+.1f}, {d[1]:+.1f}) px")
              + f", frames differ from the other codes' by {r['frame_diff_vs_other_codes']:.2f} grey levels"
              + ("" if r["agent_crop_change"] is None else f"; agent crop changed {r['agent_crop_change']:.2f}, differs "
                 f"from the other codes' by {r['agent_crop_diff_vs_other_codes']:.2f}"))
    err = result["mean_error_moving_shifts_px"]
    print("mean error over the moving shifts: " + ("n/a" if err is None else f"{err:.2f} px"))
    if a.out:
        atomic_write_bytes(Path(a.out), (json.dumps(result, indent=1) + "\n").encode())
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
