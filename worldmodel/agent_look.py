"""How the generated agent looks: sharpness and aligned PSNR of agent crops, against a frozen frame 0.

Both compare a crop centred on the *generated* agent with a crop of the same size centred on the *real* agent, at
horizons h (frames generated from frame 0 with the actions inferred on the real clip):

* ``agent_sharpness@h``: mean absolute image gradient in the generated crop ÷ the same in the real crop (pooled
  over clips: sum over clips of each, then the ratio). 1 = as crisp as the real agent; a blur scores well below 1.
* ``agent_psnr_aligned@h``: PSNR (pooled MSE, data range 1) between the two crops: the agent's look, with its place
  factored out.

The crop is the bounding box of the ground-truth agent mask at frame h when the dataset has masks, else
:data:`DEFAULT_CROP_64` (height, width) at a 64-px frame, scaled by ``max(H, W) / 64``; a crop is moved inside the
frame where it would cross an edge. The generated agent is located by :func:`worldmodel.metrics.locate_agent` on the
generated agent mask; where it finds none, the crop sits at the real agent's place (where the agent should be).

The baseline (``..._copy``) is a frozen copy of frame 0: its crop is centred on the real agent of frame 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import metrics as M

DEFAULT_CROP_64 = (12, 8)  # (height, width) of a crop at a 64-px frame: about Tennis's player


def crop_boxes(centres: torch.Tensor, sizes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Integer boxes (top, left, h, w) of the given sizes centred on ``centres``, moved inside the frame.

    Args:
        centres: (N, 2) float (x, y) px. sizes: (N, 2) int (h, w), each at most the frame's.
    Returns:
        (N, 4) long.
    """
    hs, ws = sizes[:, 0].clamp(1, height), sizes[:, 1].clamp(1, width)
    top = (centres[:, 1] - (hs - 1) / 2).round().long()
    left = (centres[:, 0] - (ws - 1) / 2).round().long()
    top = torch.minimum(top.clamp_min(0), height - hs)
    left = torch.minimum(left.clamp_min(0), width - ws)
    return torch.stack([top, left, hs, ws], 1)


def _crop(frame: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    t, l, h, w = (int(v) for v in box)
    return frame[:, t:t + h, l:l + w]  # (3, h, w)


def mean_gradient(img: torch.Tensor) -> float:
    """Mean absolute horizontal and vertical difference of a (3, h, w) image (0 for a 1-px crop)."""
    parts = [g.mean() for g in M.abs_gradients(img) if g.numel()]
    return float(torch.stack(parts).mean()) if parts else 0.0


@dataclass
class AgentLookAccumulator:
    """Gathers agent-crop statistics over evaluation batches (see the module docstring)."""

    height: int
    width: int
    horizons: tuple[int, ...] = (1, 4, 8, 16)
    mask_threshold: float = 0.5
    min_mask_area: float = 4.0  # px at the 64-px scale, as eval's mdr
    sums: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # kind -> h -> [grad, grad_real, se, n]

    def add(self, video: torch.Tensor, gen: torch.Tensor, gen_mask: torch.Tensor, gt_pos: torch.Tensor,
            gt_mask: torch.Tensor | None = None) -> None:
        """video, gen: (B, T, 3, H, W) in [0, 1]; gen_mask: (B, T, 1, H, W); gt_pos: (B, T, 2) px (NaN unknown);
        gt_mask: (B, T, 1, H, W) or None."""
        b, t = video.shape[:2]
        scale = max(self.height, self.width) / M.POSITION_SCALE_PX
        found_pos, found = M.locate_agent(gen_mask.float().cpu(), self.mask_threshold,
                                          M.area_at_scale(self.min_mask_area, self.height, self.width))
        default = torch.tensor([round(DEFAULT_CROP_64[0] * scale), round(DEFAULT_CROP_64[1] * scale)])
        video, gen, gt_pos = video.cpu(), gen.cpu(), gt_pos.cpu().float()
        for h in self.horizons:
            if h >= t:
                continue
            real_pos = gt_pos[:, h]  # (B, 2)
            keep = ~torch.isnan(real_pos).any(1) & ~torch.isnan(gt_pos[:, 0]).any(1)
            sizes = default.expand(b, 2).clone()
            if gt_mask is not None:
                sizes, has_box = _mask_box_sizes(gt_mask[:, h, 0].cpu() > 0.5)
                sizes = torch.where(has_box[:, None], sizes, default.expand(b, 2))
            gen_pos = torch.where(found[:, h, None], found_pos[:, h], real_pos)
            boxes = {"real": crop_boxes(real_pos.nan_to_num(), sizes, self.height, self.width),
                     "gen": crop_boxes(gen_pos.nan_to_num(), sizes, self.height, self.width),
                     "copy": crop_boxes(gt_pos[:, 0].nan_to_num(), sizes, self.height, self.width)}
            for i in torch.nonzero(keep).flatten().tolist():
                real = _crop(video[i, h], boxes["real"][i])
                for kind, img in (("gen", _crop(gen[i, h], boxes["gen"][i])),
                                  ("copy", _crop(video[i, 0], boxes["copy"][i]))):
                    acc = self.sums.setdefault(kind, {}).setdefault(h, np.zeros(4))
                    acc += [mean_gradient(img), mean_gradient(real), float(((img - real) ** 2).sum()), real.numel()]

    def result(self) -> dict[str, Any]:
        """``agent_sharpness``, ``agent_psnr_aligned`` and their ``_copy`` baselines as {horizon: value | None}."""
        out: dict[str, Any] = {}
        for kind, suffix in (("gen", ""), ("copy", "_copy")):
            sharp, aligned = {}, {}
            for h in self.horizons:
                s = self.sums.get(kind, {}).get(h)
                ok = s is not None and s[3] > 0
                sharp[str(h)] = float(s[0] / s[1]) if ok and s[1] > 0 else None
                aligned[str(h)] = (100.0 if s[2] <= 1e-10 * s[3] else float(10 * np.log10(s[3] / s[2]))) if ok \
                    else None
            out[f"agent_sharpness{suffix}"] = sharp
            out[f"agent_psnr_aligned{suffix}"] = aligned
        return out


def _mask_box_sizes(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) bool -> bounding-box sizes (B, 2) long (h, w) and whether a box exists (B,)."""
    rows, cols = mask.any(2), mask.any(1)  # (B, H), (B, W)
    has = rows.any(1)
    idx_h = torch.arange(mask.shape[1])
    idx_w = torch.arange(mask.shape[2])
    top = torch.where(rows, idx_h, mask.shape[1]).amin(1)
    bottom = torch.where(rows, idx_h, -1).amax(1)
    left = torch.where(cols, idx_w, mask.shape[2]).amin(1)
    right = torch.where(cols, idx_w, -1).amax(1)
    sizes = torch.stack([bottom - top + 1, right - left + 1], 1).clamp_min(1)
    return sizes, has
