"""`glassworld agent` as the main job: train, evaluate in the dream and the real game against a random policy,
film, and write summary.json (tiny GLASS checkpoints, a few dozen env steps)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from worldmodel.cli import main
from worldmodel.paths import portable_path

TINY = ["n_envs=2", "total_timesteps=64", "policy.n_steps=16", "policy.batch_size=16", "policy.n_epochs=1",
        "policy.features_dim=32", "policy.channels=8", "eval.freq=32", "eval.episodes=2", "eval.n_envs=2",
        "max_episode_steps=6", "final_eval.episodes=2", "final_eval.n_envs=2", "final_eval.mapping.steps=12",
        "final_eval.mapping.clip_len=4", "device=cpu", "threads=1", "progress=false"]


@pytest.fixture(scope="module")
def tennis_checkpoint(tmp_path_factory) -> Path:
    """The tiny GLASS checkpoint with a card saying it was trained on `glassworld data atari --game Tennis`."""
    from square_world import save_tiny_glass_checkpoint

    from worldmodel.checkpoint import load_checkpoint, save_checkpoint

    folder = tmp_path_factory.mktemp("tennis")
    ckpt = load_checkpoint(save_tiny_glass_checkpoint(folder / "plain.pt"))
    ckpt["card"] = {"dataset": "test", "generator": {"command": "atari", "game": "Tennis", "frame_skip": 4},
                    "frame_skip": 0}
    return save_checkpoint(folder / "tiny_tennis.pt", ckpt)


def read_png(path: str | Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def decode(path: str | Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_main_job_trains_scores_dream_and_real_films_and_summarises(tennis_checkpoint, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["agent", f"checkpoint={tennis_checkpoint}", *TINY, "video.steps=9", "video.scale=2",
               f"run_dir={run}"])
    assert rc == 0, capsys.readouterr().err
    for name in ("policy.zip", "best_model.zip", "agent.json", "metrics.json", "summary.json", "rollout.mp4",
                 "rollout_real.mp4", "rollout.png"):
        assert (run / name).is_file(), name
    assert list((run / "tb").rglob("events.out.tfevents.*"))

    s = json.loads((run / "summary.json").read_text())
    assert s["env"] == "GlassTennis-v0" and s["task"] == "reach" and s["algo"] == "ppo"
    assert s["timesteps"] >= 64 and s["stopped_by"] == "total_timesteps" and s["baseline"] == "random"
    for world in ("dream", "real"):
        for who in ("policy", "baseline"):
            stats = s[world][who]
            assert stats["episodes"] == 2 and 0.0 <= stats["success_rate"] <= 1.0
            assert np.isfinite(stats["mean_return"]) and 1 <= stats["mean_length"] <= 6
    assert s["real"]["game"] == "Tennis" and s["real_note"] is None
    assert s["real"]["action_map"]["source"] == "learned" and s["real"]["action_map"]["transitions"] == 2 * 12
    curve = s["learning_curve"]
    assert [c["timesteps"] for c in curve] == [32, 64]
    assert all(c["episodes"] == 2 and c["success_rate"] is not None for c in curve)
    assert s["paths"]["policy"] == portable_path(run / "policy.zip") and s["paths"]["tensorboard"] == portable_path(run / "tb")
    assert s["paths"]["video"] == portable_path(run / "rollout.mp4")
    assert s["paths"]["real_video"] == portable_path(run / "rollout_real.mp4")

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["final_eval"] == s["dream"]["policy"] and metrics["final_eval_real"] == s["real"]["policy"]

    h, w = 32 * 2 + 12, 48 * 2  # frames of the tiny model, upscaled x2, under a 12 px caption bar
    dream = decode(run / "rollout.mp4")
    assert len(dream) == 9 == s["videos"]["dream"]["frames"] and dream[0].shape == (h, w, 3)
    side = decode(run / "rollout_real.mp4")
    assert len(side) == 9 and side[0].shape == (h, 2 * w + 4, 3)
    assert s["videos"]["dream"]["episodes_finished"] >= 1  # 9 frames hold a whole 6-step episode
    # the dream and the real pane start from the same real screen: their first frames agree (up to mp4 noise)
    left, right = side[0][12:, :w].astype(int), side[0][12:, w + 4:].astype(int)
    assert np.abs(left - right).mean() < 6 and right.std() > 10
    strip = read_png(run / "rollout.png")  # 2 rows (dream, real) of 2 columns (frames 0 and 6): every 6th frame
    assert strip.shape == (2 * (12 + 32 * 2) + 4, 2 * 48 * 2 + 4, 3) and s["paths"]["strip"] == portable_path(run / "rollout.png")
    m = s["machine"]
    assert m["threads"] == 1 and m["deterministic_algorithms"] and m["torch"] and m["stable_baselines3"]
    assert m["gymnasium"] and m["ale_py"] and m["numpy"] and m["python"] and isinstance(m["cpu"]["flags"], list)
    assert len(s["fingerprint"]) == 12 and len(s["policy_sha256"]) == 64

    out = capsys.readouterr().out
    assert "real Tennis success" in out and "random" in out and "policy" in out and s["fingerprint"] in out
    assert portable_path(run / "rollout_real.mp4") in out and "tensorboard --logdir" in out


def test_main_job_on_a_non_atari_model_is_dream_only_with_a_note(glass_checkpoint, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["agent", "env=GlassWorld-v0", f"checkpoint={glass_checkpoint}", *TINY, "eval.freq=0",
               "video.steps=4", "final_eval.baseline=null", f"run_dir={run}"])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((run / "summary.json").read_text())
    assert s["real"] is None and "does not name an Atari game" in s["real_note"]
    assert s["dream"]["policy"]["episodes"] == 2 and s["dream"]["baseline"] is None and s["baseline"] is None
    assert s["learning_curve"] == [] and s["paths"]["best_model"] is None
    assert len(decode(run / "rollout.mp4")) == 4 and not (run / "rollout_real.mp4").exists()
    assert "note: real-game evaluation skipped" in capsys.readouterr().out


def test_time_budget_stops_training_early(glass_checkpoint, tmp_path, capsys):
    run = tmp_path / "run"
    args = [a for a in TINY if not a.startswith("total_timesteps")]
    rc = main(["agent", f"checkpoint={glass_checkpoint}", *args, "total_timesteps=1000000", "time_budget_s=1.5",
               "eval.freq=0", "video.steps=0", "final_eval.real=false", f"run_dir={run}"])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((run / "summary.json").read_text())
    assert s["stopped_by"] == "time_budget" and 0 < s["timesteps"] < 1000000
    assert s["train_seconds"] < 30 and s["paths"]["video"] is None and s["videos"] == {}
    assert s["real_note"] == "real-game evaluation is off (final_eval.real=false)"
    assert "stopped by time budget" in capsys.readouterr().out


def test_default_config_is_glass_tennis_and_matches_the_dataclass():
    from worldmodel.config import plain
    from agents.train import AgentConfig
    from worldmodel.config import compose

    cfg = AgentConfig.from_dict(plain(compose([], config_name="agent")))
    assert cfg == AgentConfig()  # configs/agent.yaml and the dataclass defaults agree
    assert cfg.env == "GlassTennis-v0" and cfg.algo == "ppo" and cfg.final_eval.real and cfg.video.steps > 0
    assert cfg.time_budget_s is None and cfg.video.path.endswith(".mp4")  # no wall-clock cut: deterministic


def test_missing_shipped_checkpoint_says_which_file_and_the_fix(tmp_path, monkeypatch, capsys):
    import envs

    monkeypatch.setattr(envs, "CHECKPOINT_DIR", tmp_path)  # an install without envs/checkpoints/tennis.pt
    assert main(["agent", f"run_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert "GlassTennis-v0" in err and str(tmp_path / "tennis.pt") in err and "checkpoint=PATH" in err
    assert not (tmp_path / "run").exists()


def test_bad_main_job_options_are_one_clear_line(glass_checkpoint, capsys):
    assert main(["agent", f"checkpoint={glass_checkpoint}", "video.path=film.avi"]) == 2
    assert "video.path must end in .mp4" in capsys.readouterr().err
    assert main(["agent", f"checkpoint={glass_checkpoint}", "time_budget_s=0"]) == 2
    assert "time_budget_s must be > 0" in capsys.readouterr().err
    assert main(["agent", f"checkpoint={glass_checkpoint}", "+final_eval.nope=1"]) == 2
    assert "nope" in capsys.readouterr().err


def test_side_by_side_episodes_start_from_the_same_real_screen_and_target(square_model):
    from square_world import SquareConfig, SquareWorld

    from agents.video import _sync_reset
    from envs.dream import GlassWorldVectorEnv
    from envs.real import RealGameVectorEnv

    model = SquareWorld(SquareConfig(height=96, width=128))
    dream = GlassWorldVectorEnv(1, model=model, max_episode_steps=5, autoreset_mode="same_step")
    real = RealGameVectorEnv.for_model(model, 1, game="Tennis", max_episode_steps=5, autoreset_mode="same_step")
    for seed in (0, None):
        d_obs, r_obs = _sync_reset(dream, real, seed)
        assert d_obs.shape == r_obs.shape == (1, 96, 128, 3)
        np.testing.assert_array_equal(dream.core.frames.numpy(), real.core.frames.numpy())
        np.testing.assert_allclose(dream.task_state["target"].numpy(), real.task_state["target"].numpy())
    real.close()


def test_a_video_cut_short_by_an_error_leaves_no_file(square_model, tmp_path):
    from agents.video import VideoConfig, record_dream
    from envs.dream import GlassWorldVectorEnv

    class Breaks:
        calls = 0

        def predict(self, obs, deterministic=True):
            Breaks.calls += 1
            if Breaks.calls > 3:
                raise RuntimeError("policy broke")
            return np.array([[1, 0]]), None

    venv = GlassWorldVectorEnv(1, model=square_model, task="none", max_episode_steps=5, autoreset_mode="next_step")
    with pytest.raises(RuntimeError, match="policy broke"):
        record_dream(venv, Breaks(), tmp_path / "v.mp4", VideoConfig(steps=10, scale=1), progress=False)
    assert list(tmp_path.iterdir()) == []
    Breaks.calls = -100  # now it plays 10 frames: start + 5 steps of episode 1, start + 3 steps of episode 2
    res = record_dream(venv, Breaks(), tmp_path / "v.mp4", VideoConfig(steps=10, scale=1), progress=False)
    assert res["frames"] == 10 and res["episodes_finished"] == 1 and len(decode(tmp_path / "v.mp4")) == 10
    with pytest.raises(ValueError, match="one-env"):
        record_dream(GlassWorldVectorEnv(2, model=square_model, autoreset_mode="next_step"), Breaks(),
                     tmp_path / "w.mp4", VideoConfig(steps=2))


def test_train_in_real_game_is_the_ale_baseline(tennis_checkpoint, tmp_path, capsys):
    """train_in=real: the same PPO, spaces, task and joystick map, trained on ALE Tennis itself."""
    run = tmp_path / "real_run"
    rc = main(["agent", f"checkpoint={tennis_checkpoint}", *TINY, "video.steps=0", "train_in=real",
               f"run_dir={run}"])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((run / "summary.json").read_text())
    assert s["trained_in"] == "real" and s["timesteps"] >= 64 and s["real"]["game"] == "Tennis"
    assert [c["timesteps"] for c in s["learning_curve"]] == [32, 64]  # evaluated in the real game as it learns
    out = capsys.readouterr().out
    assert "in the real game of GlassTennis-v0" in out and "learning curve (real success)" in out
    bad = main(["agent", f"checkpoint={tennis_checkpoint}", *TINY, "train_in=moon", f"run_dir={tmp_path / 'x'}"])
    assert bad == 2 and "train_in must be dream or real" in capsys.readouterr().err


def test_train_in_real_needs_a_real_game(world_checkpoint, tmp_path, capsys):
    rc = main(["agent", "env=GlassWorld-v0", f"checkpoint={world_checkpoint}", *TINY, "train_in=real",
               f"run_dir={tmp_path / 'r'}"])
    assert rc == 2 and "train_in=real needs the real game" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_videos_show_the_world_not_the_mask_the_policy_sees(square_model, tmp_path):
    """observation=mask: the policy gets grey masks, the video shows the dreamed RGB frame with the agent outlined."""
    from agents.video import AGENT_RGB, VideoConfig, model_segmenter, overlay, record_dream, world_view
    from envs.dream import GlassWorldVectorEnv

    class Right:
        def predict(self, obs, deterministic=True):
            marker = (obs == np.array([255, 0, 255], np.uint8)).all(-1)  # the target, drawn into the mask
            assert (obs[..., 0] == obs[..., 1])[~marker].all()  # grey masks: what the policy observes
            return np.array([[1, 0]]), None

    venv = GlassWorldVectorEnv(1, model=square_model, task="reach", max_episode_steps=5, autoreset_mode="next_step",
                               observation="mask")
    obs, _ = venv.reset(seed=0)
    segment = model_segmenter(square_model)
    view = world_view(venv, segment)
    assert view.frame.shape == obs.shape[1:] and not np.array_equal(view.frame, obs[0])
    np.testing.assert_array_equal(view.frame, venv.task.draw(venv.frames, venv.task_state)[0].numpy())
    assert view.mask is not None and view.mask.max() > 0.5
    shown = overlay(view, 2)
    outline = (shown == np.array(AGENT_RGB, np.uint8)).all(-1)
    assert outline.any() and not outline.all()  # the agent outlined, the rest of the frame as dreamed
    np.testing.assert_array_equal(shown[~np.kron(view.mask > 0.5, np.ones((2, 2), bool))],
                                  np.kron(view.frame, np.ones((2, 2, 1), np.uint8))[
                                      ~np.kron(view.mask > 0.5, np.ones((2, 2), bool))])
    res = record_dream(venv, Right(), tmp_path / "v.mp4", VideoConfig(steps=3, scale=2), progress=False,
                       segment=segment)
    first = decode(tmp_path / "v.mp4")[0][12:].astype(int)  # under the caption bar
    assert res["frames"] == 3 and first.shape == shown.shape
    venv.reset(seed=0)
    rgb = overlay(world_view(venv, segment), 2).astype(int)
    mask_img = np.kron(obs[0], np.ones((2, 2, 1), np.uint8)).astype(int)
    assert np.abs(first - rgb).mean() < 4 < np.abs(first - mask_img).mean()


def test_two_runs_with_one_seed_train_the_same_policy_and_print_the_same_figures(glass_checkpoint, tmp_path, capsys):
    """The main job is deterministic on one machine: same seed -> same policy weights, figures and fingerprint."""
    args = ["env=GlassWorld-v0", f"checkpoint={glass_checkpoint}", *TINY, "eval.freq=32", "video.steps=0",
            "final_eval.real=false"]
    runs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert main(["agent", *args, f"seed={seed}", f"run_dir={tmp_path / name}"]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        runs.append((json.loads((tmp_path / name / "summary.json").read_text()), out))
    (a, out_a), (b, out_b), (c, _) = runs
    assert a["policy_sha256"] == b["policy_sha256"] and a["fingerprint"] == b["fingerprint"]
    assert a["dream"] == b["dream"] and a["learning_curve"] == b["learning_curve"]
    figures = [line for line in out_a.splitlines() if not line.startswith(("time:", "policy:", "tensorboard:",
                                                                           "summary:"))]
    assert figures == [line for line in out_b.splitlines() if not line.startswith(("time:", "policy:",
                                                                                    "tensorboard:", "summary:"))]
    assert c["policy_sha256"] != a["policy_sha256"]  # another seed trains another policy
