"""GLASS building blocks: the shift warp, the vector quantiser, modulated convolution, ConvLSTM state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from worldmodel.glass.blocks import (
    ConvLSTM,
    ModulatedConv2d,
    ResidualBlock,
    SameBlock,
    UpBlock,
    crop_windows,
    normalized_to_pixels,
    paste_windows,
    pixels_to_normalized,
    shift_images,
)
from worldmodel.glass.config import GlassConfig
from worldmodel.glass.networks import Dynamics, VectorQuantizer


def _square(h: int = 16, w: int = 24, top: int = 5, left: int = 8, size: int = 4) -> torch.Tensor:
    img = torch.zeros(1, 1, h, w)
    img[..., top:top + size, left:left + size] = 1.0
    return img


# ------------------------------------------------------------------------------------------------ shift warp
@pytest.mark.parametrize("dx,dy", [(3, 0), (-3, 0), (0, 2), (0, -2), (2, -1), (-4, 3)])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_shift_moves_content_by_exact_pixels(dx: int, dy: int, mode: str) -> None:
    h, w = 16, 24
    img = _square(h, w)
    shift = pixels_to_normalized(torch.tensor([[float(dx), float(dy)]]), h, w)
    out = shift_images(img, shift, mode=mode, padding_mode="zeros")
    expected = _square(h, w, top=5 + dy, left=8 + dx)  # +dx moves content right, +dy moves it down
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_pixel_normalized_conversion() -> None:
    h, w = 96, 256
    px = torch.tensor([[4.0, -6.0], [-128.0, 48.0]])
    norm = pixels_to_normalized(px, h, w)
    torch.testing.assert_close(norm, torch.tensor([[4 * 2 / 256, -6 * 2 / 96], [-1.0, 1.0]]))
    torch.testing.assert_close(normalized_to_pixels(norm, h, w), px)
    # the official probe [0.07, 0] is ~4.5 px right on 128-wide W-Sprites frames (method.md 4.2)
    assert abs(float(normalized_to_pixels(torch.tensor([0.07, 0.0]), 96, 128)[0]) - 4.48) < 1e-6


def test_border_padding_repeats_edge_and_zero_padding_blanks() -> None:
    img = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 4, 8).contiguous()
    shift = pixels_to_normalized(torch.tensor([[2.0, 0.0]]), 4, 8)
    border = shift_images(img, shift, mode="nearest", padding_mode="border")
    zeros = shift_images(img, shift, mode="bilinear", padding_mode="zeros")
    torch.testing.assert_close(border[0, 0, 0], torch.tensor([0.0, 0, 0, 1, 2, 3, 4, 5]), atol=1e-4, rtol=0)
    torch.testing.assert_close(zeros[0, 0, 0], torch.tensor([0.0, 0, 0, 1, 2, 3, 4, 5]), atol=1e-4, rtol=0)
    img2 = img + 1  # so that zero padding differs from the border value
    zeros2 = shift_images(img2, shift, padding_mode="zeros")
    assert float(zeros2[0, 0, 0, :2].abs().max()) < 1e-4 and float(zeros2[0, 0, 0, 2]) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------ VQ
def test_vq_picks_nearest_code_and_straight_through() -> None:
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes=5, dim=3, beta=0.25)
    with torch.no_grad():
        vq.codebook.copy_(torch.randn(5, 3))
    u = torch.randn(7, 3, requires_grad=True)
    q, ids, _ = vq(u)
    brute = torch.cdist(u.detach(), vq.codebook.detach()).argmin(dim=1)
    assert torch.equal(ids, brute)
    torch.testing.assert_close(q, vq.codebook[ids].detach())  # forward value = the chosen code
    # straight-through: d q / d u = identity, and the codebook gets nothing through q
    (q * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(u.grad, torch.arange(3.0).expand(7, 3))
    assert vq.codebook.grad is None or float(vq.codebook.grad.abs().max()) == 0.0


def test_vq_loss_gradients_split_between_encoder_and_codebook() -> None:
    torch.manual_seed(1)
    vq = VectorQuantizer(num_codes=4, dim=2, beta=0.25)
    u = torch.randn(6, 2, requires_grad=True)
    _, ids, loss = vq(u)
    loss.backward()
    c = vq.codebook.detach()[ids]
    n = u.numel()
    # commitment term mean((sg[c] - u)^2) trains u with weight 1; codebook term beta mean((c - sg[u])^2)
    torch.testing.assert_close(u.grad, 2 * (u.detach() - c) / n)
    expected = torch.zeros_like(vq.codebook)
    expected.index_add_(0, ids, 0.25 * 2 * (c - u.detach()) / n)
    torch.testing.assert_close(vq.codebook.grad, expected)


# ------------------------------------------------------------------------------------------------ modulated conv
def _reference_modconv(mc: ModulatedConv2d, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Literal method.md 1 math: per-sample modulated + demodulated kernels, grouped conv."""
    s = mc.style(w)
    s = s / torch.sqrt(s.square().mean())
    weight = mc.weight / torch.sqrt(mc.weight.square().mean(dim=(1, 2, 3), keepdim=True))
    wb = weight[None] * s[:, None, :, None, None]  # (B, O, I, 3, 3)
    wb = wb / torch.sqrt(wb.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    b, i, h, ww = x.shape
    y = F.conv2d(x.reshape(1, b * i, h, ww), wb.reshape(-1, i, 3, 3), padding=1, groups=b)
    return y.reshape(b, -1, h, ww)


def test_modulated_conv_matches_grouped_reference() -> None:
    torch.manual_seed(0)
    mc = ModulatedConv2d(5, 7, style_dim=3)
    x, w = torch.randn(4, 5, 6, 8), torch.randn(4, 3)
    torch.testing.assert_close(mc(x, w), _reference_modconv(mc, x, w), atol=1e-5, rtol=1e-4)


def test_modulated_conv_demodulation_is_invariant_to_style_scale() -> None:
    torch.manual_seed(0)
    mc = ModulatedConv2d(6, 4, style_dim=3)
    with torch.no_grad():
        mc.style.bias.zero_()  # s is then linear in w: scaling w scales s per sample
    x, w = torch.randn(3, 6, 5, 5), torch.randn(3, 3)
    y = mc(x, w)
    scales = torch.tensor([[0.1], [3.0], [17.0]])
    torch.testing.assert_close(mc(x, w * scales), y, atol=1e-5, rtol=1e-4)
    # ... but not to the style's direction (the style really modulates)
    assert float((mc(x, w.flip(0)) - y).detach().abs().max()) > 1e-2
    # and the output does not scale with the weights either
    with torch.no_grad():
        mc.weight.mul_(5.0)
    torch.testing.assert_close(mc(x, w), y, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------------------------ ConvLSTM
def test_convlstm_starts_at_learned_state_and_keeps_no_state() -> None:
    torch.manual_seed(0)
    lstm = ConvLSTM(3, 4, (5, 6))
    h, c = lstm.initial_state(2)
    assert h.shape == (2, 4, 5, 6) and float(h.detach().abs().max()) == 0 and float(c.detach().abs().max()) == 0
    with torch.no_grad():
        lstm.h0.copy_(torch.randn(4, 5, 6))
        lstm.c0.copy_(torch.randn(4, 5, 6))
    h, c = lstm.initial_state(3)
    assert torch.equal(h[2], lstm.h0) and torch.equal(c[1], lstm.c0)
    before = set(vars(lstm))
    x, v = torch.randn(3, 2, 5, 6), torch.randn(3, 1)  # a map and a broadcast vector
    h1, c1 = lstm([x, v], (h, c))
    assert set(vars(lstm)) == before  # nothing stored on the module
    h1b, c1b = lstm([x, v], lstm.initial_state(3))  # same explicit input -> same output
    assert torch.equal(h1, h1b) and torch.equal(c1, c1b)
    # gradients reach the learned initial state
    h1.sum().backward()
    assert lstm.h0.grad is not None and float(lstm.h0.grad.abs().sum()) > 0


def test_dynamics_state_is_explicit() -> None:
    torch.manual_seed(0)
    cfg = GlassConfig.preset("tiny", 32, 48)
    dyn = Dynamics(cfg)
    rh, rw = cfg.state_resolution
    state = dyn.initial_state(2)
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "h0": (2, 8, rh, rw), "c0": (2, 8, rh, rw), "h1": (2, 16, rh // 2, rw // 2),
        "c1": (2, 16, rh // 2, rw // 2), "h2": (2, 8, rh, rw), "c2": (2, 8, rh, rw)}
    dyn.eval()
    e, code, shift = torch.randn(2, cfg.state_channels, rh, rw), torch.randn(2, cfg.action_dim), torch.randn(2, 2)
    out1, s1 = dyn(e, code, shift, state)
    out2, _ = dyn(e, code, shift, s1)
    out1b, _ = dyn(e, code, shift, dyn.initial_state(2))  # restarting from the initial state repeats step 1
    assert out1.shape == (2, cfg.dynamics_hidden, rh, rw)
    assert torch.equal(out1, out1b) and not torch.allclose(out1, out2)


# ------------------------------------------------------------------------------------------------ conv blocks
@pytest.mark.parametrize("pool_first", [False, True])
def test_block_shapes(pool_first: bool) -> None:
    x = torch.randn(2, 3, 16, 24)
    assert SameBlock(3, 5, ds=2, pool_first=pool_first)(x).shape == (2, 5, 8, 12)
    assert ResidualBlock(3, 6, ds=2, pool_first=pool_first)(x).shape == (2, 6, 8, 12)
    assert ResidualBlock(3, 3)(x).shape == (2, 3, 16, 24)
    assert UpBlock(3, 4)(x).shape == (2, 4, 32, 48)
    assert UpBlock(3, 4, late=True)(x).shape == (2, 4, 32, 48)


def test_residual_block_parameter_layout() -> None:
    # shortcut projection only when the shape changes (method.md 1); these counts add up to the official table
    assert sum(p.numel() for p in ResidualBlock(256, 256).parameters()) == 1180672
    assert sum(p.numel() for p in ResidualBlock(256, 256, ds=2).parameters()) == 1180672 + 65536 + 512


def test_crop_and_paste_windows_copy_pixels_exactly() -> None:
    """crop_windows cuts (h, w) windows at whole-pixel corners, zero past the frame edge; paste_windows puts them
    back where they came from (zeros elsewhere)."""
    img = torch.arange(2 * 3 * 8 * 10, dtype=torch.float32).reshape(2, 3, 8, 10)
    corner = torch.tensor([[2.0, 1.0], [-3.0, 5.0]])  # (x, y): inside; past the left and bottom edges
    crops = crop_windows(img, corner, (4, 4))
    assert torch.equal(crops[0], img[0, :, 1:5, 2:6])
    assert torch.equal(crops[1, :, :3, 3:], img[1, :, 5:8, 0:1])  # the part inside the frame
    assert float(crops[1, :, :, :3].abs().sum()) == 0 and float(crops[1, :, 3:].abs().sum()) == 0
    back = paste_windows(crops, corner, (8, 10))
    assert torch.equal(back[0, :, 1:5, 2:6], img[0, :, 1:5, 2:6])
    assert float(back[0].abs().sum()) == float(img[0, :, 1:5, 2:6].abs().sum())
    assert torch.equal(back[1, :, 5:8, 0:1], img[1, :, 5:8, 0:1])
