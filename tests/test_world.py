"""`glassworld world IN OUT`: the one command from video to a world (tiny preset, a few seconds of training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test_train import make_dataset
from worldmodel.checkpoint import load_checkpoint
from worldmodel.cli import main
from worldmodel.datastats import MotionStatsConfig, background_shift, moving_share
from worldmodel.glass.config import agent_window


@pytest.mark.slow
def test_world_end_to_end_then_resume(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", n_train=3, n_val=2, frames=24)
    out = tmp_path / "world"
    args = ["world", str(data), str(out), "--budget-min", "0.05", "--preset", "tiny", "--workers", "0",
            "--eval-clips", "2", "--device", "cpu"]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    for name in ("world.pt", "world.json", "world.md", "eval_val.json", "settings.json", "run/checkpoint.pt"):
        assert (out / name).is_file(), name
    card = json.loads((out / "world.json").read_text())
    assert set(card["health"]) >= {"healthy", "problems", "agent_found", "beats_copy", "shift_grid_ok", "codes_used"}
    settings = json.loads((out / "settings.json").read_text())
    assert 0 < settings["mask_size"] <= 0.15 and settings["motion"]["moving_share"] > 0
    assert load_checkpoint(out / "world.pt")["model_config"]["mask_size"] == pytest.approx(settings["mask_size"])
    # the squares' background never moves: the world is trained with no background shift
    assert settings["static_background"] is True and settings["motion"]["bg_moves"] == 0
    assert load_checkpoint(out / "world.pt")["model_config"]["static_background"] is True
    # the agent window comes from the same agent size ([0, 0]: the whole frame)
    assert settings["agent_crop"] == list(agent_window(settings["mask_size"], settings["height"], settings["width"]))
    assert list(load_checkpoint(out / "world.pt")["model_config"]["agent_crop"]) == settings["agent_crop"]
    assert f"glassworld play checkpoint={out / 'world.pt'}" in printed
    # an untrained tiny model does not find its agent: the command says so rather than shipping it as healthy
    assert ("UNHEALTHY" in printed) == (not card["health"]["healthy"])
    # agent discovery pretrained three seeds, scored each without ground truth and kept one of them
    disc = json.loads((out / "discovery.json").read_text())
    assert [c["seed"] for c in disc["candidates"]] == [0, 1, 2] and disc["chosen_seed"] in (0, 1, 2)
    assert all(c["steps"] <= disc["pretraining_steps"] and c["clips"] > 0 for c in disc["candidates"])
    assert load_checkpoint(out / "run" / "checkpoint.pt")["run_config"]["seed"] == disc["chosen_seed"]
    assert card["discovery"]["chosen_seed"] == disc["chosen_seed"]
    assert f"agent discovery: seed {disc['chosen_seed']} kept" in (out / "world.md").read_text()
    # the shipped weights are the run's best.pt when a snapshot earned it, else its last checkpoint
    snap = card["shipped_snapshot"]
    assert snap["file"] == ("best.pt" if (out / "run" / "best.pt").is_file() else "checkpoint.pt")
    assert load_checkpoint(out / "world.pt")["step"] == snap["step"]
    assert f"- shipped snapshot: step {snap['step']} ({snap['file']}" in (out / "world.md").read_text()
    steps = load_checkpoint(out / "run" / "checkpoint.pt")["step"]
    assert json.loads((out / "run" / "metrics.json").read_text())["stopped_by"] == "time_budget"

    # the same command again resumes the run (same settings file, the budget already spent: no new steps)
    assert main(args) == 0, capsys.readouterr().err
    assert load_checkpoint(out / "run" / "checkpoint.pt")["step"] == steps

    # the development table reads the world folder and runs the held-controls check on it
    card = json.loads((out / "world.json").read_text())  # re-shipped by the second run
    dev_table = _script("dev_table")
    assert dev_table.main([str(out), "--names", "tiny", "--out", str(tmp_path / "table")]) == 0
    row = json.loads((tmp_path / "table.json").read_text())[0]
    assert row["name"] == "tiny" and row["healthy"] == card["health"]["healthy"]
    assert row["agent_found"] == card["health"]["agent_found"] and row["minutes"] == card["world_minutes"]
    assert row["held_shift_err_64px"] is None or row["held_shift_err_64px"] >= 0
    assert "| tiny |" in (tmp_path / "table.md").read_text()


def _script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_world_begun_before_static_background_resumes_without_it(tmp_path):
    from worldmodel.world import WorldConfig, train_overrides

    cfg = WorldConfig(str(tmp_path / "data"), str(tmp_path / "w"))
    old = {"data": "d", "preset": "cpu", "mask_size": 0.01, "frame_skip": 0}
    assert not any("static_background" in o for o in train_overrides(cfg, old, tmp_path / "run"))
    new = train_overrides(cfg, {**old, "static_background": True}, tmp_path / "run")
    assert "+model.static_background=true" in new
    assert not any("agent_crop" in o for o in new)  # nor one begun before the agent window: the whole frame
    assert "+model.agent_crop=[16,16]" in train_overrides(cfg, {**old, "agent_crop": [16, 16]}, tmp_path / "run")


def test_discovery_prefers_a_found_agent_then_the_best_explained_motion():
    from worldmodel.discovery import choose

    def c(seed, found, explained):
        return {"seed": seed, "agent_found": found, "shift_explained": explained}

    # a candidate that loses its agent on more than 5 % of frames ranks below any that keeps it
    assert choose([c(0, 0.90, 0.8), c(1, 0.99, 0.1)], 0.95)["seed"] == 1
    # among those that find it: the larger share of the agent's motion explained by the shifts
    assert choose([c(0, 1.0, 0.09), c(1, 0.97, 0.39), c(2, 1.0, 0.08)], 0.95)["seed"] == 1
    # no figure (too few moves) ranks last; a tie goes to the lower seed
    assert choose([c(0, 1.0, None), c(1, 1.0, -0.5)], 0.95)["seed"] == 1
    assert choose([c(3, 1.0, 0.2), c(2, 1.0, 0.2)], 0.95)["seed"] == 2


def test_world_refuses_a_missing_source(tmp_path, capsys):
    assert main(["world", str(tmp_path / "nope"), str(tmp_path / "w")]) == 2
    assert "neither a dataset folder" in capsys.readouterr().err


def test_background_shift_is_recovered():
    rng = np.random.default_rng(0)
    a = torch.as_tensor(rng.random((48, 64)), dtype=torch.float32)
    b = torch.roll(a, shifts=(2, -3), dims=(0, 1))  # content moves 3 px left and 2 px down
    assert background_shift(a, b, 8) == (-3, 2)


def test_moving_share_counts_the_agent_not_a_panning_background():
    rng = np.random.default_rng(1)
    bg = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
    frames = []
    for t in range(6):
        f = np.roll(bg, shift=2 * t, axis=1).copy()  # the background pans 2 px per frame
        f[20:28, 10 + 3 * t:18 + 3 * t] = (255, 0, 0)  # an 8x8 agent moving 3 px per frame
        frames.append(f)
    video = torch.as_tensor(np.stack(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W)
    share, bg_shift = moving_share(video, MotionStatsConfig())
    assert (bg_shift == [[2, 0]] * 5).all()
    # the agent's old and new places differ (<= 2 x 64 px of 64 x 96); the panning background does not count
    assert (share > 0).all() and (share <= 2 * 64 / (64 * 96)).all()
