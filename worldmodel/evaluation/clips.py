"""The model under evaluation and the windows of the split it is scored on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.format import DatasetError
from ..models import load_world_model, set_generation

if TYPE_CHECKING:
    from ..evaluate import EvalConfig

log = logging.getLogger(__name__)


@dataclass
class EvalData:
    """The model (in eval mode), where it runs, and the clips it is scored on."""

    model: Any  # a WorldModel
    device: torch.device
    frame_skip: int  # frames skipped between two frames of a clip
    height: int  # frame size of the dataset (= the model's)
    width: int
    gt_keys: set[str]  # the dataset's ground truth ("pos", "shift", "bg_shift", "local", "mask")
    dataset: Any  # ClipDataset: all windows of the split
    chosen: np.ndarray  # (N,) sorted indices of the evaluated windows
    loader: Any  # DataLoader over the chosen windows, batches of cfg.batch_size, in order


def checkpoint_frame_skip(path: str | None) -> int:
    """The frame skip a checkpoint was trained with: card, else run_config data.frame_skip, else model_config."""
    if path is None:
        return 0
    from ..checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, map_location="cpu")
    run = ckpt.get("run_config") or {}
    for source in (ckpt.get("card") or {}, run.get("data") or {}, ckpt.get("model_config") or {}):
        if isinstance(source, dict) and source.get("frame_skip") is not None:
            return int(source["frame_skip"])
    return 0


def model_to_evaluate(cfg: EvalConfig, model: Any | None, device: torch.device) -> tuple[Any, torch.device, int]:
    """(model in eval mode, its device, frame skip): ``model`` as given, or ``cfg.checkpoint`` loaded on ``device``
    with ``cfg.generation`` applied. The frame skip is ``cfg.frame_skip``, else the one the model was trained with."""
    if model is None:
        if cfg.checkpoint is None:
            raise DatasetError("no checkpoint given: pass checkpoint=PATH (a file written by `glassworld train`)")
        model = load_world_model(cfg.checkpoint, device)
        try:
            set_generation(model, cfg.generation)
        except ValueError as e:
            raise DatasetError(f"eval.generation: {e}") from None
        frame_skip = cfg.frame_skip if cfg.frame_skip is not None else checkpoint_frame_skip(cfg.checkpoint)
    else:
        device = getattr(model, "device", device)
        model_skip = getattr(getattr(model, "cfg", None), "frame_skip", 0)  # e.g. GlassConfig.frame_skip
        frame_skip = cfg.frame_skip if cfg.frame_skip is not None else int(model_skip or 0)
    if isinstance(model, torch.nn.Module):
        model.eval()
    return model, device, frame_skip


def prepare(cfg: EvalConfig, model: Any | None, device: torch.device) -> EvalData:
    """The model (:func:`model_to_evaluate`) and ``cfg.clips`` windows of ``cfg.clip_len`` frames drawn at random
    without replacement (seeded by ``cfg.seed``) from ``cfg.split``; the model must work at the dataset's size."""
    from torch.utils.data import DataLoader, Subset

    from ..data.dataset import ClipConfig, ClipDataset
    from ..data.format import read_manifest

    model, device, frame_skip = model_to_evaluate(cfg, model, device)
    manifest = read_manifest(Path(cfg.data_path))
    h, w = int(manifest["height"]), int(manifest["width"])
    if (int(model.height), int(model.width)) != (h, w):
        raise DatasetError(
            f"the model works on {model.height}x{model.width} frames but {cfg.data_path} holds {h}x{w}; evaluate "
            f"on a dataset made at {model.height}x{model.width} (glassworld data ... --size "
            f"{model.height}x{model.width})")
    ds = ClipDataset(cfg.data_path, cfg.split,
                     ClipConfig(clip_len=cfg.clip_len, frame_skip=frame_skip, stride=1, ground_truth=True))
    rng = np.random.default_rng(cfg.seed)
    chosen = np.sort(rng.permutation(len(ds))[: cfg.clips])
    loader = DataLoader(Subset(ds, chosen.tolist()), batch_size=cfg.batch_size, shuffle=False,
                        num_workers=cfg.workers)
    if len(chosen) < cfg.clips:
        log.warning("split %s has only %d windows of %d frames; evaluating all of them", cfg.split,
                    len(chosen), cfg.clip_len)
    return EvalData(model, device, frame_skip, h, w, set(manifest.get("ground_truth", [])), ds, chosen, loader)
