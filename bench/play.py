"""Speed of the ``glassworld play`` loop (model + drawing), headless: ``glassworld bench play key=value ...``
(keys of ``configs/bench_play.yaml``; ``python scripts/bench_play.py key=value ...`` is the same).

A headless viewer (SDL dummy driver, no frame-rate sleep) plays a dream with the agent walking right every frame,
so the model steps once per frame. It plays the shipped GlassTennis-v0 by default
(:data:`bench.common.DEFAULT_CHECKPOINT`); ``checkpoint=null`` plays an untrained model of ``model``/``preset``
at ``height`` x ``width`` (a trained model of the same size steps at the same speed). Reported per thread count:

* ``play_fps``: frames per second of the whole loop (input, env.step, render, window scaling, HUD, flip);
* ``env_step_fps``: env.step alone (model + task + numpy edge) in a plain loop, no viewer;
* ``viewer_ms_per_frame``: what the viewer adds per frame (loop time minus env.step time);
* ``draw_only_fps``: the loop while paused (drawing without the model);
* ``*_per_cpu_s`` variants divide by process CPU time, which other jobs on a shared machine affect much less.

The target is ``play_fps >= 60`` with the model stepping every frame.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from worldmodel.data.format import DatasetError

from .common import WorldSettings, loadavg_1m, machine, world_config

log = logging.getLogger(__name__)


@dataclass
class BenchPlayConfig(WorldSettings):
    """What ``bench play`` times: the world (:class:`WorldSettings`), then these."""

    frames: int = 200  # timed frames per measurement
    threads: list[int] = field(default_factory=lambda: [1])  # torch intra-op threads, one measurement each

    def validate(self) -> None:
        """One clear error for settings that cannot be timed."""
        super().validate()
        if self.frames < 1:
            raise DatasetError(f"frames must be >= 1, got {self.frames}")
        if not self.threads or any(int(t) < 1 for t in self.threads):
            raise DatasetError(f"threads must be a non-empty list of counts >= 1, got {self.threads}")


def config_from(d: dict[str, Any]) -> BenchPlayConfig:
    """A :class:`BenchPlayConfig` from the composed ``configs/bench_play.yaml`` (plain dict; ``threads=2`` is
    ``threads=[2]``); a registered id in ``checkpoint`` becomes its file. One :class:`DatasetError` for an unknown
    key or an unusable value."""
    d = dict(d)
    if isinstance(d.get("threads"), int):
        d["threads"] = [d["threads"]]
    return world_config(BenchPlayConfig, d)


def make_env(cfg: BenchPlayConfig) -> Any:
    """The single dream env the viewer plays (rgb_array rendering, no time limit)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers GlassWorld-v0)

    kw: dict[str, Any] = {"render_mode": "rgb_array", "task": "reach", "max_episode_steps": 10**9}
    if cfg.checkpoint:
        return gym.make("GlassWorld-v0", checkpoint=cfg.checkpoint, **kw)
    model = cfg.untrained_model(torch.device("cpu"))
    return gym.make("GlassWorld-v0", model=model, **kw)


def bench_env_step(env: Any, frames: int) -> dict[str, float]:
    """env.step + render alone, ``frames`` times after 5 warm-up steps."""
    import numpy as np

    env.reset(seed=0)
    action = np.array([1, 0])
    for _ in range(5):  # warm-up
        env.step(action)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(frames):
        env.step(action)
        env.render()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"env_step_fps": frames / wall, "env_step_per_cpu_s": frames / max(cpu, 1e-9),
            "env_step_ms": 1e3 * wall / frames}


def bench_viewer(env: Any, frames: int, keys: str) -> dict[str, Any]:
    """The headless viewer playing scripted ``keys`` for ``frames`` frames (after a short warm-up)."""
    from agents.play import PlayConfig, play

    play(PlayConfig(headless=True, keys="right*5", seed=0), env=env)  # warm-up (fonts, surfaces)
    c0 = time.process_time()
    res = play(PlayConfig(headless=True, keys=keys, frames=frames, seed=0), env=env)
    cpu = time.process_time() - c0
    return {"fps": res.fps, "per_cpu_s": res.frames / max(cpu, 1e-9),
            "viewer_ms_per_frame": 1e3 * (res.seconds - res.step_seconds) / res.frames,
            "steps": res.steps, "frames": res.frames, "window": list(res.frame_rects[0][2:])}


def run_one(cfg: BenchPlayConfig, threads: int) -> dict[str, Any]:
    """All measurements at one torch thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    env = make_env(cfg)
    try:
        step = bench_env_step(env, cfg.frames)
        walk = bench_viewer(env, cfg.frames, f"right*{cfg.frames}")
        draw = bench_viewer(env, cfg.frames, "pause")  # paused from the first frame: drawing only
    finally:
        env.close()
        torch.set_num_threads(before)
    model = cfg.checkpoint or f"{cfg.model} {cfg.preset} preset {cfg.height}x{cfg.width} (untrained)"
    return {
        "model": model, "threads": int(threads), "frames": cfg.frames,
        "play_fps": round(walk["fps"], 1), "play_per_cpu_s": round(walk["per_cpu_s"], 1),
        "env_step_fps": round(step["env_step_fps"], 1), "env_step_per_cpu_s": round(step["env_step_per_cpu_s"], 1),
        "env_step_ms": round(step["env_step_ms"], 2),
        "viewer_ms_per_frame": round(walk["viewer_ms_per_frame"], 2),
        "draw_only_fps": round(draw["fps"], 1), "draw_only_per_cpu_s": round(draw["per_cpu_s"], 1),
        "model_steps": walk["steps"], "frame_px": walk["window"],
        "meets_60fps": walk["fps"] >= 60,  # wall clock (depends on what else runs on the machine)
        "meets_60fps_per_cpu_s": walk["per_cpu_s"] >= 60,  # on one free core
    }


def run_bench(cfg: BenchPlayConfig) -> dict[str, Any]:
    """``{"play": {"threads_T": measurements, ...}, "machine", "time", "config"}`` (headless SDL)."""
    cfg.validate()
    return {"play": {f"threads_{t}": run_one(cfg, t) for t in cfg.threads},
            "machine": {**machine(), "loadavg_1m": loadavg_1m()}, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "config": asdict(cfg)}
