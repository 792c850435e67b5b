"""Struct-VRNN (Minderer et al., NeurIPS 2019) as a glassworld world model with GLASS's (shift, code) actions.

Vision (method.md 9.2-9.3): a keypoint detector (coordinate channels, conv encoder, softplus heatmaps, spatial
expectation with the code's max-normalised intensities mu), Gaussian keypoint maps, an appearance encoder on the
first frame and a reconstructor conditioned on the first frame and its keypoints (v^_t = v_1 + output). Losses:
image, temporal separation, heatmap sparsity, L2 on the conv kernels.

Dynamics (9.4): a GRU VRNN on the stop-gradiented keypoints with prior, posterior and keypoint decoder,
best-of-many sampling, KL scale with linear annealing and scheduled sampling.

**Actions (glassworld).** Every transition t -> t+1 of a real clip gets the same kind of action as GLASS:

* *global action* = the agent's 2D shift (dx, dy) in frame pixels, measured from its keypoints: the weighted
  median, per axis, of the displacements of the *agent keypoints*, weighted by min(mu_t, mu_t+1).
* *local action* = a VQ code (``num_codes`` codes, straight-through, as GLASS) of the agent's remaining keypoint
  motion: for each agent keypoint its displacement minus the global shift, its change of mu, its position
  relative to the agent's (mu-weighted) centre (both in heatmap pixels) and its mu; an MLP maps these (6K,)
  features (zero for non-agent keypoints) to a vector that is quantised. The codes are trained only by the
  dynamics losses (through the straight-through code vector fed to the GRU) and L_VQ.

*Which keypoints are the agent* (decided here, unsupervised): the detector's K channels keep their meaning across
frames and clips, so the model keeps running statistics of how channels move (EMAs over training batches, buffers
saved in the checkpoint). For each transition, r_k = d_k - b is keypoint k's displacement relative to the
background motion b (the mu-weighted median displacement of the keypoints that are currently *not* agent
keypoints; b = 0 during the first ``agent_warmup_steps`` steps), weighted by m_k = min(mu_t, mu_t+1). The
co-motion matrix EMA[m_k m_l <r_k, r_l>] / EMA[m_k m_l] says how much two channels move *together*; the agent is
the leading eigenvector of its off-diagonal part (a rigidly moving group of keypoints): channels with mean
intensity EMA[m_k] >= ``agent_min_mu`` and a loading >= ``agent_threshold`` (0.5) times the largest loading.
Background keypoints (no relative motion) and jittering keypoints (large but incoherent motion) get small
loadings. The agent is thus "the group of keypoints that moves together relative to the background": in
W-Sprites the walking character; in Tennis one of the two players (nothing in unlabelled video says which one the
joystick moves). Known weakness: the background motion is measured on the non-agent keypoints, and on Tennis
those sit on the other player, so whichever group is chosen first makes the other look like background and keeps
its place (four Tennis runs: the orange player twice, the blue one once, a mix once). Before any training
statistics exist every keypoint counts as agent. :attr:`agent_weights` exposes the (K,) 0/1 weights.

The dynamics are conditioned on (shift, code): h_t = GRU([x_t, z_t, embed(shift_t), code_t], h_{t-1}) with the
action taken after frame t, so the prior of frame t + 1 sees it. Generation (``start`` / ``step`` /
``generate``) decodes keypoints from the prior and renders them with the reconstructor; the agent mask is the
thresholded max over the agent keypoints' wide Gaussian blobs (``mask_sigma``); ``state["keypoints"]`` holds
the current keypoints (B, K, 3) as (x, y) frame pixels (+y down) and mu, for overlays.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

from ..api import State
from ..base import WorldModelBase
from ..metrics import kept_in_box, locate_agent
from .config import KeypointConfig
from .keypoints import (
    delta_from_pixels,
    delta_to_pixels,
    from_pixels,
    keypoints_to_maps,
    separation_loss,
    to_pixels,
    weighted_median,
)
from .networks import (
    VRNN,
    ActionEncoder,
    ImageEncoder,
    KeypointDetector,
    Reconstructor,
    regularised_kernels,
)


DEFAULT_SHIFT_PX = 4.0
# the default 9-shift grid (pixels): none + 8 directions of DEFAULT_SHIFT_PX (x right, y down), as GLASS
DEFAULT_SHIFTS: tuple[tuple[str, float, float], ...] = (
    ("none", 0, 0), ("right", 1, 0), ("left", -1, 0), ("down", 0, 1), ("up", 0, -1),
    ("down-right", 1, 1), ("down-left", -1, 1), ("up-right", 1, -1), ("up-left", -1, -1),
)
STATE_KEYS = ("h", "z", "keypoints", "first", "appearance", "first_maps")


def _clip_grad(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Keras clipnorm: scale one gradient tensor down to norm ``max_norm``."""
    norm = grad.norm()
    return grad * (max_norm / norm) if norm > max_norm else grad


def _gaussian_kl(mq: torch.Tensor, sq: torch.Tensor, mp: torch.Tensor, sp: torch.Tensor) -> torch.Tensor:
    """KL(N(mq, sq^2) || N(mp, sp^2)) summed over the last dim."""
    return (torch.log(sp / sq) + (sq.square() + (mq - mp).square()) / (2 * sp.square()) - 0.5).sum(-1)


def best_of_many(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Index of the best sample per batch element: samples (N, B, D), target (B, D) -> (B,) long, the sample
    with the smallest mean squared error over D (method.md 9.4 step 4)."""
    return (samples.detach() - target.detach()).square().mean(-1).argmin(0)


class KeypointModel(WorldModelBase):
    """Struct-VRNN keypoint world model with the generation interface of :class:`worldmodel.api.WorldModel`.

    Attributes: height, width, num_codes, shift_grid (n, 2) pixels, shift_names, code_meanings, start_frames
    (N, 3, H, W) uint8, device, metadata; buffers (agent statistics) ``motion_cov`` (K, K), ``mu_pair`` (K, K),
    ``mu_mean`` (K,) and ``motion_updates``.
    """

    model_name = "keypoint"
    display_name = "keypoint"
    config_cls = KeypointConfig


    def __init__(self, cfg: KeypointConfig):
        super().__init__()
        self.cfg = cfg
        self.detector = KeypointDetector(cfg)
        self.appearance = ImageEncoder(cfg, 3)
        self.reconstructor = Reconstructor(cfg, self.appearance.out_channels)
        self.vrnn = VRNN(cfg)
        self.action = ActionEncoder(cfg)
        k = cfg.num_keypoints
        self.register_buffer("motion_cov", torch.zeros(k, k))  # EMA of m_k m_l <r_k, r_l> (co-motion)
        self.register_buffer("mu_pair", torch.zeros(k, k))  # EMA of m_k m_l
        self.register_buffer("mu_mean", torch.zeros(k))  # EMA of m_k per channel
        self.register_buffer("motion_updates", torch.zeros((), dtype=torch.long))

        self.height, self.width, self.num_codes = cfg.height, cfg.width, cfg.num_codes
        self.hm_h, self.hm_w = cfg.heatmap_height, cfg.heatmap_width
        grid = torch.tensor([[dx * DEFAULT_SHIFT_PX, dy * DEFAULT_SHIFT_PX] for _, dx, dy in DEFAULT_SHIFTS])
        self.register_buffer("shift_grid", grid.float(), persistent=False)  # (n, 2) pixels
        self.shift_names: list[str] = [n for n, _, _ in DEFAULT_SHIFTS]
        self.code_meanings: list[str] | None = None
        self.register_buffer("start_frames", torch.zeros(0, 3, cfg.height, cfg.width, dtype=torch.uint8),
                             persistent=False)
        self.metadata: dict[str, Any] = {}
        self._recent_u: torch.Tensor | None = None  # last pre-quantisation actions (dead-code restarts)
        if cfg.channels_last:
            self.to(memory_format=torch.channels_last)  # conv weights NHWC; activations follow their inputs
        if cfg.clip_grad_norm > 0:
            for p in self.parameters():
                p.register_hook(functools.partial(_clip_grad, max_norm=float(cfg.clip_grad_norm)))

    # ================================================================================================ utilities
    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part (and "total")."""
        parts = {"detector": self.detector, "appearance": self.appearance, "reconstructor": self.reconstructor,
                 "vrnn": self.vrnn, "action": self.action}
        out = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
        out["total"] = sum(p.numel() for p in self.parameters())
        return out

    def _to_model_range(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or float [0, 1] images -> float [-0.5, 0.5] (the code's range) on the model's device."""
        x = x.to(self.device)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x - 0.5

    def _px(self, kp: torch.Tensor) -> torch.Tensor:
        return to_pixels(kp, self.height, self.width, self.hm_h, self.hm_w)

    def _unpx(self, kp: torch.Tensor) -> torch.Tensor:
        return from_pixels(kp, self.height, self.width, self.hm_h, self.hm_w)

    def _nhwc(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in channels-last memory when the config asks for it (same values)."""
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def _maps(self, kp: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """(N, K, 3) normalised keypoints -> (N, K, h, w) Gaussian maps."""
        return keypoints_to_maps(kp, self.hm_h, self.hm_w, self.cfg.keypoint_sigma if sigma is None else sigma)

    # ================================================================================================ agent
    @property
    def agent_weights(self) -> torch.Tensor:
        """(K,) float 0/1: which keypoint channels are the agent (all of them before any statistics exist).

        The agent is the group of keypoints that move *together* relative to the background: the leading
        eigenvector of the co-motion matrix (off-diagonal, negative entries clipped, eligible channels only);
        channels whose loading is at least ``agent_threshold`` times the largest one are the agent.
        ``cfg.agent_keypoints`` (a person's choice) replaces the rule.
        """
        k = self.mu_mean.shape[0]
        ones = torch.ones(k, device=self.mu_mean.device)
        if self.cfg.agent_keypoints is not None:  # chosen by a person (KeypointConfig.agent_keypoints)
            fixed = torch.zeros_like(ones)
            fixed[self.cfg.agent_keypoints] = 1.0
            return fixed
        eligible = self.mu_mean >= self.cfg.agent_min_mu
        if int(self.motion_updates) == 0 or not bool(eligible.any()):
            return ones
        c = self.co_motion.clamp_min(0) * (eligible[:, None] & eligible[None, :])
        off = c - torch.diag(torch.diagonal(c))
        if float(off.max()) <= 0:  # no two channels move together: the single most moving one
            diag = torch.diagonal(c)
            if float(diag.max()) <= 0:
                return ones
            return (eligible & (diag >= self.cfg.agent_threshold * diag.max())).float()
        _, vecs = torch.linalg.eigh(off.double())
        load = vecs[:, -1].abs().float()  # (K,) loadings on the largest eigenvalue
        return (eligible & (load >= self.cfg.agent_threshold * load.max())).float()

    @property
    def co_motion(self) -> torch.Tensor:
        """(K, K) typical co-motion of keypoint pairs relative to the background while both are visible
        (normalised units^2 per frame^2): EMA[m_k m_l <r_k, r_l>] / EMA[m_k m_l], r = d - b."""
        return self.motion_cov / self.mu_pair.clamp_min(1e-6)

    @property
    def motion_per_frame(self) -> torch.Tensor:
        """(K,) typical motion of each keypoint relative to the background while visible (normalised units per
        frame): the square root of the co-motion diagonal."""
        return torch.diagonal(self.co_motion).clamp_min(0).sqrt()

    def _background_motion(self, d: torch.Tensor, m: torch.Tensor, agent: torch.Tensor) -> torch.Tensor:
        """Median displacement of the non-agent keypoints: d (B, T-1, K, 2), m (B, T-1, K) -> (B, T-1, 2).

        Zero where no non-agent keypoint has any intensity.
        """
        wb = (1 - agent) * m  # (B, T-1, K)
        has = (wb.sum(-1, keepdim=True) > 0).float()  # (B, T-1, 1)
        bg = torch.stack([weighted_median(d[..., i], wb) for i in range(2)], dim=-1)
        return bg * has

    @torch.no_grad()
    def _update_motion_stats(self, kp: torch.Tensor, step: int) -> None:
        """Update the per-channel motion scores from detector keypoints kp (B, T, K, 3) (training only)."""
        d = kp[:, 1:, :, :2] - kp[:, :-1, :, :2]  # (B, T-1, K, 2)
        m = torch.minimum(kp[:, 1:, :, 2], kp[:, :-1, :, 2])  # (B, T-1, K)
        if step < self.cfg.agent_warmup_steps:
            bg = torch.zeros_like(d[:, :, 0])
        else:
            bg = self._background_motion(d, m, self.agent_weights)
        r = (d - bg.unsqueeze(2)) * m.unsqueeze(-1)  # (B, T-1, K, 2) mu-weighted relative motion
        n = r.shape[0] * r.shape[1]
        cov = torch.einsum("nkc,nlc->kl", r.flatten(0, 1), r.flatten(0, 1)) / n  # (K, K)
        mm = torch.einsum("nk,nl->kl", m.flatten(0, 1), m.flatten(0, 1)) / n  # (K, K)
        mu = m.mean(dim=(0, 1))  # (K,)
        if int(self.motion_updates) == 0:
            self.motion_cov.copy_(cov)
            self.mu_pair.copy_(mm)
            self.mu_mean.copy_(mu)
        else:
            mom = self.cfg.agent_momentum
            for buf, new_value in ((self.motion_cov, cov), (self.mu_pair, mm), (self.mu_mean, mu)):
                buf.mul_(mom).add_((1 - mom) * new_value)
        self.motion_updates += 1

    def _motion(self, kp: torch.Tensor) -> dict[str, torch.Tensor]:
        """Global and local motion of detector keypoints kp (B, T, K, 3) (normalised units).

        Returns "shift" (B, T-1, 2) agent shift, "bg" (B, T-1, 2) background motion, "features" (B, T-1, 6K)
        local-action features (zero for non-agent keypoints).
        """
        a = self.agent_weights  # (K,)
        xy, mu = kp[..., :2], kp[..., 2]
        d = xy[:, 1:] - xy[:, :-1]  # (B, T-1, K, 2)
        m = torch.minimum(mu[:, 1:], mu[:, :-1])  # (B, T-1, K)
        wa = a * m
        shift = torch.stack([weighted_median(d[..., i], wa) for i in range(2)], dim=-1)  # (B, T-1, 2)
        bg = self._background_motion(d, m, a)
        wc = a * mu[:, :-1]  # (B, T-1, K)
        centre = (wc.unsqueeze(-1) * xy[:, :-1]).sum(2) / wc.sum(2, keepdim=True).clamp_min(1e-6)  # (B, T-1, 2)
        residual = (d - shift.unsqueeze(2)) * a[:, None]  # (B, T-1, K, 2)
        rel = (xy[:, :-1] - centre.unsqueeze(2)) * a[:, None]
        dmu = (mu[:, 1:] - mu[:, :-1]) * a
        px = (max(self.hm_h, self.hm_w) - 1) / 2  # normalised units -> heatmap pixels: features of order 1
        feats = torch.cat([residual * px, dmu.unsqueeze(-1), rel * px, (mu[:, :-1] * a).unsqueeze(-1)], dim=-1)
        return {"shift": shift, "bg": bg, "features": feats.flatten(2)}  # features (B, T-1, 6K)

    def _agent_mask(self, kp: torch.Tensor) -> torch.Tensor:
        """Agent mask from normalised keypoints kp (N, K, 3) -> (N, 1, H, W) in {0, 1}."""
        a = self.agent_weights
        strength = a * (2 * kp[..., 2]).clamp(0, 1)  # (N, K): weak keypoints make no blob
        blobs = self._maps(torch.cat([kp[..., :2], strength.unsqueeze(-1)], dim=-1), self.cfg.mask_sigma)
        m = blobs.amax(dim=1, keepdim=True)  # (N, 1, h, w)
        m = F.interpolate(m, size=(self.height, self.width), mode="bilinear", align_corners=False)
        return (m >= self.cfg.mask_threshold).float()

    # ================================================================================================ vision
    def _detect(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """v (B, T, 3, H, W) in [-0.5, 0.5] -> heatmaps (B, T, K, h, w), keypoints (B, T, K, 3)."""
        b, t = v.shape[:2]
        heat, kp = self.detector(v.flatten(0, 1))
        return heat.reshape(b, t, *heat.shape[1:]), kp.reshape(b, t, *kp.shape[1:])

    def _reconstruct(self, kp: torch.Tensor, first: torch.Tensor, appearance: torch.Tensor,
                     first_maps: torch.Tensor) -> torch.Tensor:
        """Render keypoints kp (B, T, K, 3) given the first frame (B, 3, H, W) in [-0.5, 0.5], its appearance
        features (B, C, h, w) and keypoint maps (B, K, h, w) -> frames (B, T, 3, H, W) in [-0.5, 0.5] (unclamped)."""
        b, t = kp.shape[:2]
        maps = self._maps(kp.flatten(0, 1))  # (B*T, K, h, w)
        app = appearance.unsqueeze(1).expand(b, t, *appearance.shape[1:]).flatten(0, 1)
        fm = first_maps.unsqueeze(1).expand(b, t, *first_maps.shape[1:]).flatten(0, 1)
        out = self.reconstructor(maps, app, fm)  # (B*T, 3, H, W)
        out = out.reshape(b, t, 3, self.height, self.width)
        return first.unsqueeze(1) + out  # (B, T, 3, H, W): skip connection from the first frame

    # ================================================================================================ dynamics
    def _dynamics(self, x_obs: torch.Tensor, shifts: torch.Tensor, codes: torch.Tensor, step: int, n_obs: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """VRNN unroll with best-of-many and scheduled sampling (method.md 9.4).

        Args:
            x_obs: (B, T, 3K) detector keypoints (already stop-gradiented).
            shifts: (B, T-1, 2) normalised agent shifts; codes: (B, T-1, A) code vectors (straight-through).
            n_obs: frames with a posterior; the rest sample the stop-gradiented prior.
        Returns:
            coord loss 1/2 sum (x - x^)^2 / (B T), KL (mean over B and observed t), decoded keypoints (B, T, 3K).
        """
        cfg = self.cfg
        b, t, _ = x_obs.shape
        n = cfg.num_samples_bom
        h = self.vrnn.initial_state(b, x_obs.device)
        rows = torch.arange(b, device=x_obs.device)
        coord = x_obs.new_zeros(())
        kls, decoded = [], []
        x_in = x_obs[:, 0]
        agent = self.agent_weights  # (K,): fixed during the unroll (the statistics are updated before it)
        for i in range(t):
            observed = i < n_obs
            mp, sp = self.vrnn.prior(h)  # (B, Z)
            if observed:
                mq, sq = self.vrnn.posterior(torch.cat([h, x_obs[:, i]], dim=-1))
                kls.append(_gaussian_kl(mq, sq, mp, sp))  # (B,)
                mean, std = mq, sq
            else:
                mean, std = mp.detach(), sp.detach()
            z = mean + std * torch.randn(n, *mean.shape, device=mean.device)  # (N, B, Z)
            xs = self.vrnn.decode(h.unsqueeze(0).expand(n, -1, -1), z)  # (N, B, 3K)
            if cfg.residual_keypoints:  # change from the fed keypoints moved by the global action
                base = (x_obs[:, 0] if i == 0
                        else self._moved(x_in.view(b, -1, 3), shifts[:, i - 1], agent).flatten(1))
                xs = base + xs
            best = best_of_many(xs, x_obs[:, i])  # (B,)
            z_best, x_best = z[best, rows], xs[best, rows]
            coord = coord + 0.5 * (x_best - x_obs[:, i]).square().sum()
            decoded.append(x_best)
            if i < t - 1:
                use_true = bool(torch.rand(()) < cfg.p_true(step, observed))  # one coin per step for the batch
                x_in = x_obs[:, i] if use_true else x_best
                h = self.vrnn.update(h, x_in, z_best, shifts[:, i], codes[:, i])
        kl = torch.stack(kls, dim=1).mean()
        return coord / (b * t), kl, torch.stack(decoded, dim=1)

    @staticmethod
    def _moved(kp: torch.Tensor, shift: torch.Tensor, agent: torch.Tensor) -> torch.Tensor:
        """Keypoints kp (B, K, 3) with the agent keypoints (``agent`` (K,) 0/1 weights) moved by shift (B, 2)
        (normalised units) -> (B, K, 3)."""
        move = agent.to(kp.dtype)[None, :, None] * shift[:, None, :]  # (B, K, 2)
        return kp + F.pad(move, (0, 1))

    # ================================================================================================ training
    def training_losses(self, frames: torch.Tensor, step: int
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """All Struct-VRNN losses on a batch of clips, plus the local-action VQ loss.

        Args:
            frames: (B, T, 3, H, W) float in [-1, 1], T >= 2; the first ``min(observed_steps, T)`` frames are
                observed (posterior), the rest predicted (prior).
            step: global training step (KL annealing, scheduled sampling, agent statistics warm-up).
        Returns:
            total (scalar with grad); terms (detached scalars): "image", "separation", "sparsity", "coord",
            "kl", "vq", "kernel_l2" (unweighted), "vq_perplexity", "vq_usage", "agent_keypoints"; aux (detached):
            "mask" (B, T, 1, H, W) agent masks in {0, 1}, "fg" (B, T, 3, H, W) keypoint overlays in [-1, 1],
            "composite" (B, T-1, 3, H, W) reconstructions of frames 1.. from the detected keypoints in [-1, 1]
            (grey where ``cfg.image_frames`` skipped a frame), "codes" (B, T-1) long. The VRNN's own predictions
            show in the trainer's generated videos.
        """
        self._check_frames(frames, 5, "frames")
        cfg = self.cfg
        b, t = frames.shape[:2]
        if t < 2:
            raise ValueError(f"training clips need at least 2 frames, got T={t}")
        n_obs = min(cfg.observed_steps, t)
        v = frames / 2  # (B, T, 3, H, W) in [-0.5, 0.5]
        terms: dict[str, torch.Tensor] = {}

        # ---- vision: keypoints of every frame, reconstruction conditioned on the first frame. With
        # cfg.image_frames = n < T only frame 0 and n - 1 random other frames are reconstructed (the same for the
        # whole batch); the others are detected without gradient (their keypoints feed the dynamics only).
        sel = self._image_frames(t)  # sorted frame indices, sel[0] == 0
        heat, kp_sel = self._detect(v[:, sel])  # (B, n, K, h, w), (B, n, K, 3)
        if len(sel) < t:
            rest = torch.ones(t, dtype=torch.bool, device=sel.device)
            rest[sel] = False
            rest = rest.nonzero().flatten()
            with torch.no_grad():
                _, kp_rest = self._detect(v[:, rest])  # (B, T - n, K, 3)
            kp = torch.cat([kp_sel, kp_rest], dim=1)[:, torch.cat([sel, rest]).argsort()]  # (B, T, K, 3) in order
        else:
            kp = kp_sel
        appearance = self.appearance(self._nhwc(v[:, 0])).contiguous()  # (B, C, h, w)
        first_maps = self._maps(kp[:, 0])  # (B, K, h, w)
        recon = self._reconstruct(kp_sel, v[:, 0], appearance, first_maps)  # (B, n, 3, H, W)
        terms["image"] = 0.5 * (v[:, sel] - recon).square().sum() / (b * len(sel))
        # sum_t mean_{B,K} mean_{h,w} R (the mean over the selected frames, times T)
        terms["sparsity"] = heat.mean(dim=(3, 4)).mean(dim=(0, 2)).mean() * t
        terms["separation"] = separation_loss(kp[:, :n_obs], cfg.separation_sigma)
        terms["kernel_l2"] = torch.stack([w.square().sum() for w in regularised_kernels(self)]).sum()

        # ---- actions from the stop-gradiented keypoints
        kp_sg = kp.detach()
        if self.training:
            self._update_motion_stats(kp_sg, step)
        motion = self._motion(kp_sg)
        u = self.action(motion["features"].flatten(0, 1))  # (B*(T-1), A)
        code, ids, terms["vq"] = self.action.vq(u)
        self._recent_u = u.detach()

        # ---- dynamics
        terms["coord"], terms["kl"], _ = self._dynamics(
            kp_sg.flatten(2), motion["shift"], code.view(b, t - 1, -1), step, n_obs)

        weights = {"image": cfg.w_image, "sparsity": cfg.w_sparsity, "separation": cfg.w_separation,
                   "kernel_l2": cfg.w_kernel_l2, "vq": cfg.w_vq, "coord": cfg.w_coord, "kl": cfg.kl_weight(step)}
        total = torch.stack([w * terms[k] for k, w in weights.items() if w != 0] or
                            [terms["image"] * 0]).sum()

        counts = torch.bincount(ids, minlength=cfg.num_codes).float()
        p = counts / counts.sum().clamp_min(1)
        out = {k: v_.detach() for k, v_ in terms.items()}
        out["vq_perplexity"] = torch.exp(-(p * torch.log(p.clamp_min(1e-10))).sum())
        out["vq_usage"] = (counts > 0).float().mean()
        out["agent_keypoints"] = self.agent_weights.sum()
        with torch.no_grad():
            kpd = kp_sg.flatten(0, 1)  # (B*T, K, 3)
            masks = self._agent_mask(kpd).reshape(b, t, 1, self.height, self.width)
            aux = {"mask": masks, "fg": self._overlay(v.flatten(0, 1), kpd).reshape(b, t, 3, self.height, self.width),
                   "composite": self._full_clip(recon, sel, t)[:, 1:], "codes": ids.view(b, t - 1)}
        return total, out, aux

    def _image_frames(self, t: int) -> torch.Tensor:
        """Frames whose reconstruction is trained this step: all, or 0 plus image_frames - 1 random ones."""
        n = self.cfg.image_frames
        if n <= 0 or n >= t:
            return torch.arange(t, device=self.device)
        rest = torch.randperm(t - 1)[: n - 1] + 1
        return torch.cat([torch.zeros(1, dtype=torch.long), rest.sort().values]).to(self.device)

    @staticmethod
    def _full_clip(recon: torch.Tensor, sel: torch.Tensor, t: int) -> torch.Tensor:
        """Reconstructions (B, n, 3, H, W) in [-0.5, 0.5] of frames ``sel`` -> (B, T, 3, H, W) in [-1, 1], grey
        (0) where a frame was not reconstructed."""
        out = recon.new_zeros(recon.shape[0], t, *recon.shape[2:])
        return out.index_copy(1, sel, (2 * recon.detach()).clamp(-1, 1))

    def _overlay(self, v: torch.Tensor, kp: torch.Tensor) -> torch.Tensor:
        """Frames v (N, 3, H, W) in [-0.5, 0.5] with keypoint maps drawn on top -> (N, 3, H, W) in [-1, 1].

        Agent keypoints are drawn red, the others green."""
        a = self.agent_weights
        maps = self._maps(kp)  # (N, K, h, w)
        agent = (maps * a[:, None, None]).amax(dim=1, keepdim=True)
        other = (maps * (1 - a)[:, None, None]).amax(dim=1, keepdim=True)
        heat = F.interpolate(torch.cat([agent, other], dim=1), size=(self.height, self.width), mode="bilinear",
                             align_corners=False).clamp(0, 1)  # (N, 2, H, W)
        img = v + 0.5  # [0, 1]
        img = img * (1 - heat.amax(dim=1, keepdim=True)) + torch.cat([heat, torch.zeros_like(heat[:, :1])], dim=1)
        return (img * 2 - 1).clamp(-1, 1)

    # ================================================================================================ analysis
    @torch.no_grad()
    def detect_keypoints(self, frames: torch.Tensor) -> torch.Tensor:
        """Detector keypoints: frames (B, T, 3, H, W) uint8 or float [0, 1] -> (B, T, K, 3) = (x, y) in frame
        pixel-index coordinates (+y down) and mu in [0, 1]."""
        self._check_frames(frames, 5, "frames")
        with self._eval_mode():
            _, kp = self._detect(self._to_model_range(frames))
        return self._px(kp)

    @torch.no_grad()
    def segment(self, frames: torch.Tensor) -> torch.Tensor:
        """Agent masks from the agent keypoints: frames (B, T, 3, H, W) uint8 or [0, 1] -> (B, T, 1, H, W) {0, 1}."""
        self._check_frames(frames, 5, "frames")
        with self._eval_mode():
            _, kp = self._detect(self._to_model_range(frames))
            return self._agent_mask(kp.flatten(0, 1)).reshape(*frames.shape[:2], 1, self.height, self.width)

    def _infer(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """Keypoints and actions of a real clip (normalised units; eval mode is the caller's job)."""
        self._check_frames(video, 5, "video")
        if video.shape[1] < 2:
            raise ValueError(f"inferring actions needs at least 2 frames, got T={video.shape[1]}")
        _, kp = self._detect(self._to_model_range(video))
        motion = self._motion(kp)
        ids = self.action.vq.nearest(self.action(motion["features"].flatten(0, 1))).view(video.shape[0], -1)
        return {"kp": kp, "shift": motion["shift"], "bg": motion["bg"], "codes": ids}

    def _delta_px(self, d: torch.Tensor) -> torch.Tensor:
        return delta_to_pixels(d, self.height, self.width, self.hm_h, self.hm_w)

    @torch.no_grad()
    def estimate_shifts(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Agent and background content motion (dx, dy) in pixels: frames (B, T, 3, H, W) -> 2 x (B, T-1, 2)."""
        with self._eval_mode():
            r = self._infer(frames)
        return self._delta_px(r["shift"]), self._delta_px(r["bg"])

    @torch.no_grad()
    def infer_actions(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions between consecutive real frames: video (B, T, 3, H, W) uint8 or float [0, 1] ->
        shifts (B, T-1, 2) float (dx, dy) pixels (agent motion), codes (B, T-1) long."""
        with self._eval_mode():
            r = self._infer(video)
        return self._delta_px(r["shift"]), r["codes"]

    # ================================================================================================ generation
    @torch.no_grad()
    def start(self, frames: torch.Tensor) -> State:
        """Begin B rollouts from real frames (B, 3, H, W) uint8 or float in [0, 1].

        The state (batch first): "h" (B, U) GRU state; "z" (B, Z) latent of the current frame; "keypoints"
        (B, K, 3) current keypoints, (x, y) frame pixels (+y down) and mu; "first" (B, 3, H, W) the first frame
        in [-0.5, 0.5]; "appearance" (B, C, h, w) its appearance features; "first_maps" (B, K, h, w) its
        keypoint maps. Frame 0's keypoints are decoded from the posterior mean given the detected ones (with
        ``residual_keypoints``: the detected ones).
        """
        self._check_frames(frames, 4, "frames")
        with self._eval_mode():
            v = self._to_model_range(frames)
            _, kp = self.detector(v)  # (B, K, 3)
            h = self.vrnn.initial_state(v.shape[0], v.device)
            z, _ = self.vrnn.posterior(torch.cat([h, kp.flatten(1)], dim=-1))
            x = kp if self.cfg.residual_keypoints else self.vrnn.decode(h, z).view_as(kp)
            return {"h": h, "z": z, "keypoints": self._px(x), "first": v,
                    "appearance": self.appearance(self._nhwc(v)).contiguous(),
                    "first_maps": self._maps(kp)}

    @torch.no_grad()
    def step(self, state: State, shift: torch.Tensor, code: torch.Tensor,
             generator: torch.Generator | None = None,
             temperature: float | None = None) -> tuple[torch.Tensor, torch.Tensor, State]:
        """Advance every rollout by one frame. A global action that would carry the agent (located in the mask of
        its keypoints) out of ``agent_box`` is shortened to its edge.

        Args:
            state: from :meth:`start` or a previous step.
            shift: (B,) long indices into ``shift_grid`` or (B, 2) float (dx, dy) agent motion in pixels.
            code: (B,) long local action codes in [0, K).
            generator: source of the prior noise (on the model's device); None: torch's global RNG.
            temperature: z = prior mean + temperature * std * noise; None: ``cfg.step_temperature``.
        Returns:
            frame (B, 3, H, W) in [0, 1], agent mask (B, 1, H, W) in {0, 1}, next state.
        """
        b = state["h"].shape[0]
        shift_px = self._shift_pixels(shift, b)
        if self.agent_box is not None:  # the agent stays where the training video showed it (as GLASS's step)
            agent = self._agent_mask(self._unpx(state["keypoints"]))
            shift_px = kept_in_box(shift_px, *locate_agent(agent), self.agent_box)
        shift_n = delta_from_pixels(shift_px, self.height, self.width, self.hm_h, self.hm_w)
        code = self._code_ids(code, b)
        temp = self.cfg.step_temperature if temperature is None else float(temperature)
        with self._eval_mode():
            x = self._unpx(state["keypoints"])  # (B, K, 3)
            h = self.vrnn.update(state["h"], x.flatten(1), state["z"], shift_n,
                                 self.action.vq.codebook[code])
            mean, std = self.vrnn.prior(h)
            z = mean
            if temp > 0:
                z = mean + temp * std * torch.randn(mean.shape, generator=generator, device=mean.device)
            x_new = self.vrnn.decode(h, z).view_as(x)
            if self.cfg.residual_keypoints:
                x_new = self._moved(x, shift_n, self.agent_weights) + x_new
                x_new = torch.cat([x_new[..., :2].clamp(-1, 1), x_new[..., 2:].clamp(0, 1)], dim=-1)
            frame = self._reconstruct(x_new.unsqueeze(1), state["first"], state["appearance"],
                                      state["first_maps"])[:, 0]
            mask = self._agent_mask(x_new)
        new_state = {"h": h, "z": z, "keypoints": self._px(x_new), "first": state["first"],
                     "appearance": state["appearance"], "first_maps": state["first_maps"]}
        return (frame + 0.5).clamp(0, 1), mask, new_state

    @torch.no_grad()
    def generate(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruct a real clip from its first frame and its inferred actions (autoregressive, eval mode).

        The prior is sampled at ``cfg.generate_temperature`` (0: prior means, deterministic).

        Args:
            video: (B, T, 3, H, W) uint8 or float in [0, 1].
        Returns:
            frames (B, T, 3, H, W) in [0, 1] (frames[:, 0] is the real first frame) and agent masks
            (B, T, 1, H, W) in {0, 1} (mask 0 from the detected keypoints of the first frame).
        """
        with self._eval_mode():
            r = self._infer(video)
            shifts = self._delta_px(r["shift"])
            state = self.start(video[:, 0])
            first = (self._to_model_range(video[:, 0]) + 0.5).clamp(0, 1)
            frames, masks = [first], [self._agent_mask(r["kp"][:, 0])]
            for k in range(video.shape[1] - 1):
                frame, mask, state = self.step(state, shifts[:, k], r["codes"][:, k],
                                               temperature=self.cfg.generate_temperature)
                frames.append(frame)
                masks.append(mask)
        return torch.stack(frames, dim=1), torch.stack(masks, dim=1)

    # ================================================================================================ env info / io
