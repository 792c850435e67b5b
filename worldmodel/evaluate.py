"""``glassworld eval``: score a trained world model on the val or test split of a dataset.

Usage::

    glassworld eval checkpoint=PATH data.path=DIR out=FILE.json [split=val|test] [eval.clips=N]
                    [eval.clip_len=T] [device=auto|cpu|cuda] [seed=N]

Protocol (method.md section 8, adapted as in section 14). ``eval.clips`` windows of ``eval.clip_len`` frames
(taken every ``frame_skip + 1`` frames, the checkpoint's training frame skip unless ``eval.frame_skip`` is set)
are drawn at random without replacement (seeded) from all windows of the split. On each clip:

* **GMA on real frames**: ``model.segment`` vs the GT masks -> ``miou`` (soft IoU, 8.1);
  ``model.estimate_shifts`` vs the GT shifts of transitions 1..T-1 -> ``fg_shift_err`` / ``bg_shift_err``
  (mean L2 in px of the frame) and ``fg_angle_acc`` / ``bg_angle_acc`` (within 45 degrees, over non-zero GT).
* **Action codes**: ``model.infer_actions`` vs the GT local labels of the destination frames (label -1 =
  none is left out) -> ``nmi_g`` (all transitions), ``nmi_s`` (mean over identities of the pooled per-identity
  NMI) and ``con = nmi_s - nmi_g``.
* **Generation from the first frame**: ``model.generate`` (or, for a model without it, ``start`` + ``step``
  replaying the inferred actions) in eval mode, autoregressive, clamped to [0, 1]. Frame 0 is a copy of the
  real frame and is **excluded** from ``lpips``, ``psnr``, ``ssim``, ``fid``, ``pos_err`` and ``mdr``
  (``fvd`` scores whole clips, frame 0 included, as videos).
* **Agent position without a detector** (section 14): the centroid of the generated agent mask (pixels with
  mask > ``eval.mask_threshold``; fewer than ``eval.min_mask_area`` pixels at a 64-px scale = no agent) against
  the GT position (``pos``, or the GT mask's centroid when the dataset has masks but no positions); a mask
  covering more than ``eval.max_mask_frac`` of the frame locates nothing and also counts as no agent.
  ``pos_err[h]`` is the mean distance at frame h, times ``64 / max(H, W)`` (a 64-px frame scale);
  ``mdr`` is the share of generated frames with a known GT position where no agent was found (a fraction,
  not a percentage). Windows in which the GT agent teleports (one move longer than
  :data:`worldmodel.metrics.JUMP_FACTOR` x the 95th percentile of the evaluated moves: a new point or a change
  of ends in Atari Tennis, a respawn) are left out of both, because no action-conditioned model can predict
  them; ``notes`` gives their count and ``pos_err_all_windows`` (with them).
* ``lpips`` uses :class:`worldmodel.perceptual.Perceptual` (``lpips_backbone`` says "pretrained" or "random");
  ``fid`` needs Inception weights on disk, ``fvd`` a TorchScript I3D in ``$GLASSWORLD_I3D_WEIGHTS``; nothing is
  downloaded.

Every metric that cannot be computed is ``null`` and ``reasons[key]`` says why.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import metrics as M
from .agent_look import AgentLookAccumulator
from .health import HealthAccumulator, assess
from .models import generation_of, load_world_model, set_generation
from .data.format import DatasetError, atomic_write_json, check_writable

log = logging.getLogger(__name__)

METRIC_KEYS = ("miou", "fg_shift_err", "fg_angle_acc", "bg_shift_err", "bg_angle_acc", "nmi_g", "nmi_s", "con",
               "lpips", "lpips_backbone", "psnr", "ssim", "pos_err", "mdr", "fid", "fvd", "kp_track_err",
               "kp_track_last_pos_err")


@dataclass
class EvalConfig:
    """What ``glassworld eval`` scores and how (see the module docstring for the protocol)."""

    checkpoint: str | None = None  # a checkpoint file; may be None when a model is passed to evaluate()
    data_path: str | None = None  # dataset folder
    split: str = "test"  # val | test
    clips: int = 64  # windows drawn at random without replacement (all of them if the split has fewer)
    clip_len: int = 17  # frames per window; pos_err at horizon 16 needs >= 17
    frame_skip: int | None = None  # None: the checkpoint's training frame skip
    batch_size: int = 8
    horizons: tuple[int, ...] = (1, 4, 8, 16)
    mask_threshold: float = 0.5
    min_mask_area: float = 4.0  # agent pixels at a 64-px frame scale (scaled by (max(H, W) / 64)^2)
    max_mask_frac: float = 0.5  # a generated agent mask covering more of the frame than this = no agent found
    pos_source: str = "render"  # render: the composed agent mask; segment: model.segment on generated frames
    lpips: bool = True
    fid: bool = True
    fvd: bool = True
    device: str = "auto"
    seed: int = 0
    workers: int = 0
    track_train_clips: int = 64  # train-split windows whose frames fit the kp_track_err regression
    # generation settings applied to the checkpoint eval loads, e.g. {"reencode_every": 5, "burn_in": 1} (GLASS)
    generation: dict[str, int] = field(default_factory=dict)
    out: str | None = None

    def __post_init__(self) -> None:
        if self.split not in ("train", "val", "test"):
            raise DatasetError(f"split must be val or test (or train), got {self.split!r}")
        if self.clips < 1 or self.clip_len < 2 or self.batch_size < 1:
            raise DatasetError(
                f"need eval.clips >= 1, eval.clip_len >= 2 and eval.batch_size >= 1; got {self.clips}, "
                f"{self.clip_len}, {self.batch_size}")
        if self.frame_skip is not None and self.frame_skip < 0:
            raise DatasetError(f"eval.frame_skip must be >= 0 (or null), got {self.frame_skip}")
        if not 0 < self.max_mask_frac <= 1:
            raise DatasetError(f"eval.max_mask_frac must be in (0, 1], got {self.max_mask_frac}")
        if self.pos_source not in ("render", "segment"):
            raise DatasetError(f"eval.pos_source must be render or segment, got {self.pos_source!r}")
        self.horizons = tuple(int(h) for h in self.horizons)
        if any(h < 1 for h in self.horizons):
            raise DatasetError(f"eval.horizons must be >= 1, got {list(self.horizons)}")

    @classmethod
    def from_omegaconf(cls, c: Any) -> EvalConfig:
        """Build from the composed ``configs/eval.yaml`` (a DictConfig)."""
        from .config import plain, settings

        d = plain(c)
        data = d.get("data") or {}
        return settings(cls, dict(d.get("eval") or {}), "eval", checkpoint=d.get("checkpoint"),
                        data_path=data.get("path"), split=d.get("split", "test"), device=str(d.get("device", "auto")),
                        seed=int(d.get("seed", 0)), workers=int(data.get("workers", 0)), out=d.get("out"))


def resolve_device(name: str) -> torch.device:
    """:func:`worldmodel.device.resolve_device` (the one device rule)."""
    from .device import resolve_device as resolve; return resolve(name)  # noqa: E702 - one rule, one helper


# ----------------------------------------------------------------------------------------------------------------
# feature networks (loaded only from local files)
# ----------------------------------------------------------------------------------------------------------------

class _FeatureNet:
    """A frozen feature network and how to call it. ``fn``: tensor in [0, 1] -> (N, D) features."""

    def __init__(self, name: str, fn: Any) -> None:
        self.name, self.fn = name, fn


def load_inception(device: torch.device) -> tuple[_FeatureNet | None, str | None]:
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

            return _FeatureNet(f"pytorch-fid InceptionV3 ({Path(fid_files[0]).name})", fid_fn), None
        except ImportError:
            log.info("pytorch-fid weights found but the pytorch_fid package is not installed")
    path = env or (tv_files[0] if tv_files else None)
    if path is None:
        return None, (f"no Inception weights found locally (looked for $GLASSWORLD_INCEPTION_WEIGHTS, "
                      f"{ckpt_dir}/pt_inception-2015-12-05-*.pth with pytorch-fid installed, "
                      f"{ckpt_dir}/inception_v3_google-*.pth); FID needs them and nothing is downloaded")
    if not Path(path).is_file():
        return None, f"$GLASSWORLD_INCEPTION_WEIGHTS={path} is not a file"
    from ._compat import ensure_torchvision_importable

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

    return _FeatureNet(f"torchvision inception_v3 ({Path(path).name}; not pytorch-fid's FID network)", tv_fn), None


def load_i3d(device: torch.device) -> tuple[_FeatureNet | None, str | None]:
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

    return _FeatureNet(f"I3D TorchScript ({Path(path).name})", fn), None


def load_perceptual(device: torch.device) -> tuple[Any | None, str | None, str | None]:
    """LPIPS (VGG) via :class:`worldmodel.perceptual.Perceptual`: (module, backbone, None) or (None, None, why)."""
    try:
        from .perceptual import Perceptual
    except ImportError as e:
        return None, None, f"worldmodel.perceptual is not importable ({e})"
    try:
        net = Perceptual().to(device).eval()
    except Exception as e:  # noqa: BLE001
        return None, None, f"cannot build LPIPS: {type(e).__name__}: {e}"
    for p in net.parameters():
        p.requires_grad_(False)
    return net, str(getattr(net, "backbone", "unknown")), None


# ----------------------------------------------------------------------------------------------------------------
# the evaluation
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class _Acc:
    """Per-clip and per-frame results gathered over batches (numpy, on the CPU)."""

    iou: list[np.ndarray] = field(default_factory=list)
    fg_err: list[np.ndarray] = field(default_factory=list)
    fg_hit: list[np.ndarray] = field(default_factory=list)
    bg_err: list[np.ndarray] = field(default_factory=list)
    bg_hit: list[np.ndarray] = field(default_factory=list)
    gt_local: list[np.ndarray] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    lpips: list[np.ndarray] = field(default_factory=list)
    psnr: list[np.ndarray] = field(default_factory=list)
    ssim: list[np.ndarray] = field(default_factory=list)
    copy: dict[str, list[np.ndarray]] = field(  # the same metrics for real frame 0 repeated (the frozen baseline)
        default_factory=lambda: {"psnr": [], "ssim": [], "lpips": []})
    pos_pred: list[np.ndarray] = field(default_factory=list)
    pos_gt: list[np.ndarray] = field(default_factory=list)
    fid_real: list[np.ndarray] = field(default_factory=list)
    fid_fake: list[np.ndarray] = field(default_factory=list)
    fvd_real: list[np.ndarray] = field(default_factory=list)
    fvd_fake: list[np.ndarray] = field(default_factory=list)
    kp_test: list[np.ndarray] = field(default_factory=list)  # (B, T, K, 3) detected keypoints of real frames
    kp_test_pos: list[np.ndarray] = field(default_factory=list)  # (B, T, 2) their GT agent positions


def _checkpoint_frame_skip(path: str | None) -> int:
    """The frame skip a checkpoint was trained with: card, else run_config data.frame_skip, else model_config."""
    if path is None:
        return 0
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, map_location="cpu")
    run = ckpt.get("run_config") or {}
    for source in (ckpt.get("card") or {}, run.get("data") or {}, ckpt.get("model_config") or {}):
        if isinstance(source, dict) and source.get("frame_skip") is not None:
            return int(source["frame_skip"])
    return 0


def _generate(model: Any, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate from the first frame replaying the actions inferred on ``video`` (B, T, 3, H, W) in [0, 1].

    Uses ``model.generate`` when the model has it, else the :class:`~worldmodel.api.WorldModel` interface
    (``infer_actions``, ``start``, ``step``). Returns frames (B, T, 3, H, W) clamped to [0, 1] with frame 0 the
    real one, and agent masks (B, T, 1, H, W) (frame 0's mask is zeros on the fallback path).
    """
    if hasattr(model, "generate"):
        frames, masks = model.generate(video)
        return frames.clamp(0, 1), masks
    shifts, codes = model.infer_actions(video)  # (B, T-1, 2), (B, T-1)
    state = model.start(video[:, 0])
    frames, masks = [video[:, 0]], [torch.zeros_like(video[:, 0, :1])]
    for t in range(video.shape[1] - 1):
        frame, mask, state = model.step(state, shifts[:, t], codes[:, t])
        frames.append(frame)
        masks.append(mask)
    return torch.stack(frames, 1).clamp(0, 1), torch.stack(masks, 1)  # (B, T, 3, H, W), (B, T, 1, H, W)


def _quality(pred: torch.Tensor, real: torch.Tensor, perceptual: Any | None) -> dict[str, np.ndarray]:
    """Per-frame PSNR, SSIM (frames of >= 11 px) and LPIPS (when ``perceptual``) of (N, 3, H, W) frames in [0, 1]."""
    out = {"psnr": M.psnr(pred, real).cpu().numpy()}
    if min(real.shape[-2:]) >= 11:
        out["ssim"] = M.ssim(pred, real, data_range=1.0).cpu().numpy()
    if perceptual is not None:
        out["lpips"] = torch.cat([perceptual(pred[s] * 2 - 1, real[s] * 2 - 1).flatten()
                                  for s in _chunks(len(pred), 64)]).cpu().numpy()
    return out


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def evaluate(cfg: EvalConfig, model: Any | None = None) -> dict[str, Any]:
    """Score a world model on ``cfg.split`` of ``cfg.data_path`` (protocol: module docstring).

    Args:
        cfg: what to evaluate and how.
        model: an already loaded :class:`~worldmodel.api.WorldModel` (e.g. at the end of training); None loads
            ``cfg.checkpoint`` with :func:`worldmodel.models.load_world_model`.
    Returns:
        a JSON-ready dict with the keys of :data:`METRIC_KEYS`, ``reasons`` (key -> why it is null),
        ``split``, ``clips``, ``checkpoint``, ``dataset`` and ``notes`` (protocol details).
    A model passed in is put in eval mode and given back in the mode it had; the caller's RNG is untouched.
    """
    if cfg.data_path is None:
        raise DatasetError("no dataset given: pass data.path=DIR (a folder made by `glassworld data ...`)")
    device = resolve_device(cfg.device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    was_training = isinstance(model, torch.nn.Module) and model.training
    try:
        with torch.random.fork_rng(devices=cuda), torch.no_grad():  # seeded here only
            torch.manual_seed(cfg.seed)
            return _evaluate(cfg, model, device)
    finally:
        if was_training:
            model.train()


def _evaluate(cfg: EvalConfig, model: Any | None, device: torch.device) -> dict[str, Any]:
    """The body of :func:`evaluate` (under no_grad, with a forked, seeded RNG)."""
    from torch.utils.data import DataLoader, Subset

    from .data.dataset import ClipConfig, ClipDataset
    from .data.format import read_manifest

    if model is None:
        if cfg.checkpoint is None:
            raise DatasetError("no checkpoint given: pass checkpoint=PATH (a file written by `glassworld train`)")
        model = load_world_model(cfg.checkpoint, device)
        try:
            set_generation(model, cfg.generation)
        except ValueError as e:
            raise DatasetError(f"eval.generation: {e}") from None
        frame_skip = cfg.frame_skip if cfg.frame_skip is not None else _checkpoint_frame_skip(cfg.checkpoint)
    else:
        device = getattr(model, "device", device)
        model_skip = getattr(getattr(model, "cfg", None), "frame_skip", 0)  # e.g. GlassConfig.frame_skip
        frame_skip = cfg.frame_skip if cfg.frame_skip is not None else int(model_skip or 0)
    if isinstance(model, torch.nn.Module):
        model.eval()

    manifest = read_manifest(Path(cfg.data_path))
    h, w = int(manifest["height"]), int(manifest["width"])
    if (int(model.height), int(model.width)) != (h, w):
        raise DatasetError(
            f"the model works on {model.height}x{model.width} frames but {cfg.data_path} holds {h}x{w}; evaluate "
            f"on a dataset made at {model.height}x{model.width} (glassworld data ... --size "
            f"{model.height}x{model.width})")
    ds = ClipDataset(cfg.data_path, cfg.split,
                     ClipConfig(clip_len=cfg.clip_len, frame_skip=frame_skip, stride=1, ground_truth=True))
    gt_keys = set(manifest.get("ground_truth", []))
    rng = np.random.default_rng(cfg.seed)
    chosen = np.sort(rng.permutation(len(ds))[: cfg.clips])
    loader = DataLoader(Subset(ds, chosen.tolist()), batch_size=cfg.batch_size, shuffle=False,
                        num_workers=cfg.workers)
    reasons: dict[str, str] = {}
    if len(chosen) < cfg.clips:
        log.warning("split %s has only %d windows of %d frames; evaluating all of them", cfg.split,
                    len(chosen), cfg.clip_len)

    # what can be computed at all
    has = {name: callable(getattr(model, name, None)) for name in ("segment", "estimate_shifts", "infer_actions")}
    perceptual, backbone, why = load_perceptual(device) if cfg.lpips else (None, None, "disabled (eval.lpips=false)")
    if why:
        reasons["lpips"] = why
    inception, why = load_inception(device) if cfg.fid else (None, "disabled (eval.fid=false)")
    if why:
        reasons["fid"] = why
    i3d, why = load_i3d(device) if cfg.fvd else (None, "disabled (eval.fvd=false)")
    if why:
        reasons["fvd"] = why
    scale = max(h, w) / M.POSITION_SCALE_PX
    min_area_px = cfg.min_mask_area * scale * scale

    acc = _Acc()
    health = HealthAccumulator(h, w)
    look = AgentLookAccumulator(h, w, cfg.horizons, cfg.mask_threshold, cfg.min_mask_area)
    n_done = 0
    for batch in loader:
        video = batch["frames"].to(device).float() / 255.0  # (B, T, 3, H, W) in [0, 1]
        b, t = video.shape[:2]
        # --- GMA on real frames
        if has["segment"]:
            pred = model.segment(video)  # (B, T, 1, H, W)
            health.add_real_masks(pred)
            if "mask" in batch:
                acc.iou.append(M.soft_iou(pred, batch["mask"].to(device)).cpu().numpy().ravel())
        if "shift" in batch:
            health.add_motion(batch["shift"][:, 1:], ground_truth=True)
        if has["estimate_shifts"] and ("shift" in batch or "bg_shift" in batch or not health.motion_is_gt):
            fg, bg = model.estimate_shifts(video)  # (B, T-1, 2) each
            health.add_motion(fg, ground_truth=False)
            for key, est, errs, hits in (("shift", fg, acc.fg_err, acc.fg_hit), ("bg_shift", bg, acc.bg_err,
                                                                                  acc.bg_hit)):
                if key in batch:
                    gt = batch[key][:, 1:].numpy()  # (B, T-1, 2): transitions into frames 1..T-1
                    errs.append(M.shift_error(est, gt).ravel())
                    hit, valid = M.angle_correct(est, gt)
                    hits.append(np.where(valid, hit.astype(np.float64), np.nan).ravel())
        # --- action codes
        if has["infer_actions"]:
            _, codes = model.infer_actions(video)  # (B, T-1)
            health.add_codes(codes)
            if "local" in batch:
                acc.gt_local.append(batch["local"][:, 1:].numpy())
                acc.codes.append(codes.cpu().numpy())
                acc.ids.extend(ds.identity(int(v)) for v in batch["video"])
        # --- generation from the first frame
        gen, gen_mask = _generate(model, video)  # (B, T, 3, H, W), (B, T, 1, H, W)
        real1 = video[:, 1:].reshape(b * (t - 1), *video.shape[2:])  # (B*(T-1), 3, H, W), frame 0 excluded
        gen1 = gen[:, 1:].reshape(b * (t - 1), *video.shape[2:])
        copy1 = video[:, :1].expand(-1, t - 1, -1, -1, -1).reshape(b * (t - 1), *video.shape[2:])  # frame 0 again
        for key, values in _quality(gen1, real1, perceptual).items():
            getattr(acc, key).append(values)
        for key, values in _quality(copy1, real1, perceptual).items():
            acc.copy[key].append(values)
        health.add_generation(video, gen)
        if inception is not None:
            for s in _chunks(len(gen1), 32):
                acc.fid_real.append(inception.fn(real1[s]).cpu().numpy())
                acc.fid_fake.append(inception.fn(gen1[s]).cpu().numpy())
        if i3d is not None and "fvd" not in reasons:
            try:
                acc.fvd_real.append(i3d.fn(video).cpu().numpy())
                acc.fvd_fake.append(i3d.fn(gen).cpu().numpy())
            except Exception as e:  # noqa: BLE001 - e.g. clips too short for the I3D's temporal pooling
                reasons["fvd"] = f"I3D failed on {t}-frame clips: {type(e).__name__}: {e}"
        # --- agent positions in generated frames
        gt_pos = None
        if "pos" in batch:
            gt_pos = batch["pos"].numpy()  # (B, T, 2)
        elif "mask" in batch:
            gt_pos = M.mask_centroid(batch["mask"], 0.5, 1.0).squeeze(2).numpy()  # (B, T, 2)
        if gt_pos is not None:
            if cfg.pos_source == "segment" and has["segment"]:
                gen_mask = model.segment(gen)
            acc.pos_pred.append(M.mask_centroid(gen_mask, cfg.mask_threshold, min_area_px, cfg.max_mask_frac * h * w)
                                .squeeze(2).cpu().numpy())  # (B, T, 2)
            look.add(video, gen, gen_mask, torch.as_tensor(gt_pos), batch.get("mask"))
            acc.pos_gt.append(gt_pos)
        if "pos" in batch and callable(getattr(model, "detect_keypoints", None)):
            acc.kp_test.append(model.detect_keypoints(video).cpu().double().numpy())  # (B, T, K, 3)
            acc.kp_test_pos.append(batch["pos"].double().numpy())  # (B, T, 2)
        n_done += b
        log.info("evaluated %d/%d clips", n_done, len(chosen))

    # ------------------------------------------------------------------ aggregate
    res: dict[str, Any] = {k: None for k in METRIC_KEYS}

    def put(key: str, value: float | None, why: str) -> None:
        if value is None or not math.isfinite(value):
            res[key] = None
            reasons.setdefault(key, why)
        else:
            res[key] = float(value)

    def cat(xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([x.ravel() for x in xs]) if xs else np.zeros(0)

    no_method = "the model has no {}()"
    # segmentation
    if "mask" not in gt_keys:
        reasons["miou"] = f"the dataset has no GT masks ('mask' not in its ground truth {sorted(gt_keys)})"
    elif not has["segment"]:
        reasons["miou"] = no_method.format("segment")
    put("miou", M.nanmean(cat(acc.iou)) if acc.iou else None, "no frame was scored")
    # shifts
    for prefix, key, errs, hits in (("fg", "shift", acc.fg_err, acc.fg_hit), ("bg", "bg_shift", acc.bg_err,
                                                                                  acc.bg_hit)):
        if key not in gt_keys:
            why = f"the dataset has no GT '{key}'"
        elif not has["estimate_shifts"]:
            why = no_method.format("estimate_shifts")
        else:
            why = "no transition was scored"
        put(f"{prefix}_shift_err", M.nanmean(cat(errs)) if errs else None, why)
        put(f"{prefix}_angle_acc", M.nanmean(cat(hits)) if hits else None,
            why if not hits else f"every GT '{key}' is zero, so no direction can be scored")
    # codes
    if acc.codes:
        gl, cd = cat(acc.gt_local).astype(np.int64), cat(acc.codes).astype(np.int64)
        ids = np.repeat(np.asarray(acc.ids, dtype=object), cfg.clip_len - 1)
        keep = gl >= 0
        why = "every GT local label is -1 (none)"
        if keep.any():
            nmi_g = M.nmi(gl[keep], cd[keep])
            nmi_s = M.nmi_by_identity(gl[keep], cd[keep], ids[keep])
            put("nmi_g", nmi_g, why)
            put("nmi_s", nmi_s, why)
            put("con", M.consistency(nmi_s, nmi_g), why)
        else:
            for k in ("nmi_g", "nmi_s", "con"):
                put(k, None, why)
    else:
        why = ("the dataset has no GT local action labels ('local')" if "local" not in gt_keys
               else no_method.format("infer_actions"))
        for k in ("nmi_g", "nmi_s", "con"):
            put(k, None, why)
    # image quality
    put("psnr", M.nanmean(cat(acc.psnr)), "no generated frame")
    put("ssim", M.nanmean(cat(acc.ssim)) if acc.ssim else None,
        f"frames of {h}x{w} are smaller than SSIM's 11-px window")
    put("lpips", M.nanmean(cat(acc.lpips)) if acc.lpips else None, "LPIPS was not computed")
    res["lpips_backbone"] = backbone if res["lpips"] is not None else None
    if res["lpips_backbone"] is None:
        reasons.setdefault("lpips_backbone", reasons.get("lpips", "LPIPS was not computed"))
    # positions
    pos_notes: dict[str, Any] = {}
    if acc.pos_gt:
        pred, gt = np.concatenate(acc.pos_pred), np.concatenate(acc.pos_gt)  # (N, T, 2)
        dist = M.position_distances(pred, gt, h, w)  # (N, T), 64-px scale
        # windows where the GT agent teleports (a new point, a change of ends, a respawn) are left out of pos_err
        # and mdr: no action-conditioned model can predict a move its actions did not cause
        jump = M.spans_jump(gt, _jump_threshold(Path(cfg.data_path), cfg.split, frame_skip, gt_keys, gt))
        if jump.all():
            jump[:] = False
        pos_notes = {"pos_windows": int((~jump).sum()), "pos_windows_with_jump": int(jump.sum()),
                     "pos_err_all_windows": M.errors_at_horizons(dist, cfg.horizons)}
        pred, gt, dist = pred[~jump], gt[~jump], dist[~jump]
        res["pos_err"] = M.errors_at_horizons(dist, cfg.horizons)
        for hz, v in res["pos_err"].items():
            if v is None:
                reasons[f"pos_err.{hz}"] = (
                    f"clips of {cfg.clip_len} frames have no frame {hz}; use eval.clip_len >= {int(hz) + 1}"
                    if int(hz) >= cfg.clip_len else f"no generated frame {hz} has both an agent and a GT position")
        put("mdr", M.miss_rate(pred[:, 1:], gt[:, 1:]), "no GT agent position is known in frames 1..T-1")
    else:
        why = "the dataset has neither GT positions ('pos') nor GT masks to locate the agent"
        put("mdr", None, why)
        reasons["pos_err"] = why
    _keypoint_tracking(cfg, model, frame_skip, acc, gt_keys, put, reasons)
    # Frechet distances
    if acc.fid_real:
        try:
            put("fid", M.frechet_distance_from_features(np.concatenate(acc.fid_real), np.concatenate(acc.fid_fake)),
                "FID is not finite")
        except ValueError as e:
            put("fid", None, f"FID failed: {e}")
    if acc.fvd_real and "fvd" not in reasons:
        try:
            put("fvd", M.frechet_distance_from_features(np.concatenate(acc.fvd_real), np.concatenate(acc.fvd_fake)),
                "FVD is not finite")
        except ValueError as e:
            put("fvd", None, f"FVD needs >= 2 clips: {e}")

    notes = {
        "clip_len": cfg.clip_len, "frame_skip": frame_skip, "seed": cfg.seed, "device": str(device),
        "windows_in_split": len(ds),
        "frames": "frame 0 of every generated clip is the real first frame; it is excluded from lpips, psnr, "
                  "ssim, fid, pos_err and mdr; fvd scores whole clips",
        "generation": "from the first frame, autoregressive, eval mode, replaying actions inferred on the real "
                      "clip, clamped to [0, 1]",
        "pos_err": f"mean px distance at frame h between the generated agent-mask centroid ({cfg.pos_source}) "
                   f"and the GT position, x 64/max(H, W) = {M.POSITION_SCALE_PX / max(h, w):.4g} (64-px scale)",
        "mdr": "fraction (not %) of generated frames with a known GT position where no agent was found: the "
               f"agent mask has < {min_area_px:.3g} px or covers > {cfg.max_mask_frac:.0%} of the frame",
        "shift_units": "pixels of the frame",
        "agent_look": "agent_sharpness@h: mean |image gradient| in a crop centred on the generated agent / the same "
                      "on the real agent; agent_psnr_aligned@h: PSNR between the two crops; crop = the GT mask's "
                      "box, else 12x8 px at 64 px; *_copy: frame 0 repeated, its crop on frame 0's real agent",
        "copy_frame0": "lpips, psnr and ssim of the real frame 0 repeated, on the same frames; its per-frame psnr is "
                       "100 dB wherever nothing moved, so health.beats_copy compares the PSNR of the pooled MSE",
        "model_generation": generation_of(model),
        "jumps": f"pos_err and mdr leave out windows whose GT agent moves more than {M.JUMP_FACTOR:g} x the 95th "
                 "percentile of its moves in one step (a teleport: new point, change of ends, respawn); "
                 "pos_err_all_windows keeps them",
        **pos_notes,
    }
    if inception is not None:
        notes["fid_network"] = inception.name
    if i3d is not None:
        notes["fvd_network"] = i3d.name
    grid = getattr(model, "shift_grid", None)
    step = None if grid is None else tuple(float(v) for v in grid.abs().amax(0).tolist())  # (dx, dy) px
    res["copy_frame0"] = {k: (M.nanmean(cat(v)) if v else None) for k, v in acc.copy.items()}
    res.update(look.result())  # agent_sharpness, agent_psnr_aligned (+ _copy): {horizon: value | None}
    if not acc.pos_gt:
        reasons["agent_look"] = "the dataset has neither GT positions nor GT masks to find the real agent"
    res["health"] = assess(health.evidence(step, getattr(model, "num_codes", None)))
    return {
        "split": cfg.split, "clips": len(chosen),
        "checkpoint": str(cfg.checkpoint) if cfg.checkpoint else None,
        "dataset": str(cfg.data_path),
        **res,
        "reasons": {k: reasons[k] for k in sorted(reasons)},
        "notes": notes,
    }


def _jump_threshold(root: Path, split: str, frame_skip: int, gt_keys: set[str], windows: np.ndarray) -> float:
    """The GT move that counts as a teleport (:func:`worldmodel.metrics.jump_threshold`) at the window stride.

    From the split's whole ``pos`` tracks when the dataset has them (overlapping windows would count one
    teleport many times), else from the evaluated windows' positions (N, T, 2).
    """
    if "pos" not in gt_keys:
        return M.jump_threshold(windows)
    from .data.format import load_video, read_manifest

    stride = frame_skip + 1
    gap = np.full((1, 2), np.nan)
    tracks = []
    for name in read_manifest(root)["splits"].get(split) or []:
        pos = load_video(root, name, ("pos",))["pos"].astype(np.float64)
        tracks += [np.concatenate([pos[o::stride], gap]) for o in range(min(stride, len(pos)))]
    return M.jump_threshold(np.concatenate(tracks)) if tracks else M.jump_threshold(windows)


def _keypoint_tracking(cfg: EvalConfig, model: Any, frame_skip: int, acc: Any, gt_keys: set[str],
                       put: Any, reasons: dict[str, str]) -> None:
    """``kp_track_err`` (Struct-VRNN's tracking probe, :mod:`worldmodel.keypoint.track`): a ridge regression from
    the detected keypoints of a real frame to the GT agent position, fitted on ``cfg.track_train_clips`` windows
    of the train split and scored on the evaluated clips' real frames, in frame px. ``kp_track_last_pos_err``
    is the baseline the issue compares with: predicting each frame's position by the previous frame's GT one."""
    from .data.dataset import ClipConfig, ClipDataset
    from .keypoint.track import kp_track_err

    if not callable(getattr(model, "detect_keypoints", None)):
        why = "the model has no keypoints (detect_keypoints); kp_track_err is for keypoint models"
    elif "pos" not in gt_keys:
        why = f"the dataset has no GT agent positions ('pos' not in its ground truth {sorted(gt_keys)})"
    else:
        why = ""
    if why:
        for k in ("kp_track_err", "kp_track_last_pos_err"):
            put(k, None, why)
        return
    test_kp, test_pos = np.concatenate(acc.kp_test), np.concatenate(acc.kp_test_pos)  # (N, T, K, 3), (N, T, 2)
    last = np.linalg.norm(test_pos[:, 1:] - test_pos[:, :-1], axis=-1)  # (N, T-1) px
    put("kp_track_last_pos_err", M.nanmean(last.ravel()), "no two consecutive frames have a GT position")
    try:
        train = ClipDataset(cfg.data_path, "train",
                            ClipConfig(clip_len=cfg.clip_len, frame_skip=frame_skip, stride=1, ground_truth=True))
    except DatasetError as e:
        put("kp_track_err", None, f"no train split to fit the keypoint -> position regression: {e}")
        return
    pick = np.sort(np.random.default_rng(cfg.seed + 1).permutation(len(train))[: cfg.track_train_clips])
    kps, poss = [], []
    for s in _chunks(len(pick), cfg.batch_size):
        items = [train[int(i)] for i in pick[s]]
        video = torch.stack([it["frames"] for it in items]).to(model.device).float() / 255.0
        kps.append(model.detect_keypoints(video).cpu().double().numpy())
        poss.append(torch.stack([it["pos"] for it in items]).double().numpy())
    try:
        err = kp_track_err(np.concatenate(kps), np.concatenate(poss), test_kp, test_pos)
    except ValueError as e:
        put("kp_track_err", None, str(e))
        return
    put("kp_track_err", err, "no evaluated frame has a GT position")


# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------

def format_table(result: dict[str, Any]) -> str:
    """A readable two-column table of the metrics (None shown as '-' with its reason)."""
    head = (f"eval of {result.get('checkpoint')} on {result.get('dataset')} [{result['split']}, "
            f"{result['clips']} clips]")
    lines = [head]
    reasons = result.get("reasons", {})
    rows: list[tuple[str, str, str]] = []
    for key in METRIC_KEYS:
        v = result.get(key)
        if key == "pos_err" and isinstance(v, dict):
            for hz, e in v.items():
                rows.append((f"pos_err@{hz}", "-" if e is None else f"{e:.4g}", reasons.get(f"pos_err.{hz}", "")))
            continue
        text = "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        copy = (result.get("copy_frame0") or {}).get(key)
        note = f"copy frame 0: {copy:.4g}" if copy is not None else ""
        rows.append((key, text, reasons.get(key, "") if v is None else note))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, text, why in rows:
        lines.append(f"  {name:<{width}}  {text:>{vwidth}}" + (f"  ({why})" if why else ""))
    for key in ("agent_sharpness", "agent_psnr_aligned"):
        for hz, v in (result.get(key) or {}).items():
            copy = (result.get(f"{key}_copy") or {}).get(hz)
            lines.append(f"  {key}@{hz}: {'-' if v is None else f'{v:.4g}'}"
                         + ("" if copy is None else f"  (copy frame 0: {copy:.4g})"))
    health = result.get("health")
    if health is not None:
        lines.append(health_line(health))
    return "\n".join(lines)


def health_line(health: dict[str, Any]) -> str:
    """One block saying whether the world is healthy, its key figures, and each problem and warning."""
    found = "-" if health.get("agent_found") is None else f"{health['agent_found']:.0%}"
    head = (f"health: {'HEALTHY' if health.get('healthy') else 'UNHEALTHY'} (agent found on {found} of "
            f"{health.get('frames', 0)} real frames, beats copying frame 0: {health.get('beats_copy')}, shift grid "
            f"ok: {health.get('shift_grid_ok')}, codes used: {health.get('codes_used')}/{health.get('num_codes')})")
    return "\n".join([head, *(f"  problem: {p}" for p in health.get("problems", [])),
                       *(f"  warning: {w}" for w in health.get("warnings", []))])


def cli_main(argv: list[str]) -> int:
    """``glassworld eval key=value ...`` (see the module docstring); returns the exit status."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from .config import compose

    try:
        cfg = EvalConfig.from_omegaconf(compose(list(argv), config_name="eval"))
        if cfg.checkpoint is None or cfg.data_path is None:
            raise DatasetError("usage: glassworld eval checkpoint=PATH data.path=DIR [out=FILE.json] "
                               "[split=val|test] [eval.clips=N] [eval.clip_len=T] [device=...] [seed=N]")
        if cfg.out:
            check_writable(cfg.out, "out=", folder=False)  # before any work
        result = evaluate(cfg)
    except (DatasetError, ValueError) as e:
        print(f"glassworld eval: error: {e}", file=sys.stderr)
        return 2
    print(format_table(result), flush=True)  # first: the results are shown even if writing them fails
    if cfg.out:
        try:
            atomic_write_json(Path(cfg.out), result)
        except OSError as e:
            print(f"glassworld eval: error: could not write {cfg.out}: {e.strerror or e} (the results are above)",
                  file=sys.stderr)
            return 1
        print(f"wrote {cfg.out}")
    return 0
