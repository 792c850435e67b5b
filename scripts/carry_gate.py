#!/usr/bin/env python
"""How much does a GLASS world with the agent carry redraw its agent, and does the local code change that?

    python scripts/carry_gate.py CHECKPOINT [--starts 16] [--hold 4] [--out gate.json]

From ``--starts`` start-bank frames, every local code is held for ``--hold`` steps at the no-move shift. Reported
per code (JSON, and a table on stdout): the renderer's carry gate g (``GlassConfig.fg_carry``: f^ = g D + (1 - g)
carried) averaged over the agent's pixels (rendered mask > 0.5) and over the whole frame, how far the dynamics
output moved from code 0's (relative L2 norm) and how far the last frame moved from code 0's (mean absolute
difference, grey levels 0-255). A gate near 0 on the agent means the agent is only carried: whatever the code does
to the recurrent state cannot show on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from worldmodel.data.format import atomic_write_bytes
from worldmodel.models import load_world_model


@torch.no_grad()
def carry_gate(model, starts: int = 16, hold: int = 4) -> dict:
    """Per-code carry gate and code effects; see the module doc."""
    if getattr(getattr(model, "cfg", None), "fg_carry", False) is not True:
        raise ValueError("the checkpoint is not a GLASS model with the agent carry (fg_carry)")
    frames = model.start_frames[:starts]
    n = len(frames)
    if n == 0:
        raise ValueError("the checkpoint has no start frames (env_info.start_frames); re-ship it")
    seen: dict[str, torch.Tensor] = {}
    hooks = [model.renderer.register_forward_hook(lambda m, i, o: seen.__setitem__("gate", o[2])),
             model.dynamics.register_forward_hook(lambda m, i, o: seen.__setitem__("dyn", o[0]))]
    try:
        rows, base = [], None
        for c in range(int(model.num_codes)):
            state = model.start(frames)
            for _ in range(hold):
                frame, mask, state = model.step(state, torch.zeros(n, dtype=torch.long, device=model.device),
                                                torch.full((n,), c, dtype=torch.long, device=model.device))
            gate = seen["gate"].float()  # (n, 1, h, w): the agent window, or the frame
            agent = state["fg_mask"] > 0.5  # the rendered mask where the gate is
            dyn, img = seen["dyn"].float(), frame.float()
            if base is None:
                base = (dyn, img)
            rows.append({"code": c, "meaning": model.code_meanings[c] if model.code_meanings else None,
                         "gate_on_agent": float(gate[agent].mean()) if bool(agent.any()) else None,
                         "gate_overall": float(gate.mean()),
                         "dynamics_change_vs_code0": float((dyn - base[0]).norm() / base[0].norm().clamp_min(1e-12)),
                         "frame_diff_vs_code0": float((img - base[1]).abs().mean() * 255)})
    finally:
        for h in hooks:
            h.remove()
    return {"starts": n, "hold": hold, "codes": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--starts", type=int, default=16)
    p.add_argument("--hold", type=int, default=4)
    p.add_argument("--out", default=None, help="write the JSON here")
    a = p.parse_args(argv)
    if not Path(a.checkpoint).is_file():
        print(f"error: {a.checkpoint} does not exist", file=sys.stderr)
        return 2
    try:
        r = carry_gate(load_world_model(a.checkpoint, "cpu"), a.starts, a.hold)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for row in r["codes"]:
        on_agent = "-" if row["gate_on_agent"] is None else f"{row['gate_on_agent']:.4f}"
        print(f"code {row['code']} ({row['meaning']}): gate on agent {on_agent}, overall "
              f"{row['gate_overall']:.3f}; dynamics {row['dynamics_change_vs_code0']:.3f} from code 0's, frame "
              f"{row['frame_diff_vs_code0']:.3f} grey levels")
    if a.out:
        atomic_write_bytes(Path(a.out), (json.dumps(r, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
