"""``kp_track_err``: how well the detected keypoints track the agent (the Struct-VRNN paper's tracking probe).

A linear (ridge) regression from the keypoints of a frame to the ground-truth agent position is fitted on
frames of the train split; ``kp_track_err`` is its mean Euclidean error, in pixels of the frame, on frames of
another split. Features per frame: (x, y, mu) of every keypoint (as returned by
:meth:`~worldmodel.keypoint.model.KeypointModel.detect_keypoints`, pixels), standardised with the train
statistics, plus a bias. Frames whose GT position is unknown (NaN) are skipped.

Usage (e.g. from ``worldmodel.evaluate``)::

    from worldmodel.keypoint.track import collect_keypoints, kp_track_err
    train_kp, train_pos = collect_keypoints(model, ((b["frames"], b["pos"]) for b in train_loader))
    test_kp, test_pos = collect_keypoints(model, ((b["frames"], b["pos"]) for b in test_loader))
    err_px = kp_track_err(train_kp, train_pos, test_kp, test_pos)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TrackConfig:
    """Regression settings."""

    ridge: float = 1e-3  # L2 penalty on the standardised features (relative to the number of train frames)
    min_train_frames: int = 8  # fewer train frames with a known position: no fit (ValueError)


@dataclass
class PositionRegressor:
    """A fitted linear map from keypoint features to (x, y) pixels."""

    mean: np.ndarray  # (F,) feature means of the train frames
    std: np.ndarray  # (F,) feature stds (1 where constant)
    weights: np.ndarray  # (F + 1, 2), the last row is the bias

    def predict(self, keypoints: np.ndarray | torch.Tensor) -> np.ndarray:
        """keypoints (..., K, 3) -> positions (..., 2) pixels."""
        x = _features(keypoints)
        z = (x - self.mean) / self.std
        return (np.concatenate([z, np.ones((len(z), 1))], axis=1) @ self.weights).reshape(
            *np.shape(keypoints)[:-2], 2)


def _features(keypoints: np.ndarray | torch.Tensor) -> np.ndarray:
    """(..., K, 3) -> (N, 3K) float64."""
    kp = keypoints.detach().cpu().numpy() if isinstance(keypoints, torch.Tensor) else np.asarray(keypoints)
    if kp.ndim < 2 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must be (..., K, 3) (x, y, mu), got shape {kp.shape}")
    return kp.reshape(-1, kp.shape[-2] * 3).astype(np.float64)


def _positions(pos: np.ndarray | torch.Tensor, n: int, what: str) -> np.ndarray:
    p = pos.detach().cpu().numpy() if isinstance(pos, torch.Tensor) else np.asarray(pos)
    p = p.reshape(-1, 2).astype(np.float64)
    if len(p) != n:
        raise ValueError(f"{what}: {len(p)} positions for {n} frames of keypoints; pass one (x, y) per frame")
    return p


def fit_position_regressor(keypoints: np.ndarray | torch.Tensor, positions: np.ndarray | torch.Tensor,
                           cfg: TrackConfig | None = None) -> PositionRegressor:
    """Ridge regression keypoints (..., K, 3) -> positions (..., 2) px (NaN rows skipped)."""
    cfg = cfg or TrackConfig()
    x = _features(keypoints)
    y = _positions(positions, len(x), "train")
    ok = np.isfinite(y).all(1) & np.isfinite(x).all(1)
    x, y = x[ok], y[ok]
    if len(x) < cfg.min_train_frames:
        raise ValueError(f"kp_track_err needs at least {cfg.min_train_frames} train frames with a known agent "
                         f"position, got {len(x)}; use a dataset with `pos` ground truth and more clips")
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    z = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1)  # (N, F + 1)
    reg = cfg.ridge * len(x) * np.eye(z.shape[1])
    reg[-1, -1] = 0.0  # the bias is not penalised
    w = np.linalg.solve(z.T @ z + reg, z.T @ y)  # (F + 1, 2)
    return PositionRegressor(mean=mean, std=std, weights=w)


def kp_track_err(train_kp: np.ndarray | torch.Tensor, train_pos: np.ndarray | torch.Tensor,
                 test_kp: np.ndarray | torch.Tensor, test_pos: np.ndarray | torch.Tensor,
                 cfg: TrackConfig | None = None) -> float:
    """Mean Euclidean error (frame pixels) on the test frames of the keypoint -> position regression fitted on
    the train frames. keypoints (..., K, 3) from ``detect_keypoints``, positions (..., 2) px (NaN = unknown).

    Returns NaN when no test frame has a known position.
    """
    reg = fit_position_regressor(train_kp, train_pos, cfg)
    pred = reg.predict(test_kp).reshape(-1, 2)
    gt = _positions(test_pos, len(pred), "test")
    ok = np.isfinite(gt).all(1) & np.isfinite(pred).all(1)
    if not ok.any():
        return float("nan")
    return float(np.linalg.norm(pred[ok] - gt[ok], axis=1).mean())


@torch.no_grad()
def collect_keypoints(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model.detect_keypoints`` on (video (B, T, 3, H, W) uint8 or [0, 1], pos (B, T, 2)) pairs.

    Returns keypoints (N, K, 3) and positions (N, 2) of all N = sum B T frames, as float64 arrays.
    """
    kps, poss = [], []
    for video, pos in batches:
        kp = model.detect_keypoints(video)  # (B, T, K, 3)
        kps.append(kp.reshape(-1, *kp.shape[-2:]).cpu().double().numpy())
        poss.append(np.asarray(pos, dtype=np.float64).reshape(-1, 2))
    if not kps:
        raise ValueError("collect_keypoints got no batches")
    return np.concatenate(kps), np.concatenate(poss)
