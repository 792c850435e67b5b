"""scripts/check_rollout.py and scripts/bench_env.py (envs.bench) run end to end with tiny settings."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_check_rollout_writes_stats(square_checkpoint, tmp_path, capsys):
    main = runpy.run_path(str(SCRIPTS / "check_rollout.py"))["main"]
    out = tmp_path / "roll.json"
    assert main([str(square_checkpoint), "--steps", "40", "--num-envs", "2", "--out", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert stats["steps"] == 40 and stats["num_envs"] == 2 and stats["nonfinite_frames"] == 0
    assert stats["warnings"] == [] and len(stats["windows"]) == 10
    assert main([str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bench_env_reports_dream_and_ale_with_ratios(glass_checkpoint, tmp_path):
    main = runpy.run_path(str(SCRIPTS / "bench_env.py"))["main"]
    out = tmp_path / "bench.json"
    assert main(["--checkpoint", str(glass_checkpoint), "--num-envs", "1", "4", "--devices", "cpu",
                 "--seconds", "0.2", "--ale-seconds", "0.2", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    ale = r["ale_tennis"]["gym_v5_steps_per_s"]
    assert ale > 0 and r["ale_tennis"]["ale_interface_steps_per_s"] > 0
    for n in ("1", "4"):
        sps = r["dream"]["cpu"][n]["env_steps_per_s"]
        assert sps > 0 and abs(r["ratios_vs_gym_ale_tennis"]["cpu"][n] - sps / ale) < 1e-9
    assert r["target"]["met"] is None  # N=64 was not timed
