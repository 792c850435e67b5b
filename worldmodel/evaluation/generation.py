"""Generation from the first frame and its scores: image quality of frames 1..T-1 (``psnr``, ``ssim``, ``lpips``),
the same for real frame 0 repeated (``copy_frame0``, the frozen baseline), and the Fréchet distances (``fid`` on
frames 1..T-1, ``fvd`` on whole clips)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import metrics as M
from .common import Results, cat, chunks
from .networks import FeatureNets

_QUALITY = ("psnr", "ssim", "lpips")


def generate(model: Any, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate from the first frame replaying the actions inferred on ``video`` (B, T, 3, H, W) in [0, 1].

    Uses ``model.generate`` when the model has it, else the :class:`~worldmodel.api.WorldModel` interface
    (``infer_actions``, ``start``, ``step``). Returns frames (B, T, 3, H, W) clamped to [0, 1] with frame 0 the
    real one, and agent masks (B, T, 1, H, W) (frame 0's mask is zeros on the fallback path).
    """
    if hasattr(model, "generate"):
        frames, masks = model.generate(video)
        return frames.clamp(0, 1), masks
    shifts, codes = model.infer_actions(video)  # (B, T-1, 2), (B, T-1)
    state = model.start(video[:, 0])
    frames, masks = [video[:, 0]], [torch.zeros_like(video[:, 0, :1])]
    for t in range(video.shape[1] - 1):
        frame, mask, state = model.step(state, shifts[:, t], codes[:, t])
        frames.append(frame)
        masks.append(mask)
    return torch.stack(frames, 1).clamp(0, 1), torch.stack(masks, 1)  # (B, T, 3, H, W), (B, T, 1, H, W)


def quality(pred: torch.Tensor, real: torch.Tensor, perceptual: Any | None) -> dict[str, np.ndarray]:
    """Per-frame PSNR, SSIM (frames of >= 11 px) and LPIPS (when ``perceptual``) of (N, 3, H, W) frames in [0, 1]."""
    out = {"psnr": M.psnr(pred, real).cpu().numpy()}
    if min(real.shape[-2:]) >= 11:
        out["ssim"] = M.ssim(pred, real, data_range=1.0).cpu().numpy()
    if perceptual is not None:
        out["lpips"] = torch.cat([perceptual(pred[s] * 2 - 1, real[s] * 2 - 1).flatten()
                                  for s in chunks(len(pred), 64)]).cpu().numpy()
    return out


class GenerationScores:
    """Frames generated from the first frame against the real ones; frame 0 (a copy of the real one) is left
    out of everything but ``fvd``, which scores whole clips as videos."""

    def __init__(self, nets: FeatureNets, reasons: dict[str, str]) -> None:
        self.nets, self.reasons = nets, reasons  # reasons: a failing I3D records why under "fvd"
        self.gen: dict[str, list[np.ndarray]] = {k: [] for k in _QUALITY}  # per-frame scores of generated frames
        self.copy: dict[str, list[np.ndarray]] = {k: [] for k in _QUALITY}  # the same for frame 0 repeated
        self.fid: dict[str, list[np.ndarray]] = {"real": [], "fake": []}  # (N, 2048) Inception features
        self.fvd: dict[str, list[np.ndarray]] = {"real": [], "fake": []}  # (B, D) I3D features

    def add(self, video: torch.Tensor, gen: torch.Tensor) -> None:
        """``video`` (B, T, 3, H, W) real clips and ``gen`` the same generated from their frame 0, in [0, 1]."""
        b, t = video.shape[:2]
        real1 = video[:, 1:].reshape(b * (t - 1), *video.shape[2:])  # (B*(T-1), 3, H, W), frame 0 excluded
        gen1 = gen[:, 1:].reshape(b * (t - 1), *video.shape[2:])
        copy1 = video[:, :1].expand(-1, t - 1, -1, -1, -1).reshape(b * (t - 1), *video.shape[2:])  # frame 0 again
        for key, values in quality(gen1, real1, self.nets.perceptual).items():
            self.gen[key].append(values)
        for key, values in quality(copy1, real1, self.nets.perceptual).items():
            self.copy[key].append(values)
        if self.nets.inception is not None:
            for s in chunks(len(gen1), 32):
                self.fid["real"].append(self.nets.inception.fn(real1[s]).cpu().numpy())
                self.fid["fake"].append(self.nets.inception.fn(gen1[s]).cpu().numpy())
        if self.nets.i3d is not None and "fvd" not in self.reasons:
            try:
                self.fvd["real"].append(self.nets.i3d.fn(video).cpu().numpy())
                self.fvd["fake"].append(self.nets.i3d.fn(gen).cpu().numpy())
            except Exception as e:  # noqa: BLE001 - e.g. clips too short for the I3D's temporal pooling
                self.reasons["fvd"] = f"I3D failed on {t}-frame clips: {type(e).__name__}: {e}"

    def aggregate(self, out: Results, h: int, w: int) -> None:
        """``psnr``, ``ssim``, ``lpips``, ``lpips_backbone``, ``fid`` and ``fvd`` of (h, w) frames."""
        out.put("psnr", M.nanmean(cat(self.gen["psnr"])), "no generated frame")
        out.put("ssim", M.nanmean(cat(self.gen["ssim"])) if self.gen["ssim"] else None,
                f"frames of {h}x{w} are smaller than SSIM's 11-px window")
        out.put("lpips", M.nanmean(cat(self.gen["lpips"])) if self.gen["lpips"] else None, "LPIPS was not computed")
        out.values["lpips_backbone"] = self.nets.backbone if out.values["lpips"] is not None else None
        if out.values["lpips_backbone"] is None:
            out.reasons.setdefault("lpips_backbone", out.reasons.get("lpips", "LPIPS was not computed"))
        if self.fid["real"]:
            try:
                out.put("fid", M.frechet_distance_from_features(np.concatenate(self.fid["real"]),
                                                                np.concatenate(self.fid["fake"])), "FID is not finite")
            except ValueError as e:
                out.put("fid", None, f"FID failed: {e}")
        if self.fvd["real"] and "fvd" not in out.reasons:
            try:
                out.put("fvd", M.frechet_distance_from_features(np.concatenate(self.fvd["real"]),
                                                                np.concatenate(self.fvd["fake"])), "FVD is not finite")
            except ValueError as e:
                out.put("fvd", None, f"FVD needs >= 2 clips: {e}")

    def copy_frame0(self) -> dict[str, float | None]:
        """``psnr``, ``ssim``, ``lpips`` of real frame 0 repeated, on the frames the generation is scored on."""
        return {k: (M.nanmean(cat(v)) if v else None) for k, v in self.copy.items()}
