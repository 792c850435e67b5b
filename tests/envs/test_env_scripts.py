"""scripts/check_rollout.py and scripts/bench_env.py (bench.env) run end to end with tiny settings."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

from worldmodel.paths import portable_path

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
    assert main([f"checkpoint={glass_checkpoint}", "num_envs=[1,4]", "devices=[cpu]", "seconds=0.2",
                 "ale_seconds=0.2", "memory_steps=0", f"out={out}"]) == 0
    r = json.loads(out.read_text())
    assert r["bench"] == "env" and r["config"]["checkpoint"] == portable_path(glass_checkpoint)
    ale = r["ale_tennis"]["gym_v5_steps_per_s"]
    assert ale > 0 and r["ale_tennis"]["ale_interface_steps_per_s"] > 0
    for n in ("1", "4"):
        sps = r["dream"]["cpu"][n]["env_steps_per_s"]
        assert sps > 0 and abs(r["ratios_vs_gym_ale_tennis"]["cpu"][n] - sps / ale) < 1e-9
    assert r["target"]["met"] is None  # N=64 was not timed


def test_check_controls_measures_what_each_action_does(square_checkpoint, tmp_path):
    main = runpy.run_path(str(SCRIPTS / "check_controls.py"))["main"]
    out = tmp_path / "controls.json"
    assert main([str(square_checkpoint), "--starts", "6", "--hold", "2", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    by_name = {s["shift"]: s for s in r["shifts"]}
    assert r["hold"] == 2 and len(r["shifts"]) == 9 and all(s["lost"] == 0 for s in r["shifts"])
    # the square world moves the square by the grid shift (3 px a step, plus 0.3 px jitter; clamped at the edges)
    assert by_name["right"]["expected_px"] == [6.0, 0.0]
    assert by_name["right"]["measured_px"][0] > 4.5 and by_name["left"]["measured_px"][0] < -4.5
    assert by_name["down"]["measured_px"][1] > 4.5 and by_name["up"]["measured_px"][1] < -4.5
    assert abs(by_name["none"]["measured_px"][0]) < 1.0 and abs(by_name["none"]["measured_px"][1]) < 1.0
    assert r["mean_error_moving_shifts_px"] < 1.0
    # codes repaint the square: their frames differ, their no-move displacement does not
    assert len(r["codes"]) == 4 and all(c["frame_diff_vs_other_codes"] > 0.1 for c in r["codes"])
    # ... and the repainting is on the agent: each code's agent crop differs from the others' and from the start's
    assert all(c["agent_crop_diff_vs_other_codes"] > 1.0 for c in r["codes"])
    assert all(c["agent_crop_change"] is not None and c["agent_crop_change"] >= 0 for c in r["codes"])


def test_carry_gate_reports_how_much_each_code_redraws_the_agent(glass_checkpoint, square_checkpoint, tmp_path,
                                                                  capsys):
    main = runpy.run_path(str(SCRIPTS / "carry_gate.py"))["main"]
    out = tmp_path / "gate.json"
    assert main([str(glass_checkpoint), "--starts", "3", "--hold", "2", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["starts"] == 3 and r["hold"] == 2 and len(r["codes"]) >= 2
    for row in r["codes"]:
        assert 0 < row["gate_overall"] < 1 and row["frame_diff_vs_code0"] >= 0
        assert row["gate_on_agent"] is None or 0 <= row["gate_on_agent"] <= 1
    assert r["codes"][0]["dynamics_change_vs_code0"] == 0 and r["codes"][1]["dynamics_change_vs_code0"] > 0
    assert main([str(square_checkpoint)]) == 2  # not a GLASS model with the agent carry
    assert "fg_carry" in capsys.readouterr().err


def test_lost_agent_finds_the_frames_where_the_dream_drops_its_agent(square_checkpoint, tmp_path, capsys):
    """scripts/lost_agent.py judges generated frames by the health check's rule: a dream whose rendered mask
    empties after step 8 loses exactly steps 9..16 of every clip, and its agent_kept is the health figure."""
    import numpy as np

    from worldmodel.data.format import DatasetWriter

    rng = np.random.default_rng(0)
    w = DatasetWriter(tmp_path / "data", source="test", height=40, width=48, fps=10)
    for v in range(2):
        f = np.full((20, 40, 48, 3), 128, np.uint8)  # grey: the square is the only saturated thing
        x, y = 10, 12
        for t in range(20):
            x, y = int(np.clip(x + rng.choice([-2, 0, 2]), 4, 38)), int(np.clip(y + rng.choice([-2, 0, 2]), 4, 30))
            f[t, y - 3:y + 3, x - 3:x + 3] = (255, 0, 0)
        w.write(f"v{v}", f, split="val")
    w.close()
    g = runpy.run_path(str(SCRIPTS / "lost_agent.py"))
    real_generate = g["generate"]

    def dropping(model, video):
        frames, masks = real_generate(model, video)
        masks = masks.clone()
        masks[:, 9:] = 0  # the dream loses its agent after step 8
        return frames, masks

    out = tmp_path / "lost"
    assert g["main"]([str(square_checkpoint), str(tmp_path / "data"), "--clips", "4", "--out", str(out)]) == 0
    r = json.loads(out.with_suffix(".json").read_text())
    assert r["agent_kept"] == 1.0 and r["lost_frames"] == 0 and not r["clips_losing"]  # the square is always drawn
    g["lost_frames"].__globals__["generate"] = dropping  # run_path hands back a copy of the script's globals
    assert g["main"]([str(square_checkpoint), str(tmp_path / "data"), "--clips", "4", "--out", str(out)]) == 0
    r = json.loads(out.with_suffix(".json").read_text())
    assert r["judged_frames"] == 4 * 16 and r["lost_frames"] == 4 * 8 and r["agent_kept"] == 0.5
    assert r["lost_by_step"] == [0] * 9 + [4] * 8
    assert all(c["lost_steps"] == list(range(9, 17)) and c["lost_mask_px"] == [0] * 8 for c in r["clips_losing"])
    assert out.with_suffix(".png").stat().st_size > 0
    assert "agent_kept 50.0%: 32 of 64 judged frames lost, in 4 of 4 clips" in capsys.readouterr().out
