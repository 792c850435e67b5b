"""Scores of the model on real frames: segmentation (``miou``), shifts (``fg_shift_err``, ``fg_angle_acc``,
``bg_shift_err``, ``bg_angle_acc``) and action codes (``nmi_g``, ``nmi_s``, ``con``); each also feeds the health
evidence (:class:`worldmodel.health.HealthAccumulator`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import metrics as M
from ..health import HealthAccumulator
from .common import NO_METHOD, Results, cat

_SHIFTS = (("fg", "shift"), ("bg", "bg_shift"))  # (metric prefix, GT key)


class GmaScores:
    """``model.segment`` vs the GT masks (soft IoU) and ``model.estimate_shifts`` vs the GT shifts of
    transitions 1..T-1 (L2 error in px, direction within 45 degrees over non-zero GT)."""

    def __init__(self, model: Any, device: torch.device, health: HealthAccumulator) -> None:
        self.model, self.device, self.health = model, device, health
        self.has_segment = callable(getattr(model, "segment", None))
        self.has_shifts = callable(getattr(model, "estimate_shifts", None))
        self.iou: list[np.ndarray] = []  # per-frame soft IoU
        self.err: dict[str, list[np.ndarray]] = {key: [] for _, key in _SHIFTS}  # per-transition L2 error, px
        self.hit: dict[str, list[np.ndarray]] = {key: [] for _, key in _SHIFTS}  # 1 / 0 / NaN (zero GT)

    def add(self, batch: dict[str, torch.Tensor], video: torch.Tensor) -> None:
        """One batch of clips: ``video`` (B, T, 3, H, W) in [0, 1] on the device, ``batch`` its ground truth."""
        if "shift" in batch:
            self.health.add_motion(batch["shift"][:, 1:], ground_truth=True)
        fg = None
        if self.has_shifts:
            fg, bg = self.model.estimate_shifts(video)  # (B, T-1, 2) each
            self.health.add_motion(fg, ground_truth=False)
        if self.has_segment:
            pred = self.model.segment(video)  # (B, T, 1, H, W)
            # is the located agent the labelled one? centroid vs centroid where the labelled mask is known (a
            # dataset's ``pos`` may be another point of the agent)
            gt_pos = (M.mask_centroid(batch["mask"], 0.5, 1.0).squeeze(2) if "mask" in batch
                      else batch.get("pos"))
            self.health.add_real_masks(pred, shifts=fg, gt_pos=gt_pos)  # found, motion vs shifts, labelled agent
            if "mask" in batch:
                self.iou.append(M.soft_iou(pred, batch["mask"].to(self.device)).cpu().numpy().ravel())
        if fg is not None:
            for key, est in (("shift", fg), ("bg_shift", bg)):
                if key in batch:
                    gt = batch[key][:, 1:].numpy()  # (B, T-1, 2): transitions into frames 1..T-1
                    self.err[key].append(M.shift_error(est, gt).ravel())
                    hit, valid = M.angle_correct(est, gt)
                    self.hit[key].append(np.where(valid, hit.astype(np.float64), np.nan).ravel())

    def aggregate(self, out: Results, gt_keys: set[str]) -> None:
        """``miou`` and the four shift metrics, each with why it is null when it is."""
        if "mask" not in gt_keys:
            out.reasons["miou"] = f"the dataset has no GT masks ('mask' not in its ground truth {sorted(gt_keys)})"
        elif not self.has_segment:
            out.reasons["miou"] = NO_METHOD.format("segment")
        out.put("miou", M.nanmean(cat(self.iou)) if self.iou else None, "no frame was scored")
        for prefix, key in _SHIFTS:
            errs, hits = self.err[key], self.hit[key]
            if key not in gt_keys:
                why = f"the dataset has no GT '{key}'"
            elif not self.has_shifts:
                why = NO_METHOD.format("estimate_shifts")
            else:
                why = "no transition was scored"
            out.put(f"{prefix}_shift_err", M.nanmean(cat(errs)) if errs else None, why)
            out.put(f"{prefix}_angle_acc", M.nanmean(cat(hits)) if hits else None,
                    why if not hits else f"every GT '{key}' is zero, so no direction can be scored")


class CodeScores:
    """``model.infer_actions`` codes vs the GT local labels of the destination frames (label -1 = none is left
    out): NMI over all transitions, the mean per-identity NMI, and their difference (consistency)."""

    def __init__(self, model: Any, health: HealthAccumulator, dataset: Any) -> None:
        self.model, self.health, self.dataset = model, health, dataset
        self.has_codes = callable(getattr(model, "infer_actions", None))
        self.gt_local: list[np.ndarray] = []  # (B, T-1) GT labels of frames 1..T-1
        self.codes: list[np.ndarray] = []  # (B, T-1) inferred codes
        self.ids: list[str] = []  # the identity of each clip

    def add(self, batch: dict[str, torch.Tensor], video: torch.Tensor) -> None:
        """One batch of clips: ``video`` (B, T, 3, H, W) in [0, 1] on the device, ``batch`` its ground truth."""
        if not self.has_codes:
            return
        _, codes = self.model.infer_actions(video)  # (B, T-1)
        self.health.add_codes(codes)
        if "local" in batch:
            self.gt_local.append(batch["local"][:, 1:].numpy())
            self.codes.append(codes.cpu().numpy())
            self.ids.extend(self.dataset.identity(int(v)) for v in batch["video"])

    def aggregate(self, out: Results, gt_keys: set[str], clip_len: int) -> None:
        """``nmi_g``, ``nmi_s`` and ``con``, with why they are null when they are."""
        if self.codes:
            gl, cd = cat(self.gt_local).astype(np.int64), cat(self.codes).astype(np.int64)
            ids = np.repeat(np.asarray(self.ids, dtype=object), clip_len - 1)
            keep = gl >= 0
            why = "every GT local label is -1 (none)"
            if keep.any():
                nmi_g = M.nmi(gl[keep], cd[keep])
                nmi_s = M.nmi_by_identity(gl[keep], cd[keep], ids[keep])
                out.put("nmi_g", nmi_g, why)
                out.put("nmi_s", nmi_s, why)
                out.put("con", M.consistency(nmi_s, nmi_g), why)
                return
        else:
            why = ("the dataset has no GT local action labels ('local')" if "local" not in gt_keys
                   else NO_METHOD.format("infer_actions"))
        for k in ("nmi_g", "nmi_s", "con"):
            out.put(k, None, why)
