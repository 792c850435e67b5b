"""Keypoint maths of Struct-VRNN (method.md 9.2-9.4), without learnable parameters.

Conventions (as the ``video_structure`` code, method.md pitfall 16): keypoints are (x, y, mu) with x, y in
normalised heatmap units: x = linspace(-1, 1) left -> right over the heatmap's pixel centres and
y = linspace(+1, -1) top -> bottom, i.e. **y points up**. The pixel helpers convert to glassworld's frame
coordinates: pixel-index coordinates (pixel centres at integers), +x right, **+y down**.
"""

from __future__ import annotations

import torch

EPS = 1e-6


def grid_x(n: int, device: torch.device | None = None) -> torch.Tensor:
    """(n,) x coordinates of the heatmap columns, -1 (left) -> +1 (right)."""
    return torch.linspace(-1.0, 1.0, n, device=device)


def grid_y(n: int, device: torch.device | None = None) -> torch.Tensor:
    """(n,) y coordinates of the heatmap rows, +1 (top) -> -1 (bottom): y points up."""
    return torch.linspace(1.0, -1.0, n, device=device)


def add_coord_channels(x: torch.Tensor) -> torch.Tensor:
    """Append the x- and y-grid as 2 channels: (N, C, H, W) -> (N, C + 2, H, W)."""
    n, _, h, w = x.shape
    gx = grid_x(w, x.device).to(x.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
    gy = grid_y(h, x.device).to(x.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
    return torch.cat([x, gx, gy], dim=1)


def heatmaps_to_keypoints(heatmaps: torch.Tensor) -> torch.Tensor:
    """Spatial expectation of non-negative heatmaps (method.md 9.2 "maps -> keypoints").

    Args:
        heatmaps: (N, K, h, w) >= 0 (softplus outputs).
    Returns:
        (N, K, 3) keypoints (x, y, mu): x, y the marginal expectations on the [-1, 1] grids (y up); mu the mean
        heatmap value, max-normalised over the K keypoints of each image so that mu lies in [0, 1] (code).
    """
    h, w = heatmaps.shape[-2:]
    r = heatmaps + EPS
    wx = r.sum(dim=2)  # (N, K, w): sum over rows
    wy = r.sum(dim=3)  # (N, K, h): sum over columns
    wx = wx / wx.sum(dim=2, keepdim=True)
    wy = wy / wy.sum(dim=2, keepdim=True)
    x = (wx * grid_x(w, heatmaps.device).to(r.dtype)).sum(dim=2)  # (N, K)
    y = (wy * grid_y(h, heatmaps.device).to(r.dtype)).sum(dim=2)
    mu = heatmaps.mean(dim=(2, 3))  # (N, K)
    mu = mu / (EPS + mu.max(dim=1, keepdim=True).values)
    return torch.stack([x, y, mu], dim=-1)


def keypoints_to_maps(keypoints: torch.Tensor, height: int, width: int, sigma: float) -> torch.Tensor:
    """Render keypoints as Gaussian maps (method.md 9.3).

    Map_k(u, v) = mu_k exp(-(gx(u) - x_k)^2 / w_x) exp(-(gy(v) - y_k)^2 / w_y) with w_x = 2 (sigma / width)^2 and
    w_y = 2 (sigma / height)^2 (the code's w = 2 (sigma / 16)^2 at 16 x 16).

    Args:
        keypoints: (N, K, 3) (x, y, mu); height, width: map size; sigma: std in heatmap pixels.
    Returns:
        (N, K, height, width).
    """
    x, y, mu = keypoints.unbind(-1)  # (N, K) each
    gx = grid_x(width, keypoints.device).to(keypoints.dtype)
    gy = grid_y(height, keypoints.device).to(keypoints.dtype)
    ex = torch.exp(-(gx.view(1, 1, -1) - x.unsqueeze(-1)).square() / (2 * (sigma / width) ** 2))  # (N, K, w)
    ey = torch.exp(-(gy.view(1, 1, -1) - y.unsqueeze(-1)).square() / (2 * (sigma / height) ** 2))  # (N, K, h)
    return mu[..., None, None] * ey.unsqueeze(-1) * ex.unsqueeze(-2)  # (N, K, h, w)


def separation_loss(keypoints: torch.Tensor, sigma: float) -> torch.Tensor:
    """Temporal separation loss (code form, method.md 9.4), a value in [0, 1].

    Trajectories are centred over time; d_kk' = mean_t |p_k - p_k'|^2; loss = mean over the batch of
    exp(-d / (2 sigma^2)), summed over the K x K pairs minus the diagonal, divided by K (K - 1).

    Args:
        keypoints: (B, T, K, 3) (only x, y are used).
    """
    k = keypoints.shape[2]
    if k < 2:
        return keypoints.new_zeros(())
    xy = keypoints[..., :2]
    xy = xy - xy.mean(dim=1, keepdim=True)  # (B, T, K, 2) centred over time
    d = (xy.unsqueeze(3) - xy.unsqueeze(2)).square().sum(-1).mean(dim=1)  # (B, K, K)
    loss = torch.exp(-d / (2 * sigma**2)).mean(dim=0)  # (K, K)
    return (loss.sum() - k) / (k * (k - 1))


def weighted_median(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted median over the last dim: values, weights (..., N) -> (...).

    The smallest value whose cumulative weight reaches half the total; all-zero weights give the plain median.
    """
    weights = weights.clamp_min(0)
    total = weights.sum(-1, keepdim=True)
    weights = torch.where(total > 0, weights, torch.ones_like(weights))
    v, order = values.sort(dim=-1)
    cw = weights.gather(-1, order).cumsum(-1)  # (..., N)
    idx = (cw < 0.5 * cw[..., -1:]).sum(-1, keepdim=True).clamp(max=values.shape[-1] - 1)
    return v.gather(-1, idx).squeeze(-1)


# ---------------------------------------------------------------------------------------------- pixel units
def to_pixels(keypoints: torch.Tensor, height: int, width: int, heatmap_h: int, heatmap_w: int) -> torch.Tensor:
    """(..., 3) normalised (x, y up, mu) -> (..., 3) (x, y down, mu) in frame pixel-index coordinates.

    Heatmap column 0 (x = -1) is the centre of the frame's first ``width / heatmap_w`` columns.
    """
    sx, sy = width / heatmap_w, height / heatmap_h
    x = ((keypoints[..., 0] + 1) / 2 * (heatmap_w - 1) + 0.5) * sx - 0.5
    y = ((1 - keypoints[..., 1]) / 2 * (heatmap_h - 1) + 0.5) * sy - 0.5
    return torch.stack([x, y, keypoints[..., 2]], dim=-1)


def from_pixels(keypoints: torch.Tensor, height: int, width: int, heatmap_h: int, heatmap_w: int) -> torch.Tensor:
    """Inverse of :func:`to_pixels`."""
    sx, sy = width / heatmap_w, height / heatmap_h
    x = ((keypoints[..., 0] + 0.5) / sx - 0.5) / (heatmap_w - 1) * 2 - 1
    y = 1 - ((keypoints[..., 1] + 0.5) / sy - 0.5) / (heatmap_h - 1) * 2
    return torch.stack([x, y, keypoints[..., 2]], dim=-1)


def delta_to_pixels(delta: torch.Tensor, height: int, width: int, heatmap_h: int, heatmap_w: int) -> torch.Tensor:
    """Displacements (..., 2) in normalised units (y up) -> (dx, dy) frame pixels (+y down)."""
    fx = (heatmap_w - 1) / 2 * width / heatmap_w
    fy = (heatmap_h - 1) / 2 * height / heatmap_h
    return torch.stack([delta[..., 0] * fx, -delta[..., 1] * fy], dim=-1)


def delta_from_pixels(delta: torch.Tensor, height: int, width: int, heatmap_h: int, heatmap_w: int) -> torch.Tensor:
    """Inverse of :func:`delta_to_pixels`."""
    fx = (heatmap_w - 1) / 2 * width / heatmap_w
    fy = (heatmap_h - 1) / 2 * height / heatmap_h
    return torch.stack([delta[..., 0] / fx, -delta[..., 1] / fy], dim=-1)
