"""``glassworld bench train``: training iterations/s, frames/s and peak RSS of a model preset on synthetic clips::

    glassworld bench train [model.preset=cpu] [bench.steps=N] [bench.batch_size=B] [bench.precision=bfloat16]
        [bench.height=H bench.width=W] [bench.train_step=N] [device=cpu] [out=FILE.json]

It times the trainer's own iteration, :func:`worldmodel.train.optimisation_step` (forward under autocast,
backward, non-finite gradients replaced, Adam and MultiStepLR steps), with the trainer's optimiser
(:func:`worldmodel.train.build_optimizer`). By default at the first joint step (GLASS: after GMA pretraining,
every loss and network active). ``model.preset=paper`` at its defaults (96x128, batch 4 x 6 frames) is
comparable with one joint training step of the official GLASS code measured on this project's CPU: 33.5 s/step,
6.7 GB peak RSS (stored in the result as ``reference``). ``peak_rss_mb`` is :func:`bench.common.peak_rss_mb` of
the process running the benchmark (``glassworld bench train`` is a process of its own).
"""

from __future__ import annotations

import logging
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from worldmodel.config import settings
from worldmodel.data.format import DatasetError
from worldmodel.precision import check_precision

from .common import peak_rss_mb

logger = logging.getLogger(__name__)


@dataclass
class BenchSettings:
    """The ``bench.*`` section of ``configs/config.yaml``."""

    steps: int = 5  # timed iterations
    warmup: int = 1  # untimed iterations first (allocator warm-up, lazy modules)
    batch_size: int | None = None  # None: the preset's batch_size
    frames: int | None = None  # None: num_obs(train_step)
    train_step: int | None = None  # schedule step passed to training_losses; None: the first joint step
    height: int | None = None  # None: DEFAULT_RESOLUTION[preset]
    width: int | None = None
    threads: int | None = None  # torch threads; None: torch's default
    precision: str = "float32"  # float32 | bfloat16 (autocast mixed precision, as train.precision)

    def validate(self) -> None:
        """One clear error for settings that cannot be timed."""
        if self.steps < 1 or self.warmup < 0:
            raise DatasetError(f"bench.steps must be >= 1 and bench.warmup >= 0, got {self.steps}, {self.warmup}")
        check_precision(self.precision, "bench.precision")


@dataclass
class BenchTrainConfig:
    """``bench train``: the model (``model.*``), ``device``, ``seed`` and the ``bench.*`` timing settings."""

    model: str = "glass"
    preset: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)  # model-config fields (+model.KEY=VALUE)
    device: str = "auto"
    seed: int = 0
    bench: BenchSettings = field(default_factory=BenchSettings)


# The resolution each preset is meant for: tiny = tests; cpu and paper = W-Sprites frames (96x128).
DEFAULT_RESOLUTION: dict[str, tuple[int, int]] = {"tiny": (32, 32), "cpu": (96, 128), "paper": (96, 128)}

# The official GLASS implementation (Araachie/glass), one training step on this project's CPU.
REFERENCE_TRAIN: dict[str, Any] = {
    "implementation": "official GLASS code", "preset": "paper", "height": 96, "width": 128, "batch_size": 4,
    "frames": 6, "s_per_step": 33.5, "peak_rss_mb": 6.7 * 1024, "hardware": "this project's CPU machine",
}


def config_from(d: dict[str, Any]) -> BenchTrainConfig:
    """The config of ``bench train`` from the composed root config (plain dict); other sections are ignored."""
    model = dict(d.get("model") or {})
    name, preset = model.pop("name", "glass"), model.pop("preset", "cpu")
    cfg = BenchTrainConfig(model=str(name), preset=str(preset), overrides=model, device=str(d.get("device", "auto")),
                           seed=int(d.get("seed", 0)), bench=settings(BenchSettings, d.get("bench") or {}, "bench"))
    cfg.bench.validate()
    return cfg


def synthetic_clips(batch: int, frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A square moving over a textured background: (B, T, 3, H, W) float in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    bg = torch.rand(batch, 1, 3, height, width, generator=g) * 0.6 - 0.6  # (B, 1, 3, H, W), dark texture
    video = bg.repeat(1, frames, 1, 1, 1)  # (B, T, 3, H, W)
    side = max(4, min(height, width) // 6)
    for b in range(batch):
        x, y = (int(v) for v in torch.randint(0, min(height, width) - side, (2,), generator=g))
        dx, dy = (int(v) for v in torch.randint(-3, 4, (2,), generator=g))
        for t in range(frames):
            xx = min(max(x + dx * t, 0), width - side)
            yy = min(max(y + dy * t, 0), height - side)
            video[b, t, :, yy:yy + side, xx:xx + side] = torch.tensor([0.9, -0.7, -0.7]).view(3, 1, 1)
    return video


def _timed_steps(model: torch.nn.Module, clips: torch.Tensor, train_step: int, device: torch.device,
                 s: BenchSettings) -> tuple[list[float], list[float]]:
    """``s.warmup`` then ``s.steps`` timed trainer iterations on ``clips`` (B, T, 3, H, W); (seconds, losses)."""
    from worldmodel import train as trainer  # looked up when it runs: the trainer's step, whatever it is now

    optimizer, scheduler = trainer.build_optimizer(model, model.cfg)
    times, losses = [], []
    for i in range(s.warmup + s.steps):
        t0 = time.perf_counter()
        total, _terms, _aux = trainer.optimisation_step(model.training_losses, model, optimizer, scheduler, clips,
                                                        train_step, device, s.precision)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= s.warmup:
            times.append(time.perf_counter() - t0)
            losses.append(float(total.detach()))
    return times, losses


def run_bench(cfg: BenchTrainConfig) -> dict[str, Any]:
    """Time ``cfg.bench.steps`` trainer iterations on synthetic clips; return the result dict."""
    from worldmodel.device import resolve_device
    from worldmodel.models import build_model
    from worldmodel.train import hardware_string, perceptual_backbone

    s = cfg.bench
    s.validate()
    if s.threads:
        torch.set_num_threads(s.threads)
    default_h, default_w = DEFAULT_RESOLUTION.get(cfg.preset, (96, 128))
    h, w = s.height or default_h, s.width or default_w
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    try:
        model = build_model(cfg.model, cfg.preset, h, w, cfg.overrides).to(device).train()
    except (TypeError, ValueError) as e:
        raise DatasetError(f"cannot build {cfg.model}/{cfg.preset} at {h}x{w}: {e}") from None
    mcfg = model.cfg
    batch = s.batch_size or int(mcfg.batch_size)
    train_step = s.train_step if s.train_step is not None else int(getattr(mcfg, "pretraining_steps", 0))
    frames = s.frames or int(mcfg.num_obs(train_step))
    clips = synthetic_clips(batch, frames, h, w, cfg.seed).to(device)  # (B, T, 3, H, W)
    logger.info("bench train: %s/%s %dx%d, batch %d x %d frames, %d warmup + %d timed steps on %s",
                cfg.model, cfg.preset, h, w, batch, frames, s.warmup, s.steps, device)
    times, losses = _timed_steps(model, clips, train_step, device, s)
    s_per_step = statistics.mean(times)
    peak = peak_rss_mb()
    result: dict[str, Any] = {
        "model": cfg.model, "preset": cfg.preset, "height": h, "width": w,
        "batch_size": batch, "frames": frames, "train_step": train_step,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": s.steps, "warmup": s.warmup,
        "s_per_step": s_per_step, "s_per_step_median": statistics.median(times),
        "it_per_s": 1.0 / s_per_step, "frames_per_s": batch * frames / s_per_step,
        "peak_rss_mb": round(peak, 1),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
        "final_loss": losses[-1], "perceptual": perceptual_backbone(model),
        "precision": s.precision,
        "device": str(device), "threads": torch.get_num_threads(), "hardware": hardware_string(device),
        "torch": torch.__version__, "python": platform.python_version(), "config": asdict(cfg),
    }
    ref = REFERENCE_TRAIN
    if (cfg.preset, h, w, batch, frames) == (ref["preset"], ref["height"], ref["width"], ref["batch_size"],
                                             ref["frames"]):
        result["reference"] = ref
        result["speedup_vs_reference"] = ref["s_per_step"] / s_per_step
        result["rss_ratio_vs_reference"] = peak / ref["peak_rss_mb"]
    return result
