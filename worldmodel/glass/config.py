"""Configuration of the GLASS model (method.md sections 2, 5 and 6): every size, loss weight and schedule value.

Defaults are the official W-Sprites values; :meth:`GlassConfig.preset` builds the three glassworld presets:

* ``paper``: the official sizes (~18M parameters) and schedules; Tennis values when width / height >= 2.
* ``cpu``: a model one to two orders of magnitude cheaper per step, with schedules compressed so that it learns
  something real in about an hour on 2 CPU cores (~1-3k steps).
* ``tiny``: a few channels per layer, for tests (seconds).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

PRESETS = ("tiny", "cpu", "paper")


@dataclass
class GlassConfig:
    """All GLASS hyperparameters. Field defaults are the official W-Sprites values (method.md)."""

    preset_name: str = "paper"  # which preset built this config (informational)
    height: int = 96  # frame size; both must be divisible by 16 (encoder /8, dynamics /16)
    width: int = 128

    channels_last: bool = True  # NHWC convolutions: same math, 2-3x faster on CPU (mkldnn) for thin layers
    pool_first: bool = False  # downsampling blocks pool before their conv (cheap; official: conv then pool)
    # --- masking network M (2.1)
    mask_channels: int = 64  # full- and half-resolution width
    mask_mid_channels: int = 256  # width at 1/4 resolution
    mask_half_channels: int = 0  # width of the first downsampling block's output (1/2 res); 0: mask_mid_channels
    mask_res_blocks: int = 9  # residual blocks at 1/4 resolution (after the two downsampling blocks)
    mask_up_res_blocks: tuple[int, int] = (1, 1)  # residual blocks after the upsampling to 1/2 and to 1/1
    # --- inpainting network N (2.2): widths at 1/2, 1/4, 1/8
    inpaint_channels: tuple[int, int, int] = (16, 32, 64)
    inpaint_fill: float = -1.1  # value written into the hole (outside the image range)
    # --- pose networks P_f, P_b (2.3): trunk widths at 1/2, 1/4, 1/8 (x2 blocks at 1/8), then MLP widths
    pose_channels: tuple[int, int, int, int] = (16, 32, 64, 128)
    pose_hidden: tuple[int, int] = (64, 32)
    # --- encoder E (2.4): widths at 1/2, 1/4, 1/8; the last one is the state width (phi); +1 attention channel
    encoder_channels: tuple[int, int, int] = (16, 32, 64)
    # --- state compressor C (2.5)
    state_channels: int = 8  # c = dynamics state size s (8 W-Sprites, 16 Tennis)
    # --- action network A (2.6)
    action_cnn_channels: int = 128  # width of the shared CNN's first (downsampling) block
    action_state_size: int = 64  # psi width (output of the shared CNN)
    action_bilinear_channels: int = 128  # width of the bilinear chain
    action_bilinear_layers: int = 4  # P
    action_mlp_hidden: tuple[int, int] = (128, 64)
    action_dim: int = 16  # code vector size
    num_codes: int = 6  # K (6 W-Sprites, 4 Tennis)
    vq_beta: float = 0.25  # weight of the codebook term inside L_VQ (hard-coded in the official code)
    # --- dynamics (2.7)
    dynamics_hidden: int = 32  # h (32 W-Sprites, 64 Tennis)
    # --- renderer D (2.8): widths at 1/4, 1/2, 1/1
    renderer_channels: tuple[int, int, int] = (128, 64, 32)
    renderer_final_kernel: int = 7  # kernel of the full-resolution head
    # Agent carry (not in method.md; official code: False): the full-resolution foreground and mask of a step are
    # the previous step's, moved by the global action, blended with the renderer's output by a gate the renderer
    # predicts per pixel (a 5th output channel): f^_{t+1} = g D_rgb + (1 - g) shift(f_t), likewise the mask. The
    # renderer then draws only what changes (a swing, new content at the edges) instead of redrawing the whole
    # agent from the 1/8-resolution state every step, which blurs it (GlassTennis cpu: generated agent
    # sharpness 0.43 of the real one's). In generation the carried layer moves by whole pixels (nearest
    # sampling; the sub-pixel remainder is kept for the next step), so it does not blur over long rollouts.
    fg_carry: bool = False
    carry_gate_init: float = -2.0  # the gate's initial logit: sigmoid(-2) = 0.12, the carried layer dominates
    # Hard carry gate (not in method.md): every full-resolution pixel is either carried or redrawn, never a mix:
    # forward f^ = D where g > 0.5, else the carried layer; backward the gradient of the soft blend
    # g D + (1 - g) carried (straight-through), so D and the gate train as with the soft gate. A soft gate g on a
    # still pixel keeps (1 - g)^t of the sharp carried value after t free-running steps (procedural W-Sprites:
    # g ~0.2 on the agent, agent_sharpness@16 0.24); a shut hard gate keeps all of it. Off in every preset: on that
    # command (one run, docs/results/world_sprites_hard/) the gate opened on half the agent, which the renderer then
    # redrew whole: sharpness@1 0.76 -> 0.59, @16 0.24 -> 0.28, pos_err@16 4.2 -> 4.7 px, nmi_g 0.13 -> 0.09.
    carry_gate_hard: bool = False
    # Static background (not in method.md; official code: False): the background shift Delta_B is 0 instead of
    # P_b's estimate, in training and in inference. ``glassworld world`` sets it from the data (the background
    # shifted in < 1 % of train transitions, by phase correlation; worldmodel/datastats). P_b is biased on a
    # still background: on the 45-min Breakout world it estimated ~0.1 px per step, and generation, which replays
    # the estimated shifts, drifted the background 1.5-2 px down and right in 16 steps (whole-frame PSNR 20.4 dB
    # against 42.2 for a frozen first frame).
    static_background: bool = False
    # Agent window (not in method.md; official code: (0, 0), the whole frame): the local-motion part (E, C, A,
    # dynamics, renderer) works on an (h, w)-px window of the foreground that starts centred on the agent and moves
    # with the global action by whole pixels, and its output is pasted back into the frame there. The shift is
    # then already removed from what the local action and the renderer see, the carried agent needs no resampling,
    # and every step costs (h w) / (H W) of the whole frame's convolutions. (0, 0) or a window as large as the
    # frame: the whole frame. Off in every preset; ``glassworld world`` sets it from the mask-size target it derives
    # (:func:`agent_window`; by hand: ``+model.agent_crop=[32,32]``).
    agent_crop: tuple[int, int] = (0, 0)

    # --- loss weights (5); 0 disables a term (perceptual terms are then not computed at all)
    w_reconstruction: float = 1.0  # L_RECJ, weighted L1 of the joint composite
    w_foreground: float = 1.0  # L_RECF
    w_background: float = 2.0  # L1 part of L_RECB
    w_background_perceptual: float = 0.02  # VGG part of L_RECB
    w_binary_mask: float = 0.5  # L_BIN
    w_mask_size: float = 0.1  # L_SIZE
    w_multiscale_global: float = 1.0  # L_RECU
    w_multiscale_local: float = 1.0  # L_RECS
    w_multiscale_perceptual: float = 1.0  # L_LMA-VGG
    w_cycle: float = 0.2  # L_CYC
    w_vq: float = 0.1  # L_VQ
    w_mask_reconstruction: float = 0.2  # L_MSK
    mask_size: float = 0.06  # theta of L_SIZE (0.06 W-Sprites, 0.01 Tennis)
    # Start the masking head at the size prior (sigmoid bias = logit(theta)) instead of PyTorch's default init
    # (masks ~0.5 everywhere). With the default init the binary-mask loss (weight 0.5) locks whichever pixels start
    # above 0.5 at 1 faster than L_SIZE (0.1) can pull them down; in short CPU runs we saw the mask settle on the
    # frame border (56% of the frame) within 20 steps and stay there. Official code: False.
    mask_prior_init: bool = False
    # L_MSK as a class-balanced L1: positives (agent pixels of sg[m]) and negatives each weigh half. With a small
    # agent (Tennis: ~1.5% of the frame) the plain L1 is minimised by an empty mask: in a 2.4k-step CPU run the
    # decoder's mask stayed below 0.04 everywhere, the composite dropped the agent (mdr = 1). Official code: False.
    mask_reconstruction_balanced: bool = False
    # L_AREA (not in method.md): |area of the decoder's mask - area of sg[m]| per generated frame. It does not care
    # where the mask is, so a rollout cannot lower it by fading an agent whose position it is unsure of, which a
    # pixel loss rewards (the Tennis cpu model's dreamed player faded after 25-50 steps). It also stops the
    # class-balanced L_MSK (which weighs a missed agent pixel ~20x a false one in a 32x32 window) from growing the
    # generated mask into a halo: on the 45-min Tennis 32x32-window world the generated mask grew 48 -> 89 px in 8
    # steps and the renderer redrew the agent (carry gate 0.25-0.35 on it), agent_sharpness@16 0.31; at weight 1
    # (on in the cpu and tiny presets) the mask keeps 48 px, the gate on the agent is ~0 and sharpness@16 is 0.97
    # (docs/results/world_codes/). Official code: 0.
    w_mask_area: float = 0.0
    # L_GUARD (not in method.md): on a frame where the mask locates no agent (fewer than 4 px above 0.5 at a 64-px
    # scale), 1 - m averaged over the pixels that change between that frame and a neighbour (a channel moves by
    # more than ``motion_guard_change``; frames where more than half the pixels change, a cut or a pan, are left
    # out). It is zero once the mask finds something: it only pulls an empty mask onto what moves. Without it a
    # small agent's mask never forms: at the size prior (theta = 0.5 % of the frame) the mask starts uniformly
    # faint, L_SIZE is already met and L_BIN pushes every pixel to 0 (Pong, cpu preset: found on 0 % of training
    # frames for 500 steps). Official code: 0.
    w_motion_guard: float = 0.0
    # L_USE (not in method.md; worldmodel/glass/losses.code_usage_loss): how far the batch's soft code assignments
    # are from using all K codes evenly. Without it training leaves codes unused until the dead-code restarts
    # re-draw them (Tennis 32x32 window, 45 min: 3 of 6 used in a 500-step window). Off in every preset: its
    # first form was met by moving the actions away from every code, and the form here has not been trained on
    # real video yet. Official code: 0.
    w_code_usage: float = 0.0
    # L_GRAD (not in method.md; worldmodel/glass/losses.gradient_match_loss): the renderer's agent (full
    # resolution, in the agent window) keeps edges as strong as the real agent's. The cpu preset has no perceptual
    # term (L_LMA-VGG costs more than the rest of a step on a CPU, and no pretrained VGG can be fetched here), so
    # only L1 terms judged a redrawn agent, and their optimum under uncertainty is a blur: procedural W-Sprites,
    # 45-min world, agent_sharpness@16 0.23 against 0.96 for a frozen frame (docs/results/world_sprites_area/).
    # Carried pixels (fg_carry) already match. Off in every preset: at weight 1 on that command (one run,
    # docs/results/world_sprites_gdl/) sharpness@16 0.23 -> 0.27, nmi_g 0.09 -> 0.16, PSNR 20.1 -> 21.1 dB, but
    # pos_err@16 4.8 -> 5.6 px: not enough to turn it on unmeasured elsewhere. Official code: 0.
    w_gradient_match: float = 0.0
    # L_KEEP (not in method.md): the mean of the fg_carry renderer's gate g (f^ = g D + (1 - g) carried) over the
    # agent window of every generated frame: redraw only where the carried agent is wrong. The pixel terms weigh
    # each pixel by how much it changes (omega_U, omega_A), so on the parts of an agent that do not change they
    # barely care whether the gate redraws them, and a redrawn part blurs a little more every free-running step
    # (procedural W-Sprites, 45-min world: the figure greys out by step 4, agent_sharpness@16 0.23). At weight w the
    # gate stays shut wherever redrawing lowers those terms by less than about w per pixel. Off in every preset:
    # at 0.1 on that command (one run, docs/results/world_sprites_keep/) sharpness@1 0.76 -> 0.93 and @4 0.34 ->
    # 0.52, but @16 0.24 either way (the gate on the agent stays 0.15-0.24, and (1 - g)^t of the sharp layer
    # survives t steps), pos_err@16 4.2 -> 7.2 px. Official code: 0.
    w_carry_gate: float = 0.0
    motion_guard_change: float = 0.08  # in [0, 1] image units, as the mask-size statistics (worldmodel/datastats)
    reconstruction_weight_bias: float = 0.001  # added to omega_J

    # --- schedules (6)
    pretraining_steps: int = 3000  # GMA pretraining: LMA terms x0 before this step
    gt_start: int = 5  # teacher-forced steps at the start
    gt_end: int = 1
    gt_decrease_start: int = 0  # 0 W-Sprites, 3000 Tennis
    gt_decrease_steps: int = 25000
    obs_start: int = 6  # clip length at the start
    obs_end: int = 12  # 12 W-Sprites, 11 Tennis
    obs_increase_start: int = 50000
    obs_increase_steps: int = 30000

    # --- optimisation (6)
    lr: float = 4e-4
    weight_decay: float = 1e-6  # L2 added to the gradient (Adam, not AdamW)
    lr_milestones: list[int] = field(default_factory=lambda: [300000, 1000000])
    lr_gamma: float = 0.3333
    batch_size: int = 4
    frame_skip: int = 0  # dataset default: frames skipped between samples (0 W-Sprites, 4 Tennis)

    # --- generation (start / step; not used in training, not in method.md)
    # Every ``reencode_every`` steps a rollout re-segments its own last frame with the masking network and
    # restarts the recurrent state from that foreground (0 = never; a frame where no agent is found, mask peak
    # <= 0.5, is left alone). The dynamics are trained on clips of
    # num_obs frames; far past that the recurrent state drifts and the agent fades (Tennis cpu model: the agent
    # mask peaked above 0.5 in 14 % of rollouts after 100 steps without, 52 % with reencode_every=4, burn_in=1).
    reencode_every: int = 0
    # no-move dynamics steps on the first (and each re-encoded) foreground before the first action: they prime
    # the zero initial recurrent state, whose first prediction is the dynamics' least accurate one
    burn_in: int = 0

    def __post_init__(self) -> None:
        for name in ("agent_crop", "mask_up_res_blocks", "inpaint_channels", "pose_channels", "pose_hidden", "encoder_channels",
                     "action_mlp_hidden", "renderer_channels"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        self.lr_milestones = [int(v) for v in self.lr_milestones]
        if self.height % 16 or self.width % 16 or self.height <= 0 or self.width <= 0:
            raise ValueError(
                f"GLASS needs a frame size divisible by 16, got {self.height}x{self.width}; resize the data "
                f"(e.g. {max(16, self.height // 16 * 16)}x{max(16, self.width // 16 * 16)})")
        if self.num_codes < 1:
            raise ValueError(f"num_codes must be >= 1, got {self.num_codes}")
        if self.gt_start < 1 or self.gt_end < 1:
            raise ValueError("gt_start and gt_end must be >= 1 (at least the first frame is observed)")
        if self.obs_start < 2 or self.obs_end < 2:
            raise ValueError("obs_start and obs_end must be >= 2 (a clip needs at least one transition)")
        if self.renderer_final_kernel % 2 == 0:
            raise ValueError(f"renderer_final_kernel must be odd, got {self.renderer_final_kernel}")
        ch, cw = self.agent_crop
        if (ch, cw) != (0, 0) and (ch % 16 or cw % 16 or not 0 < ch <= self.height or not 0 < cw <= self.width):
            raise ValueError(f"agent_crop must be (0, 0) or multiples of 16 within the {self.height}x{self.width} "
                             f"frame, got {self.agent_crop}")
        if (ch, cw) == (self.height, self.width):
            self.agent_crop = (0, 0)  # a window the size of the frame is the whole frame
        if self.reencode_every < 0 or self.burn_in < 0:
            raise ValueError(f"reencode_every and burn_in must be >= 0, got {self.reencode_every}, {self.burn_in}")
        if self.carry_gate_hard and not self.fg_carry:
            raise ValueError("carry_gate_hard gates the carried layer: it needs fg_carry=true")

    # ------------------------------------------------------------------ derived sizes
    @property
    def feature_channels(self) -> int:
        """Width of phi, the encoder's state features (the attention channel comes on top)."""
        return self.encoder_channels[-1]

    @property
    def windowed(self) -> bool:
        """True when the local-motion part works on an agent window (``agent_crop``) rather than the frame."""
        return self.agent_crop != (0, 0)

    @property
    def lma_size(self) -> tuple[int, int]:
        """(h, w) px of what E, A, the dynamics and the renderer see: the agent window, or the whole frame."""
        return self.agent_crop if self.windowed else (self.height, self.width)

    @property
    def state_resolution(self) -> tuple[int, int]:
        """(R_h, R_w) of the encoder features and the dynamics state: 1/8 of :attr:`lma_size`."""
        h, w = self.lma_size
        return h // 8, w // 8

    @property
    def clip_len_max(self) -> int:
        """The most frames a training clip needs (the end of the num_obs schedule)."""
        return max(self.obs_start, self.obs_end)

    # ------------------------------------------------------------------ schedules
    def num_gt(self, step: int) -> int:
        """Teacher-forced steps at ``step`` (method.md 6): gt_start, decreasing linearly to gt_end."""
        if step < self.gt_decrease_start:
            return self.gt_start
        if self.gt_decrease_steps <= 0 or step >= self.gt_decrease_start + self.gt_decrease_steps:
            return self.gt_end
        frac = (step - self.gt_decrease_start) / self.gt_decrease_steps
        return max(min(self.gt_start, self.gt_end),
                   self.gt_start - int(frac * (self.gt_start - self.gt_end)))

    def num_obs(self, step: int) -> int:
        """Clip length at ``step`` (method.md 6): obs_start, increasing linearly to obs_end."""
        if step < self.obs_increase_start:
            return self.obs_start
        if self.obs_increase_steps <= 0 or step >= self.obs_increase_start + self.obs_increase_steps:
            return self.obs_end
        frac = (step - self.obs_increase_start) / self.obs_increase_steps
        return self.obs_start + int(frac * (self.obs_end - self.obs_start))

    def lma_active(self, step: int) -> bool:
        """False during GMA pretraining (the LMA loss terms are multiplied by 0)."""
        return step >= self.pretraining_steps

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists instead of tuples) for checkpoints and logs."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GlassConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        if "preset" in d and "preset_name" not in d:  # early name of the field
            d = {("preset_name" if k == "preset" else k): v for k, v in d.items()}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown GLASS config keys {unknown}; valid keys: {sorted(names)}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, height: int, width: int, **overrides: Any) -> GlassConfig:
        """Build the ``tiny`` | ``cpu`` | ``paper`` preset for frames of ``height`` x ``width``.

        ``overrides`` are field values applied last (e.g. ``num_codes=8``).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown GLASS preset {name!r}; choose one of {list(PRESETS)}")
        wide = width / height >= 2  # Tennis-like frames (256x96)
        v: dict[str, Any] = {"preset_name": name, "height": int(height), "width": int(width)}
        # dataset-dependent official values (method.md 2 and 6)
        v["mask_size"] = 0.01 if wide else 0.06
        v["frame_skip"] = 4 if wide else 0
        if name == "paper":
            if wide:
                v.update(state_channels=16, num_codes=4, dynamics_hidden=64, gt_decrease_start=3000, obs_end=11)
        elif name == "cpu":
            v.update(
                # widths ~1/8-1/2 of the official ones, downsampling blocks pool before their conv, and a 3x3
                # full-resolution head: full-resolution layers dominate the cost on a CPU.
                pool_first=True, mask_prior_init=True, mask_reconstruction_balanced=True, w_motion_guard=1.0,
                fg_carry=True, w_mask_area=1.0,
                mask_channels=8, mask_half_channels=16, mask_mid_channels=32, mask_res_blocks=1,
                mask_up_res_blocks=(1, 0),
                inpaint_channels=(8, 16, 32),
                pose_channels=(8, 16, 32, 64), pose_hidden=(32, 16),
                encoder_channels=(8, 16, 32),
                state_channels=16 if wide else 8,
                action_cnn_channels=64, action_state_size=32, action_bilinear_channels=64,
                action_bilinear_layers=2, action_mlp_hidden=(64, 32),
                dynamics_hidden=32,
                renderer_channels=(32, 16, 8), renderer_final_kernel=3,
                # random-backbone LPIPS on CPU costs more than the rest of a step; see README/report
                w_background_perceptual=0.0, w_multiscale_perceptual=0.0,
                # schedules compressed ~1/10-1/20: 300 GMA-only steps, then teacher forcing 5 -> 1 by step 1500
                pretraining_steps=300, gt_start=5, gt_end=1, gt_decrease_start=300, gt_decrease_steps=1200,
                obs_start=6, obs_end=6, obs_increase_start=0, obs_increase_steps=0,
                lr=5e-4, lr_milestones=[2500, 5000], batch_size=8,
            )
        else:  # tiny
            v.update(
                pool_first=True, mask_prior_init=True, mask_reconstruction_balanced=True, w_motion_guard=1.0,
                fg_carry=True, w_mask_area=1.0,
                mask_channels=4, mask_mid_channels=8, mask_res_blocks=1,
                mask_up_res_blocks=(1, 0),
                inpaint_channels=(4, 4, 8),
                pose_channels=(4, 4, 8, 8), pose_hidden=(8, 8),
                encoder_channels=(4, 8, 8),
                state_channels=4, action_cnn_channels=8, action_state_size=8, action_bilinear_channels=8,
                action_bilinear_layers=2, action_mlp_hidden=(8, 8), action_dim=4, num_codes=4,
                dynamics_hidden=8, renderer_channels=(8, 8, 4), renderer_final_kernel=3,
                w_background_perceptual=0.0, w_multiscale_perceptual=0.0,
                pretraining_steps=2, gt_start=2, gt_end=1, gt_decrease_start=2, gt_decrease_steps=4,
                obs_start=4, obs_end=4, obs_increase_start=0, obs_increase_steps=0,
                lr=1e-3, lr_milestones=[1000000], batch_size=2,
            )
        v.update(overrides)
        return cls.from_dict(v)


AGENT_WINDOW_FACTOR = 3.0


def agent_window(mask_size: float, height: int, width: int) -> tuple[int, int]:
    """An agent window (GlassConfig.agent_crop) suggested by the mask-size target theta.

    L_SIZE makes the segmented agent cover about theta H W pixels, so an agent of that area fits, with room to
    swing and to drift from the window centre, in a square of side ``AGENT_WINDOW_FACTOR`` sqrt(theta H W) (an
    a x b agent fits while b <= 9 a), rounded up to a multiple of 16 and at most the frame along each axis.
    Returns (h, w) px; (0, 0) when that is the whole frame. Tennis 64x64 (theta 0.0117): 32x32; Breakout 64x64
    (0.004): 16x16; W-Sprites 96x128 (0.06): 96x96.
    """
    side = AGENT_WINDOW_FACTOR * math.sqrt(max(mask_size, 0.0) * height * width)
    side = max(16, int(math.ceil(side / 16 - 1e-9)) * 16)
    h, w = min(side, height // 16 * 16), min(side, width // 16 * 16)
    return (0, 0) if (h, w) == (height, width) else (h, w)
