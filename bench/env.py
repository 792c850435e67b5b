"""Speed of the dream vs the real game: batched dream env steps/s at several N, and ALE Tennis steps/s; and the
peak memory (RSS) of one env in a fresh process.

Run it with ``glassworld bench env key=value ...`` (keys of ``configs/bench_env.yaml``; ``python
scripts/bench_env.py key=value ...`` is the same). It times the shipped GlassTennis-v0 by default
(:data:`bench.common.DEFAULT_CHECKPOINT`); ``checkpoint=null`` times an untrained model of the chosen preset
(plain generation). The single env's peak RSS is :func:`bench.common.peak_rss_mb` in a fresh process.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from envs.dream import GlassWorldEnv, GlassWorldVectorEnv
from worldmodel.data.format import DatasetError
from worldmodel.device import resolve_device

from .common import WorldSettings, loadavg_1m, machine, world_config

log = logging.getLogger(__name__)


@dataclass
class BenchEnvConfig(WorldSettings):
    """What ``bench env`` times: the world (:class:`WorldSettings`), then these."""

    num_envs: list[int] = field(default_factory=lambda: [1, 16, 64, 256])
    devices: list[str] = field(default_factory=lambda: ["cpu", "cuda"])  # cuda is skipped without a GPU
    seconds: float = 5.0  # timing budget per (device, N), after warm-up
    warmup: int = 2  # untimed vector steps first
    min_steps: int = 3  # timed vector steps at least
    ale_seconds: float = 5.0  # timing budget of each ALE measurement
    task: str = "reach"
    max_episode_steps: int = 200  # resets happen as in training
    threads: int | None = None  # torch CPU threads; None = torch's default
    precision: str = "float32"  # float32 | bfloat16 (the env's autocast option)
    memory_steps: int = 200  # random steps of one single env in a fresh process, for its peak RSS; 0 = skip

    def validate(self) -> None:
        """One clear error for settings that cannot be timed."""
        super().validate()
        if not self.num_envs or any(int(n) < 1 for n in self.num_envs):
            raise DatasetError(f"num_envs must be a non-empty list of counts >= 1, got {self.num_envs}")
        if not self.seconds > 0 or not self.ale_seconds > 0:
            raise DatasetError(f"seconds and ale_seconds must be > 0, got {self.seconds}, {self.ale_seconds}")
        if self.warmup < 0 or self.min_steps < 1 or self.memory_steps < 0:
            raise DatasetError(f"warmup and memory_steps must be >= 0 and min_steps >= 1, got {self.warmup}, "
                               f"{self.memory_steps}, {self.min_steps}")


def play_single_env(cfg: BenchEnvConfig, steps: int) -> None:
    """``steps`` random steps of one :class:`GlassWorldEnv` on the CPU (resetting when an episode ends)."""
    if cfg.checkpoint:
        env = GlassWorldEnv(cfg.checkpoint, task=cfg.task, precision=cfg.precision)
    else:
        env = GlassWorldEnv(model=cfg.untrained_model(torch.device("cpu")), task=cfg.task, precision=cfg.precision)
    env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()


_MEMORY_SCRIPT = """
import json, sys
import torch
from bench.common import peak_rss_mb
from bench.env import BenchEnvConfig, play_single_env
cfg = BenchEnvConfig(**json.loads(sys.argv[1]))
if cfg.threads:
    torch.set_num_threads(int(cfg.threads))
before = peak_rss_mb()
play_single_env(cfg, cfg.memory_steps)
print(json.dumps({"peak_rss_mb": peak_rss_mb(), "rss_after_imports_mb": before, "steps": cfg.memory_steps}))
"""


def single_env_memory(cfg: BenchEnvConfig) -> dict[str, Any]:
    """Peak RSS (MB) of a fresh Python process that imports glassworld and plays one env for ``memory_steps``
    random steps on the CPU, and its peak right after the imports."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, json.dumps(asdict(cfg))], capture_output=True,
                          text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": str(cfg.threads or 1)})
    if done.returncode != 0:
        raise RuntimeError(f"the single-env memory measurement failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_dream(cfg: BenchEnvConfig, device: torch.device, num_envs: int) -> dict[str, float]:
    """Env steps/s of :class:`GlassWorldVectorEnv` with ``num_envs`` envs and random actions."""
    if cfg.checkpoint:
        env = GlassWorldVectorEnv(num_envs, cfg.checkpoint, task=cfg.task, device=str(device),
                                  max_episode_steps=cfg.max_episode_steps, precision=cfg.precision)
    else:
        env = GlassWorldVectorEnv(num_envs, model=cfg.untrained_model(device), task=cfg.task,
                                  max_episode_steps=cfg.max_episode_steps, precision=cfg.precision)
    rng = np.random.default_rng(cfg.seed)
    env.reset(seed=cfg.seed)
    nvec = env.single_action_space.nvec

    def step() -> None:
        env.step(rng.integers(0, nvec, size=(num_envs, 2)))

    for _ in range(cfg.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps, t0 = 0, time.perf_counter()
    while steps < cfg.min_steps or time.perf_counter() - t0 < cfg.seconds:
        step()  # each step ends with the observation on the host, so no extra synchronisation is needed
        steps += 1
    dt = time.perf_counter() - t0
    env.close()
    return {"env_steps_per_s": steps * num_envs / dt, "vector_steps_per_s": steps / dt,
            "ms_per_vector_step": 1000 * dt / steps, "timed_vector_steps": steps}


def step_flops(cfg: BenchEnvConfig, batch: int = 4) -> dict[str, Any]:
    """Floating-point operations of one dream step per env (torch's FlopCounterMode over ``model.step`` on
    ``batch`` start frames, no action shortened): the machine-independent side of the speed figure. Returns
    ``mflop_per_env_step`` and ``by_part`` (MFLOP per env step of each network the step runs)."""
    from torch.utils.flop_counter import FlopCounterMode

    from worldmodel.models import load_world_model

    model = load_world_model(cfg.checkpoint, "cpu") if cfg.checkpoint else cfg.untrained_model(torch.device("cpu"))
    frames = model.start_frames[:batch] if len(model.start_frames) else \
        torch.zeros(batch, 3, model.height, model.width, dtype=torch.uint8)
    n = len(frames)
    state = model.start(frames)
    zeros = torch.zeros(n, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        model.step(state, zeros, zeros)
    counts = {k: sum(v.values()) / n / 1e6 for k, v in counter.get_flop_counts().items()}
    return {"mflop_per_env_step": round(counts.get("Global", 0.0), 3),
            "by_part": {k: round(v, 3) for k, v in counts.items() if k != "Global" and "." not in k}}


def time_ale_tennis(seconds: float, seed: int = 0) -> dict[str, float]:
    """ALE Tennis steps/s three ways: Gymnasium's ``ALE/Tennis-v5`` (frameskip 4, RGB observations), the bare
    ``ALEInterface`` (4 frames + screen per step) and glassworld's real-game env (1 env, cropped and resized)."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    out: dict[str, float] = {}
    env = gym.make("ALE/Tennis-v5")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        if term or trunc:
            env.reset()
    out["gym_v5_steps_per_s"] = steps / (time.perf_counter() - t0)
    env.close()

    from ale_py import ALEInterface, LoggerMode, roms

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(str(roms.get_rom_path("tennis")))
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(seed)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a = actions[int(rng.integers(len(actions)))]
        for _ in range(4):
            ale.act(a)
        ale.getScreenRGB()
        steps += 1
        if ale.game_over():
            ale.reset_game()
    out["ale_interface_steps_per_s"] = steps / (time.perf_counter() - t0)

    from worldmodel.envinfo import SHIFT_NAMES

    from envs.real import RealGameConfig, RealGameVectorEnv

    real = RealGameVectorEnv(1, 96, 128, SHIFT_NAMES, ["code 0"], RealGameConfig("Tennis"), task="reach",
                             max_episode_steps=200)
    real.reset(seed=seed)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        real.step(rng.integers(0, [9, 1], size=(1, 2)))
        steps += 1
    out["glassworld_real_env_steps_per_s"] = steps / (time.perf_counter() - t0)
    real.close()
    return out


def run_bench(cfg: BenchEnvConfig) -> dict[str, Any]:
    """Time the dream on each available device and N, and ALE Tennis, in one run; ratios dream / ALE.
    ``cfg.checkpoint`` is a file (or None): :func:`config_from` resolves registered ids."""
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    result: dict[str, Any] = {
        "config": asdict(cfg),
        "machine": {**machine(), "torch_threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "loadavg_1m_start": loadavg_1m()},
        "dream": {},
    }
    result["flops"] = step_flops(cfg)
    log.info("dream step: %.1f MFLOP per env step", result["flops"]["mflop_per_env_step"])
    log.info("timing ALE Tennis")
    ale = time_ale_tennis(cfg.ale_seconds, cfg.seed)
    result["ale_tennis"] = ale
    reference = ale["gym_v5_steps_per_s"]
    result["ratios_vs_gym_ale_tennis"] = {}
    for dev_name in cfg.devices:
        if dev_name.startswith("cuda") and not torch.cuda.is_available():
            log.info("no CUDA device: skipping %s", dev_name)
            continue
        device = resolve_device(dev_name)
        result["dream"][dev_name] = {}
        result["ratios_vs_gym_ale_tennis"][dev_name] = {}
        for n in cfg.num_envs:
            log.info("timing the dream on %s with N=%d", dev_name, n)
            r = time_dream(cfg, device, n)
            result["dream"][dev_name][str(n)] = r
            result["ratios_vs_gym_ale_tennis"][dev_name][str(n)] = r["env_steps_per_s"] / reference
    if cfg.memory_steps > 0:
        log.info("measuring one env's peak RSS in a fresh process")
        result["single_env_memory"] = single_env_memory(cfg)
    cpu64 = result["dream"].get("cpu", {}).get("64")
    result["target"] = {"rule": "dream env steps/s at N=64 on CPU >= ALE/Tennis-v5 steps/s",
                        "dream_cpu_n64": None if cpu64 is None else cpu64["env_steps_per_s"],
                        "ale_tennis": reference,
                        "met": None if cpu64 is None else bool(cpu64["env_steps_per_s"] >= reference)}
    if "single_env_memory" in result:
        peak = result["single_env_memory"]["peak_rss_mb"]
        result["memory_target"] = {"rule": "one env's peak RSS <= 1024 MB", "peak_rss_mb": peak,
                                   "met": bool(peak <= 1024)}
    result["machine"]["loadavg_1m_end"] = loadavg_1m()
    return result


def config_from(d: dict[str, Any]) -> BenchEnvConfig:
    """A :class:`BenchEnvConfig` from the composed ``configs/bench_env.yaml`` (plain dict); a registered id in
    ``checkpoint`` becomes its file. One :class:`DatasetError` for an unknown key or an unusable value."""
    return world_config(BenchEnvConfig, d)
