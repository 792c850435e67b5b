"""The frozen feature networks of the evaluation, loaded only from local files (nothing is downloaded): LPIPS for
``lpips``, Inception for ``fid``, I3D for ``fvd``."""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ..evaluate import EvalConfig

log = logging.getLogger(__name__)


class FeatureNet:
    """A frozen feature network and how to call it. ``fn``: tensor in [0, 1] -> (N, D) features."""

    def __init__(self, name: str, fn: Any) -> None:
        self.name, self.fn = name, fn


def _home_relative(path: Path) -> str:
    """``path`` with the user's home folder written ``~``."""
    try:
        return "~/" + str(Path(path).resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def load_inception(device: torch.device) -> tuple[FeatureNet | None, str | None]:
    """InceptionV3 pool features (2048-d) for FID, from local weights only.

    Looks for, in order: ``$GLASSWORLD_INCEPTION_WEIGHTS`` (a torchvision ``inception_v3`` state dict), the
    pytorch-fid weights ``pt_inception-2015-12-05-*.pth`` in the torch hub cache (used through the
    ``pytorch_fid`` package, the standard FID network), torchvision's ``inception_v3_google-*.pth`` in the
    cache. Returns (network, None) or (None, why not).
    """
    ckpt_dir = Path(torch.hub.get_dir()) / "checkpoints"
    env = os.environ.get("GLASSWORLD_INCEPTION_WEIGHTS")
    fid_files = sorted(glob.glob(str(ckpt_dir / "pt_inception-2015-12-05-*.pth")))
    tv_files = sorted(glob.glob(str(ckpt_dir / "inception_v3_google-*.pth")))
    if fid_files and not env:
        try:
            from pytorch_fid.inception import InceptionV3  # the weights are in the cache: nothing is downloaded

            net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()

            def fid_fn(x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) in [0, 1] -> (N, 2048)
                return net(x)[0].flatten(1)

            return FeatureNet(f"pytorch-fid InceptionV3 ({Path(fid_files[0]).name})", fid_fn), None
        except ImportError:
            log.info("pytorch-fid weights found but the pytorch_fid package is not installed")
    path = env or (tv_files[0] if tv_files else None)
    if path is None:
        shown = _home_relative(ckpt_dir)  # results are committed: no machine's home folder in them
        return None, (f"no Inception weights found locally (looked for $GLASSWORLD_INCEPTION_WEIGHTS, "
                      f"{shown}/pt_inception-2015-12-05-*.pth with pytorch-fid installed, "
                      f"{shown}/inception_v3_google-*.pth); FID needs them and nothing is downloaded")
    if not Path(path).is_file():
        return None, f"$GLASSWORLD_INCEPTION_WEIGHTS={path} is not a file"
    from .._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from torchvision.models import inception_v3

    try:
        net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:  # noqa: BLE001 - any failure means "no FID", with the reason
        return None, f"cannot load Inception weights {path}: {type(e).__name__}: {e}"
    net.fc = torch.nn.Identity()
    net = net.to(device).eval()

    def tv_fn(x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) in [0, 1] -> (N, 2048)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return net(x * 2 - 1)  # the Google weights expect [-1, 1] (what transform_input produces)

    return FeatureNet(f"torchvision inception_v3 ({Path(path).name}; not pytorch-fid's FID network)", tv_fn), None


def load_i3d(device: torch.device) -> tuple[FeatureNet | None, str | None]:
    """I3D (Kinetics-400) logits for FVD from the TorchScript file in ``$GLASSWORLD_I3D_WEIGHTS``.

    The file is the commonly used ``i3d_torchscript.pt`` port of the TF-Hub model, called as
    ``net(x, rescale=False, resize=True, return_features=True)`` on (N, 3, T, H, W) videos in [-1, 1].
    Returns (network, None) or (None, why not).
    """
    path = os.environ.get("GLASSWORLD_I3D_WEIGHTS")
    if not path:
        return None, ("no I3D weights: set $GLASSWORLD_I3D_WEIGHTS to a local TorchScript I3D "
                      "(i3d_torchscript.pt); nothing is downloaded")
    if not Path(path).is_file():
        return None, f"$GLASSWORLD_I3D_WEIGHTS={path} is not a file"
    try:
        net = torch.jit.load(path, map_location=device).eval()
    except Exception as e:  # noqa: BLE001
        return None, f"cannot load I3D TorchScript {path}: {type(e).__name__}: {e}"

    def fn(x: torch.Tensor) -> torch.Tensor:  # (N, T, 3, H, W) in [0, 1] -> (N, D)
        v = (x * 2 - 1).permute(0, 2, 1, 3, 4).contiguous()  # (N, 3, T, H, W)
        return net(v, rescale=False, resize=True, return_features=True).flatten(1)

    return FeatureNet(f"I3D TorchScript ({Path(path).name})", fn), None


def load_perceptual(device: torch.device) -> tuple[Any | None, str | None, str | None]:
    """LPIPS (VGG) via :class:`worldmodel.perceptual.Perceptual`: (module, backbone, None) or (None, None, why)."""
    try:
        from ..perceptual import Perceptual
    except ImportError as e:
        return None, None, f"worldmodel.perceptual is not importable ({e})"
    try:
        net = Perceptual().to(device).eval()
    except Exception as e:  # noqa: BLE001
        return None, None, f"cannot build LPIPS: {type(e).__name__}: {e}"
    for p in net.parameters():
        p.requires_grad_(False)
    return net, str(getattr(net, "backbone", "unknown")), None


@dataclass
class FeatureNets:
    """The feature networks one evaluation uses; None where disabled or not available (its reason is recorded)."""

    perceptual: Any | None  # LPIPS module: (N, 3, H, W) pairs in [-1, 1] -> (N,) distances
    backbone: str | None  # LPIPS backbone: "pretrained" | "random"
    inception: FeatureNet | None  # FID: (N, 3, H, W) in [0, 1] -> (N, 2048)
    i3d: FeatureNet | None  # FVD: (N, T, 3, H, W) in [0, 1] -> (N, D)


def load_networks(cfg: EvalConfig, device: torch.device, reasons: dict[str, str]) -> FeatureNets:
    """The networks ``cfg`` asks for (``eval.lpips``, ``eval.fid``, ``eval.fvd``) on ``device``; why each missing
    one is missing goes to ``reasons`` (under ``lpips``, ``fid``, ``fvd``)."""
    perceptual, backbone, why = load_perceptual(device) if cfg.lpips else (None, None, "disabled (eval.lpips=false)")
    if why:
        reasons["lpips"] = why
    inception, why = load_inception(device) if cfg.fid else (None, "disabled (eval.fid=false)")
    if why:
        reasons["fid"] = why
    i3d, why = load_i3d(device) if cfg.fvd else (None, "disabled (eval.fvd=false)")
    if why:
        reasons["fvd"] = why
    return FeatureNets(perceptual, backbone, inception, i3d)
