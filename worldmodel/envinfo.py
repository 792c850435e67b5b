"""What a trained world model needs to act as an environment: its shift grid and a bank of start frames.

Both go into the checkpoint's ``env_info`` (see :mod:`worldmodel.checkpoint`):

* ``shift_grid``: (9, 2) global shifts (dx, dy) in pixels, "none" plus 8 directions. The step size per axis is
  the typical magnitude of the foreground motion the model itself estimates on training clips
  (``model.estimate_shifts``), so that a "right" action moves the agent as far as agents moved in the data.
* ``start_frames``: up to 64 real frames (uint8 (N, 3, H, W)), the first frames of validation clips, from which
  environment episodes start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data.dataset import ClipConfig, ClipDataset
from .data.format import SPLITS, DatasetError, read_manifest

logger = logging.getLogger(__name__)


@dataclass
class EnvInfoConfig:
    """How env_info is estimated."""

    default_step: float = 4.0  # px per axis when the data shows no motion (matches the model's default grid)
    min_motion: float = 0.5  # px; smaller estimated motions count as "not moving" on that axis
    relative_floor: float = 0.2  # ... and so do motions below this fraction of the 95th percentile
    min_samples: int = 4  # moving samples needed per axis before the estimate is trusted
    max_start_frames: int = 64


# Names of the 9 grid rows; +x = content moves right, +y = content moves down.
SHIFT_NAMES: list[str] = ["none", "right", "left", "down", "up", "down-right", "down-left", "up-right", "up-left"]
_SHIFT_SIGNS: list[tuple[int, int]] = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]


def shift_grid(step_x: float, step_y: float) -> tuple[list[list[float]], list[str]]:
    """The 9-move grid (none + 8 directions) with steps ``step_x``, ``step_y`` px; returns (grid, names)."""
    grid = [[float(sx * step_x), float(sy * step_y)] for sx, sy in _SHIFT_SIGNS]
    return grid, list(SHIFT_NAMES)


def typical_magnitude(values: torch.Tensor, cfg: EnvInfoConfig | None = None) -> float | None:
    """Robust typical size of the non-zero motions in ``values`` (N,) px: the median of |v| over moving samples.

    A sample moves when |v| exceeds both ``cfg.min_motion`` and ``cfg.relative_floor`` times the 95th percentile
    of |v| (so jitter around zero and rare outliers do not set the step). None when too few samples move.
    """
    cfg = cfg or EnvInfoConfig()
    a = values.detach().double().abs().flatten()
    a = a[torch.isfinite(a)]
    if a.numel() == 0:
        return None
    floor = max(cfg.min_motion, cfg.relative_floor * float(torch.quantile(a, 0.95)))
    moving = a[a > floor]
    if moving.numel() < cfg.min_samples:
        return None
    return float(moving.median())


@torch.no_grad()
def estimate_shift_grid(model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device | str = "cpu",
                        cfg: EnvInfoConfig | None = None) -> dict[str, Any]:
    """Shift grid from the foreground motion the model estimates on real clips.

    Args:
        model: has ``estimate_shifts(frames) -> (fg, bg)``, frames (B, T, 3, H, W) in [0, 1], fg (B, T-1, 2) px.
        batches: uint8 clips (B, T, 3, H, W).
    Returns:
        {"shift_grid": [[dx, dy]] * 9, "shift_names": [...], "shift_step": [sx, sy], "shift_source": str}.
        Without ``estimate_shifts``, or when an axis shows no motion, that axis uses ``cfg.default_step``.
    """
    cfg = cfg or EnvInfoConfig()
    steps = [cfg.default_step, cfg.default_step]
    source = "default"
    if hasattr(model, "estimate_shifts"):
        was_training = model.training
        model.eval()
        try:
            fgs = []
            for frames in batches:
                video = frames.to(device).float() / 255.0  # (B, T, 3, H, W) in [0, 1]
                fg, _bg = model.estimate_shifts(video)
                fgs.append(fg.reshape(-1, 2).float().cpu())  # (B*(T-1), 2)
        finally:
            model.train(was_training)
        if fgs:
            fg_all = torch.cat(fgs)
            found = [typical_magnitude(fg_all[:, axis], cfg) for axis in (0, 1)]
            for axis, m in enumerate(found):
                if m is not None:
                    steps[axis] = m
            source = "estimated" if all(m is not None for m in found) else (
                "partly estimated" if any(m is not None for m in found) else "default (no motion found)")
    grid, names = shift_grid(*steps)
    logger.info("shift grid: steps dx=%.2f dy=%.2f px (%s)", steps[0], steps[1], source)
    return {"shift_grid": grid, "shift_names": names, "shift_step": steps, "shift_source": source}


def start_frame_bank(root: str | Path, clip_len: int, frame_skip: int,
                     max_frames: int = 64) -> tuple[torch.Tensor, str]:
    """Up to ``max_frames`` first frames of validation clips, evenly spread over the split.

    Falls back to the test, then the train split (with a warning) when the val split is empty or too short.

    Returns:
        frames: (N, 3, H, W) uint8; the split they came from.
    """
    manifest = read_manifest(Path(root))
    order = ["val", "test", "train"]
    assert set(order) == set(SPLITS)
    for split in order:
        if not manifest["splits"].get(split):
            continue
        for length in (clip_len, 1):  # whole clips if possible, else any frame
            try:
                ds = ClipDataset(root, split, ClipConfig(clip_len=length, frame_skip=frame_skip,
                                                         ground_truth=False, cache_mb=256))
            except DatasetError:
                continue
            n = min(max_frames, len(ds))
            idx = np.unique(np.linspace(0, len(ds) - 1, n).round().astype(int))
            frames = torch.stack([ds[int(i)]["frames"][0] for i in idx])  # (N, 3, H, W) uint8
            if split != "val":
                logger.warning("start frames come from the %s split (the val split is empty or too short)", split)
            return frames, split
    raise DatasetError(f"{root} has no frames to start environments from; add videos to the dataset")


def compute_env_info(model: nn.Module, batches: Iterable[torch.Tensor], data_root: str | Path, clip_len: int,
                     frame_skip: int, device: torch.device | str = "cpu", cfg: EnvInfoConfig | None = None,
                     start_frames: torch.Tensor | None = None) -> dict[str, Any]:
    """The checkpoint's ``env_info``: shift grid (from ``batches``, uint8 (B, T, 3, H, W)) and start frames.

    ``start_frames`` (N, 3, H, W) uint8 may be passed to reuse a bank computed earlier.
    """
    cfg = cfg or EnvInfoConfig()
    info = estimate_shift_grid(model, batches, device, cfg)
    if start_frames is None:
        start_frames, _split = start_frame_bank(data_root, clip_len, frame_skip, cfg.max_start_frames)
    info["start_frames"] = start_frames
    info["code_meanings"] = None  # filled by evaluation, which knows the ground-truth actions
    return info
