"""The GLASS networks (method.md section 2): M, N, P_f / P_b, E, C, A (+ vector quantiser), dynamics, renderer.

All per-frame networks take folded batches (N = B*T) and know nothing about time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    LRELU_SLOPE,
    ConvLSTM,
    FinalBlock,
    ModulatedConvBlock,
    ResidualBlock,
    SameBlock,
    UpBlock,
    squared_distances,
)
from .config import GlassConfig

DynState = dict[str, torch.Tensor]  # "h0", "c0", "h1", "c1", "h2", "c2": ConvLSTM states, batch first


class MaskingNetwork(nn.Module):
    """M: frame (N, 3, H, W) in [-1, 1] -> soft agent mask (N, 1, H, W) in [0, 1]."""

    def __init__(self, cfg: GlassConfig):
        super().__init__()
        c, cm, pf = cfg.mask_channels, cfg.mask_mid_channels, cfg.pool_first
        ch = cfg.mask_half_channels or cm
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(LRELU_SLOPE))
        self.body = nn.Sequential(
            ResidualBlock(c, ch, ds=2, pool_first=pf), ResidualBlock(ch, cm, ds=2, pool_first=pf),
            *[ResidualBlock(cm, cm) for _ in range(cfg.mask_res_blocks)],
            UpBlock(cm, c), *[ResidualBlock(c, c) for _ in range(cfg.mask_up_res_blocks[0])],
            UpBlock(c, c), *[ResidualBlock(c, c) for _ in range(cfg.mask_up_res_blocks[1])],
        )
        self.head = nn.Conv2d(c, 1, 3, padding=1)
        if cfg.mask_prior_init:  # masks start at the size prior theta everywhere (see GlassConfig.mask_prior_init)
            nn.init.constant_(self.head.bias, math.log(cfg.mask_size / (1 - cfg.mask_size)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(self.stem(x))))


class InpaintingNetwork(nn.Module):
    """N: patched background (N, 3, H, W) -> unbounded inpainting (N, 3, H, W) (last layer conv-BN-LReLU)."""

    def __init__(self, cfg: GlassConfig):
        super().__init__()
        c1, c2, c3 = cfg.inpaint_channels
        pf = cfg.pool_first
        self.net = nn.Sequential(
            SameBlock(3, c1, ds=2, pool_first=pf), SameBlock(c1, c2, ds=2, pool_first=pf), SameBlock(c2, c2),
            SameBlock(c2, c3, ds=2, pool_first=pf),
            SameBlock(c3, c3),
            SameBlock(c3, c3), UpBlock(c3, c2), UpBlock(c2, c2), UpBlock(c2, c1), SameBlock(c1, 3),
        )
        self.fill = cfg.inpaint_fill

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def inpaint(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """b_hat = (1 - m) I + m N(fill m + (1 - m) I). frames (N, 3, H, W), mask (N, 1, H, W) -> (N, 3, H, W)."""
        keep = (1 - mask) * frames
        return keep + mask * self.net(self.fill * mask + keep)


class PoseNetwork(nn.Module):
    """P_f / P_b: frame pair concat (N, 6, H, W) -> shift (N, 2) = (tx, ty) in normalized units."""

    def __init__(self, cfg: GlassConfig):
        super().__init__()
        c1, c2, c3, c4 = cfg.pose_channels
        h1, h2 = cfg.pose_hidden
        pf = cfg.pool_first
        self.trunk = nn.Sequential(
            SameBlock(6, c1, ds=2, pool_first=pf), SameBlock(c1, c2, ds=2, pool_first=pf), SameBlock(c2, c2),
            SameBlock(c2, c3, ds=2, pool_first=pf),
            SameBlock(c3, c4),
        )
        self.head = nn.Sequential(
            nn.Linear(c4, h1), nn.BatchNorm1d(h1), nn.LeakyReLU(LRELU_SLOPE),
            nn.Linear(h1, h2), nn.BatchNorm1d(h2), nn.LeakyReLU(LRELU_SLOPE),
            nn.Linear(h2, 2),
        )
        last = self.head[-1]
        nn.init.zeros_(last.weight)  # initial shifts ~0
        with torch.no_grad():
            last.bias.copy_(1e-4 * torch.randn(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x).mean(dim=(2, 3)))  # GAP: (N, c4)


class Encoder(nn.Module):
    """E: foreground (N, 3, H, W) -> features phi (N, F, H/8, W/8) and raw attention alpha (N, 1, H/8, W/8)."""

    def __init__(self, cfg: GlassConfig):
        super().__init__()
        c1, c2, c3 = cfg.encoder_channels
        pf = cfg.pool_first
        self.stem = SameBlock(3, c1, ds=2, pool_first=pf)  # conv (no bias) -> avg_pool 2 -> BN -> LReLU
        self.body = nn.Sequential(
            ResidualBlock(c1, c1), ResidualBlock(c1, c2, ds=2, pool_first=pf), ResidualBlock(c2, c2),
            ResidualBlock(c2, c3, ds=2, pool_first=pf), ResidualBlock(c3, c3), ResidualBlock(c3, c3 + 1),
        )
        self.feature_channels = c3

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.stem(x)
        y = self.body(y)  # (N, F + 1, H/8, W/8)
        return y[:, :self.feature_channels], y[:, self.feature_channels:]


class VectorQuantizer(nn.Module):
    """Nearest-code quantiser with straight-through gradients (VQ-VAE style, method.md 2.6 step 5).

    Loss = mean((sg[c_q] - u)^2) + beta mean((c_q - sg[u])^2): the first ("commitment") term trains the
    encoder side, the second the codebook. The codebook gets gradient only from the second term.
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25):
        super().__init__()
        self.codebook = nn.Parameter(torch.empty(num_codes, dim).uniform_(-1.0 / num_codes, 1.0 / num_codes))
        self.beta = beta

    @property
    def num_codes(self) -> int:
        return self.codebook.shape[0]

    def nearest(self, u: torch.Tensor) -> torch.Tensor:
        """u (N, D) -> ids (N,) long of the nearest codes (squared Euclidean distance)."""
        return squared_distances(u, self.codebook).argmin(dim=1)

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """u (N, D) -> (straight-through code (N, D), ids (N,), loss scalar)."""
        ids = self.nearest(u.detach())
        c = self.codebook[ids]  # (N, D)
        loss = F.mse_loss(u, c.detach()) + self.beta * F.mse_loss(c, u.detach())
        return u + (c - u).detach(), ids, loss

    @torch.no_grad()
    def reset_dead(self, usage_counts: torch.Tensor, recent_u: torch.Tensor | None) -> list[int]:
        """Re-initialise the codebook rows whose ``usage_counts`` (K,) are 0; returns their indices.

        Dead rows get pre-quantisation actions ``recent_u`` (N, D) of the latest training batch (plus 1% noise),
        so they land where the encoder's outputs are; without them, U(-1/K, 1/K) as at init.
        """
        k = self.num_codes
        counts = torch.as_tensor(usage_counts).flatten()
        if counts.numel() != k:
            raise ValueError(f"usage_counts must have {k} entries (one per code), got {counts.numel()}")
        book = self.codebook
        dead = (counts == 0).nonzero().flatten().to(book.device)
        if dead.numel() == 0:
            return []
        if recent_u is not None and recent_u.shape[0] > 0:
            u = recent_u.to(book.device)
            pick = torch.randint(0, u.shape[0], (dead.numel(),), device=book.device)
            new = u[pick] + 0.01 * u.std().clamp_min(1.0 / k) * torch.randn_like(u[pick])
        else:
            new = torch.empty(dead.numel(), book.shape[1], device=book.device).uniform_(-1.0 / k, 1.0 / k)
        book[dead] = new.to(book.dtype)
        return dead.tolist()


class ActionNetwork(nn.Module):
    """A: attended features of (shifted f_t, f_{t+1}) -> pre-quantisation action u (N, action_dim).

    Shared CNN -> psi_t, psi_{t+1}; bilinear chain p^i = Bilinear_i(Linear_i(psi_t), p^{i-1}) from
    p^0 = psi_{t+1}; direction d = p^P - psi_t; MLP U -> u. The quantiser lives in :attr:`vq`.
    """

    def __init__(self, cfg: GlassConfig):
        super().__init__()
        fc, cc, s, b = cfg.feature_channels, cfg.action_cnn_channels, cfg.action_state_size, \
            cfg.action_bilinear_channels
        self.cnn = nn.Sequential(ResidualBlock(fc, cc, ds=2, pool_first=cfg.pool_first), ResidualBlock(cc, s))
        n = cfg.action_bilinear_layers
        assert n >= 1, "action_bilinear_layers must be >= 1"
        ins = [s] + [b] * (n - 1)
        outs = [b] * (n - 1) + [s]
        self.lins = nn.ModuleList([nn.Linear(s, s) for _ in range(n)])
        self.bilinears = nn.ModuleList([nn.Bilinear(s, i, o) for i, o in zip(ins, outs, strict=True)])
        self.norms = nn.ModuleList([nn.BatchNorm1d(b) for _ in range(n - 1)])
        h1, h2 = cfg.action_mlp_hidden
        self.mlp = nn.Sequential(
            nn.Linear(s, h1), nn.BatchNorm1d(h1), nn.LeakyReLU(LRELU_SLOPE),
            nn.Linear(h1, h2), nn.BatchNorm1d(h2), nn.LeakyReLU(LRELU_SLOPE),
            nn.Linear(h2, cfg.action_dim),
        )
        self.vq = VectorQuantizer(cfg.num_codes, cfg.action_dim, cfg.vq_beta)

    def forward(self, feat_t: torch.Tensor, feat_next: torch.Tensor) -> torch.Tensor:
        """feat_t, feat_next (N, F, h, w) (attention-multiplied) -> u (N, action_dim)."""
        n = feat_t.shape[0]
        psi = self.cnn(torch.cat([feat_t, feat_next], dim=0)).mean(dim=(2, 3))  # (2N, s)
        psi_t, psi_next = psi[:n], psi[n:]
        p = psi_next
        for i, (lin, bil) in enumerate(zip(self.lins, self.bilinears, strict=True)):
            q = lin(psi_t)
            p = bil(q.to(bil.weight.dtype), p.to(bil.weight.dtype))  # bilinear is not autocast: run it at fp32
            if i < len(self.norms):
                p = F.leaky_relu(self.norms[i](p), LRELU_SLOPE)
        return self.mlp(p - psi_t)


class Dynamics(nn.Module):
    """Six blocks: 3 ConvLSTMs + modulated convs (method.md 2.7), with explicit recurrent state.

    Global action g = Linear(shift) conditions blocks 1-2, local action l = Linear(code) blocks 3-6.
    """

    def __init__(self, cfg: GlassConfig):
        super().__init__()
        s, h = cfg.state_channels, cfg.dynamics_hidden
        rh, rw = cfg.state_resolution
        self.global_embed = nn.Linear(2, s)
        self.local_embed = nn.Linear(cfg.action_dim, s)
        self.lstm0 = ConvLSTM(2 * s, h, (rh, rw))
        self.bn0 = nn.BatchNorm2d(h)
        self.mod0 = ModulatedConvBlock(h, 2 * h, s, ds=2)
        self.lstm1 = ConvLSTM(2 * h + s, 2 * h, (rh // 2, rw // 2))
        self.bn1 = nn.BatchNorm2d(2 * h)
        self.up = UpBlock(2 * h + s, h, late=True)
        self.lstm2 = ConvLSTM(h + s, h, (rh, rw))
        self.bn2 = nn.BatchNorm2d(h)
        self.mod2 = ModulatedConvBlock(h, h, s)

    def initial_state(self, batch: int) -> DynState:
        """Learned (h0, c0) of the three ConvLSTMs, repeated over ``batch``."""
        out: DynState = {}
        for i, lstm in enumerate((self.lstm0, self.lstm1, self.lstm2)):
            out[f"h{i}"], out[f"c{i}"] = lstm.initial_state(batch)
        return out

    def forward(self, e: torch.Tensor, code: torch.Tensor, shift: torch.Tensor,
                state: DynState) -> tuple[torch.Tensor, DynState]:
        """One transition.

        Args:
            e: (N, s, R_h, R_w) compressed state of the current frame.
            code: (N, action_dim) local action code vector.
            shift: (N, 2) global action (foreground shift) in normalized units.
            state: the ConvLSTM states from :meth:`initial_state` or the previous call.
        Returns:
            next state features (N, h, R_h, R_w) and the new recurrent state.
        """
        g = self.global_embed(shift)  # (N, s)
        a = self.local_embed(code)  # (N, s)
        h0, c0 = self.lstm0([e, g], (state["h0"], state["c0"]))
        x = self.mod0(self.bn0(h0), g)  # (N, 2h, R_h/2, R_w/2)
        h1, c1 = self.lstm1([x, a], (state["h1"], state["c1"]))
        x = self.up(torch.cat([self.bn1(h1), a[:, :, None, None].expand(-1, -1, *h1.shape[2:])], dim=1))
        h2, c2 = self.lstm2([x, a], (state["h2"], state["c2"]))
        x = self.mod2(self.bn2(h2), a)  # (N, h, R_h, R_w)
        return x, {"h0": h0, "c0": c0, "h1": h1, "c1": c1, "h2": h2, "c2": c2}


class Renderer(nn.Module):
    """D: dynamics output (N, h, R_h, R_w) -> [fg (N,3,H,W), fg (N,3,H/2,W/2), fg (N,3,H/4,W/4)], mask (N,1,H,W).

    Foregrounds are tanh outputs in [-1, 1]; the mask is 0.5 (tanh + 1) in [0, 1]. With ``cfg.fg_carry`` the
    full-resolution head has a 5th channel, the gate logit, and the full-resolution foreground and mask are blended
    with ``carried`` (the previous foreground and mask, already moved by the global action):
    g D + (1 - g) carried, g = sigmoid(gate logit) (GlassConfig.fg_carry); with ``cfg.carry_gate_hard`` each pixel
    is D where g > 0.5, else carried, with the soft blend's gradient (straight-through).
    """

    def __init__(self, cfg: GlassConfig):
        super().__init__()
        r1, r2, r3 = cfg.renderer_channels
        self.level1 = nn.Sequential(UpBlock(cfg.dynamics_hidden, r1), ResidualBlock(r1, r1))
        self.head1 = FinalBlock(r1, 3, 3)
        self.level2 = nn.Sequential(UpBlock(r1, r2), ResidualBlock(r2, r2))
        self.head2 = FinalBlock(r2, 3, 3)
        self.level3 = UpBlock(r2, r3)
        self.carry, self.hard = cfg.fg_carry, cfg.carry_gate_hard
        self.head3 = FinalBlock(r3, 5 if self.carry else 4, cfg.renderer_final_kernel)
        if cfg.mask_prior_init:  # the decoder's mask 0.5 (tanh + 1) also starts at the size prior theta
            nn.init.constant_(self.head3.conv.bias[3:4], math.atanh(2 * cfg.mask_size - 1))
        if self.carry:
            nn.init.constant_(self.head3.conv.bias[4:], cfg.carry_gate_init)

    def forward(self, x: torch.Tensor, full_only: bool = False, carried: torch.Tensor | None = None
                ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """``full_only`` skips the 1/2 and 1/4 heads (generation needs only the full-resolution output); the
        returned list then holds the full-resolution foreground alone. ``carried`` (N, 4, H, W): the previous
        foreground (3 channels, [-1, 1]) and mask (1, [0, 1]) moved by the global action; required with
        ``fg_carry``, else ignored. Returns the foregrounds, the mask (N, 1, H, W) and the gate g (N, 1, H, W) in
        [0, 1] (None without ``fg_carry``)."""
        x = self.level1(x)
        quarter = None if full_only else self.head1(x)
        x = self.level2(x)
        half = None if full_only else self.head2(x)
        # (N, 4 or 5, H, W) before the head's activation; NCHW, so that its channel slices are dense (elementwise
        # ops on slices of a channels_last tensor with 5 channels run ~4x slower on CPU)
        out = self.head3.conv(self.level3(x)).contiguous()
        full = torch.cat([torch.tanh(out[:, :3]), 0.5 * (torch.tanh(out[:, 3:4]) + 1)], dim=1)  # fg, mask
        gate = None
        if self.carry:
            if carried is None:
                raise ValueError("a renderer with fg_carry needs the carried foreground and mask")
            gate = torch.sigmoid(out[:, 4:])
            carried = carried.to(full.dtype)
            soft = gate * full + (1 - gate) * carried
            if self.hard:  # the exact values of the 0/1 choice (x - x is exactly 0), the gradient of the blend
                soft = torch.where(gate > 0.5, full, carried).detach() + (soft - soft.detach())
            full = soft
        fgs = [full[:, :3]] if full_only else [full[:, :3], half, quarter]
        return fgs, full[:, 3:], gate
