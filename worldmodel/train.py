"""``glassworld train``: train a world model on a dataset folder, with exact resume, DDP and TensorBoard.

Usage::

    glassworld train model=glass data.path=DIR [model.preset=tiny|cpu|paper] [train.steps=N] [run_dir=DIR]
        [device=auto|cpu|cuda] [seed=N] [resume=true] [train.batch_size=B] [train.checkpoint_every=N] ...
    torchrun --nproc_per_node 2 -m worldmodel.cli train ...   # DDP (gloo on CPU, nccl on CUDA)

:func:`train` is the pure function behind the command (tests call it directly). It reads top to bottom: seeding,
data, model, optimiser, loop, checkpoint. The run directory holds::

    run_dir/checkpoint.pt          # self-describing checkpoint (worldmodel.checkpoint), rewritten atomically
    run_dir/checkpoint_step{N}.pt  # with train.keep_checkpoints=true
    run_dir/best.pt                # with train.keep_best=true: the latest checkpoint whose agent the shifts explain
                                   # within 5 points of the best (worldmodel.discovery.keeps)
    run_dir/config.yaml            # the run config
    run_dir/metrics.json           # final losses, steps/s, ...
    run_dir/tb/                    # TensorBoard events

Exact resume: a checkpoint holds the weights, optimiser, scheduler, every RNG state (python, numpy, torch, cuda,
per rank), the data sampler position (epoch, batch), and the trainer's own state (VQ usage counts), so
``resume=true`` continues bit-for-bit on CPU. Ctrl-C (SIGINT) or SIGTERM saves a checkpoint and exits (130/143); an
unexpected exception saves one of the last completed step, then propagates (single process). ``resume=true`` refuses
a change of model, preset, overrides, seed, batch, frame skip or data (``data_fingerprint`` in the checkpoint).
Before any work ``run_dir`` is checked writable and the dataset's video files are checked (``data.check``); unusable
files are left out with a warning naming each.

DDP and BatchNorm: every rank normalises with the statistics of its own share of the batch (plain BatchNorm,
as the official code does); the gradient is the average of the per-rank gradients. So with B_global = R * b
the DDP step equals one process that averages the losses of the R shards of b clips (tests/test_ddp.py checks
this). ``train.sync_bn=true`` converts BatchNorm to SyncBatchNorm on CUDA (PyTorch has no CPU SyncBatchNorm).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import itertools
import json
import logging
import math
import os
import platform
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DistributedSampler

from .checkpoint import load_checkpoint, save_checkpoint
from .config import plain, settings
from .health import MaskWatch
from .data.dataset import ClipConfig, ClipDataset, make_loader
from .data.format import (CHECK_LEVELS, DatasetError, atomic_write_bytes, atomic_write_json, check_writable,
                          read_manifest)
from .envinfo import EnvInfoConfig, PlacesConfig, compute_env_info, recorded_places, spread_clip_batches
from .precision import autocast, check_precision

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- configuration
@dataclass
class DataSettings:
    """``data.*``: which dataset and how clips are loaded."""

    path: str | None = None  # dataset folder (required)
    workers: int = 2  # DataLoader worker processes per rank
    frame_skip: int | None = None  # None: the model config's default
    check: str = "header"  # video files checked when opened: header (fast) | full (decompress all) | off


@dataclass
class ModelSettings:
    """``model.*``: registry name, preset and field overrides of the model config."""

    name: str = "glass"
    preset: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)  # any other model.* key (e.g. +model.num_codes=8)


@dataclass
class TrainSettings:
    """``train.*``: length, logging and checkpointing of the loop."""

    steps: int = 1000  # total optimiser steps of the run
    batch_size: int | None = None  # global batch, split across ranks; None: the model config's batch_size
    checkpoint_every: int = 250
    keep_checkpoints: bool = False  # also keep checkpoint_step{N}.pt
    log_every: int = 10
    image_every: int = 250  # 0 = no image/video logs
    dead_code_window: int = 500  # 0 = never reset unused VQ codes
    env_info_batches: int = 4
    start_frames: int = 64
    find_unused_parameters: bool = True  # DDP (method.md pitfall 14)
    sync_bn: bool = False  # DDP on CUDA only
    progress: bool = True
    threads: int | None = None  # torch CPU threads per process; None: torch's default
    precision: str = "float32"  # float32 | bfloat16 (autocast mixed precision, worldmodel.precision)
    time_budget_min: float | None = None  # stop (saving a checkpoint) once the run has trained this many minutes
    # every checkpoint_every steps and at the end, score the agent on train clips (worldmodel.discovery: found,
    # share of its motion the shifts explain) and copy the latest checkpoint within a tolerance of the best to best.pt
    keep_best: bool = False


@dataclass
class TrainRunConfig:
    """Everything a training run depends on (the ``train``-relevant part of ``configs/config.yaml``)."""

    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    run_dir: str | None = None
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    resume: bool = False
    init_from: str | None = None  # start a new run from this checkpoint's weights (fine-tuning)

    @classmethod
    def from_omegaconf(cls, cfg: DictConfig | dict[str, Any]) -> TrainRunConfig:
        """Convert the composed Hydra config (extra top-level keys such as ``bench`` are ignored)."""
        d = plain(cfg)
        model = dict(d.get("model") or {})
        nested_overrides = dict(model.pop("overrides", None) or {})
        name = model.pop("name", "glass")
        preset = model.pop("preset", "cpu")
        return cls(
            data=settings(DataSettings, d.get("data") or {}, "data"),
            model=ModelSettings(name=str(name), preset=str(preset), overrides={**model, **nested_overrides}),
            train=settings(TrainSettings, d.get("train") or {}, "train"),
            run_dir=None if d.get("run_dir") is None else str(d["run_dir"]),
            device=str(d.get("device", "auto")),
            seed=int(d.get("seed", 0)),
            resume=bool(d.get("resume", False)),
            init_from=None if d.get("init_from") is None else str(d["init_from"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """YAML in the layout of ``configs/config.yaml`` (model overrides flattened into ``model``)."""
        d = self.to_dict()
        d["model"] = {"name": self.model.name, "preset": self.model.preset, **self.model.overrides}
        return OmegaConf.to_yaml(OmegaConf.create(d))


def validate(cfg: TrainRunConfig) -> None:
    """One clear error for an unusable run config."""
    if not cfg.data.path:
        raise DatasetError("data.path is required: glassworld train data.path=DIR (a folder made by "
                           "`glassworld data ...`)")
    t = cfg.train
    for name in ("steps", "checkpoint_every", "log_every"):
        if getattr(t, name) < 1:
            raise DatasetError(f"train.{name} must be >= 1, got {getattr(t, name)}")
    for name in ("image_every", "dead_code_window", "env_info_batches", "start_frames"):
        if getattr(t, name) < 0:
            raise DatasetError(f"train.{name} must be >= 0, got {getattr(t, name)}")
    if t.threads is not None and t.threads < 1:
        raise DatasetError(f"train.threads must be >= 1 (or null for torch's default), got {t.threads}")
    if t.batch_size is not None and t.batch_size < 1:
        raise DatasetError(f"train.batch_size must be >= 1, got {t.batch_size}")
    if t.time_budget_min is not None and not t.time_budget_min > 0:
        raise DatasetError(f"train.time_budget_min must be > 0 (or null), got {t.time_budget_min}")
    check_precision(t.precision, "train.precision")
    if cfg.data.workers < 0:
        raise DatasetError(f"data.workers must be >= 0, got {cfg.data.workers}")
    if cfg.data.frame_skip is not None and cfg.data.frame_skip < 0:
        raise DatasetError(f"data.frame_skip must be >= 0, got {cfg.data.frame_skip}")
    if cfg.data.check not in CHECK_LEVELS:
        raise DatasetError(f"data.check must be one of {list(CHECK_LEVELS)}, got {cfg.data.check!r}")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise DatasetError(f"device must be auto, cpu or cuda, got {cfg.device!r}")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise DatasetError(f"device={cfg.device} but CUDA is not available; use device=cpu or device=auto")


# ---------------------------------------------------------------------------------------------- helpers
class ResumableSampler(DistributedSampler):
    """A ``DistributedSampler`` (seeded shuffle, ``set_epoch``) that can start part-way through an epoch.

    ``set_position(epoch, skip)`` makes the next iteration yield this rank's indices of ``epoch`` after the
    first ``skip`` ones, which is how a resumed run continues with exactly the clips it would have seen.
    """

    def __init__(self, dataset: ClipDataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.skip = 0

    def set_position(self, epoch: int, skip: int) -> None:
        self.set_epoch(epoch)
        self.skip = min(max(0, skip), self.num_samples)

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return self.num_samples - self.skip


class _LossModule(nn.Module):
    """Makes ``training_losses`` the ``forward`` so DDP sees (and all-reduces) it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor, step: int) -> tuple[torch.Tensor, dict, dict]:
        return self.model.training_losses(frames, step)


def build_optimizer(model: nn.Module, mcfg: Any) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.MultiStepLR]:
    """method.md 6: Adam with L2 weight decay (``mcfg.lr``, ``mcfg.weight_decay``) and a MultiStepLR
    (``mcfg.lr_milestones``, ``mcfg.lr_gamma``) stepped every iteration."""
    optimizer = torch.optim.Adam(model.parameters(), lr=float(mcfg.lr), betas=(0.9, 0.999),
                                 weight_decay=float(mcfg.weight_decay))
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(mcfg.lr_milestones),
                                                     gamma=float(mcfg.lr_gamma))
    return optimizer, scheduler


def optimisation_step(losses: Callable[[torch.Tensor, int], tuple[torch.Tensor, dict, dict]], model: nn.Module,
                      optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                      frames: torch.Tensor, step: int, device: torch.device,
                      precision: str) -> tuple[torch.Tensor, dict, dict]:
    """One training iteration, as the trainer runs it and ``glassworld bench train`` times it: the losses of
    ``frames`` (B, T, 3, H, W) in [-1, 1] at schedule ``step`` under autocast, backward, non-finite gradients of
    ``model``'s parameters replaced (method.md 6: NaN -> 0, +-inf -> +-1e5), an optimiser and a scheduler step.

    ``losses`` is ``model.training_losses`` or a wrapper of it (the trainer's DDP module, whose backward
    all-reduces the gradients). Returns ``(total, terms, aux)`` of ``training_losses``.
    """
    with autocast(device, precision):
        total, terms, aux = losses(frames, step)
    optimizer.zero_grad(set_to_none=True)
    total.backward()  # under DDP the gradients are all-reduced (averaged) here
    for prm in model.parameters():
        if prm.grad is not None:
            torch.nan_to_num_(prm.grad, nan=0.0, posinf=1e5, neginf=-1e5)
    optimizer.step()
    scheduler.step()
    return total, terms, aux


@dataclass
class _Progress:
    """The trainer's own state; saved in checkpoints so resume is exact."""

    step: int = 0  # completed optimiser steps
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this epoch already consumed (per rank)
    wall_time: float = 0.0  # seconds of training over all sessions of the run
    code_counts: torch.Tensor | None = None  # (K,) VQ code usage since the last dead-code check
    dead_codes_reset: int = 0
    best_explained: float | None = None  # train.keep_best: the best shift_explained seen so far
    best_step: int | None = None  # ... and the step of the snapshot in best.pt

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _resolve_device(pref: str, local_rank: int) -> torch.device:
    from .device import resolve_device; return resolve_device(pref, local_rank)  # noqa: E702 - the one device rule


def _init_distributed(device_pref: str) -> tuple[int, int, int, bool]:
    """(world_size, rank, local_rank, created) from torchrun's environment variables."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0, 0, False
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return dist.get_world_size(), dist.get_rank(), local, False
    cuda = device_pref != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo")
    return world, rank, local, True


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def _preserve_rng() -> Iterator[None]:
    """Side work (env_info, sample videos) must not move the training RNG streams."""
    state = _rng_state()
    try:
        yield
    finally:
        _set_rng_state(state)


def perceptual_backbone(model: nn.Module) -> str:
    """"pretrained" | "random" | "off": the perceptual-loss backbone the model trains with."""
    status = getattr(model, "perceptual_status", None)
    if callable(status):
        return str(status())
    value = getattr(model, "perceptual_backbone", None)
    if isinstance(value, str):
        return value
    module = getattr(model, "perceptual", None)
    if module is None:
        return "off"
    return str(getattr(module, "backbone", "off"))


def hardware_string(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    text = f"{cpu} ({os.cpu_count()} cpus)"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text


def _model_classes(name: str) -> tuple[type, type]:
    from .models import _lookup

    return _lookup(name)


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the trained module (train mode, CPU) from a loaded checkpoint dict."""
    model_cls, config_cls = _model_classes(ckpt["model"])
    model = model_cls(config_cls.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model


def _num_codes(model: nn.Module) -> int | None:
    for obj in (model, getattr(model, "cfg", None), getattr(model, "config", None)):
        k = getattr(obj, "num_codes", None)
        if isinstance(k, int):
            return k
    return None


def _hparams_table(cfg: TrainRunConfig, model_cfg: dict[str, Any], extra: dict[str, Any]) -> str:
    rows = ["| key | value |", "|---|---|"]
    flat: dict[str, Any] = {}
    for k, v in cfg.to_dict().items():
        if isinstance(v, dict):
            flat.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            flat[k] = v
    flat.update({f"model_config.{k}": v for k, v in model_cfg.items()})
    flat.update(extra)
    rows += [f"| {k} | {v} |" for k, v in flat.items()]
    return "\n".join(rows)


def _differences(name: str, saved: Any, now: Any) -> list[str]:
    """``["model.preset: saved 'cpu', now 'tiny'", ...]``: each leaf that differs between two config values."""
    if isinstance(saved, dict) and isinstance(now, dict):
        out: list[str] = []
        for k in list(saved) + [k for k in now if k not in saved]:
            out += _differences(f"{name}.{k}", saved.get(k), now.get(k))
        return out
    return [] if saved == now else [f"{name}: saved {saved!r}, now {now!r}"]


def data_fingerprint(manifest: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """What identifies the training data of a run: the train videos actually used (after the checks), their
    lengths, the frame size and source. Saved in checkpoints as ``data_fingerprint``; resume compares it."""
    train = sorted(manifest["splits"].get("train") or [])
    frames = [int(manifest["videos"][n]["frames"]) for n in train]
    digest = hashlib.sha1(json.dumps([train, frames]).encode()).hexdigest()[:16]
    return {"path": str(Path(path).resolve()), "source": manifest.get("source"),
            "resolution": [int(manifest["height"]), int(manifest["width"])], "train_videos": len(train),
            "train_frames": int(sum(frames)), "train_hash": digest,
            "skipped": sorted(manifest.get("skipped") or {})}


def _data_differences(saved: dict[str, Any] | None, now: dict[str, Any], saved_path: str | None,
                      now_path: str | None) -> list[str]:
    """How the data differs from the saved run's (empty when it is the same data, even if moved)."""
    if not saved:  # a checkpoint from before data fingerprints: only the folder can be compared
        same = Path(saved_path or "").resolve() == Path(now_path or "").resolve()
        return [] if same else [f"data.path: saved {saved_path!r}, now {now_path!r}"]
    diffs = []
    for key in ("source", "resolution"):
        if saved.get(key) != now[key]:
            diffs.append(f"data {key}: saved {saved.get(key)!r}, now {now[key]!r}")
    if saved.get("train_hash") != now["train_hash"]:
        detail = (f"data train split: saved {saved.get('train_videos')} videos / {saved.get('train_frames')} frames, "
                  f"now {now['train_videos']} / {now['train_frames']}")
        new_bad = sorted(set(now["skipped"]) - set(saved.get("skipped") or []))
        fixed = sorted(set(saved.get("skipped") or []) - set(now["skipped"]))
        if new_bad:
            detail += f", newly left out as unusable: {new_bad}"
        if fixed:
            detail += f", usable again: {fixed}"
        if saved.get("path") != now["path"]:
            detail += f" (data.path: saved {saved.get('path')!r}, now {now['path']!r})"
        diffs.append(detail)
    elif saved.get("path") != now["path"]:
        logger.warning("data.path changed from %s to %s; the data is the same, so the run continues",
                       saved.get("path"), now["path"])
    return diffs


# ---------------------------------------------------------------------------------------------- images
def _to01(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped; grey masks become RGB."""
    x = ((x.float() + 1) / 2).clamp(0, 1)
    return x.expand(*x.shape[:-3], 3, *x.shape[-2:]) if x.shape[-3] == 1 else x


def _strip(rows: list[torch.Tensor]) -> torch.Tensor:
    """Rows of videos (T_i, 3, H, W) in [0, 1] -> one image (3, R*H, T_max*W), short rows padded black."""
    t_max = max(r.shape[0] for r in rows)
    out = []
    for r in rows:
        pad = torch.zeros(t_max - r.shape[0], *r.shape[1:], dtype=r.dtype)
        r = torch.cat([r, pad])  # (T_max, 3, H, W)
        out.append(torch.cat(list(r), dim=-1))  # (3, H, T_max*W)
    return torch.cat(out, dim=-2)  # (3, R*H, T_max*W)


def _have_moviepy() -> bool:
    try:  # tensorboard's add_video imports moviepy.editor (moviepy 1.x) and silently does nothing without it
        importlib.import_module("moviepy.editor")
        return True
    except Exception:  # noqa: BLE001
        return False


# ---------------------------------------------------------------------------------------------- the trainer
@dataclass
class _LogWindow:
    """Loss sums since the last scalar log: :meth:`close` returns their means and the steps/s, and starts anew."""

    t0: float
    step: int
    sums: dict[str, float] = field(default_factory=dict)

    def add(self, terms: dict[str, float]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v

    def close(self, step: int) -> tuple[dict[str, float], float]:
        now, n = time.perf_counter(), step - self.step
        out = ({k: v / n for k, v in self.sums.items()}, n / max(now - self.t0, 1e-9))
        self.t0, self.step, self.sums = now, step, {}
        return out


class _Stop:
    """Turns SIGINT/SIGTERM into a request to save and stop after the current step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:  # second Ctrl-C: stop now, without saving
            raise KeyboardInterrupt
        self.signal = signum
        logger.warning("%s received: saving a checkpoint after this step (Ctrl-C again to abort)",
                       signal.Signals(signum).name)

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(cfg: TrainRunConfig | DictConfig | dict[str, Any], run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train (or with ``cfg.resume`` continue) a world model; return the final metrics.

    Args:
        cfg: the run config (``configs/config.yaml`` composed, or a :class:`TrainRunConfig`).
        run_dir: output folder; default ``cfg.run_dir``, else ``runs/<model>-<YYYYmmdd-HHMMSS>``.
    Returns:
        metrics (also written to run_dir/metrics.json): step, final_losses, steps_per_s, interrupted, ...
    """
    if not isinstance(cfg, TrainRunConfig):
        cfg = TrainRunConfig.from_omegaconf(cfg)
    validate(cfg)
    run_dir = Path(run_dir or cfg.run_dir or f"runs/{cfg.model.name}-{datetime.now():%Y%m%d-%H%M%S}")
    cfg = dataclasses.replace(cfg, run_dir=str(run_dir))
    ckpt_path = run_dir / "checkpoint.pt"
    if cfg.resume and not ckpt_path.exists():
        raise DatasetError(f"resume=true but {ckpt_path} does not exist; start the run without resume=true "
                           "(or point run_dir= at the run to continue)")
    if not cfg.resume and ckpt_path.exists():
        raise DatasetError(f"{run_dir} already holds a run (checkpoint.pt); continue it with resume=true or "
                           "choose another run_dir=")
    read_manifest(Path(cfg.data.path), check="off")  # one clear error for a missing / foreign folder
    # before any work: an unwritable run_dir is one error, not a lost run. Only the process that writes it (rank
    # 0; torchrun sets RANK) probes it: a second rank's probe removes the folder it created while rank 0 probes
    # inside it (seen as a flaky "No such file or directory" in the DDP test)
    if int(os.environ.get("RANK", "0")) == 0:
        check_writable(run_dir, "run_dir")
    # the video files are checked here, before step 1; unusable ones are left out with a warning naming each
    manifest = read_manifest(Path(cfg.data.path), check=cfg.data.check)

    world, rank, local_rank, created_pg = _init_distributed(cfg.device)
    if rank == 0:
        for stale in run_dir.glob(".*.tmp"):  # a save cut short by a kill; the files it replaces are intact
            stale.unlink(missing_ok=True)
    try:
        return _Trainer(cfg, run_dir, manifest, world, rank, local_rank).run()
    finally:
        if created_pg and dist.is_initialized():
            dist.destroy_process_group()


class _Trainer:
    """One training session; :meth:`run` reads top to bottom."""

    def __init__(self, cfg: TrainRunConfig, run_dir: Path, manifest: dict[str, Any], world: int, rank: int,
                 local_rank: int) -> None:
        self.cfg, self.run_dir, self.manifest = cfg, run_dir, manifest
        self.world, self.rank, self.is_main = world, rank, rank == 0
        self.device = _resolve_device(cfg.device, local_rank)
        self.progress = _Progress()
        self.writer: Any = None
        self.start_frames: torch.Tensor | None = None
        self._places: dict[str, Any] | None = None  # env_info reach_from / reach_to (recorded_places)
        self._last_env_info: dict[str, Any] | None = None  # kept for a save after an error

    # ------------------------------------------------------------------ setup
    def _build_model(self, ckpt: dict[str, Any] | None) -> nn.Module:
        from .models import build_model

        cfg = self.cfg
        if ckpt is not None:
            return model_from_checkpoint(ckpt)
        h, w = self.manifest["height"], self.manifest["width"]
        try:
            model = build_model(cfg.model.name, cfg.model.preset, h, w, cfg.model.overrides)
        except (TypeError, ValueError) as e:  # unknown model / preset / override key, unusable frame size
            raise DatasetError(f"cannot build model {cfg.model.name}/{cfg.model.preset} for {h}x{w} frames "
                               f"with overrides {cfg.model.overrides}: {e}") from None
        if cfg.init_from:
            self._load_initial_weights(model, Path(cfg.init_from))
        return model

    def _load_initial_weights(self, model: nn.Module, path: Path) -> None:
        """``init_from``: copy every weight of another checkpoint of the same architecture (optimiser, step and
        RNG start fresh; loss weights and schedules come from this run's config)."""
        src = load_checkpoint(path)
        if src["model"] != self.cfg.model.name:
            raise DatasetError(f"init_from={path} holds a {src['model']!r} model but this run trains "
                               f"{self.cfg.model.name!r}; pass model={src['model']}")
        try:
            model.load_state_dict(src["state_dict"])
        except RuntimeError as e:
            lines = str(e).strip().splitlines()
            detail = lines[1].strip() if len(lines) > 1 else lines[0]
            raise DatasetError(f"init_from={path} does not fit model {self.cfg.model.name}/{self.cfg.model.preset} "
                               f"with overrides {self.cfg.model.overrides} ({detail}); use the preset, frame size "
                               "and size overrides of the run that wrote it") from None
        logger.info("initialised every weight from %s (its step %s); optimiser and schedules start at step 0",
                    path, src.get("step"))

    def _check_resume(self, ckpt: dict[str, Any]) -> None:
        """Exact continuation needs the same model (name, preset, overrides), seed, batch, data order and data as
        the saved run; any difference is one error naming each changed setting."""
        saved = ckpt.get("run_config") or {}
        now = self.cfg.to_dict()
        fixed = [("model",), ("seed",), ("train", "batch_size"), ("data", "frame_skip")]
        diffs = []
        for keys in fixed:
            a, b = saved, now
            for k in keys:
                a, b = (a or {}).get(k), (b or {}).get(k)
            diffs += _differences(".".join(keys), a, b)
        diffs += _data_differences(ckpt.get("data_fingerprint"), data_fingerprint(self.manifest, self.cfg.data.path),
                                   saved.get("data", {}).get("path"), self.cfg.data.path)
        if diffs:
            raise DatasetError("resume=true cannot change " + "; ".join(diffs) +
                               " (drop these overrides, or start a new run_dir; init_from=RUN/checkpoint.pt starts "
                               "a new run from the saved weights)")
        rng = ckpt.get("rng") or {}
        if rng.get("world_size", 1) != self.world:
            raise DatasetError(f"the run was saved with {rng.get('world_size', 1)} processes and is resumed with "
                               f"{self.world}; resume with the same number of processes (torchrun "
                               f"--nproc_per_node {rng.get('world_size', 1)})")

    def run(self) -> dict[str, Any]:
        cfg, t = self.cfg, self.cfg.train
        ckpt = load_checkpoint(self.run_dir / "checkpoint.pt") if cfg.resume else None
        if ckpt is not None:
            self._check_resume(ckpt)

        if t.threads:
            torch.set_num_threads(t.threads)
        # ---- seeding (method.md 6: seed * world + rank); a resumed run restores every stream below
        _seed_everything(cfg.seed * self.world + self.rank)

        # ---- model (built before the data: the model config says how long clips are)
        model = self._build_model(ckpt).to(self.device)
        mcfg = model.cfg if hasattr(model, "cfg") else model.config
        batch = t.batch_size or int(mcfg.batch_size)
        if batch % self.world:
            raise DatasetError(f"train.batch_size={batch} must be divisible by the {self.world} processes")
        per_rank = batch // self.world
        frame_skip = cfg.data.frame_skip if cfg.data.frame_skip is not None else int(mcfg.frame_skip)
        clip_len = int(mcfg.clip_len_max)
        self.perceptual = perceptual_backbone(model)
        self.mask_watch = MaskWatch(int(model.height), int(model.width))

        # ---- data
        dataset = ClipDataset(cfg.data.path, "train", ClipConfig(clip_len=clip_len, frame_skip=frame_skip,
                                                                 ground_truth=False, check=cfg.data.check))
        if len(dataset) < batch:
            raise DatasetError(f"the train split of {cfg.data.path} has {len(dataset)} clips of {clip_len} frames, "
                               f"fewer than train.batch_size={batch}; use a smaller batch or more data")
        sampler = ResumableSampler(dataset, self.world, self.rank, seed=cfg.seed)
        loader = make_loader(dataset, per_rank, workers=cfg.data.workers, seed=cfg.seed * self.world + self.rank,
                             sampler=sampler)
        loader.worker_init_fn = _worker_init  # workers ignore Ctrl-C; the main process stops them in order

        # ---- optimiser (method.md 6: Adam with L2 weight decay, MultiStepLR stepped every iteration)
        optimizer, scheduler = build_optimizer(model, mcfg)
        if ckpt is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            self._restore_progress(ckpt)

        wrapped: nn.Module = _LossModule(model)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if t.sync_bn and self.device.type == "cuda":
                wrapped = nn.SyncBatchNorm.convert_sync_batchnorm(wrapped)
                model = wrapped.model
            elif t.sync_bn:
                logger.warning("train.sync_bn needs CUDA; keeping per-rank BatchNorm statistics on CPU")
            wrapped = DDP(wrapped, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                          find_unused_parameters=t.find_unused_parameters)

        self.model, self.mcfg, self.optimizer, self.scheduler = model, mcfg, optimizer, scheduler
        self.dataset, self.clip_len, self.frame_skip, self.batch = dataset, clip_len, frame_skip, batch
        self.num_codes = _num_codes(model)
        if self.num_codes is not None and self.progress.code_counts is None:
            self.progress.code_counts = torch.zeros(self.num_codes, dtype=torch.long)

        self._announce(model, ckpt is not None)
        return self._loop(wrapped, loader, sampler, per_rank)

    def _restore_progress(self, ckpt: dict[str, Any]) -> None:
        p = ckpt.get("trainer") or {}
        self.progress = _Progress(**{k: v for k, v in p.items() if k in _Progress.__dataclass_fields__})
        self.progress.step = int(ckpt["step"])
        rng = ckpt.get("rng") or {}
        states = rng.get("states") or []
        if len(states) > self.rank:
            _set_rng_state(states[self.rank])
        else:
            logger.warning("checkpoint has no RNG state for rank %d; the continuation is not bit-exact", self.rank)
        if rng.get("sampler"):
            self.progress.epoch = int(rng["sampler"]["epoch"])
            self.progress.batch_in_epoch = int(rng["sampler"]["batch"])

    def _announce(self, model: nn.Module, resumed: bool) -> None:
        if not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.run_dir / "config.yaml", self.cfg.to_yaml().encode())
        n_params = sum(p.numel() for p in model.parameters())
        logger.info("%s run in %s (%s)\n%s", "resuming" if resumed else "starting", self.run_dir,
                    f"step {self.progress.step}" if resumed else "new", self.cfg.to_yaml())
        logger.info("model %s/%s: %.2fM parameters, %dx%d frames, clips of %d (frame_skip %d), batch %d "
                    "(%d per rank x %d), device %s", self.cfg.model.name, self.cfg.model.preset, n_params / 1e6,
                    self.manifest["height"], self.manifest["width"], self.clip_len, self.frame_skip, self.batch,
                    self.batch // self.world, self.world, self.device)
        logger.info("perceptual backbone: %s", self.perceptual)
        logger.info("train split: %d clips", len(self.dataset))

        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.progress.step + 1 if resumed else None)
        extra = {"world_size": self.world, "global_batch": self.batch, "perceptual": self.perceptual,
                 "parameters": n_params, "device": str(self.device), "torch": torch.__version__}
        self.writer.add_text("hyperparameters", _hparams_table(self.cfg, self.mcfg.to_dict(), extra),
                             self.progress.step)

    # ------------------------------------------------------------------ loop
    def _batches(self, loader: Any, sampler: ResumableSampler, per_rank: int) -> Iterator[torch.Tensor]:
        """Endless uint8 clips (b, T, 3, H, W), epoch after epoch, from the saved sampler position."""
        p = self.progress
        while True:
            sampler.set_position(p.epoch, p.batch_in_epoch * per_rank)
            for item in loader:
                yield item["frames"]
            p.epoch += 1
            p.batch_in_epoch = 0

    def _loop(self, wrapped: nn.Module, loader: Any, sampler: ResumableSampler, per_rank: int) -> dict[str, Any]:
        t, p, model = self.cfg.train, self.progress, self.model
        budget_s = None if t.time_budget_min is None else 60.0 * t.time_budget_min
        bar = self._progress_bar(budget_s)
        self._session_start, self._wall_base, start_step = time.perf_counter(), p.wall_time, p.step
        window = _LogWindow(self._session_start, p.step)
        last: dict[str, float] = {}
        stopped: str | None = None
        out_of_time = budget_s is not None and self._wall_base >= budget_s  # resumed with the budget spent: no step
        batches = self._batches(loader, sampler, per_rank)
        model.train()
        committed = self._commit()  # the state after the last completed step (saved if a step fails)
        self._saved_step = p.step  # the step of the checkpoint on disk (a resumed run's, or none yet at 0)
        with _Stop() as stop:
            try:
                while p.step < t.steps and not out_of_time:
                    frames_u8 = next(batches)  # (b, T_max, 3, H, W) uint8
                    p.batch_in_epoch += 1
                    step = p.step
                    n_obs = int(self.mcfg.num_obs(step))
                    frames = frames_u8[:, :n_obs].to(self.device, non_blocking=True).float() / 127.5 - 1.0
                    # frames: (b, T, 3, H, W) in [-1, 1]

                    total, terms, aux = optimisation_step(wrapped, model, self.optimizer, self.scheduler, frames,
                                                          step, self.device, t.precision)
                    p.step += 1

                    last, stop_all = self._reduce_terms(total, terms, stop.signal is not None)
                    window.add(last)
                    self._count_codes(aux)
                    spent = self._wall_base + (time.perf_counter() - self._session_start)
                    bar.update(1 if budget_s is None else max(0, min(round(spent), bar.total) - bar.n))
                    bar.set_postfix(loss=f"{last['total']:.4f}", **({} if budget_s is None else {"step": p.step}),
                                    refresh=False)
                    out_of_time = budget_s is not None and spent >= budget_s

                    self._after_step(step, frames, aux, window, force_log=stop_all or out_of_time)
                    if stop_all:
                        stopped = signal.Signals(stop.signal).name if stop.signal else "signal on another rank"
                        break
                    if out_of_time:
                        logger.info("time budget of %.1f min reached at step %d", t.time_budget_min, p.step)
                        break
                    if p.step % t.checkpoint_every == 0 and p.step < t.steps:
                        self._save_checkpoint(best=self._score_snapshot())
                    committed = self._commit()
                self._save_checkpoint(best=self._score_snapshot())
            except Exception:  # an unexpected error: keep what was learned, then let it propagate
                self._save_after_error(committed)
                raise
            finally:
                bar.close()
                batches.close()
        return self._finish(start_step, last, stopped, out_of_time)

    def _progress_bar(self, budget_s: float | None) -> Any:
        """tqdm over steps, or with a time budget over seconds of training (its ETA is then the time left)."""
        from tqdm.auto import tqdm

        t, p = self.cfg.train, self.progress
        return tqdm(total=t.steps if budget_s is None else round(budget_s),
                    initial=min(p.step, t.steps) if budget_s is None else min(round(p.wall_time), round(budget_s)),
                    unit="it" if budget_s is None else "s", disable=not (self.is_main and t.progress),
                    desc="train", dynamic_ncols=True, file=sys.stderr)

    def _after_step(self, step: int, frames: torch.Tensor, aux: dict[str, torch.Tensor], window: _LogWindow,
                    force_log: bool) -> None:
        """The periodic work after optimisation step ``step``: scalar logs and the mask health watch (every
        ``log_every`` steps, at the end and when stopping), dead-code resets and image logs."""
        t, p = self.cfg.train, self.progress
        if p.step % t.log_every == 0 or p.step == t.steps or force_log:
            if "mask" in aux:  # the health checks' agent_found, as it goes (warns on a collapse)
                found = self.mask_watch.update(aux["mask"], p.step)
                if self.writer is not None:
                    self.writer.add_scalar("health/agent_found", found, p.step)
            means, sps = window.close(p.step)
            self._log_scalars(means, sps, frames.shape[0] * self.world * frames.shape[1])
        if t.dead_code_window and p.step % t.dead_code_window == 0:
            self._reset_dead_codes(step)
        if t.image_every and p.step % t.image_every == 0 and self.is_main:
            self._log_images(frames, aux)

    def _finish(self, start_step: int, last: dict[str, float], stopped: str | None,
                out_of_time: bool) -> dict[str, Any]:
        """The run's metrics (written to run_dir/metrics.json by the main process, which also closes the log)."""
        p = self.progress
        session = time.perf_counter() - self._session_start
        steps_run = p.step - start_step
        sps = steps_run / session if steps_run and session > 0 else None
        n_obs_last = int(self.mcfg.num_obs(max(p.step - 1, 0)))
        metrics = {
            "step": p.step, "steps_run": steps_run, "steps_per_s": sps,
            "frames_per_s": sps * self.batch * n_obs_last if sps else None,
            "wall_time_s": p.wall_time, "final_losses": last, "interrupted": stopped,
            "stopped_by": stopped or ("time_budget" if out_of_time else "steps"),
            "health_problem": self.mask_watch.final_problem(),
            "perceptual": self.perceptual, "world_size": self.world, "batch_size": self.batch,
            "device": str(self.device), "dead_codes_reset": p.dead_codes_reset,
            "checkpoint": str(self.run_dir / "checkpoint.pt"), "rank": self.rank,
        }
        if self.is_main:
            atomic_write_json(self.run_dir / "metrics.json", _jsonable(metrics))
            if self.writer is not None:
                self.writer.close()
            logger.info("%s at step %d (%.2f steps/s): %s", f"stopped by {stopped}" if stopped else "finished",
                        p.step, sps or 0.0, ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
        return metrics

    def _reduce_terms(self, total: torch.Tensor, terms: dict[str, torch.Tensor],
                      stop: bool) -> tuple[dict[str, float], bool]:
        """Scalar terms averaged over ranks, and whether any rank asked to stop (one all-reduce)."""
        names = ["total"] + [k for k in terms if k != "total"]
        vec = torch.stack([total.detach().float().reshape(())] +
                          [torch.as_tensor(terms[k]).detach().float().reshape(()).to(total.device)
                           for k in names[1:]] +
                          [torch.tensor(float(stop), device=total.device)])
        if self.world > 1:
            dist.all_reduce(vec)
            vec[:-1] /= self.world
        values = vec.cpu().tolist()
        return dict(zip(names, values[:-1])), values[-1] > 0

    def _count_codes(self, aux: dict[str, torch.Tensor]) -> None:
        codes = aux.get("codes") if isinstance(aux, dict) else None
        if codes is None or self.progress.code_counts is None or self.num_codes is None:
            return
        counts = torch.bincount(codes.detach().reshape(-1).long().cpu(), minlength=self.num_codes)
        self.progress.code_counts += counts[: self.num_codes]

    def _reset_dead_codes(self, step: int) -> None:
        """Re-initialise VQ codes unused over the last window (all ranks, identically)."""
        p = self.progress
        if p.code_counts is None or not hasattr(self.model, "reset_dead_codes"):
            return
        counts = p.code_counts.clone()
        p.code_counts.zero_()
        if self.world > 1:
            dist.all_reduce(counts)
        lma_active = getattr(self.mcfg, "lma_active", None)
        if lma_active is not None and not lma_active(step):
            return  # GMA pretraining: the codes get no gradient yet
        n = int(self.model.reset_dead_codes(counts.to(self.device)))
        if n and self.world > 1:  # any randomness in the re-initialisation: rank 0's result wins
            with torch.no_grad():
                for v in self.model.state_dict().values():
                    dist.broadcast(v, 0)
        p.dead_codes_reset += n
        if self.is_main:
            used = int((counts > 0).sum())
            self.writer.add_scalar("metrics/dead_codes_reset", n, p.step)
            self.writer.add_scalar("metrics/codes_used_window", used / max(self.num_codes or 1, 1), p.step)
            if n:
                logger.info("step %d: re-initialised %d unused VQ codes (%d of %d used in the last %d steps)",
                            p.step, n, used, self.num_codes, self.cfg.train.dead_code_window)

    # ------------------------------------------------------------------ logging
    def _log_scalars(self, means: dict[str, float], sps: float, frames_per_step: int) -> None:
        if not self.is_main:
            return
        w, step = self.writer, self.progress.step
        for k, v in means.items():
            group = "metrics" if k.startswith("vq_") else "losses"
            w.add_scalar(f"{group}/{k}", v, step)
        w.add_scalar("charts/learning_rate", self.optimizer.param_groups[0]["lr"], step)
        w.add_scalar("charts/SPS", sps, step)
        w.add_scalar("charts/frames_per_s", sps * frames_per_step, step)
        w.add_scalar("charts/epoch", self.progress.epoch, step)
        if hasattr(self.mcfg, "num_gt"):
            w.add_scalar("charts/num_gt", self.mcfg.num_gt(step - 1), step)
            w.add_scalar("charts/num_obs", self.mcfg.num_obs(step - 1), step)

    def _log_images(self, frames: torch.Tensor, aux: dict[str, torch.Tensor]) -> None:
        """Masks, foregrounds, inpainted backgrounds (images) and reconstructed / generated videos."""
        w, step = self.writer, self.progress.step
        n = min(2, frames.shape[0])
        real = _to01(frames[:n].detach().cpu())  # (n, T, 3, H, W) in [0, 1]
        for key, tag in (("mask", "masks"), ("fg", "foregrounds"), ("bg", "backgrounds")):
            if key in aux:
                x = aux[key][:n].detach().cpu().float()
                x = x.clamp(0, 1).expand(*x.shape[:2], 3, *x.shape[3:]) if key == "mask" else _to01(x)
                w.add_image(f"images/{tag}", _strip([*real, *x]), step)  # rows: real clips, then this part
        videos: dict[str, torch.Tensor] = {}
        if "composite" in aux:
            comp = _to01(aux["composite"][:n].detach().cpu())  # (n, T-1, 3, H, W)
            videos["reconstruction"] = torch.cat([real[:, 1:1 + comp.shape[1]], comp], dim=-1)  # (n, T-1, 3, H, 2W)
        if hasattr(self.model, "generate") and not getattr(self, "_generate_failed", False):
            try:
                with _preserve_rng():
                    self.model.eval()
                    gen, _masks = self.model.generate(real.to(self.device))  # (n, T, 3, H, W) in [0, 1]
            except Exception:  # noqa: BLE001 - a sample video must never end a long run
                logger.exception("model.generate failed; sample videos are off for this run")
                self._generate_failed = True
            else:
                videos["generated"] = torch.cat([real, gen.detach().float().cpu().clamp(0, 1)], dim=-1)
            finally:
                self.model.train()
        for name, vid in videos.items():  # left: real, right: model
            if _have_moviepy():
                w.add_video(f"videos/{name}", vid, step, fps=4)
            else:  # add_video needs moviepy; a frame strip shows the same
                w.add_image(f"videos/{name}_strip", _strip(list(vid)), step)

    # ------------------------------------------------------------------ checkpoints
    def _env_batches(self) -> list[torch.Tensor]:
        """Fixed train clips (evenly spread over the split) for the shift-grid estimate: list of (B, T, 3, H, W)."""
        if getattr(self, "_env_clips", None) is None:
            self._env_clips = spread_clip_batches(self.dataset, self.cfg.train.env_info_batches * self.batch,
                                                  self.batch)
        return self._env_clips

    def _env_info_for_save(self, after_error: bool) -> dict[str, Any] | None:
        """:meth:`_env_info`; after an error, the last one computed (or None) when computing it fails."""
        if not after_error:
            self._last_env_info = self._env_info()
            return self._last_env_info
        try:
            self._last_env_info = self._env_info()
        except Exception:  # noqa: BLE001 - the checkpoint matters more than fresh env info
            logger.exception("env info could not be computed after the error; saving the last one")
        return self._last_env_info

    def _env_info(self) -> dict[str, Any]:
        with _preserve_rng():
            info = compute_env_info(
                self.model, self._env_batches(), self.cfg.data.path, self.clip_len, self.frame_skip, self.device,
                EnvInfoConfig(max_start_frames=self.cfg.train.start_frames) if self.cfg.train.start_frames
                else EnvInfoConfig(), start_frames=self.start_frames)
        if self.cfg.train.start_frames == 0:
            info["start_frames"] = info["start_frames"][:0]
        self.start_frames = info["start_frames"]
        # reach targets: ground-truth positions are read once; positions from the model's own masks are re-measured
        # at every save (the first 64 frames of up to 64 train videos), as the masks improve
        if self._places is None or self._places.get("reach_source") == "model masks":
            with _preserve_rng():
                self._places = recorded_places(self.cfg.data.path, self.model,
                                               cfg=PlacesConfig(max_frames=64)) or {}
        info.update(self._places)
        return info

    def _commit(self) -> tuple[int, int, int, dict[str, Any]]:
        """(step, epoch, batch_in_epoch, RNG states) now, at the end of a completed step."""
        p = self.progress
        return p.step, p.epoch, p.batch_in_epoch, _rng_state()

    def _save_after_error(self, committed: tuple[int, int, int, dict[str, Any]]) -> None:
        """Save a checkpoint after an unexpected error in the loop, so the steps since the last one are kept.

        A step that failed before it completed (while loading its batch, in the forward or backward pass) is
        undone first: data position and RNG go back to the end of the last completed step, so ``resume=true``
        re-runs that step as an uninterrupted run would (BatchNorm statistics already moved by a failed forward
        pass are the one thing not undone). A failure after the step completed keeps the step. The save is atomic:
        if it fails too, the checkpoint already on disk is untouched. Under DDP nothing is saved (the other ranks'
        states cannot be gathered safely after an error on one of them).
        """
        p = self.progress
        step, epoch, batch, rng = committed
        if self.world > 1:
            logger.error("training failed at step %d; under DDP no checkpoint is saved after an error (the last "
                         "one in %s is kept)", p.step, self.run_dir)
            return
        if p.step == step:  # the failing step never completed
            p.epoch, p.batch_in_epoch = epoch, batch
            _set_rng_state(rng)
        if p.step == self._saved_step:
            logger.error("training failed at step %d, which %s", p.step,
                         "the checkpoint on disk already holds" if p.step else "is the start: nothing to save")
            return
        try:
            self._save_checkpoint(after_error=True)
        except Exception:  # noqa: BLE001 - the original error is what the caller must see
            logger.exception("training failed at step %d, and saving a checkpoint failed too; the last checkpoint "
                             "on disk is unchanged", p.step)
        else:
            logger.error("training failed after step %d; saved %s at step %d (resume=true continues from it)",
                         p.step, self.run_dir / "checkpoint.pt", p.step)

    def _score_snapshot(self) -> bool:
        """``train.keep_best``: score the model as it is now (main process, RNG streams untouched, back in train
        mode after) and log it; True when this snapshot is to be copied to ``best.pt``."""
        from .discovery import DiscoveryConfig, keeps, score, share

        p = self.progress
        if not (self.cfg.train.keep_best and self.is_main and callable(getattr(self.model, "segment", None))):
            return False
        dcfg = DiscoveryConfig()
        with _preserve_rng():
            s = score(None, self.cfg.data.path, dcfg, device=str(self.device), seed=self.cfg.seed, model=self.model)
        self.model.train()
        keep, p.best_explained = keeps(s, p.best_explained, dcfg)
        if keep:
            p.best_step = p.step
        if self.writer is not None and s["shift_explained"] is not None:
            self.writer.add_scalar("health/shift_explained_train", s["shift_explained"], p.step)
        logger.info("step %d: agent found on %s of train frames, its shifts explain %s of its motion%s", p.step,
                    share(s["agent_found"]), share(s["shift_explained"]), " -> best.pt" if keep else "")
        return keep

    def _save_checkpoint(self, after_error: bool = False, best: bool = False) -> None:
        """Write run_dir/checkpoint.pt (rank 0); every rank contributes its RNG state.

        ``after_error``: the env info is recomputed if possible, else the last one is kept (or none), so a
        failure in the data the env info reads cannot stop the save.
        """
        p = self.progress
        p.wall_time = self._wall_base + (time.perf_counter() - self._session_start)
        states: list[Any] = [_rng_state()]
        if self.world > 1:
            states = [None] * self.world
            dist.all_gather_object(states, _rng_state())
        if not self.is_main:
            return
        h, w = self.manifest["height"], self.manifest["width"]
        card = {
            "dataset": str(Path(self.cfg.data.path).resolve()), "source": self.manifest.get("source"),
            "generator": self.manifest.get("generator"), "resolution": [h, w], "frame_skip": self.frame_skip,
            "model": self.cfg.model.name, "preset": self.cfg.model.preset, "steps": p.step,
            "batch_size": self.batch, "world_size": self.world, "wall_time_s": round(p.wall_time, 2),
            "hardware": hardware_string(self.device), "torch": torch.__version__, "perceptual": self.perceptual,
            "eval": None,
        }
        payload = {
            "model": self.cfg.model.name, "model_config": self.mcfg.to_dict(), "state_dict": self.model.state_dict(),
            "step": p.step, "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": {"world_size": self.world, "states": states,
                    "sampler": {"epoch": p.epoch, "batch": p.batch_in_epoch}},
            "trainer": p.to_dict(), "run_config": self.cfg.to_dict(),
            "env_info": self._env_info_for_save(after_error),
            "perceptual": self.perceptual, "card": card,
            "data_fingerprint": data_fingerprint(self.manifest, self.cfg.data.path),
        }
        if payload["env_info"] is None:
            del payload["env_info"]
        path = save_checkpoint(self.run_dir / "checkpoint.pt", payload)
        self._saved_step = p.step
        if self.cfg.train.keep_checkpoints:
            atomic_write_bytes(self.run_dir / f"checkpoint_step{p.step}.pt", path.read_bytes())
        if best:
            atomic_write_bytes(self.run_dir / "best.pt", path.read_bytes())
        logger.debug("checkpoint at step %d -> %s", p.step, path)


def _worker_init(worker_id: int) -> None:
    """DataLoader workers ignore Ctrl-C: the main process saves a checkpoint and then stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, (np.generic,)):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


# ---------------------------------------------------------------------------------------------- CLI
def compose_run_config(argv: list[str]) -> DictConfig:
    """Compose ``configs/`` with ``key=value`` overrides; with ``resume=true`` the saved run config comes first.

    Resuming ``run_dir=DIR`` starts from DIR/config.yaml, so ``glassworld train resume=true run_dir=DIR`` needs
    no other argument; overrides given on the command line (e.g. ``train.steps=N``) still apply.
    """
    from .config import compose, configs_dir

    cfg = compose(argv)
    if cfg.get("resume") and cfg.get("run_dir"):
        saved = Path(cfg.run_dir) / "config.yaml"
        if saved.exists():
            groups = {p.name for p in configs_dir().iterdir() if p.is_dir()}  # model=glass picks a file, not a value
            values = [a.lstrip("+") for a in argv if "=" in a and not a.startswith("~")]
            saved_cfg = OmegaConf.load(saved)
            for group in sorted({a.split("=", 1)[0] for a in values} & groups):  # e.g. model=keypoint
                before, after = OmegaConf.select(saved_cfg, f"{group}.name"), OmegaConf.select(cfg, f"{group}.name")
                if before != after:
                    raise DatasetError(f"resume=true cannot change {group}: saved {before!r}, now {after!r} (drop "
                                       f"{group}={after}, or start a new run_dir)")
            user = OmegaConf.from_dotlist([a for a in values if a.split("=", 1)[0] not in groups])
            cfg = OmegaConf.merge(cfg, saved_cfg, user)
    return cfg


def cli_main(argv: list[str]) -> int:
    """``glassworld train key=value ...``; exit code 0, 130 after Ctrl-C (checkpoint saved), 2 on bad input."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    try:
        cfg = compose_run_config(argv)
        metrics = train(cfg)
    except DatasetError as e:
        text = str(e).strip()
        if "Original Traceback" in text:  # raised in a DataLoader worker: the last line is the error itself
            text = text.splitlines()[-1].split(": ", 1)[-1]
        print(f"glassworld train: error: {text}", file=sys.stderr)
        return 2
    if metrics.get("rank", 0) == 0:
        print(json.dumps(_jsonable({k: metrics[k] for k in ("step", "steps_per_s", "final_losses", "checkpoint",
                                                              "interrupted")}), indent=1))
    if not metrics["interrupted"]:
        return 0
    return 130 if metrics["interrupted"] == "SIGINT" else 143
