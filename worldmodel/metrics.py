"""Evaluation metrics of glassworld (method.md sections 8 and 14), as pure functions.

Nothing here loads a model or a dataset: every function takes arrays and returns numbers, so each one is
tested on hand-made inputs. The evaluation protocol that feeds them lives in :mod:`worldmodel.evaluate`.

Conventions
-----------
* Images are float in [0, 1] (``data_range = 1``), shaped (N, C, H, W) unless stated.
* Masks are float in [0, 1] (soft or binary), shaped (..., H, W) (a singleton channel is fine: (..., 1, H, W)).
* Shifts are (dx, dy) in pixels of the frame, +x = content moves right, +y = content moves down.
* Positions are (x, y) in pixel-index coordinates: pixel (row i, column j) has centre (x=j, y=i).
* Missing values are NaN; aggregates ignore them and return NaN when nothing is left.

Metrics
-------
* :func:`soft_iou` / :func:`mean_iou`: GLASS's un-thresholded IoU of a mask against the GT mask (method.md 8.1).
* :func:`shift_error`, :func:`angle_accuracy`: L2 error in px and the share of directions within 45 degrees.
* :func:`nmi`, :func:`nmi_by_identity`, :func:`consistency`: NMI_G, NMI_S and CON = NMI_S - NMI_G.
* :func:`psnr`, :func:`ssim`: per-image quality on [0, 1] images (SSIM with ``data_range = 1``; method.md 11.1).
* :func:`locate_agent` (the one agent locator; :func:`mask_centroid` is its NaN form),
  :func:`position_distances`, :func:`errors_at_horizons`, :func:`miss_rate`: the
  detector-free ADD/MDR of method.md 14 (agent position in generated frames against ground truth).
* :func:`gaussian_stats`, :func:`frechet_distance`, :func:`frechet_distance_from_features`: FID / FVD's
  distance between two Gaussians fitted to network features.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | torch.Tensor | Sequence[float]

#: positions are reported at the scale of a 64-px frame (see :func:`position_distances`)
POSITION_SCALE_PX = 64.0


def area_at_scale(area_64: float, height: int, width: int) -> float:
    """An area given in pixels of a 64-px frame (``POSITION_SCALE_PX``) in pixels of a ``height`` x ``width`` frame."""
    return area_64 * (max(height, width) / POSITION_SCALE_PX) ** 2


def _np(x: ArrayLike) -> np.ndarray:
    """Any array-like (tensor on any device included) as a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def nanmean(x: ArrayLike) -> float:
    """Mean of the finite entries of ``x``; NaN when there are none (no RuntimeWarning)."""
    a = _np(x).ravel()
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


# ----------------------------------------------------------------------------------------------------------------
# segmentation
# ----------------------------------------------------------------------------------------------------------------

def soft_iou(mask: torch.Tensor, gt: torch.Tensor, empty: float = 1.0) -> torch.Tensor:
    """Soft IoU per frame, without thresholding (method.md 8.1).

    ``IoU = sum(m * g) / sum(1 - (1 - m) * (1 - g))`` over the pixels of each frame; for binary masks this is the
    usual intersection over union.

    Args:
        mask: (..., H, W) predicted mask in [0, 1] (e.g. (B, T, 1, H, W)).
        gt: (..., H, W) ground-truth mask in [0, 1], same shape.
        empty: value of a frame where both masks are exactly zero (union 0): 1.0, since they agree.
    Returns:
        (...) IoU per frame (the last two dims reduced), float.
    """
    if mask.shape != gt.shape:
        raise ValueError(f"soft_iou: mask {tuple(mask.shape)} and gt {tuple(gt.shape)} must have the same shape")
    m, g = mask.float(), gt.to(mask.device).float()
    inter = (m * g).sum(dim=(-2, -1))
    union = (1 - (1 - m) * (1 - g)).sum(dim=(-2, -1))
    iou = inter / union.clamp_min(1e-12)
    return torch.where(union > 0, iou, torch.full_like(iou, empty))


def mean_iou(mask: torch.Tensor, gt: torch.Tensor) -> float:
    """mIoU: :func:`soft_iou` averaged over all frames. Shapes as in :func:`soft_iou`."""
    return nanmean(soft_iou(mask, gt))


# ----------------------------------------------------------------------------------------------------------------
# shifts
# ----------------------------------------------------------------------------------------------------------------

def shift_error(pred: ArrayLike, gt: ArrayLike) -> np.ndarray:
    """L2 distance between predicted and GT shifts, in px.

    Args:
        pred, gt: (..., 2) shifts (dx, dy) in pixels.
    Returns:
        (...) float64 errors.
    """
    p, g = _np(pred), _np(gt)
    if p.shape != g.shape or p.shape[-1:] != (2,):
        raise ValueError(f"shift_error: pred {p.shape} and gt {g.shape} must both be (..., 2)")
    return np.linalg.norm(p - g, axis=-1)


def angle_correct(pred: ArrayLike, gt: ArrayLike, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Per-transition direction hits: cos(pred, gt) > 1/sqrt(2) (angle < 45 degrees).

    A zero prediction has no direction and counts as a miss. Transitions whose GT shift is zero have no
    direction either and are excluded (``valid`` is False there).

    Args:
        pred, gt: (..., 2) shifts in pixels.
    Returns:
        hit (...) bool and valid (...) bool (GT shift non-zero).
    """
    p, g = _np(pred), _np(gt)
    if p.shape != g.shape or p.shape[-1:] != (2,):
        raise ValueError(f"angle_correct: pred {p.shape} and gt {g.shape} must both be (..., 2)")
    pn, gn = np.linalg.norm(p, axis=-1), np.linalg.norm(g, axis=-1)
    cos = (p * g).sum(-1) / np.maximum(pn * gn, eps)
    valid = gn > eps
    return (cos > 1.0 / math.sqrt(2.0)) & valid & (pn > eps), valid


def angle_accuracy(pred: ArrayLike, gt: ArrayLike) -> float:
    """Share of transitions with a non-zero GT shift whose predicted direction is within 45 degrees of it.

    Args:
        pred, gt: (..., 2) shifts in pixels.
    Returns:
        accuracy in [0, 1]; NaN when no GT shift is non-zero.
    """
    hit, valid = angle_correct(pred, gt)
    return float(hit[valid].mean()) if valid.any() else float("nan")


# ----------------------------------------------------------------------------------------------------------------
# action codes
# ----------------------------------------------------------------------------------------------------------------

def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """Normalised mutual information with arithmetic normalisation: ``NMI = I(X;Y) / ((H(X) + H(Y)) / 2)``.

    Same value and conventions as ``sklearn.metrics.normalized_mutual_info_score`` (average_method
    "arithmetic"): invariant to renaming either labelling; 1.0 when both labellings have a single class;
    0.0 when only one of them does.

    Args:
        labels_true, labels_pred: (N,) integer labels.
    Returns:
        NMI in [0, 1]; NaN for N = 0.
    """
    a, b = np.asarray(labels_true).ravel(), np.asarray(labels_pred).ravel()
    if a.shape != b.shape:
        raise ValueError(f"nmi: labellings have different lengths {a.shape} and {b.shape}")
    if a.size == 0:
        return float("nan")
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    if len(ua) == len(ub) == 1:
        return 1.0
    joint = np.zeros((len(ua), len(ub)), dtype=np.float64)  # contingency table
    np.add.at(joint, (ia, ib), 1.0)
    n = joint.sum()
    pa, pb = joint.sum(1) / n, joint.sum(0) / n
    nz = joint > 0
    pij = joint[nz] / n
    mi = float((pij * (np.log(pij) - np.log(np.outer(pa, pb)[nz]))).sum())
    h = 0.5 * (_entropy(joint.sum(1)) + _entropy(joint.sum(0)))
    if mi <= 0.0 or h <= 0.0:
        return 0.0
    return float(min(max(mi / h, 0.0), 1.0))


def nmi_by_identity(labels_true: ArrayLike, labels_pred: ArrayLike, identities: Iterable) -> float:
    """NMI_S: the mean over identities (sprites, episodes) of the NMI of each identity's pooled transitions.

    Args:
        labels_true, labels_pred: (N,) integer labels.
        identities: (N,) identity of each transition (any hashable).
    Returns:
        mean per-identity NMI; NaN for N = 0.
    """
    a, b = np.asarray(labels_true).ravel(), np.asarray(labels_pred).ravel()
    ids = np.asarray(list(identities), dtype=object).ravel()
    if not (a.shape == b.shape == ids.shape):
        raise ValueError(f"nmi_by_identity: lengths differ: {a.shape}, {b.shape}, {ids.shape}")
    scores = [nmi(a[ids == i], b[ids == i]) for i in dict.fromkeys(ids.tolist())]
    return float(np.mean(scores)) if scores else float("nan")


def consistency(nmi_s: float, nmi_g: float) -> float:
    """CON = NMI_S - NMI_G: how much more consistent the codes are within an identity than across identities."""
    return float(nmi_s - nmi_g)


# ----------------------------------------------------------------------------------------------------------------
# image quality
# ----------------------------------------------------------------------------------------------------------------

def abs_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """|horizontal|, |vertical| neighbour differences: (..., H, W) -> (..., H, W-1), (..., H-1, W)."""
    return (x[..., :, 1:] - x[..., :, :-1]).abs(), (x[..., 1:, :] - x[..., :-1, :]).abs()


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, max_db: float = 100.0) -> torch.Tensor:
    """PSNR per image, ``10 log10(data_range^2 / MSE)``.

    Args:
        x, y: (N, C, H, W) images in [0, data_range].
        max_db: value of identical images (MSE 0), instead of +inf.
    Returns:
        (N,) PSNR in dB.
    """
    if x.shape != y.shape or x.dim() < 2:
        raise ValueError(f"psnr: x {tuple(x.shape)} and y {tuple(y.shape)} must have the same (N, ...) shape")
    mse = ((x.float() - y.float()) ** 2).flatten(1).mean(1)  # (N,)
    db = 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-30))
    return db.clamp(max=max_db)


def gaussian_window(size: int = 11, sigma: float = 1.5, device: torch.device | str = "cpu") -> torch.Tensor:
    """A normalised 1-D Gaussian of ``size`` taps (odd), shape (size,)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian window size must be odd and positive, got {size}")
    r = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, kernel_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """SSIM per image (Wang et al. 2004): Gaussian window 11 / sigma 1.5, 'valid' filtering, mean over the map.

    The constants are ``C1 = (k1 * data_range)^2`` and ``C2 = (k2 * data_range)^2``; ``data_range`` is a
    keyword on purpose (method.md 11.1: GLASS passed it positionally as the kernel size). Each channel gets its
    own map and the per-image value is the mean over channels and positions. Computed in float64.

    Args:
        x, y: (N, C, H, W) images in [0, data_range], H and W >= ``kernel_size``.
    Returns:
        (N,) SSIM in [-1, 1]; 1 for identical images.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim: x {tuple(x.shape)} and y {tuple(y.shape)} must both be (N, C, H, W)")
    _, c, h, w = x.shape
    if min(h, w) < kernel_size:
        raise ValueError(f"ssim: images of {h}x{w} are smaller than the {kernel_size}-px window; use larger frames")
    x, y = x.to(torch.float64), y.to(torch.float64)
    g = gaussian_window(kernel_size, sigma, x.device)
    gx = g.view(1, 1, 1, -1).expand(c, 1, 1, kernel_size)  # (C, 1, 1, k) depthwise
    gy = g.view(1, 1, -1, 1).expand(c, 1, kernel_size, 1)  # (C, 1, k, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C, H-k+1, W-k+1)
        return F.conv2d(F.conv2d(t, gx, groups=c), gy, groups=c)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return smap.flatten(1).mean(1).float()


# ----------------------------------------------------------------------------------------------------------------
# agent position (detector-free ADD / MDR, method.md 14)
# ----------------------------------------------------------------------------------------------------------------

#: a mask covering more than this share of the frame is a flood, not an agent (:func:`locate_agent`)
MAX_MASK_FRAC = 0.5


def kept_in_box(shift_px: torch.Tensor, pos: torch.Tensor, found: torch.Tensor, box: torch.Tensor | None
                ) -> torch.Tensor:
    """Global actions (B, 2) px shortened so that agents at ``pos`` (B, 2) px (where ``found`` (B,) bool) stay
    inside ``box`` (4,) = (x0, y0, x1, y1) px (a world's ``agent_box``); an agent already outside may move
    anywhere not farther out. Unchanged where no agent is found, and everywhere when ``box`` is None."""
    if box is None:
        return shift_px
    box = torch.as_tensor(box).to(shift_px.device, shift_px.dtype)
    lo, hi = torch.minimum(box[:2], pos), torch.maximum(box[2:], pos)  # (B, 2): never pull an agent back in
    kept = (pos + shift_px).clamp(lo, hi) - pos
    return torch.where(found[:, None], kept, shift_px)


def locate_agent(mask: torch.Tensor, threshold: float = 0.5, min_area_px: float = 1.0,
                 max_frac: float = MAX_MASK_FRAC) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the agent is in a mask: the one locator of glassworld (env rewards, the planner, evaluation, the
    recorded reach places, health checks and the viewer all call it).

    The rule: the agent's pixels are those with mask value > ``threshold``; its position is their centroid
    (each counts 1). The agent is *found* when it has at least ``min_area_px`` pixels and at most ``max_frac``
    of the frame: an empty (or faint) mask locates nothing, and so does a mask flooding the frame (else a model
    that paints everything as agent would put the agent at the centre of the frame, and a reward on distance
    could be farmed by it).

    Args:
        mask: (N, 1, H, W) in [0, 1] (soft or binary); any leading dims work: (..., 1, H, W).
        threshold: mask values at or below it are background.
        min_area_px: fewer agent pixels than this: not found.
        max_frac: more agent pixels than ``max_frac * H * W``: not found (1.0 turns flood rejection off).
    Returns:
        pos (N, 2) float32 (x, y) in pixel-index coordinates (pixel centres at integers: x = column, y = row);
        rows not found hold 0. found (N,) bool. (For (..., 1, H, W) input: (..., 2) and (...).)
    """
    if mask.dim() < 3 or mask.shape[-3] != 1:
        raise ValueError(f"locate_agent: mask must be (N, 1, H, W) (any leading dims), got {tuple(mask.shape)}")
    if not 0 < max_frac <= 1:
        raise ValueError(f"locate_agent: max_frac must be in (0, 1], got {max_frac}")
    h, w = mask.shape[-2:]
    on = (mask[..., 0, :, :].float() > threshold).float()  # (..., H, W)
    pos, area = _weighted_centroid(on)  # (..., 2), (...)
    found = (area >= max(min_area_px, 1e-9)) & (area <= max_frac * h * w)
    return pos * found[..., None], found


def mask_centroid(mask: torch.Tensor, threshold: float = 0.5, min_area: float = 1.0,
                  max_area: float | None = None) -> torch.Tensor:
    """:func:`locate_agent` (the same rule) for metrics: NaN where no agent is found.

    Args:
        mask: (..., H, W) in [0, 1] (a singleton channel (..., 1, H, W) is kept as a dim).
        threshold, min_area: as ``threshold`` / ``min_area_px`` of :func:`locate_agent`.
        max_area: the flood limit in pixels; None = ``MAX_MASK_FRAC`` of the frame.
    Returns:
        (..., 2) float positions (x, y); NaN where missing. For (B, T, 1, H, W) input the output is (B, T, 1, 2).
    """
    h, w = mask.shape[-2:]
    frac = MAX_MASK_FRAC if max_area is None else min(1.0, max(float(max_area), 0.0) / (h * w))
    pos, found = locate_agent(mask.unsqueeze(-3), threshold, min_area, max(frac, 1e-12))
    return torch.where(found[..., None], pos, torch.full_like(pos, float("nan")))


def _weighted_centroid(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroid of non-negative pixel weights (..., H, W): positions (..., 2) (x, y) in pixel-index coordinates
    (0 where the weight is 0) and total weights (...)."""
    h, w = weight.shape[-2:]
    area = weight.sum(dim=(-2, -1))  # (...)
    xs = torch.arange(w, dtype=weight.dtype, device=weight.device)
    ys = torch.arange(h, dtype=weight.dtype, device=weight.device)
    safe = area.clamp_min(1e-6)
    cx = (weight.sum(-2) * xs).sum(-1) / safe  # column profile (..., W) -> (...)
    cy = (weight.sum(-1) * ys).sum(-1) / safe  # row profile (..., H) -> (...)
    return torch.stack([cx, cy], dim=-1), area


def position_distances(pred: ArrayLike, gt: ArrayLike, height: int, width: int,
                       scale_px: float = POSITION_SCALE_PX) -> np.ndarray:
    """Distances between predicted and GT agent positions, rescaled to a ``scale_px`` frame.

    The distance in pixels is multiplied by ``scale_px / max(height, width)``, so a number means the same on a
    96x128 W-Sprites frame and on a 96x256 Tennis frame (a 64-px frame scale by default).

    Args:
        pred, gt: (..., 2) positions (x, y) in pixels; NaN = no agent / unknown.
        height, width: frame size in pixels.
    Returns:
        (...) distances; NaN where either position is missing.
    """
    p, g = _np(pred), _np(gt)
    if p.shape != g.shape or p.shape[-1:] != (2,):
        raise ValueError(f"position_distances: pred {p.shape} and gt {g.shape} must both be (..., 2)")
    return np.linalg.norm(p - g, axis=-1) * (scale_px / max(height, width))


JUMP_FACTOR = 3.0  # a move longer than this x the 95th percentile of moves is a jump (a teleport)


def jump_threshold(pos: ArrayLike, factor: float = JUMP_FACTOR, min_move: float = 0.1) -> float:
    """The shortest move that counts as a jump: ``factor`` x the 95th percentile of the agent's moves.

    Atari players teleport when a point starts or the sides change ends; sprites respawn. Such moves are not
    caused by the agent's actions, so no action-conditioned model can predict them.

    Args:
        pos: (..., T, 2) positions along the last-but-one axis (NaN = unknown); moves of at most ``min_move``
            (standing still) are not counted.
    Returns:
        the threshold in the positions' units; ``inf`` when there is no move at all.
    """
    p = _np(pos).astype(np.float64)
    steps = np.linalg.norm(np.diff(p, axis=-2), axis=-1).ravel()
    steps = steps[np.isfinite(steps) & (steps > min_move)]
    return factor * float(np.quantile(steps, 0.95)) if steps.size else float("inf")


def spans_jump(pos: ArrayLike, threshold: float) -> np.ndarray:
    """Which windows (N, T, 2) of positions contain a move longer than ``threshold``: (N,) bool."""
    p = _np(pos).astype(np.float64)
    steps = np.linalg.norm(np.diff(p, axis=-2), axis=-1)  # (N, T-1), NaN where unknown
    return (np.nan_to_num(steps, nan=0.0) > threshold).any(axis=-1)


def errors_at_horizons(dist: ArrayLike, horizons: Iterable[int]) -> dict[str, float | None]:
    """Mean position error at each horizon (frame index h of a generated clip whose frame 0 is real).

    Args:
        dist: (N, T) distances from :func:`position_distances` (NaN = missing).
        horizons: frame indices h >= 1.
    Returns:
        {str(h): mean over clips of dist[:, h] ignoring NaN}; None when h >= T or nothing is finite at h.
    """
    d = _np(dist)
    if d.ndim != 2:
        raise ValueError(f"errors_at_horizons: dist must be (N, T), got {d.shape}")
    out: dict[str, float | None] = {}
    for h in horizons:
        v = nanmean(d[:, h]) if 0 <= h < d.shape[1] else float("nan")
        out[str(h)] = v if math.isfinite(v) else None
    return out


def miss_rate(pred: ArrayLike, gt: ArrayLike) -> float:
    """MDR: the share of frames with a known GT position where no agent was found in the generated frame.

    Args:
        pred, gt: (..., 2) positions; NaN in ``pred`` = no agent found, NaN in ``gt`` = frame not counted.
    Returns:
        miss fraction in [0, 1]; NaN when no GT position is known.
    """
    p, g = _np(pred), _np(gt)
    if p.shape != g.shape or p.shape[-1:] != (2,):
        raise ValueError(f"miss_rate: pred {p.shape} and gt {g.shape} must both be (..., 2)")
    known = np.isfinite(g).all(-1)
    if not known.any():
        return float("nan")
    found = np.isfinite(p).all(-1)
    return float((~found[known]).mean())


# ----------------------------------------------------------------------------------------------------------------
# Frechet distance (FID / FVD)
# ----------------------------------------------------------------------------------------------------------------

def gaussian_stats(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, N >= 2."""
    f = _np(features)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"gaussian_stats: need (N >= 2, D) features, got {f.shape}")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike,
                     eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``, with ``scipy.linalg.sqrtm``; when
    the product is singular (few samples) ``eps * I`` is added to both covariances, and a negligible imaginary
    part from rounding is dropped.

    Args:
        mu1, mu2: (D,) means; sigma1, sigma2: (D, D) covariances.
    Returns:
        the distance (>= 0 up to rounding).
    """
    from scipy import linalg

    m1, m2 = _np(mu1).ravel(), _np(mu2).ravel()
    s1, s2 = np.atleast_2d(_np(sigma1)), np.atleast_2d(_np(sigma2))
    if m1.shape != m2.shape or s1.shape != s2.shape or s1.shape != (m1.size, m1.size):
        raise ValueError(f"frechet_distance: shapes mu {m1.shape}/{m2.shape}, sigma {s1.shape}/{s2.shape}")
    diff = m1 - m2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        off = np.eye(m1.size) * eps
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet_distance: sqrtm has an imaginary part {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def frechet_distance_from_features(f1: ArrayLike, f2: ArrayLike) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N1, D) and (N2, D) (unbiased covariances).

    Same value as ``frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))``. When there are fewer samples
    than dimensions (typical: a few hundred frames of 2048-d Inception features) the D x D matrix square root is
    avoided: with centred features X, Y and ``A = X Y^T / sqrt((N1 - 1)(N2 - 1))`` (N1 x N2), the non-zero
    eigenvalues of ``sigma1 sigma2`` are those of ``A A^T``, so ``Tr((sigma1 sigma2)^(1/2))`` is the sum of
    the singular values of A (exact, and seconds instead of minutes for D = 2048).
    """
    a, b = _np(f1), _np(f2)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(a.shape[0], b.shape[0]) < 2:
        raise ValueError(f"frechet_distance_from_features: need (N >= 2, D) features of one D, got {a.shape}, "
                         f"{b.shape}")
    (n1, d), n2 = a.shape, b.shape[0]
    if min(n1, n2) >= d:
        return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    mu1, mu2 = a.mean(0), b.mean(0)
    x, y = a - mu1, b - mu2
    tr1 = float((x * x).sum()) / (n1 - 1)
    tr2 = float((y * y).sum()) / (n2 - 1)
    cross = (x @ y.T) / math.sqrt((n1 - 1) * (n2 - 1))  # (N1, N2)
    tr_covmean = float(np.linalg.svd(cross, compute_uv=False).sum())
    diff = mu1 - mu2
    return float(diff @ diff + tr1 + tr2 - 2.0 * tr_covmean)
