"""Configuration of the keypoint world model (Struct-VRNN, method.md section 9) with glassworld's actions.

Defaults are the ``video_structure`` code defaults of method.md 9.1 wherever they make sense for an
action-conditioned model on 64x64 frames; :meth:`KeypointConfig.preset` builds the three glassworld presets:

* ``paper``: the code defaults (K = 64 keypoints, 32 encoder filters, 2 layers per scale, GRU 512, BoM 10,
  8 observed + 8 predicted frames, batch 32, Adam 1e-3 with per-tensor clipnorm 10). Two deliberate changes:
  the KL scale is the paper's action-conditional (DMCS) value 0.003 instead of the code's 0.0 (with beta = 0 the
  posterior carries everything and the actions would be ignored), and the learning rate is halved every 3e4
  steps as in the paper.
* ``cpu``: 8 filters at full resolution, only the stride-2 convolutions in the encoders (``layers_per_scale`` 0:
  a 9-px receptive field at 64x64), no coordinate channels at the detector, residual keypoint decoding, K = 16,
  GRU 128, 4 + 4 frames of which 4 are reconstructed per step, batch 8, schedules compressed ~1/8, so that it
  learns something real in about 20-30 minutes on 2 CPU cores. The detector settings make each keypoint channel
  follow a thing rather than a place (on Tennis the code's settings gave channels that followed court sides).
* ``tiny``: a few channels per layer, for tests (seconds).

Frames may be any H x W divisible by 16. The heatmaps are H/``heatmap_downsample`` x W/``heatmap_downsample``
(default 4: 16 x 16 at 64 x 64 like the original, 24 x 32 at 96 x 128); every size expressed in "heatmap pixels"
(``keypoint_sigma``, ``mask_sigma``) therefore scales with the frame.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PRESETS = ("tiny", "cpu", "paper")


@dataclass
class KeypointConfig:
    """All hyperparameters of the keypoint model. Field defaults: the code defaults of method.md 9.1."""

    preset: str = "paper"
    height: int = 64  # frame size; both must be divisible by 16
    width: int = 64

    channels_last: bool = True  # NHWC convolutions: same math, 2-3x faster on CPU (mkldnn) for thin layers
    # --- vision (9.2, 9.3)
    num_keypoints: int = 64  # K
    # Coordinate channels at the detector's input (the code's default). They let a keypoint channel mean "a place"
    # (e.g. "the top half of the court") rather than "a thing": with them, Tennis channels followed court sides and
    # changed player when the players changed ends. False: the detector is fully convolutional, so a channel can
    # only respond to what it sees (e.g. the orange player's colours), wherever it is.
    detector_coords: bool = True
    heatmap_downsample: int = 4  # heatmaps are (H/d, W/d); a power of two in 1..16 (16x16 at 64x64 = the code)
    encoder_filters: int = 32  # filters at full resolution, doubled at every downsampling
    layers_per_scale: int = 2
    keypoint_sigma: float = 1.5  # std of the keypoint Gaussians in heatmap pixels (code: normalised by the width)
    image_frames: int = 0  # frames per clip whose reconstruction is trained each step (0 = all, the code)
    decoder_channels: int = 128  # width of the 1x1 conv on [maps, appearance, first maps, coords]
    # --- VRNN dynamics (9.4)
    rnn_units: int = 512
    prior_dim: int = 128
    posterior_dim: int = 128
    decoder_dim: int = 128  # hidden width of the keypoint decoder (code: 128)
    latent_size: int = 16  # Z
    # False (the paper): the keypoint decoder outputs absolute keypoints from (h, z). True: it outputs their change,
    # added to the previous keypoints moved by the global action (the agent keypoints by the shift, the others
    # not): x^_t+1 = x_t + agent * shift_t + dec(h, z), and frame 0's keypoints are the detected ones. The global
    # action is *defined* as the agent keypoints' shift, so the dynamics need not learn to carry it out.
    residual_keypoints: bool = False
    num_samples_bom: int = 10  # best-of-many samples per step in training
    observed_steps: int = 8  # frames with a posterior (T)
    predicted_steps: int = 8  # frames predicted from the prior (dT)
    # --- actions (glassworld: the same (shift, code) space as GLASS)
    num_codes: int = 6  # K local action codes (6 W-Sprites, 4 Tennis, as GLASS)
    action_dim: int = 16  # code vector size
    action_hidden: int = 128  # MLP width of the local action encoder
    shift_embed_dim: int = 32  # the global shift (2,) is embedded to this width before the GRU
    vq_beta: float = 0.25  # codebook term inside L_VQ (as GLASS)
    agent_momentum: float = 0.99  # EMA momentum of the per-keypoint motion statistics
    agent_threshold: float = 0.5  # agent keypoints: motion score >= this fraction of the largest score
    agent_warmup_steps: int = 100  # before this step the background motion is taken as 0 (no agent set yet)
    agent_min_mu: float = 0.05  # keypoints with mean intensity below this are never agent keypoints
    # The agent's keypoint channels chosen by a person (e.g. after watching the viewer's overlay), replacing the
    # co-motion rule; None = the rule. Use with init_from= and train on: the global action is measured from them.
    agent_keypoints: list[int] | None = None
    mask_sigma: float = 2.0  # std (heatmap px) of the agent-mask blobs around agent keypoints
    mask_threshold: float = 0.5  # agent mask = max over agent blobs >= this
    step_temperature: float = 1.0  # step(): prior samples z = mean + T * std * noise (0 = the prior mean)
    generate_temperature: float = 0.0  # generate(): 0 = prior means (the most likely video for the actions)

    # --- loss weights (9.4 "Losses"); 0 disables a term
    w_image: float = 1.0  # 1/2 sum (v - v^)^2 / (B T), images in [-0.5, 0.5]
    w_coord: float = 1.0  # 1/2 sum (sg[x] - x^)^2 / (B T)
    w_separation: float = 10.0  # lambda_sep (code default; paper 0.02-0.1)
    separation_sigma: float = 0.1  # sigma_sep in normalised keypoint units (code default; paper 0.002-0.02)
    w_sparsity: float = 5.0 / 32  # lambda_sparse / 32: Keras divides the activity loss by the batch (32)
    kl_scale: float = 0.003  # beta (paper DMCS; the code's 0.0 would let the posterior ignore the actions)
    kl_annealing_steps: int = 1000  # linear 0 -> beta
    w_vq: float = 1.0  # L_VQ of the local action codes
    w_kernel_l2: float = 1e-4  # Keras L2 kernel regulariser on the conv layers: 1e-4 sum w^2
    clip_grad_norm: float = 10.0  # Keras clipnorm: each gradient tensor clipped to this norm; 0 = off
    # --- scheduled sampling (9.4 step 5): p_true(step) = start - (start - end) min(step / ramp, 1)
    ss_ramp_steps: int = 8000
    p_true_obs_start: float = 1.0
    p_true_obs_end: float = 0.1
    p_true_pred_start: float = 1.0
    p_true_pred_end: float = 0.5

    # --- optimisation
    lr: float = 1e-3
    weight_decay: float = 0.0  # the L2 regulariser is w_kernel_l2 (conv kernels only), not Adam's decay
    lr_milestones: list[int] = field(default_factory=lambda: [30000, 60000, 90000])
    lr_gamma: float = 0.5
    batch_size: int = 32
    frame_skip: int = 0  # dataset default: frames skipped between clip frames (0 W-Sprites, 4 Tennis)

    def __post_init__(self) -> None:
        self.lr_milestones = [int(v) for v in self.lr_milestones]
        if self.height % 16 or self.width % 16 or self.height <= 0 or self.width <= 0:
            raise ValueError(
                f"the keypoint model needs a frame size divisible by 16, got {self.height}x{self.width}; resize "
                f"the data (e.g. {max(16, self.height // 16 * 16)}x{max(16, self.width // 16 * 16)})")
        if self.heatmap_downsample not in (1, 2, 4, 8, 16):
            raise ValueError(f"heatmap_downsample must be one of 1, 2, 4, 8, 16, got {self.heatmap_downsample}")
        if self.heatmap_height < 2 or self.heatmap_width < 2:
            raise ValueError(f"heatmaps of {self.heatmap_height}x{self.heatmap_width} are too small; use a "
                             "smaller heatmap_downsample")
        for name in ("num_keypoints", "num_codes", "encoder_filters", "layers_per_scale", "rnn_units",
                     "latent_size", "num_samples_bom", "observed_steps", "action_dim"):
            if getattr(self, name) < (0 if name == "layers_per_scale" else 1):
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.predicted_steps < 0:
            raise ValueError(f"predicted_steps must be >= 0, got {self.predicted_steps}")
        if self.observed_steps + self.predicted_steps < 2:
            raise ValueError("observed_steps + predicted_steps must be >= 2 (a clip needs one transition)")
        if self.agent_keypoints is not None:
            self.agent_keypoints = sorted({int(k) for k in self.agent_keypoints})
            bad = [k for k in self.agent_keypoints if not 0 <= k < self.num_keypoints]
            if bad or not self.agent_keypoints:
                raise ValueError(f"agent_keypoints must be a non-empty list of keypoint channels in "
                                 f"[0, {self.num_keypoints}), got {self.agent_keypoints}")
        if not 0.0 < self.agent_threshold <= 1.0:
            raise ValueError(f"agent_threshold must lie in (0, 1], got {self.agent_threshold}")
        if not 0.0 <= self.agent_momentum < 1.0:
            raise ValueError(f"agent_momentum must lie in [0, 1), got {self.agent_momentum}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def heatmap_height(self) -> int:
        return self.height // self.heatmap_downsample

    @property
    def heatmap_width(self) -> int:
        return self.width // self.heatmap_downsample

    @property
    def appearance_channels(self) -> int:
        """Width of the encoders' output: filters doubled once per downsampling (128 = 32 * 64 / 16 in 9.3)."""
        return self.encoder_filters * self.heatmap_downsample

    @property
    def clip_len_max(self) -> int:
        """Frames a training clip needs: observed + predicted."""
        return self.observed_steps + self.predicted_steps

    # ------------------------------------------------------------------ schedules
    def num_obs(self, step: int) -> int:
        """Clip length at ``step`` (constant): observed + predicted frames."""
        return self.clip_len_max

    def num_gt(self, step: int) -> int:
        """Frames with a posterior (the rest are predicted from the prior): ``observed_steps``."""
        return self.observed_steps

    def kl_weight(self, step: int) -> float:
        """beta annealed linearly from 0 over ``kl_annealing_steps``."""
        if self.kl_annealing_steps <= 0:
            return self.kl_scale
        return self.kl_scale * min(max(step, 0) / self.kl_annealing_steps, 1.0)

    def p_true(self, step: int, observed: bool) -> float:
        """Probability of feeding the detector's keypoints (not the decoded ones) to the RNN at ``step``."""
        start, end = ((self.p_true_obs_start, self.p_true_obs_end) if observed
                      else (self.p_true_pred_start, self.p_true_pred_end))
        frac = 1.0 if self.ss_ramp_steps <= 0 else min(max(step, 0) / self.ss_ramp_steps, 1.0)
        return start - (start - end) * frac

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints and logs."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KeypointConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown keypoint config keys {unknown}; valid keys: {sorted(names)}")
        return cls(**d)

    @classmethod
    def from_preset(cls, name: str, height: int, width: int, **overrides: Any) -> KeypointConfig:
        """Build the ``tiny`` | ``cpu`` | ``paper`` preset for frames of ``height`` x ``width`` (also reachable
        as ``KeypointConfig.preset(...)``).

        ``overrides`` are field values applied last (e.g. ``num_keypoints=32``).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown keypoint preset {name!r}; choose one of {list(PRESETS)}")
        wide = width / height >= 2  # Tennis-like frames (256x96)
        v: dict[str, Any] = {"preset": name, "height": int(height), "width": int(width)}
        v["frame_skip"] = 4 if wide else 0
        v["num_codes"] = 4 if wide else 6
        if name == "cpu":
            v.update(
                # thin full-resolution layers and 4 of 8 frames reconstructed per step: full-resolution
                # convolutions dominate the cost on a CPU (96x128: ~1.3 s/step on one busy core)
                num_keypoints=16, encoder_filters=8, layers_per_scale=0, detector_coords=False,
                decoder_channels=32, image_frames=4,
                rnn_units=128, prior_dim=64, posterior_dim=64, decoder_dim=64, latent_size=16, num_samples_bom=10,
                observed_steps=4, predicted_steps=4, action_hidden=64, shift_embed_dim=16, residual_keypoints=True,
                # keypoints must move apart on small data: the paper's separation (code's is strong at K=16)
                w_separation=1.0, separation_sigma=0.05,
                kl_annealing_steps=300, ss_ramp_steps=1500, agent_warmup_steps=50,
                lr=1e-3, lr_milestones=[2500, 5000], batch_size=8,
            )
        elif name == "tiny":
            v.update(
                num_keypoints=4, heatmap_downsample=4, encoder_filters=4, layers_per_scale=1, decoder_channels=8,
                rnn_units=16, prior_dim=8, posterior_dim=8, decoder_dim=16, latent_size=4, num_samples_bom=3,
                observed_steps=2, predicted_steps=2, num_codes=4, action_dim=4, action_hidden=8,
                shift_embed_dim=4, residual_keypoints=True, kl_annealing_steps=4, ss_ramp_steps=4, agent_warmup_steps=2,
                lr=1e-3, lr_milestones=[1000000], batch_size=2,
            )
        v.update(overrides)
        return cls.from_dict(v)


# ``KeypointConfig.preset(name, H, W)`` (the registry's entry point) beside the ``preset`` field: defined after the
# class so that the dataclass sees the field's default "paper", not the method (instances keep the field value).
KeypointConfig.preset = KeypointConfig.from_preset  # type: ignore[assignment,method-assign]
