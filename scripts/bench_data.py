"""Benchmark the dataset generators: frames/s and size on disk (MB per 1000 frames), written as JSON.

    python scripts/bench_data.py                      # every bench_* below -> runs/bench_data.json
    python scripts/bench_data.py --only atari --out runs/bench_atari.json

Each ``bench_<name>()`` returns a JSON-able dict; ``main`` runs those that exist (or ``--only`` ones) and merges
the results into ``--out`` under ``<name>`` (results of benches not run this time are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_1m": None if load is None else round(load[0], 2)}


def bench_atari(episodes: int = 4, max_steps: int = 1000) -> dict[str, Any]:
    """``glassworld data atari`` at its defaults (96x128, frame skip 4) for Tennis and Breakout.

    ``frames_per_s`` is the whole command (emulate, crop/resize, compress, atomic write, manifest);
    ``record_frames_per_s`` the emulator + resize alone (no disk); ``frames_per_cpu_s`` divides by the CPU time of
    all threads, which a machine shared with other jobs affects much less than wall time.
    """
    from worldmodel.data.atari import AtariConfig, AtariRecorder, generate

    out: dict[str, Any] = {"size": [96, 128], "frame_skip": 4, "episodes": episodes, "max_steps": max_steps}
    for game in ("Tennis", "Breakout"):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = AtariConfig(game=game, episodes=episodes, out=Path(tmp) / "ds", max_steps=max_steps, seed=0)
            load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            t0, c0 = time.perf_counter(), time.process_time()
            manifest = generate(cfg, progress=False)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            frames = manifest["num_frames"]
            mb = _dir_mb(cfg.out)
            rec = AtariRecorder(cfg)
            t1 = time.perf_counter()
            n = sum(len(rec.record(i).frames) for i in range(min(2, episodes)))
            dt_rec = time.perf_counter() - t1
            rec.close()
        out[game] = {
            "frames": frames, "seconds": round(dt, 3), "frames_per_s": round(frames / dt, 1),
            "frames_per_cpu_s": round(frames / cpu, 1),  # all threads' CPU time: less sensitive to a busy machine
            "record_frames_per_s": round(n / dt_rec, 1),
            "disk_mb": round(mb, 3), "mb_per_1000_frames": round(mb / frames * 1000, 3),
            "loadavg_1m_at_start": None if load0 is None else round(load0, 2),
        }
        print(f"atari {game}: {frames} frames in {dt:.2f} s = {frames / dt:.0f} frames/s "
              f"(record only {n / dt_rec:.0f}/s); {mb / frames * 1000:.2f} MB per 1000 frames", file=sys.stderr)
    return out


def bench_sprites(videos: int = 30, per_sprite: int = 10, workers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """``glassworld data sprites`` (96x128, 90-frame videos, 10 per sprite) with LPC sheets and procedural sprites.

    Per source: ``render_frames_per_s`` is rendering alone (walks, character composition, backgrounds, masks; cold
    caches included, no disk), ``frames_per_s_w{N}`` the whole command with N worker processes (render, compress,
    atomic write, manifest); the ``*_per_cpu_s`` figures divide by this process's CPU time instead (``w1`` only).
    LPC runs on ``<repo>/../shared/data/lpc_sprites`` and is skipped when the sheets are not there.
    """
    import shutil

    from worldmodel.data.sprites import SpritesConfig, choose_videos, generate, make_assets, render_video

    lpc = Path(__file__).resolve().parents[1].parent / "shared/data/lpc_sprites"
    out: dict[str, Any] = {"size": [96, 128], "frames_per_video": 90, "videos": videos, "per_sprite": per_sprite}
    sources: dict[str, Path | None] = {"lpc": lpc, "procedural": None} if lpc.is_dir() else {"procedural": None}
    if not lpc.is_dir():
        out["lpc"] = f"skipped: no LPC sheets at {lpc}"
    cfg = SpritesConfig(per_sprite=per_sprite)
    for kind, root in sources.items():
        res: dict[str, Any] = {"loadavg_1m_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg")
                               else None}
        t0, c0 = time.perf_counter(), time.process_time()
        assets = make_assets(root, cfg)
        n = sum(render_video(assets, s, k)["frames"].shape[0] for s, k in choose_videos(videos, per_sprite, 0))
        res["render_frames_per_s"] = round(n / (time.perf_counter() - t0), 1)
        res["render_frames_per_cpu_s"] = round(n / (time.process_time() - c0), 1)
        for w in workers:
            tmp = Path(tempfile.mkdtemp(prefix=f"bench_sprites_{kind}_"))
            try:
                t0, c0 = time.perf_counter(), time.process_time()
                frames = generate(tmp / "ds", videos, root, cfg, workers=w, progress=False)["num_frames"]
                res[f"frames_per_s_w{w}"] = round(frames / (time.perf_counter() - t0), 1)
                if w == 1:
                    res["frames_per_cpu_s_w1"] = round(frames / (time.process_time() - c0), 1)
                res["mb_per_1000_frames"] = round(_dir_mb(tmp / "ds") / frames * 1000, 3)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        out[kind] = res
        print(f"sprites {kind}: render {res['render_frames_per_s']:.0f} frames/s, whole command "
              + ", ".join(f"{res[f'frames_per_s_w{w}']:.0f}/s with {w} worker(s)" for w in workers)
              + f"; {res['mb_per_1000_frames']:.1f} MB per 1000 frames", file=sys.stderr)
    return out


def _benches() -> dict[str, Callable[[], dict[str, Any]]]:
    return {name[len("bench_"):]: fn for name, fn in globals().items() if name.startswith("bench_") and callable(fn)}


def main(argv: list[str] | None = None) -> int:
    benches = _benches()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_data.json"), help="JSON file (merged into)")
    parser.add_argument("--only", nargs="+", choices=sorted(benches), help="run only these benches")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if args.out.exists():
        try:
            results = json.loads(args.out.read_text())
        except json.JSONDecodeError:
            results = {}
    for name in args.only or sorted(benches):
        results[name] = benches[name]()
    results["machine"] = _machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
