"""``glassworld bench NAME key=value ...``: speed measurements that write JSON.

Benchmarks (one function each in :data:`BENCHES`, configured by :data:`BENCH_CONFIGS`):

* ``train``: training iterations/s, frames/s and peak RSS of a model preset on synthetic clips::

      glassworld bench train [model.preset=cpu] [bench.steps=N] [bench.batch_size=B] [bench.precision=bfloat16]
          [bench.height=H bench.width=W] [bench.train_step=N] [device=cpu] [out=FILE.json]

  By default it times the first joint step (GLASS: after GMA pretraining, every loss and network active).
  ``model.preset=paper`` at its defaults (96x128, batch 4 x 6 frames) is comparable with one joint training
  step of the official GLASS code measured on this project's CPU: 33.5 s/step, 6.7 GB peak RSS (stored in the
  result as ``reference``).

* ``env``: dream vector-env steps/s at several N (CPU, and CUDA when present) against ALE Tennis steps/s measured
  in the same run (:mod:`envs.bench`; keys of ``configs/bench_env.yaml``)::

      glassworld bench env [checkpoint=PATH] [num_envs=[1,16,64,256]] [devices=[cpu,cuda]] [seconds=5]
          [preset=cpu height=96 width=128] [out=FILE.json]

* ``play``: frames/s of the ``glassworld play`` loop, headless (:mod:`agents.bench_play`; keys of
  ``configs/bench_play.yaml``)::

      glassworld bench play [checkpoint=PATH] [frames=200] [threads=[1,2]] [out=FILE.json]

``env`` and ``play`` live in the envs and agents packages; they are imported by name when they run, so
``worldmodel`` itself never imports gymnasium or stable-baselines3.
"""

from __future__ import annotations

import importlib
import json
import logging
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from .data.format import DatasetError, atomic_write_json, check_writable
from .paths import portable_paths
from .precision import autocast, check_precision

logger = logging.getLogger(__name__)


@dataclass
class BenchTrainConfig:
    """``bench.*`` (plus ``model.*``, ``device``, ``seed``) for ``bench train``."""

    model: str = "glass"
    preset: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)  # model-config fields (+model.KEY=VALUE)
    steps: int = 5  # timed iterations
    warmup: int = 1  # untimed iterations first (allocator warm-up, lazy modules)
    batch_size: int | None = None  # None: the preset's batch_size
    frames: int | None = None  # None: num_obs(train_step)
    train_step: int | None = None  # schedule step passed to training_losses; None: the first joint step
    height: int | None = None  # None: DEFAULT_RESOLUTION[preset]
    width: int | None = None
    threads: int | None = None  # torch threads; None: torch's default
    precision: str = "float32"  # float32 | bfloat16 (autocast mixed precision, as train.precision)
    device: str = "auto"
    seed: int = 0


# The resolution each preset is meant for: tiny = tests; cpu and paper = W-Sprites frames (96x128).
DEFAULT_RESOLUTION: dict[str, tuple[int, int]] = {"tiny": (32, 32), "cpu": (96, 128), "paper": (96, 128)}

# The official GLASS implementation (Araachie/glass), one training step on this project's CPU.
REFERENCE_TRAIN: dict[str, Any] = {
    "implementation": "official GLASS code", "preset": "paper", "height": 96, "width": 128, "batch_size": 4,
    "frames": 6, "s_per_step": 33.5, "peak_rss_mb": 6.7 * 1024, "hardware": "this project's CPU machine",
}


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


def _hardware(device: torch.device) -> str:
    from .train import hardware_string

    return hardware_string(device)


def bench_train(cfg: BenchTrainConfig) -> dict[str, Any]:
    """Time ``steps`` optimiser steps (forward, backward, Adam) on synthetic clips; return the result dict."""
    from .models import build_model
    from .train import _resolve_device, perceptual_backbone

    if cfg.steps < 1 or cfg.warmup < 0:
        raise DatasetError(f"bench.steps must be >= 1 and bench.warmup >= 0, got {cfg.steps}, {cfg.warmup}")
    check_precision(cfg.precision, "bench.precision")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    default_h, default_w = DEFAULT_RESOLUTION.get(cfg.preset, (96, 128))
    h, w = cfg.height or default_h, cfg.width or default_w
    device = _resolve_device(cfg.device, 0)
    torch.manual_seed(cfg.seed)
    try:
        model = build_model(cfg.model, cfg.preset, h, w, cfg.overrides).to(device).train()
    except (TypeError, ValueError) as e:
        raise DatasetError(f"cannot build {cfg.model}/{cfg.preset} at {h}x{w}: {e}") from None
    mcfg = model.cfg
    batch = cfg.batch_size or int(mcfg.batch_size)
    train_step = cfg.train_step if cfg.train_step is not None else int(getattr(mcfg, "pretraining_steps", 0))
    frames = cfg.frames or int(mcfg.num_obs(train_step))
    clips = synthetic_clips(batch, frames, h, w, cfg.seed).to(device)  # (B, T, 3, H, W)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(mcfg.lr), weight_decay=float(mcfg.weight_decay))

    def one_step() -> float:
        with autocast(device, cfg.precision):
            total, _terms, _aux = model.training_losses(clips, train_step)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        for p in model.parameters():
            if p.grad is not None:
                torch.nan_to_num_(p.grad, nan=0.0, posinf=1e5, neginf=-1e5)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return float(total.detach())

    logger.info("bench train: %s/%s %dx%d, batch %d x %d frames, %d warmup + %d timed steps on %s",
                cfg.model, cfg.preset, h, w, batch, frames, cfg.warmup, cfg.steps, device)
    for _ in range(cfg.warmup):
        one_step()
    times, losses = [], []
    for _ in range(cfg.steps):
        t0 = time.perf_counter()
        losses.append(one_step())
        times.append(time.perf_counter() - t0)
    s_per_step = statistics.mean(times)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    result: dict[str, Any] = {
        "bench": "train", "model": cfg.model, "preset": cfg.preset, "height": h, "width": w,
        "batch_size": batch, "frames": frames, "train_step": train_step,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": cfg.steps, "warmup": cfg.warmup,
        "s_per_step": s_per_step, "s_per_step_median": statistics.median(times),
        "it_per_s": 1.0 / s_per_step, "frames_per_s": batch * frames / s_per_step,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
        "final_loss": losses[-1], "perceptual": perceptual_backbone(model),
        "precision": cfg.precision,
        "device": str(device), "threads": torch.get_num_threads(), "hardware": _hardware(device),
        "torch": torch.__version__, "python": platform.python_version(), "config": asdict(cfg),
    }
    ref = REFERENCE_TRAIN
    if (cfg.preset, h, w, batch, frames) == (ref["preset"], ref["height"], ref["width"], ref["batch_size"],
                                             ref["frames"]):
        result["reference"] = ref
        result["speedup_vs_reference"] = ref["s_per_step"] / s_per_step
        result["rss_ratio_vs_reference"] = peak_rss_mb / ref["peak_rss_mb"]
    return result


def _train_config(cfg: DictConfig) -> BenchTrainConfig:
    d = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(d, dict)
    model = dict(d.get("model") or {})
    name, preset = model.pop("name", "glass"), model.pop("preset", "cpu")
    bench = dict(d.get("bench") or {})
    known = {f for f in BenchTrainConfig.__dataclass_fields__} - {"model", "preset", "overrides", "device", "seed"}
    unknown = sorted(set(bench) - known)
    if unknown:
        raise DatasetError(f"unknown bench keys {[f'bench.{k}' for k in unknown]}; valid: "
                           f"{sorted(f'bench.{k}' for k in known)}")
    return BenchTrainConfig(model=name, preset=preset, overrides=model, device=str(d.get("device", "auto")),
                            seed=int(d.get("seed", 0)), **bench)


def _bench_in(name: str, module: str) -> Callable[[DictConfig], dict[str, Any]]:
    """Benchmark ``name``, living in ``module`` (imported when it runs), which exposes ``config_from_dict(dict)``
    (one ValueError for bad keys) and ``run_bench(config) -> dict``. ``out`` is the CLI's, not the benchmark's."""

    def run(cfg: DictConfig) -> dict[str, Any]:
        d = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(d, dict)
        d.pop("out", None)
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            raise DatasetError(f"this benchmark needs {module}, which cannot be imported ({e}); install glassworld "
                               "with its envs and agents packages (pip install -e .)") from None
        try:
            bench_cfg = mod.config_from_dict(d)
        except (TypeError, ValueError) as e:
            raise DatasetError(str(e)) from None
        return {"bench": name, **mod.run_bench(bench_cfg)}

    return run


BENCHES: dict[str, tuple[Callable[[DictConfig], dict[str, Any]], str]] = {
    "train": (lambda cfg: bench_train(_train_config(cfg)), "training it/s, frames/s and peak RSS (synthetic data)"),
    "env": (_bench_in("env", "envs.bench"), "dream env steps/s at N = 1..256 (CPU, CUDA) vs ALE Tennis steps/s"),
    "play": (_bench_in("play", "agents.bench_play"), "frames/s of the `glassworld play` loop, headless"),
}
# The Hydra config each benchmark composes (configs/<name>.yaml); others use the root config.yaml.
BENCH_CONFIGS: dict[str, str] = {"env": "bench_env", "play": "bench_play"}


def _usage() -> str:
    lines = [f"  {name:<6} {help_}" for name, (_, help_) in BENCHES.items()]
    return "usage: glassworld bench NAME [key=value ...] [out=FILE.json]\n\nbenchmarks:\n" + "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    """``glassworld bench NAME key=value ...``: run one benchmark, print its JSON, write it to ``out=``."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage() + "\n\n" + (__doc__ or ""))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in BENCHES:
        print(f"glassworld bench: unknown benchmark {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from .config import compose

    try:
        cfg = compose(rest, config_name=BENCH_CONFIGS.get(name, "config"))
        out = cfg.get("out")
        if out:
            check_writable(out, "out=", folder=False)  # before the benchmark runs
        result = portable_paths(BENCHES[name][0](cfg))  # no machine paths in JSON people commit
        if out:
            atomic_write_json(Path(out), result)
            result["out"] = str(out)
    except DatasetError as e:
        print(f"glassworld bench {name}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
