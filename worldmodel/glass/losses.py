"""GLASS loss terms and weight maps (method.md section 5). "mean" is the mean over all tensor elements.

Sequences are (B, T, C, H, W); "next" tensors hold frames 2..T and "prev" tensors frames 1..T-1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..metrics import abs_gradients
from .blocks import squared_distances

TERMS = (  # every loss term, in the order of method.md 5
    "reconstruction", "foreground", "background", "background_perceptual", "binary_mask", "mask_size",
    "multiscale_global", "multiscale_local", "multiscale_perceptual", "cycle", "vq", "mask_reconstruction",
    "mask_area", "motion_guard", "code_usage", "gradient_match", "carry_gate",
)
LMA_TERMS = ("multiscale_global", "multiscale_local", "multiscale_perceptual", "cycle", "vq",
             "mask_reconstruction", "mask_area", "code_usage", "gradient_match", "carry_gate")


def channel_abs_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum_c |a - b|: (B, T, C, H, W) x2 -> (B, T, 1, H, W)."""
    return (a - b).abs().sum(dim=2, keepdim=True)


def joint_weights(frames: torch.Tensor, composite: torch.Tensor, bias: float) -> torch.Tensor:
    """omega_J (detached): sum_c|I_{t+1} - I_t| + sum_c|R_{t+1} - R_t| + bias, with R_1 := I_1.

    frames (B, T, 3, H, W), composite R (B, T-1, 3, H, W) -> (B, T-1, 1, H, W).
    """
    r_prev = torch.cat([frames[:, :1], composite[:, :-1]], dim=1)  # (B, T-1, 3, H, W)
    w = channel_abs_sum(frames[:, 1:], frames[:, :-1]) + channel_abs_sum(composite, r_prev) + bias
    return w.detach()


def unsupervised_weights(fg: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """omega_U (detached): sum_c|f_{t+1} - f_t| + sum_c|f^_{t+1} - f^_t|, with f^_1 := f_1.

    fg (B, T, 3, H, W), recon f^ (B, T-1, 3, H, W) full resolution -> (B, T-1, 1, H, W).
    """
    recon_prev = torch.cat([fg[:, :1], recon[:, :-1]], dim=1)
    return (channel_abs_sum(fg[:, 1:], fg[:, :-1]) + channel_abs_sum(recon, recon_prev)).detach()


def action_weights(fg: torch.Tensor, fg_shifted: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """omega_A (detached): sum_c|f_{t+1} - f_t o Delta_F| + sum_c|f_{t+1} - f^_{t+1}|.

    fg (B, T, 3, H, W), fg_shifted (B, T-1, 3, H, W), recon (B, T-1, 3, H, W) -> (B, T-1, 1, H, W).
    """
    return (channel_abs_sum(fg[:, 1:], fg_shifted) + channel_abs_sum(fg[:, 1:], recon)).detach()


def resize_seq(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False, no antialias) of (B, T, C, H, W) to (B, T, C, *size)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    b, t = x.shape[:2]
    y = F.interpolate(x.flatten(0, 1), size=size, mode="bilinear", align_corners=False)  # (B*T, C, h, w)
    return y.view(b, t, *y.shape[1:])


def multiscale_losses(
    target: torch.Tensor,
    preds: list[torch.Tensor],
    weights: list[torch.Tensor],
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Weighted multiscale L1 terms (L_RECU, L_RECS) and the multiscale perceptual term (L_LMA-VGG).

    Args:
        target: f_{t+1} (B, T-1, 3, H, W) at full resolution.
        preds: decoder outputs, full resolution first: [(B, T-1, 3, H/s, W/s) for s = 1, 2, 4].
        weights: full-resolution weight maps (B, T-1, 1, H, W), one L1 term each.
        perceptual: LPIPS-like (N, 3, h, w) x2 -> (N,) with a detached target as first argument, or None.
    Returns:
        one scalar per weight map (each averaged over the scales), and the perceptual scalar or None.
    """
    l1 = [target.new_zeros(()) for _ in weights]
    perc = target.new_zeros(()) if perceptual is not None else None
    for pred in preds:
        size = tuple(pred.shape[-2:])
        tgt = resize_seq(target, size)
        diff = (tgt - pred).abs()
        for i, w in enumerate(weights):
            l1[i] = l1[i] + (resize_seq(w, size) * diff).mean() / len(preds)
        if perceptual is not None:
            perc = perc + perceptual(tgt.detach().flatten(0, 1), pred.flatten(0, 1)).mean() / len(preds)
    return l1, perc


def gradient_match_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_GRAD: mean | |d pred| - |d target| | over horizontal and vertical neighbour differences.

    The gradient-difference loss of video prediction: an L1 prediction that is unsure of the next frame is the
    average of the frames it could be, a blur with weak edges; this term compares edge strength pixel by pixel, so
    a blur costs about as much as a sharp agent one pixel off. pred, target (B, T, C, H, W), H, W >= 2.
    """
    (px, py), (tx, ty) = abs_gradients(pred), abs_gradients(target)
    return 0.5 * ((px - tx).abs().mean() + (py - ty).abs().mean())


def binary_mask_loss(mask: torch.Tensor) -> torch.Tensor:
    """L_BIN = mean(min(m, 1 - m)) over all frames."""
    return torch.minimum(mask, 1 - mask).mean()


def mask_area_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean_{B,T} |mean_{H,W}(pred) - mean_{H,W}(target)|: the decoder's mask keeps the agent's area.

    Unlike a pixel loss it does not care *where* the mask is, so a rollout that is unsure of the agent's position
    cannot lower it by fading the agent out. pred, target (B, T, 1, H, W).
    """
    return (pred.mean(dim=(2, 3, 4)) - target.mean(dim=(2, 3, 4))).abs().mean()


def mask_size_loss(mask: torch.Tensor, theta: float) -> torch.Tensor:
    """L_SIZE = mean_{B,T} |mean_{H,W}(m) - theta|. mask (B, T, 1, H, W)."""
    return (mask.mean(dim=(2, 3, 4)) - theta).abs().mean()


def code_statistics(ids: torch.Tensor, num_codes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Counts (K,), perplexity exp(H(p)) and usage (fraction of codes used) of the code ids (N,)."""
    counts = torch.bincount(ids.flatten(), minlength=num_codes).float()
    usage = (counts > 0).float().mean()
    return counts, perplexity(counts / counts.sum().clamp_min(1)), usage


def perplexity(p: torch.Tensor) -> torch.Tensor:
    """exp(H(p)) of a distribution p (K,) over codes: K when uniform, 1 when on one code."""
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


CODE_USAGE_SHARPNESS = 4.0  # soft assignments use distances / (the codes' mean squared spacing / this)


def code_usage_loss(u: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """L_USE (not in method.md): 1 - exp(H(p_bar)) / K, the unused share of the codebook's perplexity.

    p_n = softmax(-CODE_USAGE_SHARPNESS d_n / s) is a soft assignment of the pre-quantisation action u_n (N, D) to
    the K codes of ``codebook`` (K, D) (d_n: squared distances; s: the mean squared distance between two codes,
    detached), and p_bar their batch mean. 0 when the batch uses the codes evenly, 1 - 1/K when it sits on one.
    Its gradient moves actions towards codes the batch under-uses, and those codes towards the actions (a
    diversity term as in wav2vec 2.0's codebook). The scale is the codes' spacing, not the actions' distances:
    scaled by the mean action-code distance, the term was met by moving every action far from every code (all
    assignments equally soft), which is what a 45-min Tennis run did (VQ loss 0.01 -> 2, hard usage unchanged).
    Scalar.
    """
    k = codebook.shape[0]
    if k < 2:
        return u.new_zeros(())
    spacing = squared_distances(codebook, codebook).detach().sum() / (k * (k - 1))  # the diagonal is 0
    p = torch.softmax(-CODE_USAGE_SHARPNESS * squared_distances(u, codebook) / spacing.clamp_min(1e-8), dim=1)
    return 1 - perplexity(p.mean(0)) / k


def balanced_l1(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Class-balanced L1 for soft masks: 0.5 mean_{target}|p - t| + 0.5 mean_{1 - target}|p - t|.

    ``target`` in [0, 1] weighs each pixel as positive (t) and negative (1 - t); equals plain L1 when half the
    pixels are agent. pred, target (B, T, 1, H, W) -> scalar.
    """
    err = (pred - target).abs()
    pos = (target * err).sum() / target.sum().clamp_min(eps)
    neg = ((1 - target) * err).sum() / (1 - target).sum().clamp_min(eps)
    return 0.5 * (pos + neg)


def motion_map(frames: torch.Tensor, change: float, max_share: float = 0.5) -> torch.Tensor:
    """Pixels of each frame that change between it and a neighbouring frame (B, T, 1, H, W) float {0, 1}.

    frames (B, T, 3, H, W) in [-1, 1]; a pixel changes when a channel moves by more than ``change`` (in [0, 1]
    units). Frames where more than ``max_share`` of the pixels change (a cut, a flash, a panning camera) get an
    empty map: their motion says nothing about where the agent is.
    """
    d = (frames[:, 1:] - frames[:, :-1]).abs().amax(dim=2, keepdim=True) > 2 * change  # (B, T-1, 1, H, W)
    moving = torch.zeros_like(frames[:, :, :1], dtype=torch.bool)
    moving[:, 1:] |= d
    moving[:, :-1] |= d
    calm = moving.float().mean(dim=(2, 3, 4), keepdim=True) <= max_share
    return (moving & calm).float()


def motion_guard_loss(mask: torch.Tensor, moving: torch.Tensor, min_area_px: float) -> torch.Tensor:
    """L_GUARD: on frames whose mask locates no agent, mean of (1 - m) over the moving pixels; 0 elsewhere.

    mask (B, T, 1, H, W) in [0, 1]; moving (B, T, 1, H, W) {0, 1} (:func:`motion_map`); a frame's mask locates
    an agent when at least ``min_area_px`` pixels exceed 0.5 (the rule of :func:`worldmodel.metrics.locate_agent`;
    a flooding mask is L_SIZE's business). Averaged over all frames, so it fades as fewer frames are lost.
    """
    empty = ((mask.detach() > 0.5).float().sum(dim=(2, 3, 4)) < min_area_px)  # (B, T)
    n_moving = moving.sum(dim=(2, 3, 4))  # (B, T)
    miss = ((1 - mask) * moving).sum(dim=(2, 3, 4)) / n_moving.clamp_min(1)  # (B, T)
    return (miss * (empty & (n_moving > 0)).float()).mean()
