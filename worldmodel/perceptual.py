"""Perceptual distance for training losses and metrics: LPIPS with the VGG16 backbone (the ``lpips`` package).

The LPIPS linear layers ship inside the ``lpips`` package. The VGG16 backbone needs ImageNet weights
(``vgg16-397923af.pth``) that cannot be downloaded here, so they are looked up locally:

1. the file named by ``$GLASSWORLD_VGG_WEIGHTS`` (an error if set but missing);
2. ``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth`` (where torchvision caches it).

Without them the backbone is a *random* VGG16 built from a fixed seed (the same network on every machine),
and :attr:`Perceptual.backbone` says ``"random"``. Every report must state which backbone was used.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ._compat import import_lpips

log = logging.getLogger(__name__)

VGG16_FILE = "vgg16-397923af.pth"
ENV_VAR = "GLASSWORLD_VGG_WEIGHTS"
RANDOM_SEED = 0  # seed of the random backbone (fixed: numbers stay comparable between runs)
MIN_SIDE = 16  # VGG16 pools 4 times before its last tap; smaller images are upsampled to this side


def find_vgg_weights() -> Path | None:
    """Path of local VGG16 ImageNet weights, or None. Raises ValueError if $GLASSWORLD_VGG_WEIGHTS is bad."""
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ValueError(f"${ENV_VAR}={env} is not a file; point it at {VGG16_FILE} or unset it")
        return p
    p = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    return p if p.is_file() else None


def _load_backbone(net: nn.Module, path: Path) -> None:
    """Copy torchvision VGG16 ``features.N.*`` weights into lpips' sliced backbone (``sliceK.N.*``)."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a broken file
        raise ValueError(f"cannot read VGG16 weights {path} ({type(e).__name__}: {e})") from None
    target = net.state_dict()
    new = {}
    for key in target:
        _slice, idx, kind = key.split(".")  # "slice1.0.weight"
        src = f"features.{idx}.{kind}"
        if src not in sd or sd[src].shape != target[key].shape:
            raise ValueError(f"{path} is not torchvision's VGG16 ({src} missing or of the wrong shape)")
        new[key] = sd[src]
    net.load_state_dict(new)


class Perceptual(nn.Module):
    """Frozen LPIPS-VGG distance. ``forward(x, y)``: images (N, 3, H, W) in [-1, 1] -> distances (N,).

    Attributes:
        backbone: "pretrained" (local ImageNet VGG16 weights) or "random" (fixed-seed random VGG16).
    """

    def __init__(self) -> None:
        super().__init__()
        lpips = import_lpips()
        path = find_vgg_weights()
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore", UserWarning)  # torchvision's `pretrained=` deprecation notes
            torch.manual_seed(RANDOM_SEED)
            self.net = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
        if path is not None:
            _load_backbone(self.net.net, path)
            self.backbone = "pretrained"
            log.info("perceptual loss: LPIPS-VGG16 with pretrained ImageNet backbone from %s", path)
        else:
            self.backbone = "random"
            log.warning("perceptual loss: LPIPS-VGG16 with a RANDOM backbone (seed %d): no %s found in $%s or %s",
                        RANDOM_SEED, VGG16_FILE, ENV_VAR, Path(torch.hub.get_dir()) / "checkpoints")
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Perceptual:
        """Always stays in eval mode (no dropout in the LPIPS heads)."""
        return super().train(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x, y (N, 3, H, W) in [-1, 1] -> (N,) LPIPS distances (differentiable in both inputs)."""
        assert x.shape == y.shape and x.dim() == 4 and x.shape[1] == 3, \
            f"Perceptual wants two (N, 3, H, W) images, got {tuple(x.shape)} and {tuple(y.shape)}"
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIDE:
            k = MIN_SIDE / min(h, w)
            size = (round(h * k), round(w * k))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return self.net(x, y).flatten()
