"""``glassworld world IN OUT``: from video to a playable, health-checked world in one command.

Usage::

    glassworld world data/tennis64 worlds/tennis                 # a dataset made by `glassworld data ...`
    glassworld world my_videos/ worlds/mine --size 64x64 --fps 15 # a folder of video files, imported first
    glassworld world data/tennis64 worlds/tennis --budget-min 10  # a shorter training budget

Stages, each resumable (run the same command again after Ctrl-C or a kill; it continues where it stopped):

1. **data**: IN is used as is when it holds a ``manifest.json``; a folder of video files is imported into
   ``OUT/data`` (``glassworld data videos``).
2. **settings** from the data, the same rule for every video (``OUT/settings.json``): the frame size, and GLASS's
   mask-size target from the share of each frame that moves relative to the background, and whether the
   background ever moves (a static one gets no background shift) (:func:`worldmodel.datastats.motion_stats`).
3. **train** GLASS (``cpu`` preset) in ``OUT/run`` until ``--budget-min`` minutes of training are spent
   (``train.time_budget_min``; a tqdm bar shows steps and time left).
4. **eval** on the val split (``OUT/eval_val.json``), with the health checks (:mod:`worldmodel.health`).
5. **ship** ``OUT/world.pt`` with its model card (``world.json``, ``world.md``) carrying the health report, and print
   how to play it and train an agent in it. An unhealthy world is still written, and says so everywhere:
   ``gym.make`` refuses it unless ``allow_unhealthy=True``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .data.format import DatasetError, atomic_write_json

log = logging.getLogger(__name__)


@dataclass
class WorldConfig:
    """The one command's settings (everything else is derived from the data)."""

    source: str  # a dataset folder (manifest.json) or a folder of video files
    out: str  # the world's folder
    budget_min: float = 45.0  # minutes of training (2 CPU cores: ~45 for the development worlds)
    size: str = "64x64"  # HxW when importing video files
    fps: float = 15.0  # frames per second when importing video files
    seed: int = 0
    device: str = "auto"
    eval_clips: int = 64  # val clips of the health check
    preset: str = "cpu"  # GLASS preset (tiny: for tests)
    workers: int = 2  # DataLoader workers


def prepare_data(cfg: WorldConfig) -> Path:
    """Stage 1: the dataset folder (IN itself, or IN's video files imported into OUT/data)."""
    src = Path(cfg.source).expanduser()
    if (src / "manifest.json").is_file():
        return src
    if not src.is_dir():
        raise DatasetError(f"{src} is neither a dataset folder (with manifest.json, made by `glassworld data`) nor a "
                           "folder of video files")
    from .data.cli import cli_main as data_main

    data = Path(cfg.out) / "data"
    log.info("importing the video files of %s into %s (%s, %g fps)", src, data, cfg.size, cfg.fps)
    rc = data_main(["videos", "--in", str(src), "--out", str(data), "--size", cfg.size, "--fps", str(cfg.fps)])
    if rc != 0 or not (data / "manifest.json").is_file():
        raise DatasetError(f"importing {src} failed (see the messages above); fix or remove the files it names")
    return data


def derive_settings(cfg: WorldConfig, data: Path) -> dict[str, Any]:
    """Stage 2: training settings from the data alone, cached in OUT/settings.json (reused on resume)."""
    from .data.format import read_manifest
    from .datastats import motion_stats
    from .glass.config import agent_window

    path = Path(cfg.out) / "settings.json"
    if path.is_file():
        return json.loads(path.read_text())
    manifest = read_manifest(data)
    stats = motion_stats(data)
    h, w = int(manifest["height"]), int(manifest["width"])
    settings = {"data": str(data), "height": h, "width": w, "fps": manifest.get("fps"), "motion": stats,
                "model": "glass", "preset": cfg.preset, "mask_size": stats["mask_size"],
                "static_background": stats["static_background"],
                # the local part's window, from the agent size the data suggests ([0, 0]: the whole frame)
                "agent_crop": list(agent_window(stats["mask_size"], h, w)),
                "frame_skip": 0, "budget_min": cfg.budget_min, "seed": cfg.seed}
    atomic_write_json(path, settings)
    return settings


def train_overrides(cfg: WorldConfig, settings: dict[str, Any], run_dir: Path) -> list[str]:
    """The ``glassworld train`` overrides of the world (the same every time, so a rerun resumes)."""
    # a world begun before static_background was derived has no such setting: it resumes as it was trained
    # ... nor before the agent window was: it keeps the whole frame
    derived = [f"+model.static_background={str(settings['static_background']).lower()}"] \
        if "static_background" in settings else []
    if "agent_crop" in settings:
        derived.append("+model.agent_crop=[{},{}]".format(*settings["agent_crop"]))
    return [f"data.path={settings['data']}", "model=glass", f"model.preset={settings['preset']}",
            f"+model.mask_size={settings['mask_size']}", *derived, f"data.frame_skip={settings['frame_skip']}",
            f"run_dir={run_dir}", f"seed={cfg.seed}", f"device={cfg.device}", f"data.workers={cfg.workers}",
            "train.steps=1000000", f"train.time_budget_min={cfg.budget_min}",
            f"resume={str((run_dir / 'checkpoint.pt').is_file()).lower()}"]


def build_world(cfg: WorldConfig) -> dict[str, Any]:
    """All five stages; returns the shipped card (its ``health`` says whether the world can be used)."""
    from .evaluate import EvalConfig, evaluate, format_table
    from .export import ship
    from .train import compose_run_config, train

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = prepare_data(cfg)
    settings = derive_settings(cfg, data)
    run_dir = out / "run"
    overrides = train_overrides(cfg, settings, run_dir)
    log.info("training: glassworld train %s", " ".join(overrides))
    metrics = train(compose_run_config(overrides))
    if metrics.get("interrupted"):
        raise KeyboardInterrupt  # a checkpoint was saved: the same command resumes
    world = out / "world.pt"
    ship(run_dir / "checkpoint.pt", world, data=data)  # env_info (shift grid, ...) from the final weights
    result = evaluate(EvalConfig(checkpoint=str(world), data_path=str(data), split="val", clips=cfg.eval_clips,
                                 device=cfg.device, seed=cfg.seed))  # the shipped world is what gets checked
    print(format_table(result))
    atomic_write_json(out / "eval_val.json", result)
    return ship(world, world, eval_json=out / "eval_val.json",
                card={"command": "glassworld world " + " ".join(_argv(cfg)), "derived_settings": settings,
                      "train_steps": metrics.get("step"), "world_minutes": round((time.perf_counter() - t0) / 60, 1)})


def _argv(cfg: WorldConfig) -> list[str]:
    d = WorldConfig(cfg.source, cfg.out)
    args = [cfg.source, cfg.out]
    for k, v in asdict(cfg).items():
        if k not in ("source", "out") and v != getattr(d, k):
            args.append(f"--{k.replace('_', '-')}={v}")
    return args


def next_steps(card: dict[str, Any], world: Path) -> str:
    """What to do with the world: play it, train an agent in it — or why not."""
    health = card.get("health") or {}
    lines = []
    if not health.get("healthy", False):
        lines += [f"{world} is UNHEALTHY:", *(f"  - {p}" for p in health.get("problems", ["not checked"])),
                  "gym.make refuses it unless allow_unhealthy=True. Try a longer --budget-min or other video."]
    else:
        lines.append(f"{world} is healthy (agent found on {health.get('agent_found', 0):.0%} of val frames).")
    lines += ["", "play it:            glassworld play checkpoint=" + str(world),
              "train an agent:     glassworld agent env=GlassWorld-v0 checkpoint=" + str(world),
              "in Python:          gym.make('GlassWorld-v0', checkpoint='" + str(world) + "')"]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="glassworld world", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="From video to a playable, health-checked world: import, derive settings, train, evaluate, ship.",
        epilog="examples:\n  glassworld world data/tennis64 worlds/tennis\n"
               "  glassworld world my_videos/ worlds/mine --size 64x64 --fps 15 --budget-min 30\n\n"
               "Run it again after Ctrl-C or a kill: it resumes.")
    p.add_argument("source", help="dataset folder (made by `glassworld data`) or a folder of video files")
    p.add_argument("out", help="the world's folder: world.pt, world.md, world.json, eval_val.json, run/")
    d = WorldConfig("", "")
    p.add_argument("--budget-min", type=float, default=d.budget_min, help="minutes of training (default: %(default)s)")
    p.add_argument("--size", default=d.size, help="HxW when importing video files (default: %(default)s)")
    p.add_argument("--fps", type=float, default=d.fps, help="fps when importing video files (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda (default: %(default)s)")
    p.add_argument("--eval-clips", type=int, default=d.eval_clips, help="val clips of the health check")
    p.add_argument("--preset", default=d.preset, choices=["tiny", "cpu", "paper"], help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=d.workers, help="DataLoader workers (default: %(default)s)")
    return p


def cli_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    cfg = WorldConfig(**{k: v for k, v in vars(args).items()})
    if cfg.budget_min <= 0:
        print("glassworld world: --budget-min must be > 0", file=sys.stderr)
        return 2
    try:
        card = build_world(cfg)
    except DatasetError as e:
        print(f"glassworld world: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nglassworld world: stopped; run the same command again to resume ({cfg.out})", file=sys.stderr)
        return 130
    print(next_steps(card, Path(cfg.out) / "world.pt"))
    return 0
