"""Statistics of a dataset that set a world model's training without per-game knowledge.

:func:`motion_stats` measures, on train clips, how much of each frame moves *relative to the background*: every
consecutive pair of frames is aligned by the background's global shift (phase correlation, so a scrolling or
panning background does not count as motion) and the pixels that still change are the moving foreground. Its
share of the frame is an estimate of the agent's size (plus whatever else moves: a ball, an opponent), which sets
GLASS's mask-size target (``mask_size``, the L_SIZE theta).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


@dataclass
class MotionStatsConfig:
    """How motion is measured (defaults hold for any video; nothing here is per game)."""

    clips: int = 48  # train clips sampled (evenly over the split)
    clip_len: int = 8
    change: float = 0.08  # a pixel changed when a channel moved by more than 8 % of the range after alignment
    max_bg_shift: int = 8  # background shifts searched by phase correlation, px
    min_moving: float = 1e-4  # transitions where less than this share moved are "still" and not counted
    mask_size_range: tuple[float, float] = (0.004, 0.15)  # clamp of the derived L_SIZE target
    static_below: float = 0.01  # the background is static when it shifted in less than this share of transitions


def background_shift(a: torch.Tensor, b: torch.Tensor, max_shift: int) -> tuple[int, int]:
    """Integer (dx, dy) that best maps grey frame ``a`` (H, W) onto ``b`` by phase correlation, |d| <= max_shift."""
    fa, fb = torch.fft.rfft2(a - a.mean()), torch.fft.rfft2(b - b.mean())
    cross = fb * fa.conj()
    corr = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-8), s=a.shape)  # (H, W)
    h, w = a.shape
    dys = torch.arange(-max_shift, max_shift + 1)
    window = corr[dys.remainder(h)][:, dys.remainder(w)]  # (2m+1, 2m+1), rows dy, cols dx
    iy, ix = divmod(int(window.argmax()), window.shape[1])
    return int(dys[ix]), int(dys[iy])


def moving_share(frames: torch.Tensor, cfg: MotionStatsConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per transition of one clip: share of pixels moving relative to the background, and the background shift.

    Args:
        frames: (T, 3, H, W) uint8.
    Returns:
        share (T-1,) in [0, 1]; bg (T-1, 2) integer (dx, dy) px.
    """
    x = frames.float() / 255.0  # (T, 3, H, W)
    grey = x.mean(1)  # (T, H, W)
    m = cfg.max_bg_shift
    shares, shifts = [], []
    for t in range(len(x) - 1):
        dx, dy = background_shift(grey[t], grey[t + 1], m)
        moved = torch.roll(x[t], shifts=(dy, dx), dims=(-2, -1))  # frame t carried by the background's motion
        diff = (moved - x[t + 1]).abs().amax(0)  # (H, W)
        inner = diff[m:-m, m:-m] if min(diff.shape) > 4 * m else diff  # rolled-in borders are not motion
        shares.append(float((inner > cfg.change).float().mean()))
        shifts.append((dx, dy))
    return np.asarray(shares), np.asarray(shifts, dtype=np.int64).reshape(-1, 2)


def motion_stats(data: str | Path, cfg: MotionStatsConfig | None = None, frame_skip: int = 0) -> dict[str, Any]:
    """Moving-foreground statistics of a dataset's train split and the mask-size target they imply.

    Returns a JSON-ready dict: ``moving_share`` (median share of the frame moving relative to the background, over
    transitions where anything moved), ``still_share`` (share of transitions where nothing moved),
    ``bg_moves`` (share of transitions whose background shifted), ``static_background`` (``bg_moves`` below
    :attr:`MotionStatsConfig.static_below`: GLASS's background shift is then 0), ``mask_size`` (the L_SIZE target:
    the moving share, clamped to :attr:`MotionStatsConfig.mask_size_range`) and the config.
    """
    from .data.dataset import ClipConfig, ClipDataset

    cfg = cfg or MotionStatsConfig()
    ds = ClipDataset(data, "train", ClipConfig(clip_len=cfg.clip_len, frame_skip=frame_skip, stride=cfg.clip_len,
                                               ground_truth=False))
    if len(ds) == 0:
        raise ValueError(f"{data} has no train clip of {cfg.clip_len} frames to measure motion on")
    picks = np.unique(np.linspace(0, len(ds) - 1, min(cfg.clips, len(ds))).round().astype(int))
    shares, bgs = [], []
    for i in picks:
        s, b = moving_share(torch.as_tensor(ds[int(i)]["frames"]), cfg)
        shares.append(s)
        bgs.append(b)
    share, bg = np.concatenate(shares), np.concatenate(bgs)
    moving = share[share >= cfg.min_moving]
    median = float(np.median(moving)) if moving.size else 0.0
    lo, hi = cfg.mask_size_range
    bg_moves = float((np.abs(bg).sum(1) > 0).mean())
    out = {"moving_share": round(median, 5), "still_share": round(float(1 - moving.size / max(share.size, 1)), 4),
           "bg_moves": round(bg_moves, 4), "static_background": bg_moves < cfg.static_below,
           "transitions": int(share.size), "mask_size": round(float(np.clip(median, lo, hi)), 5),
           "config": asdict(cfg)}
    log.info("motion: %.2f%% of the frame moves (median), background moves in %.0f%% of transitions -> mask_size "
             "%.4f%s", 100 * median, 100 * bg_moves, out["mask_size"],
             ", static background" if out["static_background"] else "")
    return out
