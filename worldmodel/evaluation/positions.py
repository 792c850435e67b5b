"""Where the agent is: its position in generated frames against the GT one (``pos_err``, ``mdr``; windows whose GT
agent teleports are left out), how it looks there (:class:`worldmodel.agent_look.AgentLookAccumulator`), and the
keypoint tracking probe of keypoint models (``kp_track_err``, ``kp_track_last_pos_err``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import metrics as M
from ..agent_look import AgentLookAccumulator
from ..data.format import DatasetError
from .common import Results, chunks

if TYPE_CHECKING:
    from ..evaluate import EvalConfig


def ground_truth_positions(batch: dict[str, torch.Tensor]) -> np.ndarray | None:
    """(B, T, 2) GT agent positions in px: ``pos``, else the GT mask's centroid; None when neither is known."""
    if "pos" in batch:
        return batch["pos"].numpy()  # (B, T, 2)
    if "mask" in batch:
        return M.mask_centroid(batch["mask"], 0.5, 1.0).squeeze(2).numpy()  # (B, T, 2)
    return None


def jump_threshold(root: Path, split: str, frame_skip: int, gt_keys: set[str], windows: np.ndarray) -> float:
    """The GT move that counts as a teleport (:func:`worldmodel.metrics.jump_threshold`) at the window stride.

    From the split's whole ``pos`` tracks when the dataset has them (overlapping windows would count one
    teleport many times), else from the evaluated windows' positions (N, T, 2).
    """
    if "pos" not in gt_keys:
        return M.jump_threshold(windows)
    from ..data.format import load_video, read_manifest

    stride = frame_skip + 1
    gap = np.full((1, 2), np.nan)
    tracks = []
    for name in read_manifest(root)["splits"].get(split) or []:
        pos = load_video(root, name, ("pos",))["pos"].astype(np.float64)
        tracks += [np.concatenate([pos[o::stride], gap]) for o in range(min(stride, len(pos)))]
    return M.jump_threshold(np.concatenate(tracks)) if tracks else M.jump_threshold(windows)


class PositionScores:
    """The centroid of the generated agent mask (``cfg.pos_source``) against the GT position, and the agent-look
    crops around both; only clips with a GT position (or GT mask) count."""

    def __init__(self, cfg: EvalConfig, model: Any, h: int, w: int) -> None:
        self.cfg, self.model, self.h, self.w = cfg, model, h, w
        self.min_area_px = M.area_at_scale(cfg.min_mask_area, h, w)  # eval.min_mask_area at the frame's scale
        self.look = AgentLookAccumulator(h, w, cfg.horizons, cfg.mask_threshold, cfg.min_mask_area)
        self.pred: list[np.ndarray] = []  # (B, T, 2) generated agent positions, NaN = no agent found
        self.gt: list[np.ndarray] = []  # (B, T, 2) GT positions

    def add(self, batch: dict[str, torch.Tensor], video: torch.Tensor, gen: torch.Tensor,
            gen_mask: torch.Tensor) -> None:
        """``video``, ``gen``: (B, T, 3, H, W) real and generated clips in [0, 1]; ``gen_mask``: (B, T, 1, H, W)."""
        gt_pos = ground_truth_positions(batch)
        if gt_pos is None:
            return
        cfg = self.cfg
        if cfg.pos_source == "segment" and callable(getattr(self.model, "segment", None)):
            gen_mask = self.model.segment(gen)
        self.pred.append(M.mask_centroid(gen_mask, cfg.mask_threshold, self.min_area_px,
                                         cfg.max_mask_frac * self.h * self.w).squeeze(2).cpu().numpy())  # (B, T, 2)
        self.look.add(video, gen, gen_mask, torch.as_tensor(gt_pos), batch.get("mask"))
        self.gt.append(gt_pos)

    def aggregate(self, out: Results, frame_skip: int, gt_keys: set[str]) -> dict[str, Any]:
        """``pos_err`` ({horizon: px at a 64-px scale | None}) and ``mdr``; returns the notes on the windows left
        out because their GT agent teleports (empty without positions)."""
        cfg = self.cfg
        if not self.gt:
            why = "the dataset has neither GT positions ('pos') nor GT masks to locate the agent"
            out.put("mdr", None, why)
            out.reasons["pos_err"] = why
            return {}
        pred, gt = np.concatenate(self.pred), np.concatenate(self.gt)  # (N, T, 2)
        dist = M.position_distances(pred, gt, self.h, self.w)  # (N, T), 64-px scale
        # windows where the GT agent teleports (a new point, a change of ends, a respawn) are left out of pos_err
        # and mdr: no action-conditioned model can predict a move its actions did not cause
        jump = M.spans_jump(gt, jump_threshold(Path(cfg.data_path), cfg.split, frame_skip, gt_keys, gt))
        if jump.all():
            jump[:] = False
        notes = {"pos_windows": int((~jump).sum()), "pos_windows_with_jump": int(jump.sum()),
                 "pos_err_all_windows": M.errors_at_horizons(dist, cfg.horizons)}
        pred, gt, dist = pred[~jump], gt[~jump], dist[~jump]
        out.values["pos_err"] = M.errors_at_horizons(dist, cfg.horizons)
        for hz, v in out.values["pos_err"].items():
            if v is None:
                out.reasons[f"pos_err.{hz}"] = (
                    f"clips of {cfg.clip_len} frames have no frame {hz}; use eval.clip_len >= {int(hz) + 1}"
                    if int(hz) >= cfg.clip_len else f"no generated frame {hz} has both an agent and a GT position")
        out.put("mdr", M.miss_rate(pred[:, 1:], gt[:, 1:]), "no GT agent position is known in frames 1..T-1")
        return notes

    def agent_look(self, reasons: dict[str, str]) -> dict[str, Any]:
        """``agent_sharpness``, ``agent_psnr_aligned`` and their ``_copy`` baselines ({horizon: value | None});
        why they are null goes to ``reasons["agent_look"]``."""
        if not self.gt:
            reasons["agent_look"] = "the dataset has neither GT positions nor GT masks to find the real agent"
        return self.look.result()


class KeypointScores:
    """``kp_track_err`` (Struct-VRNN's tracking probe, :mod:`worldmodel.keypoint.track`): a ridge regression from
    the detected keypoints of a real frame to the GT agent position, fitted on ``cfg.track_train_clips`` windows
    of the train split and scored on the evaluated clips' real frames, in frame px. ``kp_track_last_pos_err``
    is the baseline the issue compares with: predicting each frame's position by the previous frame's GT one."""

    def __init__(self, cfg: EvalConfig, model: Any) -> None:
        self.cfg, self.model = cfg, model
        self.detects = callable(getattr(model, "detect_keypoints", None))
        self.kp: list[np.ndarray] = []  # (B, T, K, 3) detected keypoints of real frames
        self.pos: list[np.ndarray] = []  # (B, T, 2) their GT agent positions

    def add(self, batch: dict[str, torch.Tensor], video: torch.Tensor) -> None:
        """One batch of real clips ``video`` (B, T, 3, H, W) in [0, 1] with their ground truth ``batch``."""
        if "pos" in batch and self.detects:
            self.kp.append(self.model.detect_keypoints(video).cpu().double().numpy())  # (B, T, K, 3)
            self.pos.append(batch["pos"].double().numpy())  # (B, T, 2)

    def aggregate(self, out: Results, frame_skip: int, gt_keys: set[str]) -> None:
        """``kp_track_err`` and ``kp_track_last_pos_err``, with why they are null when they are."""
        from ..data.dataset import ClipConfig, ClipDataset
        from ..keypoint.track import kp_track_err

        cfg = self.cfg
        if not self.detects:
            why = "the model has no keypoints (detect_keypoints); kp_track_err is for keypoint models"
        elif "pos" not in gt_keys:
            why = f"the dataset has no GT agent positions ('pos' not in its ground truth {sorted(gt_keys)})"
        else:
            why = ""
        if why:
            for k in ("kp_track_err", "kp_track_last_pos_err"):
                out.put(k, None, why)
            return
        test_kp, test_pos = np.concatenate(self.kp), np.concatenate(self.pos)  # (N, T, K, 3), (N, T, 2)
        last = np.linalg.norm(test_pos[:, 1:] - test_pos[:, :-1], axis=-1)  # (N, T-1) px
        out.put("kp_track_last_pos_err", M.nanmean(last.ravel()), "no two consecutive frames have a GT position")
        try:
            train = ClipDataset(cfg.data_path, "train",
                                ClipConfig(clip_len=cfg.clip_len, frame_skip=frame_skip, stride=1, ground_truth=True))
        except DatasetError as e:
            out.put("kp_track_err", None, f"no train split to fit the keypoint -> position regression: {e}")
            return
        kps, poss = self._detect(train)
        try:
            err = kp_track_err(np.concatenate(kps), np.concatenate(poss), test_kp, test_pos)
        except ValueError as e:
            out.put("kp_track_err", None, str(e))
            return
        out.put("kp_track_err", err, "no evaluated frame has a GT position")

    def _detect(self, train: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Detected keypoints (B, T, K, 3) and GT positions (B, T, 2), batch by batch, of ``cfg.track_train_clips``
        windows of the ``train`` ClipDataset drawn at random (seeded by ``cfg.seed + 1``)."""
        cfg = self.cfg
        pick = np.sort(np.random.default_rng(cfg.seed + 1).permutation(len(train))[: cfg.track_train_clips])
        kps, poss = [], []
        for s in chunks(len(pick), cfg.batch_size):
            items = [train[int(i)] for i in pick[s]]
            video = torch.stack([it["frames"] for it in items]).to(self.model.device).float() / 255.0
            kps.append(self.model.detect_keypoints(video).cpu().double().numpy())
            poss.append(torch.stack([it["pos"] for it in items]).double().numpy())
        return kps, poss
