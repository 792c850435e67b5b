#!/usr/bin/env python
"""Long random rollout of a dream: does it stay finite and alive (no drift to blank frames)?

    python scripts/check_rollout.py CHECKPOINT [--steps 10000] [--num-envs 4] [--out rollout.json]

Plays uniformly random (shift, code) actions for ``--steps`` steps from real start frames without ever resetting
(task none, no time limit) and prints / writes the statistics of :func:`envs.diagnostics.rollout_stats`:
non-finite frames, mean frame change, per-frame pixel std (0 = blank) and agent-mask area, over the first and
last 10% of steps and over 10 windows, plus warnings when the dream collapses.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from envs.diagnostics import rollout_stats
from envs.dream import GlassWorldVectorEnv
from worldmodel.data.format import atomic_write_bytes
from worldmodel.paths import portable_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="world-model checkpoint (glassworld train)")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--num-envs", type=int, default=4, help="rollouts stepped together")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.steps < 1 or args.num_envs < 1:
        p.error("--steps and --num-envs must be >= 1")
    torch.set_num_threads(args.threads)
    try:
        env = GlassWorldVectorEnv(args.num_envs, args.checkpoint, task="none", device=args.device)
    except (FileNotFoundError, ValueError) as e:
        print(f"check_rollout: error: {e}", file=sys.stderr)
        return 2
    stats = rollout_stats(env, args.steps, args.seed)
    result = {"checkpoint": portable_path(Path(args.checkpoint).resolve()), "device": str(env.device),
              "threads": args.threads, **stats.to_dict()}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        atomic_write_bytes(args.out, (text + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
