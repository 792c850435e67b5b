"""Smoke: `glassworld agent` and `glassworld agent-eval` end to end on a tiny untrained GLASS checkpoint."""

from __future__ import annotations

import json

import pytest

from worldmodel.cli import main


@pytest.mark.slow
def test_agent_then_agent_eval_in_dream_and_real_game(glass_checkpoint, tmp_path, capsys):
    run = tmp_path / "agent"
    rc = main(["agent", f"checkpoint={glass_checkpoint}", "algo=ppo", "n_envs=2", "total_timesteps=48",
               "policy.n_steps=8", "policy.batch_size=16", "policy.n_epochs=1", "policy.features_dim=32",
               "eval.freq=16", "eval.episodes=2", "eval.n_envs=2", "max_episode_steps=6", f"run_dir={run}",
               "device=cpu", "threads=1", "final_eval.episodes=2", "final_eval.n_envs=2", "video.steps=4",
               "observation=mask"])
    assert rc == 0, capsys.readouterr().err
    for name in ("policy.zip", "best_model.zip", "agent.json", "metrics.json"):
        assert (run / name).is_file(), name
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["timesteps"] >= 48 and metrics["final_eval"]["episodes"] == 2
    assert "success" in capsys.readouterr().out

    out = tmp_path / "eval.json"
    args = ["agent-eval", f"policy={run / 'policy.zip'}", f"checkpoint={glass_checkpoint}", "episodes=2",
            "n_envs=2", "max_episode_steps=5", "real=true", "game=Tennis", "mapping.steps=12",
            "mapping.clip_len=4", f"out={out}", "device=cpu", "threads=1"]
    assert main(args) == 2  # the policy saw masks in training: rgb frames are refused with the fix
    assert "trained on observation=mask" in capsys.readouterr().err
    rc = main([*args, "observation=mask"])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "dream" in printed and "real" in printed and "success rate" in printed
    res = json.loads(out.read_text())
    assert res["real_game"] == "Tennis" and res["real"]["episodes"] == 2 and res["dream"]["episodes"] == 2
    assert res["action_map"]["source"] == "learned" and res["action_map"]["transitions"] == 2 * 12

    rc = main(["agent-eval", "policy=planner", f"checkpoint={glass_checkpoint}", "episodes=2", "n_envs=2",
               "max_episode_steps=3", "planner.population=4", "planner.elites=2", "planner.horizon=2",
               "planner.iterations=1", "+task_kwargs.radius=8", "device=cpu", "threads=1"])
    assert rc == 0, capsys.readouterr().err


def test_agent_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["agent", "env=GlassWorld-v0"]) == 2
    assert "needs checkpoint=PATH" in capsys.readouterr().err
    assert main(["agent", "algo=dqn", f"checkpoint={tmp_path / 'x.pt'}"]) == 2
    assert "algo must be one of" in capsys.readouterr().err
    assert main(["agent-eval", "env=GlassNope-v0"]) == 2
    assert "unknown env" in capsys.readouterr().err
    assert main(["agent-eval", f"checkpoint={tmp_path / 'missing.pt'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["agent", "--help"]) == 0 and "glassworld agent" in capsys.readouterr().out


def test_agent_eval_config_parses_through_the_one_settings_helper():
    import pytest

    from agents.evaluate import EvalAgentConfig
    from worldmodel.data.format import DatasetError

    with pytest.raises(DatasetError, match=r"unknown key mapping\.stepz; did you mean mapping\.steps\?"):
        EvalAgentConfig.from_dict({"mapping": {"stepz": 3}})
    with pytest.raises(DatasetError, match=r"unknown key episode; did you mean episodes\?"):
        EvalAgentConfig.from_dict({"episode": 3})
    assert EvalAgentConfig.from_dict({"planner": {"horizon": 4}}).planner.horizon == 4
