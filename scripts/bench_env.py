#!/usr/bin/env python
"""Benchmark the dream env against the real game: dream vector-env steps/s at N = 1, 16, 64, 256 (CPU, and CUDA
when present) and ALE Tennis steps/s measured in the same run, written as JSON with the ratios.

    python scripts/bench_env.py                                  # untrained GLASS cpu preset at 96x128
    python scripts/bench_env.py --checkpoint envs/checkpoints/tennis.pt --out runs/bench_env.json
    python scripts/bench_env.py --preset tiny --height 32 --width 48 --num-envs 1 16 --seconds 2

Target: dream at N=64 on CPU >= ALE Tennis (Gymnasium ALE/Tennis-v5) steps/s (``target.met`` in the JSON).
The logic lives in :mod:`envs.bench` (``run_bench(BenchEnvConfig)``), so ``glassworld bench env`` can call it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from envs.bench import BenchEnvConfig, resolve_checkpoint, run_bench
from worldmodel.data.format import atomic_write_bytes


def main(argv: list[str] | None = None) -> int:
    d = BenchEnvConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None,
                   help="time this checkpoint file or registered id (default: an untrained model)")
    p.add_argument("--model", default=d.model)
    p.add_argument("--preset", default=d.preset, help="tiny | cpu | paper (untrained model)")
    p.add_argument("--height", type=int, default=d.height)
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--num-envs", type=int, nargs="+", default=d.num_envs)
    p.add_argument("--devices", nargs="+", default=d.devices, help="cpu cuda (cuda skipped without a GPU)")
    p.add_argument("--seconds", type=float, default=d.seconds, help="timing budget per (device, N)")
    p.add_argument("--ale-seconds", type=float, default=d.ale_seconds)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if any(n < 1 for n in a.num_envs) or a.seconds <= 0:
        p.error("--num-envs values must be >= 1 and --seconds > 0")
    try:
        checkpoint = resolve_checkpoint(a.checkpoint)
    except ValueError as e:
        p.error(str(e))
    cfg = BenchEnvConfig(checkpoint=checkpoint, model=a.model, preset=a.preset, height=a.height, width=a.width,
                         num_envs=list(a.num_envs), devices=list(a.devices), seconds=a.seconds,
                         ale_seconds=a.ale_seconds, threads=a.threads)
    result = run_bench(cfg)
    text = json.dumps(result, indent=1)
    print(text)
    if a.out:
        atomic_write_bytes(a.out, (text + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
