"""GLASS (Davtyan & Favaro, ECCV 2022) as a glassworld world model: training forward and losses (method.md 3, 5,
6) and the generation interface of :mod:`worldmodel.api` (method.md 4).

Generation (``start`` / ``step`` / ``generate``) always runs in eval mode (BatchNorm running statistics), without
gradients, autoregressively from the first frame (num_gt = 1), with outputs clamped to the image range (method.md
11.7-11.8). The full frame is composed as in method.md 4.1: the decoder's foreground and mask over the inpainted
*first* background, shifted by a cumulative background offset. ``step`` adds a zero background shift per step
unless ``bg_shift`` is given (the environment does not control the background); ``generate`` replays the
background shifts estimated from the real clip, as the official evaluation does.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..api import State
from ..base import WorldModelBase
from ..metrics import area_at_scale, kept_in_box, locate_agent
from . import losses as L
from .blocks import crop_windows, normalized_to_pixels, paste_windows, pixels_to_normalized, shift_images
from .config import GlassConfig
from .networks import (
    ActionNetwork,
    Dynamics,
    Encoder,
    InpaintingNetwork,
    MaskingNetwork,
    PoseNetwork,
    Renderer,
)


DYN_KEYS = ("h0", "c0", "h1", "c1", "h2", "c2")
DEFAULT_SHIFT_PX = 4.0
# the default 9-shift grid (pixels): none + 8 directions of DEFAULT_SHIFT_PX (x right, y down)
DEFAULT_SHIFTS: tuple[tuple[str, float, float], ...] = (
    ("none", 0, 0), ("right", 1, 0), ("left", -1, 0), ("down", 0, 1), ("up", 0, -1),
    ("down-right", 1, 1), ("down-left", -1, 1), ("up-right", 1, -1), ("up-left", -1, -1),
)


def _pairs(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) -> consecutive pairs concatenated on channels, folded: (B*(T-1), 2C, H, W)."""
    return torch.cat([x[:, :-1], x[:, 1:]], dim=2).flatten(0, 1)


class GlassModel(WorldModelBase):
    """GLASS: global (M, N, P_f, P_b) and local (E, C, A, dynamics, D) motion analysis, plus generation.

    Attributes (generation interface, see :class:`worldmodel.api.WorldModel`): height, width, num_codes,
    shift_grid (n, 2) pixels, shift_names, code_meanings, start_frames (N, 3, H, W) uint8, device, metadata.
    """

    model_name = "glass"
    display_name = "GLASS"
    config_cls = GlassConfig


    def __init__(self, cfg: GlassConfig):
        super().__init__()
        self.cfg = cfg
        self.masking = MaskingNetwork(cfg)
        self.inpainting = InpaintingNetwork(cfg)
        self.pose_fg = PoseNetwork(cfg)
        self.pose_bg = PoseNetwork(cfg)
        self.encoder = Encoder(cfg)
        self.compressor = nn.Conv2d(cfg.feature_channels, cfg.state_channels, 1)
        self.action = ActionNetwork(cfg)
        self.dynamics = Dynamics(cfg)
        self.renderer = Renderer(cfg)

        self.height, self.width, self.num_codes = cfg.height, cfg.width, cfg.num_codes
        grid = torch.tensor([[dx * DEFAULT_SHIFT_PX, dy * DEFAULT_SHIFT_PX] for _, dx, dy in DEFAULT_SHIFTS])
        self.register_buffer("shift_grid", grid.float(), persistent=False)  # (n, 2) pixels
        self.shift_names: list[str] = [n for n, _, _ in DEFAULT_SHIFTS]
        self.code_meanings: list[str] | None = None
        self.register_buffer("start_frames", torch.zeros(0, 3, cfg.height, cfg.width, dtype=torch.uint8),
                             persistent=False)
        self.metadata: dict[str, Any] = {}
        if cfg.channels_last:
            self.to(memory_format=torch.channels_last)  # conv weights NHWC; activations follow
        # last batch of pre-quantisation actions (for dead-code restarts); not a buffer, not saved
        self._recent_u: torch.Tensor | None = None
        # the frozen perceptual network is built on first use and kept out of the state dict
        object.__setattr__(self, "_perceptual", None)

    # ================================================================================================ utilities
    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part (and "total")."""
        parts = {"M": self.masking, "P_f": self.pose_fg, "P_b": self.pose_bg, "N": self.inpainting,
                 "E": self.encoder, "C": self.compressor, "A": self.action, "dynamics": self.dynamics,
                 "renderer": self.renderer}
        out = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
        out["total"] = sum(p.numel() for p in self.parameters())
        return out

    def perceptual_status(self) -> str:
        """"off" when both perceptual weights are 0, else the backbone: "pretrained" | "random"."""
        if self.cfg.w_background_perceptual == 0 and self.cfg.w_multiscale_perceptual == 0:
            return "off"
        if self._perceptual is not None:
            return self._perceptual.backbone
        from ..perceptual import find_vgg_weights

        return "pretrained" if find_vgg_weights() is not None else "random"

    def _perceptual_net(self, device: torch.device) -> nn.Module:
        if self._perceptual is None:
            from ..perceptual import Perceptual

            object.__setattr__(self, "_perceptual", Perceptual())
        net = self._perceptual
        if next(net.parameters()).device != device:
            net.to(device)
        return net

    def _to_model_range(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or float [0, 1] images -> float [-1, 1] on the model's device."""
        x = x.to(self.device)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x * 2 - 1

    # ================================================================================================ GMA
    def _gma(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Global motion analysis of frames (B, T, 3, H, W) in [-1, 1] (method.md 3, steps 1-6)."""
        b, t, _, h, w = frames.shape
        x = frames.flatten(0, 1)  # (B*T, 3, H, W)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        m = self.masking(x)  # (B*T, 1, H, W)
        fg = m * x
        bg = self.inpainting.inpaint(x, m)
        m5, fg5, bg5 = (v.reshape(b, t, -1, h, w) for v in (m, fg, bg))
        shift_f = self.pose_fg(_pairs(fg5))  # (B*(T-1), 2)
        # (B*(T-1), 2); a static background (cfg.static_background) does not move, whatever P_b would say
        pairs_b = _pairs(bg5)
        shift_b = pairs_b.new_zeros(pairs_b.shape[0], 2) if self.cfg.static_background else self.pose_bg(pairs_b)
        fm_w = shift_images(torch.cat([fg5[:, :-1], m5[:, :-1]], dim=2).flatten(0, 1), shift_f)  # (B*(T-1), 4, H, W)
        bg_w = shift_images(bg5[:, :-1].flatten(0, 1), shift_b, padding_mode="border")
        fg_w, m_w = fm_w[:, :3], fm_w[:, 3:]
        composite = m_w * fg_w + (1 - m_w) * bg_w

        def seq(v: torch.Tensor) -> torch.Tensor:
            return v.reshape(b, t - 1, *v.shape[1:])  # (B*(T-1), ...) -> (B, T-1, ...)

        return {"mask": m5, "fg": fg5, "bg": bg5, "shift_f": seq(shift_f), "shift_b": seq(shift_b),
                "fg_shifted": seq(fg_w), "bg_shifted": seq(bg_w), "composite": seq(composite)}

    # ================================================================================================ LMA
    def _encode_actions(self, fg: torch.Tensor, fg_shifted: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """E on f (B, T, 3, H, W) and f o Delta_F (B, T-1, 3, H, W); A on the attended features.

        Returns phi (B, T, F, h, w), e = C(phi) (B, T, s, h, w), u (B*(T-1), action_dim).
        """
        b, t = fg.shape[:2]
        phi_all, alpha_all = self.encoder(torch.cat([fg.flatten(0, 1), fg_shifted.flatten(0, 1)]))
        n = b * t
        phi, alpha = phi_all[:n], alpha_all[:n]  # (B*T, F, h, w), (B*T, 1, h, w)
        e = self.compressor(phi)
        att = (phi * alpha).reshape(b, t, *phi.shape[1:])
        att_shifted = phi_all[n:] * alpha_all[n:]  # (B*(T-1), F, h, w)
        u = self.action(att_shifted, att[:, 1:].flatten(0, 1))
        return phi.reshape(b, t, *phi.shape[1:]), e.reshape(b, t, *e.shape[1:]), u

    def _carried(self, fg: torch.Tensor, mask: torch.Tensor, move_px: torch.Tensor) -> torch.Tensor | None:
        """The layer a fg_carry renderer blends with: foreground (N, 3, h, w) and mask (N, 1, h, w) moved by
        ``move_px`` (N, 2) whole pixels (:meth:`_carry_move`; sampled nearest, so nothing is blurred) -> (N, 4, h,
        w); None without fg_carry. With an agent window the window moves instead and the layer stays put in it."""
        if not self.cfg.fg_carry:
            return None
        layer = torch.cat([fg, mask.to(fg.dtype)], dim=1)
        if self.cfg.windowed:
            return layer
        move = pixels_to_normalized(move_px, self.height, self.width)
        return shift_images(layer, move.to(fg.dtype), mode="nearest")

    # ------------------------------------------------------------------------------------------- agent window
    def _window_at(self, mask: torch.Tensor) -> torch.Tensor:
        """Top-left corner (N, 2) whole pixels (x, y) of the agent window (``cfg.agent_crop``) centred on the agent
        of masks (N, 1, H, W): the located agent (:func:`locate_agent`), else the mask's weighted centroid, else
        the frame centre."""
        pos, found = locate_agent(mask)
        weight = mask[:, 0].float().clamp_min(0)  # (N, H, W)
        total = weight.sum((1, 2))
        ys = torch.arange(self.height, device=mask.device, dtype=weight.dtype)
        xs = torch.arange(self.width, device=mask.device, dtype=weight.dtype)
        soft = torch.stack([(weight.sum(1) * xs).sum(1), (weight.sum(2) * ys).sum(1)], dim=1) \
            / total.clamp_min(1e-6)[:, None]
        centre = weight.new_tensor([(self.width - 1) / 2, (self.height - 1) / 2]).expand_as(soft)
        centre = torch.where((total > 1e-6)[:, None], soft, centre)
        centre = torch.where(found[:, None], pos.to(weight.dtype), centre)
        ch, cw = self.cfg.lma_size
        return (centre - centre.new_tensor([(cw - 1) / 2, (ch - 1) / 2])).round()

    def _clip_windows(self, mask0: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """Agent windows of a clip: centred on the agent of the first masks (B, 1, H, W), then moved by the
        whole-pixel carry moves of ``shifts`` (B, T-1, 2) normalized (:meth:`_carry_move`: the window of frame t
        is the first one plus round(sum of the first t shifts)). Returns (B, T, 2) top-left px (x, y)."""
        px = normalized_to_pixels(shifts.detach().float(), self.height, self.width)
        cum = torch.cat([px.new_zeros(px.shape[0], 1, 2), px.cumsum(1)], dim=1).round()
        return self._window_at(mask0)[:, None] + cum

    def _crop_seq(self, x: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """Frames (B, n, C, H, W) cut at windows (B, n, 2) -> (B, n, C, h, w) (``cfg.agent_crop``)."""
        b, n = x.shape[:2]
        out = crop_windows(x.flatten(0, 1), windows.flatten(0, 1), self.cfg.lma_size)
        return out.reshape(b, n, *out.shape[1:])

    def _paste_seq(self, x: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """Window contents (B, n, C, h, w) put back at windows (B, n, 2) into frames of zeros (B, n, C, H, W)."""
        b, n = x.shape[:2]
        out = paste_windows(x.flatten(0, 1), windows.flatten(0, 1), (self.height, self.width))
        return out.reshape(b, n, *out.shape[1:])

    def _carry_move(self, shift_px: torch.Tensor, rem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """How far the carried layer moves this step: whole pixels only, so it is never resampled into a blur.

        shift_px: (N, 2) the global action in pixels; rem: (N, 2) the sub-pixel part of earlier actions not moved
        yet. Returns the move (N, 2) whole pixels (for :meth:`_carried`, or the agent window) and the new remainder
        (N, 2) px. Training and generation move the layer the same way.
        """
        total = shift_px + rem
        whole = total.round()
        return whole, total - whole

    def _render(self, s: torch.Tensor, b: int, carried: torch.Tensor | None = None
                ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """Render states (B*n, h, R_h, R_w) -> 3 scales (B, n, 3, ., .), the mask (B, n, 1, H, W) and the carry
        gate (B, n, 1, H, W) (None without fg_carry)."""
        fgs, mask, gate = self.renderer(s, carried=carried)
        gate = None if gate is None else gate.reshape(b, -1, *gate.shape[1:])
        return [f.reshape(b, -1, *f.shape[1:]) for f in fgs], mask.reshape(b, -1, *mask.shape[1:]), gate

    def _lma(self, fg: torch.Tensor, codes: torch.Tensor, shifts: torch.Tensor, e: torch.Tensor, num_gt: int,
             mask: torch.Tensor
             ) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor | None], torch.Tensor | None]:
        """Dynamics + rendering over a clip (method.md 3, steps 9-11).

        Args:
            fg: real foregrounds (B, T, 3, H, W) (the carried layer of teacher-forced steps with fg_carry); with
                an agent window (cfg.agent_crop) their windows (B, T, 3, h, w), and likewise ``mask`` and the
                outputs.
            codes: (B, T-1, action_dim) local action codes; shifts: (B, T-1, 2) normalized.
            e: (B, T, s, R_h, R_w) compressed states of the real frames.
            num_gt: teacher-forced transitions (the rest re-encode the last reconstruction).
            mask: real agent masks (B, T, 1, H, W) (the carried mask of teacher-forced steps with fg_carry).
        Returns:
            reconstructions [(B, T-1, 3, H/s, W/s) for s = 1, 2, 4], masks (B, T-1, 1, H, W), the
            features E(f^_{t+1})[:F] computed for the autoregressive steps (None where not computed), and the
            renderer's carry gates (B, T-1, 1, H, W) (None without fg_carry).
        """
        b, t = fg.shape[:2]
        num_gt = max(1, min(num_gt, t - 1))
        state = self.dynamics.initial_state(b)
        outs = []
        for k in range(num_gt):
            s, state = self.dynamics(e[:, k], codes[:, k], shifts[:, k], state)
            outs.append(s)
        carried = rem = None
        if self.cfg.fg_carry:  # teacher-forced steps carry the real layer; the remainder of the last one goes on
            shifts_px = normalized_to_pixels(shifts.detach(), self.height, self.width)  # (B, T-1, 2)
            move, rem = self._carry_move(shifts_px[:, :num_gt].flatten(0, 1),
                                         shifts_px.new_zeros(b * num_gt, 2))
            carried = self._carried(fg[:, :num_gt].flatten(0, 1), mask[:, :num_gt].flatten(0, 1), move)
            rem = rem.view(b, num_gt, 2)[:, -1]
        # states (B*num_gt, h, R_h, R_w) of the teacher-forced steps, rendered at once
        fgs, masks, gate = self._render(torch.stack(outs, dim=1).flatten(0, 1), b, carried)
        fgs, masks, gates = [[f] for f in fgs], [masks], [gate]
        phi_hat: list[torch.Tensor | None] = [None] * (t - 1)
        for k in range(num_gt, t - 1):
            last_fg, last_mask = fgs[0][-1][:, -1], masks[-1][:, -1]  # f^_k (B, 3, H, W), its mask (B, 1, H, W)
            phi, _ = self.encoder(last_fg)  # re-encode f^_k
            phi_hat[k - 1] = phi
            s, state = self.dynamics(self.compressor(phi), codes[:, k], shifts[:, k], state)
            carried = None
            if self.cfg.fg_carry:
                move, rem = self._carry_move(shifts_px[:, k], rem)
                carried = self._carried(last_fg, last_mask, move)
            new_fgs, new_mask, new_gate = self._render(s, b, carried)
            for lst, f in zip(fgs, new_fgs, strict=True):
                lst.append(f)
            masks.append(new_mask)
            gates.append(new_gate)
        gate_seq = None if gates[0] is None else torch.cat(gates, dim=1)
        return [torch.cat(f, dim=1) for f in fgs], torch.cat(masks, dim=1), phi_hat, gate_seq

    # ================================================================================================ training
    def training_losses(self, frames: torch.Tensor, step: int
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """All GLASS losses on a batch of clips (method.md 3 and 5).

        Args:
            frames: (B, T, 3, H, W) float in [-1, 1], T >= 2 (already cut to ``cfg.num_obs(step)``).
            step: the global training step (drives GMA pretraining and teacher forcing).
        Returns:
            total (scalar with grad), terms (name -> detached scalar: each unweighted loss term, plus
            "vq_perplexity" and "vq_usage"; perceptual terms only when computed), aux (detached tensors in
            [-1, 1]: "mask" (B,T,1,H,W) in [0, 1], "fg", "bg" (B,T,3,H,W), "composite", "recon_fg"
            (B,T-1,3,H,W), "codes" (B,T-1) long).
        """
        self._check_frames(frames, 5, "frames")
        cfg = self.cfg
        b, t = frames.shape[:2]
        if t < 2:
            raise ValueError(f"training clips need at least 2 frames, got T={t}")
        if self.training and b * (t - 1) < 2:
            raise ValueError(f"training needs batch x (T-1) >= 2 for BatchNorm, got B={b}, T={t}; "
                             "use a larger batch or longer clips")
        terms: dict[str, torch.Tensor] = {}
        weighted: dict[str, torch.Tensor] = {}

        # ---- GMA
        g = self._gma(frames)
        w_j = L.joint_weights(frames, g["composite"], cfg.reconstruction_weight_bias)
        terms["reconstruction"] = (w_j * (frames[:, 1:] - g["composite"]).abs()).mean()
        terms["foreground"] = F.mse_loss(g["fg_shifted"], g["fg"][:, 1:])
        terms["background"] = F.l1_loss(g["bg_shifted"], g["bg"][:, 1:])
        if cfg.w_background_perceptual > 0:
            perc = self._perceptual_net(frames.device)
            terms["background_perceptual"] = perc(g["bg"][:, 1:].detach().flatten(0, 1),
                                                  g["bg_shifted"].flatten(0, 1)).mean()
        terms["binary_mask"] = L.binary_mask_loss(g["mask"])
        terms["mask_size"] = L.mask_size_loss(g["mask"], cfg.mask_size)
        if cfg.w_motion_guard > 0:
            min_area = area_at_scale(4.0, self.height, self.width)  # as the health checks' locator
            terms["motion_guard"] = L.motion_guard_loss(
                g["mask"], L.motion_map(frames, cfg.motion_guard_change), min_area)

        # ---- LMA: detached inputs; without gradients during GMA pretraining (its terms are x0 then)
        lma_on = cfg.lma_active(step)
        with contextlib.nullcontext() if lma_on else torch.no_grad():
            fg, fg_w, shift_f = g["fg"].detach(), g["fg_shifted"].detach(), g["shift_f"].detach()
            real_mask = g["mask"].detach()
            windows = None
            if cfg.windowed:  # the local part sees the agent window: centred on the agent, moved by the shifts
                windows = self._clip_windows(real_mask[:, 0], shift_f)  # (B, T, 2)
                fg, real_mask = self._crop_seq(fg, windows), self._crop_seq(real_mask, windows)
                fg_w = self._crop_seq(fg_w, windows[:, 1:])  # f_t o Delta_F in the window of frame t+1
            phi, e, u = self._encode_actions(fg, fg_w)
            code, ids, terms["vq"] = self.action.vq(u)
            terms["code_usage"] = L.code_usage_loss(u, self.action.vq.codebook)
            self._recent_u = u.detach()
            codes = code.view(b, t - 1, -1)
            recon, recon_mask, phi_hat, gate = self._lma(fg, codes, shift_f, e, cfg.num_gt(step), real_mask)
            w_u = L.unsupervised_weights(fg, recon[0])
            w_a = L.action_weights(fg, fg_w, recon[0])
            use_perc = lma_on and cfg.w_multiscale_perceptual > 0
            (terms["multiscale_global"], terms["multiscale_local"]), perc_term = L.multiscale_losses(
                fg[:, 1:], recon, [w_u, w_a], self._perceptual_net(frames.device) if use_perc else None)
            if perc_term is not None:
                terms["multiscale_perceptual"] = perc_term
            missing = [k for k, v in enumerate(phi_hat) if v is None]
            if missing:
                phi_missing, _ = self.encoder(recon[0][:, missing].flatten(0, 1))  # (B*len, F, h, w)
                phi_missing = phi_missing.reshape(b, len(missing), *phi_missing.shape[1:])
                for j, k in enumerate(missing):
                    phi_hat[k] = phi_missing[:, j]
            terms["cycle"] = F.l1_loss(torch.stack(phi_hat, dim=1), phi[:, 1:].detach())
            mask_loss = L.balanced_l1 if cfg.mask_reconstruction_balanced else F.l1_loss
            terms["mask_reconstruction"] = mask_loss(recon_mask, real_mask[:, 1:])
            terms["mask_area"] = L.mask_area_loss(recon_mask, real_mask[:, 1:])
            terms["gradient_match"] = L.gradient_match_loss(recon[0], fg[:, 1:])
            if gate is not None:
                terms["carry_gate"] = gate.mean()

        weights = {name: getattr(cfg, f"w_{name}") for name in L.TERMS}
        for name, value in terms.items():
            if name in L.LMA_TERMS and not lma_on:
                continue
            if weights[name] != 0:
                weighted[name] = weights[name] * value
        if not weighted:
            raise ValueError("every active GLASS loss weight is 0; set at least one w_* > 0")
        total = torch.stack(list(weighted.values())).sum()

        _, perplexity, usage = L.code_statistics(ids, cfg.num_codes)
        out_terms = {k: v.detach() for k, v in terms.items()}
        out_terms["vq_perplexity"] = perplexity
        out_terms["vq_usage"] = usage
        recon_full = recon[0] if windows is None else self._paste_seq(recon[0].detach(), windows[:, 1:])
        aux = {"mask": g["mask"].detach(), "codes": ids.view(b, t - 1),
               **{k: v.detach().clamp(-1, 1) for k, v in
                  (("fg", g["fg"]), ("bg", g["bg"]), ("composite", g["composite"]), ("recon_fg", recon_full))}}
        return total, out_terms, aux

    # ================================================================================================ analysis
    @property
    def inference_tag(self) -> str | None:
        """What :meth:`infer_actions` reads besides the weights, where that changed for the same weights: "agent
        window" for windowed models (their actions were inferred on the whole frame before), else None. Caches
        of inferred actions (agents/mapping.py) key on it."""
        return "agent window" if self.cfg.windowed else None

    @torch.no_grad()
    def segment(self, frames: torch.Tensor) -> torch.Tensor:
        """Agent masks. frames (B, T, 3, H, W) uint8 or float in [0, 1] -> (B, T, 1, H, W) in [0, 1]."""
        self._check_frames(frames, 5, "frames")
        with self._eval_mode():
            x = self._to_model_range(frames)
            return self.masking(x.flatten(0, 1)).reshape(*x.shape[:2], 1, self.height, self.width)

    @torch.no_grad()
    def estimate_shifts(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Foreground and background content motion (dx, dy) in pixels: frames (B, T, 3, H, W) -> 2 x (B, T-1, 2)."""
        self._check_frames(frames, 5, "frames")
        with self._eval_mode():
            g = self._gma(self._to_model_range(frames))
        return (normalized_to_pixels(g["shift_f"], self.height, self.width),
                normalized_to_pixels(g["shift_b"], self.height, self.width))

    def _infer(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """GMA + action inference on a real clip (eval mode is the caller's job). Shifts in pixels."""
        self._check_frames(video, 5, "video")
        if video.shape[1] < 2:
            raise ValueError(f"inferring actions needs at least 2 frames, got T={video.shape[1]}")
        g = self._gma(self._to_model_range(video))
        fg, fg_w = g["fg"], g["fg_shifted"]
        if self.cfg.windowed:
            # A sees what it saw in training: both foregrounds of a transition in the agent window of its
            # destination frame (training: that window is the clip's first one moved by the shifts; here it is
            # centred on each frame's agent, which does not drift over long videos). On the whole frame, A's
            # pooled features and BatchNorm statistics are not the ones it learned: every transition fell to one
            # code (all shipped windowed worlds: 1 of 6 codes used).
            b, t = fg.shape[:2]
            wins = self._window_at(g["mask"].flatten(0, 1)).view(b, t, 2)  # (B, T, 2)
            fg, fg_w = self._crop_seq(fg, wins), self._crop_seq(fg_w, wins[:, 1:])
        _, _, u = self._encode_actions(fg, fg_w)
        ids = self.action.vq.nearest(u).reshape(video.shape[0], -1)  # (B, T-1)
        return {"shift_f": normalized_to_pixels(g["shift_f"], self.height, self.width),
                "shift_b": normalized_to_pixels(g["shift_b"], self.height, self.width),
                "codes": ids, "mask": g["mask"]}

    @torch.no_grad()
    def infer_actions(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions between consecutive real frames: video (B, T, 3, H, W) uint8 or float [0, 1] ->
        shifts (B, T-1, 2) float (dx, dy) pixels (foreground content motion), codes (B, T-1) long."""
        with self._eval_mode():
            r = self._infer(video)
        return r["shift_f"], r["codes"]

    # ================================================================================================ generation
    @torch.no_grad()
    def start(self, frames: torch.Tensor) -> State:
        """Begin B rollouts from real frames (B, 3, H, W) uint8 or float in [0, 1].

        The state (all batch first): "fg" (B, 3, h, w) current foreground observation in [-1, 1] (f_1 = m_1 I_1,
        later the decoder's f^) and "fg_mask" (B, 1, h, w) its mask, both of the agent window (``cfg.agent_crop``;
        h, w = H, W without one) whose top-left corner is "win" (B, 2) px (x, y); "mask" (B, 1, H, W) the
        current agent mask in the frame (m_1, later the decoder's); "bg" (B, 3, H, W) inpainted first background;
        "bg_offset" (B, 2) cumulative background shift in pixels; "frame" (B, 3, H, W) the last frame in [-1, 1];
        "t" (B,) long steps taken; "h0".."c2" the ConvLSTM states; "carry_rem" (B, 2) the sub-pixel part of the
        global actions the carried layer (or the window) has not moved yet (pixels).
        """
        self._check_frames(frames, 4, "frames")
        with self._eval_mode():
            x = self._to_model_range(frames)
            m = self.masking(x)
            bg = self.inpainting.inpaint(x, m).clamp(-1, 1)
            dyn = self.dynamics.initial_state(x.shape[0])
            fg, fg_mask, win = self._window_state(x, m)
            return {"fg": fg, "fg_mask": fg_mask, "mask": m, "win": win,
                    "carry_rem": x.new_zeros(x.shape[0], 2), "bg": bg,
                    "bg_offset": x.new_zeros(x.shape[0], 2), "frame": x.clone(),
                    "t": torch.zeros(x.shape[0], dtype=torch.long, device=x.device),
                    **{k: v.contiguous().clone() for k, v in dyn.items()}}

    def _window_state(self, x: torch.Tensor, m: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The foreground (N, 3, h, w) and mask (N, 1, h, w) a rollout starts from, of the agent window centred
        on the agent of frames x (N, 3, H, W) in [-1, 1] with masks m (N, 1, H, W), and the window's top-left
        corner (N, 2) px; without an agent window, the whole frame (corner 0)."""
        if not self.cfg.windowed:
            return m * x, m, x.new_zeros(x.shape[0], 2)
        win = self._window_at(m)
        return crop_windows(m * x, win, self.cfg.lma_size), crop_windows(m, win, self.cfg.lma_size), win

    def _regrounded(self, state: State, code: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The foreground, agent mask, window and recurrent state a step starts from, after the ``reencode_every``
        / ``burn_in`` generation options (GlassConfig) for the rollouts due: (B, 3, h, w) fg, (B, 1, h, w) mask
        (of the agent window, see :meth:`start`), (B, 2) window corner px and the ConvLSTM states."""
        cfg = self.cfg
        fg, mask, win, dyn = state["fg"], state["fg_mask"], state["win"], {k: state[k] for k in DYN_KEYS}
        t = state["t"]
        prime = t == 0
        if cfg.reencode_every > 0:
            redo = (t > 0) & (t % cfg.reencode_every == 0)
            if bool(redo.any()):
                idx = redo.nonzero().squeeze(1)
                x = state["frame"].index_select(0, idx)
                m = self.masking(x)
                # a frame whose agent the masking network no longer finds (mask peak <= 0.5) is not re-grounded:
                # restarting from an empty foreground would lose the agent for good
                found = m.flatten(1).amax(dim=1) > 0.5
                idx, x, m = idx[found], x[found], m[found]
                f_new, m_new, w_new = self._window_state(x, m)  # re-centred on the agent found
                fg = fg.index_copy(0, idx, f_new.to(fg.dtype))
                mask = mask.index_copy(0, idx, m_new.to(mask.dtype))
                win = win.index_copy(0, idx, w_new.to(win.dtype))
                fresh = self.dynamics.initial_state(len(idx))
                dyn = {k: v.index_copy(0, idx, fresh[k].to(v.dtype)) for k, v in dyn.items()}
                prime = prime.index_fill(0, idx, True)
        if cfg.burn_in > 0 and bool(prime.any()):
            idx = prime.nonzero().squeeze(1)
            f, sub = fg.index_select(0, idx), {k: v.index_select(0, idx) for k, v in dyn.items()}
            still = f.new_zeros(len(idx), 2)
            for _ in range(cfg.burn_in):  # the agent stands still on its observed foreground
                phi, _ = self.encoder(f)
                _, sub = self.dynamics(self.compressor(phi), self.action.vq.codebook[code[idx]], still, sub)
            dyn = {k: v.index_copy(0, idx, sub[k].to(v.dtype)) for k, v in dyn.items()}
        return fg, mask, win, dyn

    @torch.no_grad()
    def step(self, state: State, shift: torch.Tensor, code: torch.Tensor,
             generator: torch.Generator | None = None,
             bg_shift: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, State]:
        """Advance every rollout by one frame. A global action that would carry the agent (located in the state's
        mask) out of ``agent_box`` is shortened to its edge.

        Args:
            state: from :meth:`start` or a previous step.
            shift: (B,) long indices into ``shift_grid`` or (B, 2) float (dx, dy) foreground motion in pixels.
            code: (B,) long local action codes in [0, K).
            generator: accepted for the interface; GLASS is deterministic (its noise inputs are dead).
            bg_shift: optional (B, 2) float background content shift in pixels; default zero.
        Returns:
            frame (B, 3, H, W) in [0, 1], agent mask (B, 1, H, W) in [0, 1], next state.
        """
        b = state["fg"].shape[0]
        code = self._code_ids(code, b)
        # the agent stays where the training video showed it (env_info agent_box): a move out is shortened
        shift_px = self._shift_pixels(shift, b)
        if self.agent_box is not None:
            shift_px = kept_in_box(shift_px, *locate_agent(state["mask"]), self.agent_box)
        bg_px = torch.zeros_like(shift_px) if bg_shift is None else torch.as_tensor(
            bg_shift, device=self.device).float().view(b, 2)
        with self._eval_mode():
            fg_in, mask_in, win, dyn_in = self._regrounded(state, code)
            phi, _ = self.encoder(fg_in)
            s, dyn = self.dynamics(self.compressor(phi), self.action.vq.codebook[code],
                                   pixels_to_normalized(shift_px, self.height, self.width), dyn_in)
            # the carried layer (or the agent window) moves by whole pixels (no blur over long rollouts); the rest
            # waits for later steps
            move, rem = self._carry_move(shift_px, state["carry_rem"])
            carried = self._carried(fg_in, mask_in, move)
            fgs, fg_mask, _ = self.renderer(s, full_only=True, carried=carried)
            fg = fgs[0]
            if self.cfg.windowed:  # the window's contents go back into the frame where the window now is
                win = win + move
                full = paste_windows(torch.cat([fg, fg_mask], dim=1), win, (self.height, self.width))
                full_fg, mask = full[:, :3], full[:, 3:]
            else:
                full_fg, mask = fg, fg_mask
            offset = state["bg_offset"] + bg_px
            bg = state["bg"]
            if bool(offset.any()):  # a still background (the env's default) is not resampled
                bg = shift_images(bg, pixels_to_normalized(offset, self.height, self.width), mode="nearest",
                                  padding_mode="border")
            frame = (mask * full_fg + (1 - mask) * bg).clamp(-1, 1)
        new_state = {"fg": fg, "fg_mask": fg_mask, "mask": mask, "win": win, "carry_rem": rem, "bg": state["bg"],
                     "bg_offset": offset, "frame": frame, "t": state["t"] + 1, **dyn}
        return (frame + 1) / 2, mask.clamp(0, 1), new_state

    @torch.no_grad()
    def generate(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruct a real clip from its first frame and its inferred actions (method.md 4.1, num_gt = 1).

        Args:
            video: (B, T, 3, H, W) uint8 or float in [0, 1].
        Returns:
            frames (B, T, 3, H, W) in [0, 1] (frames[:, 0] is the real first frame) and agent masks
            (B, T, 1, H, W) in [0, 1] (mask 0 is the segmentation of the first frame).
        """
        with self._eval_mode():
            r = self._infer(video)
            state = self.start(video[:, 0])
            first = ((self._to_model_range(video[:, 0]) + 1) / 2).clamp(0, 1)
            frames, masks = [first], [r["mask"][:, 0]]
            for k in range(video.shape[1] - 1):
                frame, mask, state = self.step(state, r["shift_f"][:, k], r["codes"][:, k],
                                               bg_shift=r["shift_b"][:, k])
                frames.append(frame)
                masks.append(mask)
        return torch.stack(frames, dim=1), torch.stack(masks, dim=1)

    # ================================================================================================ env info / io
