"""GLASS building blocks (method.md section 1) and the shift warp (section 0).

Conventions: BatchNorm with PyTorch defaults, LeakyReLU(0.2), 3x3 convolutions with padding 1. Recurrent
state is always passed in and returned explicitly (never kept on a module).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
_IDENTITY_SCALE = 1.0 + 1e-9  # the official warp is a scale-and-translate STN with scale ~1

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (B, C, h, w)


# ---------------------------------------------------------------------------------------------------- shift warp
def pixels_to_normalized(shift_px: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Convert shifts (..., 2) = (dx, dy) in pixels to normalized grid units (tx, ty) = (2 dx / W, 2 dy / H)."""
    scale = shift_px.new_tensor([2.0 / width, 2.0 / height])
    return shift_px * scale


def normalized_to_pixels(shift: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Convert shifts (..., 2) in normalized units (tx, ty) to pixels (dx, dy) = (tx W / 2, ty H / 2)."""
    scale = shift.new_tensor([width / 2.0, height / 2.0])
    return shift * scale


def shift_images(images: torch.Tensor, shift: torch.Tensor, mode: str = "bilinear",
                 padding_mode: str = "zeros") -> torch.Tensor:
    """Translate image content by ``shift`` (method.md 0): output[p] = input[p - delta].

    Args:
        images: (N, C, H, W).
        shift: (N, 2) = (tx, ty) in normalized units: +tx moves content right by tx W / 2 pixels, +ty moves it
            down by ty H / 2 pixels.
        mode: grid_sample interpolation ("bilinear" or "nearest").
        padding_mode: "zeros" (foregrounds, masks) or "border" (backgrounds).
    Returns:
        (N, C, H, W) shifted images.
    """
    assert images.dim() == 4 and shift.shape == (images.shape[0], 2), \
        f"shift_images wants (N, C, H, W) and (N, 2), got {tuple(images.shape)} and {tuple(shift.shape)}"
    # the sampling grid of F.affine_grid(theta = [[1/s, 0, -tx/s], [0, 1/s, -ty/s]], align_corners=False), built
    # directly: pixel centres (2 i + 1) / n - 1, minus the shift, over s (affine_grid's batched matmul cost more
    # than the sampling itself)
    h, w = images.shape[-2:]
    kw = {"device": images.device, "dtype": images.dtype}
    xs = (torch.arange(w, **kw) * 2 + 1) / w - 1
    ys = (torch.arange(h, **kw) * 2 + 1) / h - 1
    base = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), dim=-1)  # (H, W, 2) = (x, y)
    grid = (base[None] - shift.to(images.dtype)[:, None, None, :]) / _IDENTITY_SCALE  # (N, H, W, 2)
    return F.grid_sample(images, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def _pixel_grid(n_out: tuple[int, int], offset: torch.Tensor, n_in: tuple[int, int]) -> torch.Tensor:
    """grid_sample grid (N, h_out, w_out, 2) that reads input pixel (x + offset_x, y + offset_y) at output pixel
    (x, y): offset (N, 2) whole pixels (x, y), input size n_in = (h_in, w_in). Pixel centres are sampled exactly,
    so nearest sampling copies values."""
    (ho, wo), (hi, wi) = n_out, n_in
    kw = {"device": offset.device, "dtype": offset.dtype}
    xs = torch.arange(wo, **kw)[None, None, :] + offset[:, None, None, 0]  # (N, 1, wo)
    ys = torch.arange(ho, **kw)[None, :, None] + offset[:, None, None, 1]  # (N, ho, 1)
    xs, ys = torch.broadcast_tensors((xs * 2 + 1) / wi - 1, (ys * 2 + 1) / hi - 1)
    return torch.stack([xs, ys], dim=-1)


def squared_distances(u: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between vectors u (N, D) and codes (K, D) -> (N, K)."""
    return u.square().sum(1, keepdim=True) - 2 * u @ codebook.t() + codebook.square().sum(1)[None]


def crop_windows(images: torch.Tensor, top_left: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Windows of ``size`` = (h, w) px cut from images (N, C, H, W) at ``top_left`` (N, 2) whole pixels (x, y)
    -> (N, C, h, w); pixels outside the image are 0 (a window may reach past the frame edge)."""
    grid = _pixel_grid(size, top_left.to(images.dtype), tuple(images.shape[-2:]))
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def paste_windows(crops: torch.Tensor, top_left: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`crop_windows`: crops (N, C, h, w) placed at ``top_left`` (N, 2) whole pixels (x, y) in a
    frame of ``size`` = (H, W) of zeros -> (N, C, H, W)."""
    grid = _pixel_grid(size, -top_left.to(crops.dtype), tuple(crops.shape[-2:]))
    return F.grid_sample(crops, grid, mode="nearest", padding_mode="zeros", align_corners=False)


# ---------------------------------------------------------------------------------------------------- conv blocks
def _pool(x: torch.Tensor, ds: int) -> torch.Tensor:
    return F.avg_pool2d(x, ds) if ds != 1 else x


class SameBlock(nn.Module):
    """conv3x3 (no bias) -> avg_pool(ds) -> BN -> LReLU. (N, i, H, W) -> (N, o, H/ds, W/ds).

    ``pool_first=True`` pools before the convolution (ds^2 times cheaper; not the official order).
    """

    def __init__(self, in_ch: int, out_ch: int, ds: int = 1, pool_first: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.ds = ds
        self.pool_first = pool_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(_pool(x, self.ds)) if self.pool_first else _pool(self.conv(x), self.ds)
        return F.leaky_relu(self.bn(y), LRELU_SLOPE)


class ResidualBlock(nn.Module):
    """Two 3x3 convs with BN and a (projected) shortcut. (N, i, H, W) -> (N, o, H/ds, W/ds).

    Main path: conv -> pool -> BN -> LReLU -> conv -> BN; shortcut: identity, or conv1x1 -> pool -> BN.
    ``pool_first=True`` pools the input once before both convolutions (cheaper; not the official order).
    """

    def __init__(self, in_ch: int, out_ch: int, ds: int = 1, pool_first: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.ds = ds
        self.pool_first = pool_first
        if in_ch != out_ch or ds != 1:
            self.skip_conv: nn.Module | None = nn.Conv2d(in_ch, out_ch, 1, bias=False)
            self.skip_bn: nn.Module | None = nn.BatchNorm2d(out_ch)
        else:
            self.skip_conv = self.skip_bn = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_first:
            x = _pool(x, self.ds)
            y, skip = self.conv1(x), (x if self.skip_conv is None else self.skip_bn(self.skip_conv(x)))
        else:
            y = _pool(self.conv1(x), self.ds)
            skip = x if self.skip_conv is None else self.skip_bn(_pool(self.skip_conv(x), self.ds))
        y = self.bn2(self.conv2(F.leaky_relu(self.bn1(y), LRELU_SLOPE)))
        return F.leaky_relu(y + skip, LRELU_SLOPE)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling with align_corners=True (as in the official UpBlock)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class UpBlock(nn.Module):
    """x2 upsampling + conv3x3 (no bias) + BN + LReLU. (N, i, H, W) -> (N, o, 2H, 2W).

    ``late=False`` ("early", the default) upsamples first; ``late=True`` convolves first, then upsamples.
    """

    def __init__(self, in_ch: int, out_ch: int, late: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.late = late

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.late:
            return upsample2(F.leaky_relu(self.bn(self.conv(x)), LRELU_SLOPE))
        return F.leaky_relu(self.bn(self.conv(upsample2(x))), LRELU_SLOPE)


class FinalBlock(nn.Module):
    """conv k x k (bias, same padding) -> tanh. (N, i, H, W) -> (N, o, H, W) in [-1, 1]."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


# ---------------------------------------------------------------------------------------------------- recurrent
def _broadcast_cat(inputs: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Channel-concat maps (N, C, h, w) and vectors (N, C) (broadcast spatially to ``size``)."""
    maps = [x if x.dim() == 4 else x[:, :, None, None].expand(-1, -1, *size) for x in inputs]
    return torch.cat(maps, dim=1)


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell. Gates from one 3x3 conv on concat(inputs, h) (same parameters as four convs)."""

    def __init__(self, in_ch: int, hidden_ch: int):
        super().__init__()
        self.hidden_ch = hidden_ch
        self.gates = nn.Conv2d(in_ch + hidden_ch, 4 * hidden_ch, 3, padding=1)

    def forward(self, x: torch.Tensor, state: LSTMState) -> LSTMState:
        """x (N, in_ch, h, w), state (h, c) each (N, hidden, h, w) -> new (h, c)."""
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)  # 4 x (N, hidden, h, w)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTM(nn.Module):
    """ConvLSTM with learnable initial state h0, c0 (zeros at init) of shape (hidden, h, w).

    The recurrent state is explicit: get the start with :meth:`initial_state`, pass it to :meth:`forward`,
    and keep what it returns. Nothing is stored on the module between calls.
    """

    def __init__(self, in_ch: int, hidden_ch: int, size: tuple[int, int]):
        super().__init__()
        self.size = tuple(size)
        self.cell = ConvLSTMCell(in_ch, hidden_ch)
        self.h0 = nn.Parameter(torch.zeros(hidden_ch, *size))
        self.c0 = nn.Parameter(torch.zeros(hidden_ch, *size))

    def initial_state(self, batch: int) -> LSTMState:
        """(h0, c0) repeated over the batch: each (batch, hidden, h, w)."""
        return (self.h0.unsqueeze(0).expand(batch, -1, -1, -1),
                self.c0.unsqueeze(0).expand(batch, -1, -1, -1))

    def forward(self, inputs: list[torch.Tensor], state: LSTMState) -> LSTMState:
        """inputs: maps (N, C, h, w) and/or vectors (N, C); returns the new (h, c) (pre-normalisation)."""
        return self.cell(_broadcast_cat(inputs, self.size), state)


# ---------------------------------------------------------------------------------------------------- modulation
class ModulatedConv2d(nn.Module):
    """StyleGAN2-style modulated 3x3 convolution with demodulation, no bias (method.md 1).

    Implemented by scaling the input channels by the style and the output channels by the demodulation
    coefficients, which equals the grouped convolution with per-sample kernels W_b[o, i] = W[o, i] s_b[i]
    divided by sqrt(sum_{i,k} W_b[o]^2 + 1e-8), but runs as one ordinary convolution.
    """

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, eps: float = 1e-8):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.style = nn.Linear(style_dim, in_ch)
        self.eps = eps

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x (N, in, H, W), w (N, style_dim) -> (N, out, H, W)."""
        s = self.style(w)  # (N, in)
        s = s * torch.rsqrt(s.square().mean() + self.eps)  # one RMS over the batch and channels
        weight = self.weight * torch.rsqrt(self.weight.square().mean(dim=(1, 2, 3), keepdim=True))
        # demodulation coefficients: sum_{i,k} (W[o,i,k] s[i])^2 = sum_i s[i]^2 sum_k W[o,i,k]^2
        wsq = weight.square().sum(dim=(2, 3))  # (out, in)
        demod = torch.rsqrt(s.square() @ wsq.t() + self.eps)  # (N, out)
        y = F.conv2d(x * s[:, :, None, None], weight, padding=1)
        return y * demod[:, :, None, None]


class ModulatedConvBlock(nn.Module):
    """ModulatedConv2d -> avg_pool(ds) -> BN -> LReLU. (N, i, H, W), style (N, s) -> (N, o, H/ds, W/ds)."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, ds: int = 1):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, style_dim)
        self.bn = nn.BatchNorm2d(out_ch)
        self.ds = ds

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.bn(_pool(self.conv(x, style), self.ds)), LRELU_SLOPE)
