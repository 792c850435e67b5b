"""Benchmark the play loop of ``glassworld play`` (model + drawing) at the default resolution on CPU, as JSON.

    python scripts/bench_play.py                       # -> runs/bench_play.json
    python scripts/bench_play.py --frames 300 --threads 2 --out /tmp/bench_play.json
    glassworld bench play frames=300 threads=[1,2] out=/tmp/bench_play.json   # the same through the CLI

The measurements (``play_fps``, ``env_step_fps``, ``viewer_ms_per_frame``, ``draw_only_fps``, per-CPU-second
variants) are described in :mod:`agents.bench_play`, where the logic lives. The target is ``play_fps >= 60``
with the model stepping every frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: `python scripts/bench_play.py`
    sys.path.insert(0, str(ROOT))

from agents.bench_play import BenchPlayConfig, run_bench  # noqa: E402
from worldmodel.data.format import atomic_write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    d = BenchPlayConfig()
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--frames", type=int, default=d.frames)
    p.add_argument("--threads", type=int, nargs="+", default=d.threads,
                   help="torch intra-op threads to measure (one entry each)")
    p.add_argument("--checkpoint", default=None, help="time this checkpoint (default: an untrained model)")
    p.add_argument("--preset", default=d.preset, help="tiny | cpu | paper (untrained model)")
    p.add_argument("--height", type=int, default=d.height)
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--out", default=str(ROOT / "runs" / "bench_play.json"))
    a = p.parse_args(argv)
    cfg = BenchPlayConfig(checkpoint=a.checkpoint, preset=a.preset, height=a.height, width=a.width,
                          frames=a.frames, threads=list(a.threads))
    try:
        cfg.validate()
    except ValueError as e:
        p.error(str(e))
    result = run_bench(cfg)
    atomic_write_json(Path(a.out), result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
