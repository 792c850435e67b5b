"""``glassworld bench data``: speed and size on disk of the dataset generators (``glassworld data atari`` and
``glassworld data sprites``), as JSON (keys of ``configs/bench_data.yaml``)::

    glassworld bench data out=runs/bench_data.json
    glassworld bench data only=[atari] atari_episodes=2

``frames_per_s`` is the whole command (emulate or render, compress, atomic write, manifest); the ``*_per_cpu_s``
figures divide by CPU time instead, which a machine shared with other jobs affects much less than wall time.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from worldmodel.config import settings
from worldmodel.data.format import DatasetError

from .common import loadavg_1m, machine

log = logging.getLogger(__name__)

GENERATORS = ("atari", "sprites")


@dataclass
class BenchDataConfig:
    """What ``bench data`` times."""

    only: list[str] = field(default_factory=lambda: list(GENERATORS))  # which generators
    atari_games: list[str] = field(default_factory=lambda: ["Tennis", "Breakout"])
    atari_episodes: int = 4
    atari_max_steps: int = 1000  # steps per episode at most
    sprites_videos: int = 30  # 90-frame videos
    sprites_per_sprite: int = 10  # videos per character
    sprites_workers: list[int] = field(default_factory=lambda: [1, 2])  # one whole-command timing each
    lpc_dir: str | None = None  # LPC sheets; None: ../shared/data/lpc_sprites beside the repo (skipped if absent)

    def validate(self) -> None:
        """One clear error for settings that cannot be timed."""
        bad = sorted(set(self.only) - set(GENERATORS))
        if bad or not self.only:
            raise DatasetError(f"only must list some of {list(GENERATORS)}, got {self.only}")
        counts = [self.atari_episodes, self.atari_max_steps, self.sprites_videos, self.sprites_per_sprite]
        if min(counts) < 1 or not self.sprites_workers or min(self.sprites_workers) < 1:
            raise DatasetError("atari_episodes, atari_max_steps, sprites_videos, sprites_per_sprite and "
                               f"sprites_workers must be >= 1, got {counts} and {self.sprites_workers}")


def config_from(d: dict[str, Any]) -> BenchDataConfig:
    """A :class:`BenchDataConfig` from the composed ``configs/bench_data.yaml`` (plain dict, ``out`` removed)."""
    cfg = settings(BenchDataConfig, d)
    cfg.validate()
    return cfg


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def bench_atari(cfg: BenchDataConfig) -> dict[str, Any]:
    """``glassworld data atari`` at its defaults (96x128, frame skip 4) per game; ``record_frames_per_s`` is the
    emulator + resize alone (no disk)."""
    from worldmodel.data.atari import AtariConfig, AtariRecorder, generate

    out: dict[str, Any] = {"size": [96, 128], "frame_skip": 4, "episodes": cfg.atari_episodes,
                           "max_steps": cfg.atari_max_steps}
    for game in cfg.atari_games:
        with tempfile.TemporaryDirectory() as tmp:
            acfg = AtariConfig(game=game, episodes=cfg.atari_episodes, out=Path(tmp) / "ds",
                               max_steps=cfg.atari_max_steps, seed=0)
            load0 = loadavg_1m()
            t0, c0 = time.perf_counter(), time.process_time()
            frames = generate(acfg, progress=False)["num_frames"]
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            mb = _dir_mb(acfg.out)
            rec = AtariRecorder(acfg)
            t1 = time.perf_counter()
            n = sum(len(rec.record(i).frames) for i in range(min(2, cfg.atari_episodes)))
            dt_rec = time.perf_counter() - t1
            rec.close()
        out[game] = {
            "frames": frames, "seconds": round(dt, 3), "frames_per_s": round(frames / dt, 1),
            "frames_per_cpu_s": round(frames / cpu, 1), "record_frames_per_s": round(n / dt_rec, 1),
            "disk_mb": round(mb, 3), "mb_per_1000_frames": round(mb / frames * 1000, 3),
            "loadavg_1m_at_start": load0,
        }
        log.info("atari %s: %d frames in %.2f s = %.0f frames/s (record only %.0f/s)", game, frames, dt,
                 frames / dt, n / dt_rec)
    return out


def _sprites_source(cfg: BenchDataConfig, root: Path | None) -> dict[str, Any]:
    """Rendering alone (walks, composition, backgrounds, masks; cold caches, no disk), then the whole command
    with each worker count."""
    from worldmodel.data.sprites import SpritesConfig, choose_videos, generate, make_assets, render_video

    scfg = SpritesConfig(per_sprite=cfg.sprites_per_sprite)
    res: dict[str, Any] = {"loadavg_1m_at_start": loadavg_1m()}
    t0, c0 = time.perf_counter(), time.process_time()
    assets = make_assets(root, scfg)
    chosen = choose_videos(cfg.sprites_videos, cfg.sprites_per_sprite, 0)
    n = sum(render_video(assets, s, k)["frames"].shape[0] for s, k in chosen)
    res["render_frames_per_s"] = round(n / (time.perf_counter() - t0), 1)
    res["render_frames_per_cpu_s"] = round(n / (time.process_time() - c0), 1)
    for w in cfg.sprites_workers:
        tmp = Path(tempfile.mkdtemp(prefix="bench_sprites_"))
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            frames = generate(tmp / "ds", cfg.sprites_videos, root, scfg, workers=w, progress=False)["num_frames"]
            res[f"frames_per_s_w{w}"] = round(frames / (time.perf_counter() - t0), 1)
            if w == 1:
                res["frames_per_cpu_s_w1"] = round(frames / (time.process_time() - c0), 1)
            res["mb_per_1000_frames"] = round(_dir_mb(tmp / "ds") / frames * 1000, 3)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return res


def bench_sprites(cfg: BenchDataConfig) -> dict[str, Any]:
    """``glassworld data sprites`` (96x128, 90-frame videos) with LPC sheets (when present) and procedural ones."""
    lpc = Path(cfg.lpc_dir) if cfg.lpc_dir else Path(__file__).resolve().parents[2] / "shared/data/lpc_sprites"
    out: dict[str, Any] = {"size": [96, 128], "frames_per_video": 90, "videos": cfg.sprites_videos,
                           "per_sprite": cfg.sprites_per_sprite}
    if lpc.is_dir():
        out["lpc"] = _sprites_source(cfg, lpc)
    else:
        out["lpc"] = f"skipped: no LPC sheets at {lpc}"
    out["procedural"] = _sprites_source(cfg, None)
    log.info("sprites procedural: render %.0f frames/s", out["procedural"]["render_frames_per_s"])
    return out


def run_bench(cfg: BenchDataConfig) -> dict[str, Any]:
    """``{"atari": ..., "sprites": ..., "machine", "config"}`` for the generators in ``cfg.only``."""
    cfg.validate()
    benches = {"atari": bench_atari, "sprites": bench_sprites}
    result: dict[str, Any] = {name: benches[name](cfg) for name in cfg.only}
    return {**result, "machine": {**machine(), "loadavg_1m": loadavg_1m()}, "config": asdict(cfg)}
