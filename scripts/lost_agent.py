#!/usr/bin/env python
"""Where a world's dream loses its agent: the clips and frames behind the ``agent_kept`` health check, drawn.

    python scripts/lost_agent.py WORLD DATA_DIR [--split val] [--clips 64] [--seed 0] [--show 3] --out OUT

The clips are the ones ``glassworld eval`` scores with the same ``--split``, ``--clips`` and ``--seed`` (17-frame
windows; the world command checks val, 64 clips, seed 0). Every clip is generated from its first frame with the
actions inferred from it, and each generated frame is judged by the health check's own rule
(:class:`worldmodel.health.HealthAccumulator`): it counts where the real frame, and the clip's first frame, have an
agent located by the model's mask; it is *lost* where the rendered mask then locates none. Written:

* ``OUT.json``: ``agent_kept`` (the health figure), lost frames per clip and per step, and the rendered mask on lost
  frames (pixels above 0.5, the mask's peak): a mask that fades (peak falling below 0.5) reads differently from
  one that shrinks to a few pixels;
* ``OUT.png``: the ``--show`` clips that lose most, four rows each: the real frames, the model's mask of them, the
  generated frames and the rendered mask (every 2nd frame).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from worldmodel.data.format import DatasetError, atomic_write_bytes, atomic_write_json
from worldmodel.evaluate import EvalConfig
from worldmodel.evaluation.clips import prepare
from worldmodel.evaluation.generation import generate
from worldmodel.health import HealthAccumulator


def lost_frames(world: str, data: str, split: str = "val", clips: int = 64, seed: int = 0
                ) -> tuple[dict[str, Any], dict[int, list[torch.Tensor]]]:
    """(the report of OUT.json, per clip that loses frames the (T, 3, H, W) rows of its figure: real, real mask,
    generated, rendered mask)."""
    d = prepare(EvalConfig(checkpoint=world, data_path=data, split=split, clips=clips, seed=seed), None,
                torch.device("cpu"))
    acc = HealthAccumulator(d.height, d.width)
    per_clip: list[dict[str, Any]] = []
    views: dict[int, list[torch.Tensor]] = {}  # only the clips that lose frames: the figure draws no other
    by_step = np.zeros(0, np.int64)  # lost frames per step (index 0: the real start, never judged)
    with torch.no_grad():
        for batch in d.loader:
            video = batch["frames"].float() / 255.0  # (B, T, 3, H, W)
            real = d.model.segment(video)  # (B, T, 1, H, W)
            gen, gen_mask = generate(d.model, video)
            acc.add_real_masks(real)
            acc.add_generation(video, gen, gen_mask=gen_mask)
            b, t = video.shape[:2]
            if len(by_step) < t:
                by_step = np.pad(by_step, (0, t - len(by_step)))
            kept = acc.kept[-1].reshape(b, t - 1)  # the health check's own verdicts of this batch
            ref = acc.kept_ref[-1].reshape(b, t - 1)
            on = (gen_mask[:, 1:, 0] > acc.cfg.mask_threshold).flatten(2).sum(-1)  # (B, T-1)
            peak = gen_mask[:, 1:].flatten(2).amax(-1)
            for i in range(b):
                lost = ref[i] & ~kept[i]
                steps = (np.flatnonzero(lost) + 1).tolist()
                per_clip.append({"clip": len(per_clip), "judged": int(ref[i].sum()), "lost": len(steps),
                                 "lost_steps": steps, "lost_mask_px": on[i][lost].tolist(),
                                 "lost_mask_peak": [round(float(p), 3) for p in peak[i][lost]]})
                if steps:
                    by_step[steps] += 1
                    views[per_clip[-1]["clip"]] = [video[i], real[i].expand(-1, 3, -1, -1), gen[i],
                                                   gen_mask[i].expand(-1, 3, -1, -1)]
    judged = sum(c["judged"] for c in per_clip)
    lost = sum(c["lost"] for c in per_clip)
    report = {"world": world, "data": data, "split": split, "clips": len(per_clip), "seed": seed,
              "agent_kept": acc.evidence(None, None).agent_kept, "judged_frames": judged, "lost_frames": lost,
              "lost_by_step": by_step.tolist(), "clips_losing": [c for c in per_clip if c["lost"]]}
    return report, views


def figure(rows: list[list[torch.Tensor]], every: int = 2) -> bytes:
    """PNG bytes: for each clip its 4 rows of frames 0, every, 2 every, ... side by side, scaled x2."""
    import io

    strips = []
    for clip in rows:
        for seq in clip:
            strips.append(torch.cat([seq[k] for k in range(0, len(seq), every)], dim=2))  # (3, H, n W)
    img = torch.cat(strips, dim=1).permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().numpy()
    pil = Image.fromarray(img)
    buf = io.BytesIO()
    pil.resize((img.shape[1] * 2, img.shape[0] * 2), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("world")
    p.add_argument("data")
    p.add_argument("--split", default="val")
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show", type=int, default=3, help="clips drawn in OUT.png, those that lose most first")
    p.add_argument("--out", required=True, help="OUT.json and OUT.png are written")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        report, views = lost_frames(a.world, a.data, a.split, a.clips, a.seed)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(a.out)
    atomic_write_json(out.with_suffix(".json"), report)
    worst = sorted(report["clips_losing"], key=lambda c: -c["lost"])[:max(a.show, 0)]
    if worst:
        atomic_write_bytes(out.with_suffix(".png"), figure([views[c["clip"]] for c in worst]))
    kept = report["agent_kept"]
    print(f"agent_kept {'-' if kept is None else f'{kept:.1%}'}: {report['lost_frames']} of "
          f"{report['judged_frames']} judged frames lost, in {len(report['clips_losing'])} of {report['clips']} "
          f"clips; lost by step {report['lost_by_step'][1:]}")
    for c in worst:
        print(f"  clip {c['clip']}: lost {c['lost']} of {c['judged']} (steps {c['lost_steps']}), rendered mask "
              f"px {c['lost_mask_px']}, peak {c['lost_mask_peak']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
