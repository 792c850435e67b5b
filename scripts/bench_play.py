"""Benchmark the play loop of ``glassworld play`` (model + drawing) at the default resolution on CPU, as JSON.

    python scripts/bench_play.py                       # -> runs/bench_play.json
    python scripts/bench_play.py --frames 300 --threads 2 --out /tmp/bench_play.json

A headless viewer (SDL dummy driver, no frame-rate sleep) plays an untrained GLASS model of the ``cpu`` preset at
96x128 (the speed of a trained one is the same) with the agent walking right every frame, so the model steps
once per frame. Reported per setting:

* ``play_fps``: frames per second of the whole loop (input, env.step, render, window scaling, HUD, flip);
* ``env_step_fps``: env.step alone (model + task + numpy edge) in a plain loop, no viewer;
* ``viewer_ms_per_frame``: what the viewer adds per frame (loop time minus env.step time);
* ``draw_only_fps``: the loop while paused (drawing without the model);
* ``*_per_cpu_s`` variants divide by process CPU time, which other jobs on a shared machine affect much less.

The target is ``play_fps >= 60`` with the model stepping every frame.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: `python scripts/bench_play.py`
    sys.path.insert(0, str(ROOT))

HEIGHT, WIDTH = 96, 128  # the cpu preset's default resolution (configs/config.yaml)


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_1m": None if load is None else round(load[0], 2)}


def _glass_env(seed: int = 0) -> Any:
    import gymnasium as gym
    import torch

    import envs  # noqa: F401  (registers GlassWorld-v0)
    from worldmodel.glass.config import GlassConfig
    from worldmodel.glass.model import GlassModel

    torch.manual_seed(seed)
    model = GlassModel(GlassConfig.preset("cpu", HEIGHT, WIDTH)).eval()
    model.set_env_info({"start_frames": (torch.rand(4, 3, HEIGHT, WIDTH) * 255).to(torch.uint8)})
    return gym.make("GlassWorld-v0", model=model, render_mode="rgb_array", task="reach",
                    max_episode_steps=10**9)


def bench_env_step(env: Any, frames: int) -> dict[str, float]:
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


def bench_viewer(env: Any, frames: int, keys: str) -> dict[str, float]:
    from agents.play import PlayConfig, play

    play(PlayConfig(headless=True, keys="right*5", seed=0), env=env)  # warm-up (fonts, surfaces)
    c0 = time.process_time()
    res = play(PlayConfig(headless=True, keys=keys, frames=frames, seed=0), env=env)
    cpu = time.process_time() - c0
    return {"fps": res.fps, "per_cpu_s": res.frames / max(cpu, 1e-9),
            "viewer_ms_per_frame": 1e3 * (res.seconds - res.step_seconds) / res.frames,
            "steps": res.steps, "frames": res.frames, "window": list(res.frame_rects[0][2:])}


def run(frames: int, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    env = _glass_env()
    try:
        step = bench_env_step(env, frames)
        walk = bench_viewer(env, frames, f"right*{frames}")
        draw = bench_viewer(env, frames, "pause")  # paused from the first frame: drawing only
    finally:
        env.close()
    return {
        "model": f"GLASS cpu preset {HEIGHT}x{WIDTH} (untrained)", "threads": threads, "frames": frames,
        "play_fps": round(walk["fps"], 1), "play_per_cpu_s": round(walk["per_cpu_s"], 1),
        "env_step_fps": round(step["env_step_fps"], 1), "env_step_per_cpu_s": round(step["env_step_per_cpu_s"], 1),
        "env_step_ms": round(step["env_step_ms"], 2),
        "viewer_ms_per_frame": round(walk["viewer_ms_per_frame"], 2),
        "draw_only_fps": round(draw["fps"], 1), "draw_only_per_cpu_s": round(draw["per_cpu_s"], 1),
        "model_steps": walk["steps"], "frame_px": walk["window"],
        "meets_60fps": walk["fps"] >= 60,  # wall clock (depends on what else runs on the machine)
        "meets_60fps_per_cpu_s": walk["per_cpu_s"] >= 60,  # on one free core
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="torch intra-op threads to measure (one entry each)")
    p.add_argument("--out", default=str(ROOT / "runs" / "bench_play.json"))
    args = p.parse_args(argv)
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    result = {"play": {f"threads_{t}": run(args.frames, t) for t in args.threads}, "machine": _machine(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".tmp", delete=False) as f:
        json.dump(result, f, indent=2)
    os.replace(f.name, out)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
