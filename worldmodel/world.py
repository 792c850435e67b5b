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
3. **discover** the agent: GMA-pretrain ``--candidates`` seeds (``OUT/candidates/seedN``, the preset's
   ``pretraining_steps`` each), score each on training clips by how much of its segmented agent's motion its shift
   estimates explain (no ground truth, :mod:`worldmodel.discovery`), and keep the winner (``OUT/discovery.json``).
4. **train** the winner on in ``OUT/run`` until ``--budget-min`` minutes are spent in all (the losing candidates'
   minutes and the scoring count; ``train.time_budget_min``; a tqdm bar shows steps and time left), scoring the
   agent the same way at every checkpoint (``train.keep_best``): the latest snapshot within 5 points of the best
   is ``OUT/run/best.pt``, the one shipped (on Tennis the segmentation moved to the other player late in a run).
5. **eval** on the val split (``OUT/eval_val.json``), with the health checks (:mod:`worldmodel.health`).
6. **ship** ``OUT/world.pt`` with its model card (``world.json``, ``world.md``) carrying the health report, and print
   how to play it and train an agent in it. An unhealthy world is still written, and says so everywhere:
   ``gym.make`` refuses it unless ``allow_unhealthy=True``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
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
    candidates: int = 3  # pretraining seeds tried by agent discovery (1: train seed `seed` only)


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


def train_overrides(cfg: WorldConfig, settings: dict[str, Any], run_dir: Path, steps: int = 1000000,
                    budget_min: float | None = None, keep_best: bool = False) -> list[str]:
    """The ``glassworld train`` overrides of the world (the same every time, so a rerun resumes): ``steps``
    optimiser steps at most, ``budget_min`` minutes of training (default ``cfg.budget_min``), ``keep_best``:
    the run keeps ``best.pt`` (``train.keep_best``)."""
    # a world begun before static_background was derived has no such setting: it resumes as it was trained
    # ... nor before the agent window was: it keeps the whole frame
    derived = [f"+model.static_background={str(settings['static_background']).lower()}"] \
        if "static_background" in settings else []
    if "agent_crop" in settings:
        derived.append("+model.agent_crop=[{},{}]".format(*settings["agent_crop"]))
    return [f"data.path={settings['data']}", "model=glass", f"model.preset={settings['preset']}",
            f"+model.mask_size={settings['mask_size']}", *derived, f"data.frame_skip={settings['frame_skip']}",
            f"run_dir={run_dir}", f"seed={cfg.seed}", f"device={cfg.device}", f"data.workers={cfg.workers}",
            f"train.steps={steps}", f"train.time_budget_min={cfg.budget_min if budget_min is None else budget_min}",
            *(["train.keep_best=true"] if keep_best else []),
            f"resume={str((run_dir / 'checkpoint.pt').is_file()).lower()}"]


def discover(cfg: WorldConfig, settings: dict[str, Any], data: Path) -> dict[str, Any] | None:
    """Stage 3: pretrain ``cfg.candidates`` seeds, score them, put the winner's run in ``OUT/run``.

    Returns ``OUT/discovery.json`` (cached: a rerun reuses it, and each candidate's run and score resume on their
    own), or None for one candidate or a world whose run began before discovery existed (it resumes as it was).
    """
    from .discovery import DiscoveryConfig, choose, score, share
    from .glass.config import GlassConfig
    from .train import compose_run_config, train

    out, run_dir = Path(cfg.out), Path(cfg.out) / "run"
    path = out / "discovery.json"
    if not path.is_file():
        if cfg.candidates <= 1 or (run_dir / "checkpoint.pt").is_file():
            return None
        dcfg = DiscoveryConfig()
        steps = GlassConfig.preset(settings["preset"], settings["height"], settings["width"]).pretraining_steps
        scores = []
        for seed in range(cfg.seed, cfg.seed + cfg.candidates):
            cdir = out / "candidates" / f"seed{seed}"
            if (cdir / "score.json").is_file():
                scores.append(json.loads((cdir / "score.json").read_text()))
                continue
            log.info("agent discovery: candidate seed %d of %d..%d, %d pretraining steps", seed, cfg.seed,
                     cfg.seed + cfg.candidates - 1, steps)
            overrides = train_overrides(replace(cfg, seed=seed), settings, cdir, steps=steps,
                                        budget_min=round(cfg.budget_min / cfg.candidates, 4))
            metrics = train(compose_run_config(overrides))
            if metrics.get("interrupted"):
                raise KeyboardInterrupt  # the candidate's checkpoint was saved: the same command resumes
            t0 = time.perf_counter()
            s = score(cdir / "checkpoint.pt", data, dcfg, device=cfg.device, seed=cfg.seed)
            s = {"seed": seed, "steps": metrics.get("step"), "train_minutes": round(metrics["wall_time_s"] / 60, 3),
                 **s, "score_minutes": round((time.perf_counter() - t0) / 60, 3)}
            log.info("agent discovery: seed %d finds an agent on %s of frames, its shifts explain %s of its motion",
                     seed, share(s["agent_found"]), share(s["shift_explained"]))
            atomic_write_json(cdir / "score.json", s)
            scores.append(s)
        best = choose(scores, dcfg.min_found)
        other = sum(s["train_minutes"] for s in scores if s is not best) + sum(s["score_minutes"] for s in scores)
        atomic_write_json(path, {
            "chosen_seed": best["seed"], "pretraining_steps": steps, "other_minutes": round(other, 3),
            "rule": f"agent found on >= {dcfg.min_found:.0%} of {dcfg.clips} training clips' frames first, then the "
                    "largest share of the segmented agent's motion explained by the shift estimates",
            "candidates": scores})
    found = json.loads(path.read_text())
    if not (run_dir / "checkpoint.pt").is_file():  # the winner's run goes on as the world's (copied whole, then named)
        tmp = out / "run.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(out / "candidates" / f"seed{found['chosen_seed']}", tmp, ignore=shutil.ignore_patterns(
            "score.json"))
        shutil.rmtree(run_dir, ignore_errors=True)
        tmp.rename(run_dir)
    log.info("agent discovery: seed %d goes on (%s)", found["chosen_seed"], ", ".join(
        f"seed {s['seed']}: {share(s['shift_explained'])}" for s in found["candidates"]))
    return found


def _snapshot(path: Path) -> dict[str, Any]:
    """Which training snapshot was shipped: its file name, step and the run's best shift_explained so far."""
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, map_location="cpu")
    trainer = ckpt.get("trainer") or {}
    return {"file": path.name, "step": ckpt.get("step"), "train_shift_explained_best": trainer.get("best_explained")}


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
    found = discover(cfg, settings, data)
    main_cfg, budget = cfg, None
    if found is not None:  # the winner goes on; the losers' minutes and the scoring come out of the budget
        main_cfg = replace(cfg, seed=int(found["chosen_seed"]))
        budget = round(max(cfg.budget_min - found["other_minutes"], 1e-3), 4)
    overrides = train_overrides(main_cfg, settings, run_dir, budget_min=budget, keep_best=True)
    log.info("training: glassworld train %s", " ".join(overrides))
    metrics = train(compose_run_config(overrides))
    if metrics.get("interrupted"):
        raise KeyboardInterrupt  # a checkpoint was saved: the same command resumes
    world = out / "world.pt"
    # the snapshot whose agent the shifts explain best (a segmentation can drift to another moving thing late in
    # training), else the last one; env_info (shift grid, ...) is computed from the shipped weights
    chosen = run_dir / "best.pt" if (run_dir / "best.pt").is_file() else run_dir / "checkpoint.pt"
    ship(chosen, world, data=data)
    result = evaluate(EvalConfig(checkpoint=str(world), data_path=str(data), split="val", clips=cfg.eval_clips,
                                 device=cfg.device, seed=cfg.seed))  # the shipped world is what gets checked
    print(format_table(result))
    atomic_write_json(out / "eval_val.json", result)
    return ship(world, world, eval_json=out / "eval_val.json",
                card={"command": "glassworld world " + " ".join(_argv(cfg)), "derived_settings": settings,
                      "discovery": found, "shipped_snapshot": _snapshot(chosen),
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
    p.add_argument("--candidates", type=int, default=d.candidates,
                   help="pretraining seeds agent discovery tries, the best kept (default: %(default)s; 1: no search)")
    return p


def cli_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    cfg = WorldConfig(**{k: v for k, v in vars(args).items()})
    if cfg.budget_min <= 0 or cfg.candidates < 1:
        print("glassworld world: --budget-min must be > 0 and --candidates >= 1", file=sys.stderr)
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
