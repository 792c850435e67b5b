"""What a trained world model needs to act as an environment: its shift grid and a bank of start frames.

Both go into the checkpoint's ``env_info`` (see :mod:`worldmodel.checkpoint`):

* ``shift_grid``: (9, 2) global shifts (dx, dy) in pixels, "none" plus 8 directions. The step size per axis is
  the typical magnitude of the foreground motion the model itself estimates on training clips
  (``model.estimate_shifts``), so that a "right" action moves the agent as far as agents moved in the data.
* ``start_frames``: up to 64 real frames (uint8 (N, 3, H, W)), the first frames of validation clips, from which
  environment episodes start.
* ``reach_from``, ``reach_to``: (M, 2) float32 pixel positions (x, y): where the agent was in a recording and
  where it was 1..``horizon`` steps later in the same video (:func:`recorded_places`). The ``reach`` task draws
  its targets from them, so a target is a place the agent is known to get to from where it starts (a Tennis
  player cannot cross the net; a Breakout paddle stays on its row).
* ``agent_box``: (4,) float32 (x0, y0, x1, y1) pixels: the extremes of where the model's own locator found the
  agent on training frames (:func:`agent_box`). Generation keeps the agent inside it (a global action that would carry it out is
  shortened), as the walls and edges of the recorded scene kept the real one.
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
from .data.format import SPLITS, DatasetError, load_video, read_manifest
from .metrics import JUMP_FACTOR, jump_threshold, locate_agent

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
        Without ``estimate_shifts``, or when no axis shows motion, both axes use ``cfg.default_step``; when only
        one axis does, the other gets step 0 (the agent cannot move along it, so its shifts do not move it).
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
            if any(m is not None for m in found):
                # an axis the agent never moves along (a Breakout paddle's y) gets step 0: "up" does not move it
                steps = [m if m is not None else 0.0 for m in found]
            source = "estimated" if all(m is not None for m in found) else (
                "estimated, no motion on " + "xy"[found.index(None)] if any(m is not None for m in found)
                else "default (no motion found)")
    grid, names = shift_grid(*steps)
    logger.info("shift grid: steps dx=%.2f dy=%.2f px (%s)", steps[0], steps[1], source)
    return {"shift_grid": grid, "shift_names": names, "shift_step": steps, "shift_source": source}


def spread_clip_batches(dataset: Any, clips: int, batch: int) -> list[torch.Tensor]:
    """Up to ``clips`` clips of ``dataset`` (a ClipDataset) evenly spread over it, as uint8 batches (B, T, 3, H, W)."""
    n = min(len(dataset), clips)
    idx = np.unique(np.linspace(0, len(dataset) - 1, n).round().astype(int)) if n else []
    items = [dataset[int(i)]["frames"] for i in idx]  # each (T, 3, H, W) uint8
    return [torch.stack(items[i:i + batch]) for i in range(0, len(items), batch)]


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


@dataclass
class PlacesConfig:
    """How :func:`recorded_places` samples (start, later) agent positions."""

    horizon: int = 64  # a later position is 1..horizon steps after its start
    max_pairs: int = 4096
    max_videos: int = 64  # videos read (evenly spread over the split); segmenting frames costs a model call each
    max_frames: int = 128  # frames per video used when positions come from the model's masks
    jump_factor: float = JUMP_FACTOR  # a move longer than this x the 95th percentile of moves is a jump
    seed: int = 0


@torch.no_grad()
def recorded_places(root: str | Path, model: nn.Module | None = None, split: str = "train",
                    cfg: PlacesConfig | None = None) -> dict[str, Any] | None:
    """Pairs of agent positions from a dataset: where the agent was, and where it was some steps later.

    Positions are the dataset's ground-truth ``pos`` when it has one; otherwise where
    :func:`~worldmodel.metrics.locate_agent` finds the agent in ``model.segment``'s masks (frames where it finds
    none are skipped). Pairs never span a jump (a move longer
    than ``cfg.jump_factor`` x the 95th percentile of moves: a new point, a change of ends, a respawn), so the later
    position is one the agent walked to. Returns None when there are no positions.

    Returns:
        {"reach_from": (M, 2) float32, "reach_to": (M, 2) float32 pixel (x, y) positions (pixel centres at
        integer coordinates, the model's frame size), "reach_source": "ground truth" | "model masks",
        "reach_horizon": int}.
    """
    cfg = cfg or PlacesConfig()
    root = Path(root)
    manifest = read_manifest(root)
    names = list(manifest["splits"].get(split) or [])
    if not names:
        return None
    use_gt = "pos" in (manifest.get("ground_truth") or [])
    if not use_gt and getattr(model, "segment", None) is None:
        return None
    names = [names[int(i)] for i in np.unique(np.linspace(0, len(names) - 1, min(cfg.max_videos, len(names)))
                                               .round().astype(int))]
    rng = np.random.default_rng(cfg.seed)
    tracks = [p for p in (_video_positions(root, n, use_gt, model, cfg) for n in names) if p is not None and len(p) > 1]
    # a jump (a new point, the players changing ends, a respawn) is a move far beyond the agent's usual step:
    # pairs that span one are not "walked", so they are left out
    jump = jump_threshold(np.concatenate([np.concatenate([p, np.full((1, 2), np.nan)]) for p in tracks])
                          if tracks else np.zeros((0, 2)), cfg.jump_factor)
    if not np.isfinite(jump):
        return None
    per_video = -(-cfg.max_pairs // len(tracks))
    src, dst = [], []
    for pos in tracks:
        t = len(pos)
        d = np.linalg.norm(np.diff(pos, axis=0), axis=1)
        piece = np.concatenate([[0], np.cumsum(~(d <= jump))])  # walked pieces between jumps (NaN steps cut too)
        i = rng.integers(0, t - 1, size=4 * per_video)
        j = np.minimum(i + rng.integers(1, cfg.horizon + 1, size=i.size), t - 1)
        ok = np.isfinite(pos[i]).all(1) & np.isfinite(pos[j]).all(1) & (piece[i] == piece[j])
        src.append(pos[i[ok]][:per_video])
        dst.append(pos[j[ok]][:per_video])
    if not src or sum(len(a) for a in src) == 0:
        return None
    a, b = np.concatenate(src)[:cfg.max_pairs], np.concatenate(dst)[:cfg.max_pairs]
    logger.info("reach targets: %d recorded (start, later) position pairs from %d %s videos (%s)", len(a),
                len(tracks), split, "ground truth" if use_gt else "model masks")
    return {"reach_from": torch.from_numpy(a.astype(np.float32)), "reach_to": torch.from_numpy(b.astype(np.float32)),
            "reach_source": "ground truth" if use_gt else "model masks", "reach_horizon": int(cfg.horizon)}


@dataclass
class BoxConfig:
    """How :func:`agent_box` measures where the agent goes."""

    max_videos: int = 64  # train videos read (evenly spread); each frame costs a masking-network call
    max_frames: int = 128  # frames per video, evenly spread over the whole video (Tennis players change ends late)
    min_positions: int = 32  # fewer located positions than this: no box


@torch.no_grad()
def agent_box(root: str | Path, model: nn.Module, split: str = "train", cfg: BoxConfig | None = None
              ) -> torch.Tensor | None:
    """Where the agent goes in a dataset, as the model sees it: (4,) float32 (x0, y0, x1, y1) pixels, the extremes
    of the positions :func:`~worldmodel.metrics.locate_agent` finds in ``model.segment``'s masks of the split's
    frames (the same locator the dream's agent is followed by, so the box and the dream's positions agree even
    where ground truth marks another point of the agent). The extremes, not quantiles: a box too large only lets
    the agent go a little farther, one too small stops it where the real agent went (with 0.5 / 99.5 % quantiles
    of the first 128 frames of each video, GlassTennis's val pos_err@16 rose from 2.7 to 3.7 px).
    None when the model finds the agent on fewer than ``cfg.min_positions`` frames."""
    cfg = cfg or BoxConfig()
    root = Path(root)
    names = list(read_manifest(root)["splits"].get(split) or [])
    if not names or getattr(model, "segment", None) is None:
        return None
    names = [names[int(i)] for i in np.unique(np.linspace(0, len(names) - 1, min(cfg.max_videos, len(names)))
                                               .round().astype(int))]
    pos = np.concatenate([_mask_positions(model, _spread_frames(root, n, cfg.max_frames)) for n in names])
    pos = pos[np.isfinite(pos).all(1)]  # (M, 2)
    if len(pos) < cfg.min_positions:
        return None
    lo, hi = pos.min(0), pos.max(0)
    return torch.tensor([lo[0], lo[1], hi[0], hi[1]], dtype=torch.float32)


def _spread_frames(root: Path, name: str, n: int) -> np.ndarray:
    """Up to ``n`` frames (uint8 (n, H, W, 3)) evenly spread over one video."""
    frames = load_video(root, name, ("frames",))["frames"]
    return frames[np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))]


def _mask_positions(model: nn.Module, frames: np.ndarray) -> np.ndarray:
    """(T, 2) agent positions of frames (T, H, W, 3) uint8 where the model's masks locate one, NaN elsewhere."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous().to(model.device)  # (T, 3, H, W) uint8
    mask = torch.cat([model.segment(chunk[:, None])[:, 0].float() for chunk in x.split(32)])  # (T, 1, H, W)
    pos, visible = locate_agent(mask)
    out = pos.double().cpu().numpy()
    out[~visible.cpu().numpy()] = np.nan  # no agent found in that frame
    return out


def _video_positions(root: Path, name: str, use_gt: bool, model: nn.Module | None,
                     cfg: PlacesConfig) -> np.ndarray | None:
    """(T, 2) agent positions of one video (NaN where unknown), from ground truth or the model's masks."""
    if use_gt:
        return load_video(root, name, ("pos",))["pos"].astype(np.float64)
    assert model is not None
    return _mask_positions(model, load_video(root, name, ("frames",))["frames"][:cfg.max_frames])
