"""`glassworld bench env` and `glassworld bench play` (dispatched by module name) and scripts/bench_play.py, with
tiny untrained models and sub-second timing budgets."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from worldmodel.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = ["checkpoint=null", "preset=tiny", "height=32", "width=48"]


def test_bench_env_writes_dream_and_ale_speeds(tmp_path, capsys):
    out = tmp_path / "env.json"
    rc = main(["bench", "env", *TINY_MODEL, "num_envs=[1,2]", "devices=[cpu]", "seconds=0.2", "ale_seconds=0.2",
               "threads=1", f"out={out}"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["bench"] == "env" and r["config"]["num_envs"] == [1, 2] and r["config"]["preset"] == "tiny"
    ale = r["ale_tennis"]["gym_v5_steps_per_s"]
    assert ale > 0 and r["ale_tennis"]["glassworld_real_env_steps_per_s"] > 0
    for n in ("1", "2"):
        d = r["dream"]["cpu"][n]
        assert d["env_steps_per_s"] > 0 and d["timed_vector_steps"] >= 3
        # the timed run honoured the budget: its steps took at least seconds=0.2 (not a few steps then a guess)
        assert d["timed_vector_steps"] * d["ms_per_vector_step"] / 1000 >= 0.2 * 0.95
        assert r["ratios_vs_gym_ale_tennis"]["cpu"][n] > 0
    assert r["target"]["met"] is None  # N=64 was not timed
    mem = r["single_env_memory"]
    assert mem["steps"] == 200 and 0 < mem["rss_after_imports_mb"] <= mem["peak_rss_mb"]
    assert isinstance(r["memory_target"]["met"], bool)
    assert json.loads(capsys.readouterr().out)["out"] == str(out)


def test_bench_play_writes_viewer_speeds(tmp_path, capsys):
    out = tmp_path / "play.json"
    rc = main(["bench", "play", *TINY_MODEL, "frames=6", "threads=[1]", f"out={out}"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["bench"] == "play" and set(r["play"]) == {"threads_1"}
    m = r["play"]["threads_1"]
    assert m["frames"] == 6 and m["model_steps"] >= 6 and m["play_fps"] > 0 and m["env_step_fps"] > 0
    assert m["draw_only_fps"] > 0 and "tiny" in m["model"] and isinstance(m["meets_60fps"], bool)
    assert r["machine"]["cpus"] >= 1


def test_bench_play_script_is_a_thin_wrapper(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "bench_play.py"))["main"]
    out = tmp_path / "play.json"
    assert script(["--frames", "3", "--preset", "tiny", "--height", "32", "--width", "48", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["play"]["threads_1"]["frames"] == 3 and r["config"]["height"] == 32


def test_bench_env_and_play_errors_are_one_clear_line(capsys):
    assert main(["bench", "env", "nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["bench", "env", "checkpoint=NoSuchWorld-v0"]) == 2
    assert "neither a file nor a registered env id" in capsys.readouterr().err
    assert main(["bench", "play", "frames=0"]) == 2
    assert "frames must be >= 1" in capsys.readouterr().err
    assert main(["bench", "--help"]) == 0
    text = capsys.readouterr().out
    assert all(f"  {name} " in text for name in ("train", "env", "play"))


def test_bench_env_times_a_registered_id_by_its_shipped_checkpoint():
    import gymnasium as gym

    from envs.bench import config_from_dict

    assert config_from_dict({}).checkpoint is None  # the dataclass default: an untrained model
    cfg = config_from_dict({"checkpoint": "GlassBreakout-v0"})
    assert cfg.checkpoint == str(gym.spec("GlassBreakout-v0").kwargs["checkpoint"])


def test_worldmodel_bench_does_not_import_envs_or_agents():
    code = ("import sys, worldmodel.bench as b; assert {'env', 'play', 'train'} <= set(b.BENCHES); "
            "bad = [m for m in ('envs', 'agents', 'gymnasium', 'stable_baselines3') if m in sys.modules]; "
            "assert not bad, bad")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
