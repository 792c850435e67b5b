"""Networks of the keypoint model (method.md 9.2-9.4) and the local action encoder.

Conv layers: 3x3 'same', LeakyReLU(0.2), he_uniform kernels, zero biases, L2-regularised kernels (collected by
:func:`regularised_kernels`); dense layers: ReLU, he_uniform. The heatmap head is a 1x1 conv with glorot_uniform
init and no regulariser, as in the code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..glass.networks import VectorQuantizer  # the same straight-through quantiser as GLASS
from .config import KeypointConfig
from .keypoints import add_coord_channels, heatmaps_to_keypoints

LRELU_SLOPE = 0.2


def to_memory_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """(N, C, H, W) in channels-last memory when asked (same values; NHWC convs are faster on CPU)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _he_uniform(layer: nn.Conv2d | nn.Linear) -> None:
    nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")  # Keras he_uniform: U(+-sqrt(6 / fan_in))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class ConvAct(nn.Module):
    """Conv (3x3 'same' unless ``kernel``) + LeakyReLU(0.2); the conv's kernel is L2-regularised."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, kernel: int = 3, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)
        _he_uniform(self.conv)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.leaky_relu(x, LRELU_SLOPE) if self.act else x


class ImageEncoder(nn.Module):
    """conv(F) + layers_per_scale convs at full resolution; then per halving: filters x2, a stride-2 conv and
    layers_per_scale convs. (N, C_in, H, W) -> (N, F * d, H / d, W / d) with d = heatmap_downsample."""

    def __init__(self, cfg: KeypointConfig, in_ch: int):
        super().__init__()
        f = cfg.encoder_filters
        layers: list[nn.Module] = [ConvAct(in_ch, f)]
        layers += [ConvAct(f, f) for _ in range(cfg.layers_per_scale)]
        for _ in range(int(math.log2(cfg.heatmap_downsample))):
            layers.append(ConvAct(f, 2 * f, stride=2))
            f *= 2
            layers += [ConvAct(f, f) for _ in range(cfg.layers_per_scale)]
        self.net = nn.Sequential(*layers)
        self.out_channels = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class KeypointDetector(nn.Module):
    """phi_det (9.2): [image, coord channels] -> encoder -> 1x1 conv -> softplus heatmaps -> keypoints.

    Without ``cfg.detector_coords`` the input is the image alone (a fully convolutional detector)."""

    def __init__(self, cfg: KeypointConfig):
        super().__init__()
        self.coords = cfg.detector_coords
        self.encoder = ImageEncoder(cfg, 3 + 2 * self.coords)
        self.channels_last = cfg.channels_last
        self.head = nn.Conv2d(self.encoder.out_channels, cfg.num_keypoints, 1)
        nn.init.xavier_uniform_(self.head.weight)  # Keras glorot_uniform, no regulariser
        nn.init.zeros_(self.head.bias)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 3, H, W) in [-0.5, 0.5] -> heatmaps (N, K, h, w) >= 0, keypoints (N, K, 3)."""
        x = to_memory_format(add_coord_channels(images) if self.coords else images, self.channels_last)
        heat = F.softplus(self.head(self.encoder(x))).contiguous()  # (N, K, h, w)
        return heat, heatmaps_to_keypoints(heat)


class Reconstructor(nn.Module):
    """phi_rec (9.3): [maps(x_t), phi_app(v_1), maps(x_1)] + coords -> 1x1 conv -> upsampling decoder -> v_t - v_1.

    Each decoder level halves the filters, upsamples x2 (bilinear, align_corners=True) and applies
    max(1, layers_per_scale) convs; a final 1x1 conv gives 3 channels without activation.
    """

    def __init__(self, cfg: KeypointConfig, appearance_channels: int):
        super().__init__()
        k, c = cfg.num_keypoints, cfg.decoder_channels
        self.channels_last = cfg.channels_last
        self.inp = ConvAct(2 * k + appearance_channels + 2, c, kernel=1)
        levels: list[nn.Module] = []
        for _ in range(int(math.log2(cfg.heatmap_downsample))):
            c_out = max(4, c // 2)
            convs = [ConvAct(c, c_out)] + [ConvAct(c_out, c_out) for _ in range(max(1, cfg.layers_per_scale) - 1)]
            levels.append(nn.Sequential(*convs))
            c = c_out
        self.levels = nn.ModuleList(levels)
        self.out = ConvAct(c, 3, kernel=1, act=False)

    def forward(self, maps: torch.Tensor, appearance: torch.Tensor, first_maps: torch.Tensor) -> torch.Tensor:
        """maps (N, K, h, w), appearance (N, C, h, w), first_maps (N, K, h, w) -> (N, 3, H, W) residual."""
        x = add_coord_channels(torch.cat([maps, appearance, first_maps], dim=1))
        x = self.inp(to_memory_format(x, self.channels_last))
        for level in self.levels:
            x = level(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))
        return self.out(x).contiguous()  # (N, 3, H, W)


class Gaussian(nn.Module):
    """Dense(hidden, ReLU) -> mean Dense(Z), std softplus(Dense(Z)) + 1e-4 (prior / posterior of 9.4)."""

    def __init__(self, in_dim: int, hidden: int, z: int):
        super().__init__()
        self.hidden = nn.Linear(in_dim, hidden)
        self.mean = nn.Linear(hidden, z)
        self.std = nn.Linear(hidden, z)
        for layer in (self.hidden, self.mean, self.std):
            _he_uniform(layer)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.hidden(x))
        return self.mean(h), F.softplus(self.std(h)) + 1e-4


class ActionEncoder(nn.Module):
    """Local action from the agent's residual keypoint motion: features (N, 6K) -> u (N, action_dim) -> VQ."""

    def __init__(self, cfg: KeypointConfig):
        super().__init__()
        h = cfg.action_hidden
        self.mlp = nn.Sequential(nn.Linear(6 * cfg.num_keypoints, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                 nn.Linear(h, cfg.action_dim))
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                _he_uniform(layer)
        self.vq = VectorQuantizer(cfg.num_codes, cfg.action_dim, cfg.vq_beta)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features)


class VRNN(nn.Module):
    """Stochastic keypoint dynamics (9.4) with (shift, code) action inputs.

    h_t = GRU([x_t (3K), z_t (Z), shift embedding (E), code vector (A)], h_{t-1}): the action is the one taken
    after frame t, so the prior of frame t + 1 sees it (method.md 9.5, "for control").
    """

    def __init__(self, cfg: KeypointConfig):
        super().__init__()
        k3, z, u = 3 * cfg.num_keypoints, cfg.latent_size, cfg.rnn_units
        self.prior = Gaussian(u, cfg.prior_dim, z)
        self.posterior = Gaussian(u + k3, cfg.posterior_dim, z)
        self.dec_hidden = nn.Linear(u + z, cfg.decoder_dim)
        self.dec_out = nn.Linear(cfg.decoder_dim, k3)
        self.shift_embed = nn.Linear(2, cfg.shift_embed_dim)
        for layer in (self.dec_hidden, self.dec_out, self.shift_embed):
            _he_uniform(layer)
        self.gru = nn.GRUCell(k3 + z + cfg.shift_embed_dim + cfg.action_dim, u)
        self.units = u

    def initial_state(self, batch: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(batch, self.units, device=device)

    def decode(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """h (..., U), z (..., Z) -> keypoints (..., 3K) in [-1, 1] (tanh)."""
        return torch.tanh(self.dec_out(F.relu(self.dec_hidden(torch.cat([h, z], dim=-1)))))

    def update(self, h: torch.Tensor, x: torch.Tensor, z: torch.Tensor, shift: torch.Tensor,
               code: torch.Tensor) -> torch.Tensor:
        """One GRU step: h (B, U), x (B, 3K), z (B, Z), shift (B, 2) normalised units, code (B, A) -> (B, U)."""
        a = F.relu(self.shift_embed(shift))
        return self.gru(torch.cat([x, z, a, code], dim=-1), h)


def regularised_kernels(module: nn.Module) -> list[torch.Tensor]:
    """Kernels of every :class:`ConvAct` below ``module`` (the Keras L2-regularised conv layers)."""
    return [m.conv.weight for m in module.modules() if isinstance(m, ConvAct)]
