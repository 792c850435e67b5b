"""The pygame viewer (agents.play), headless: scripted keys, posted key events, screenshots, recordings, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "envs"))
from square_world import PALETTE, SquareWorld, square_start_frame

import envs
from agents import play as play_mod
from agents.play import (
    FrameInput,
    PlayConfig,
    PlayError,
    Viewer,
    check_display,
    code_for_digit,
    idle_code,
    parse_keys,
    play,
    shift_index,
)

NAMES9 = ["none", "right", "left", "down", "up", "down-right", "down-left", "up-right", "up-left"]


class ActionLog(gym.Wrapper):
    """Records what the env receives (independently of the viewer's own bookkeeping)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.actions: list[tuple[int, int]] = []
        self.resets = 0

    def step(self, action):
        self.actions.append((int(action[0]), int(action[1])))
        return self.env.step(action)

    def reset(self, **kwargs):
        self.resets += 1
        return self.env.reset(**kwargs)


def square_env(x: float = 8.0, y: float = 20.0, task: str = "none", metadata: dict | None = None,
               **kwargs) -> ActionLog:
    """A square-world dream whose every episode starts with the square at (x, y)."""
    model = SquareWorld()
    frame = square_start_frame(model, x, y)  # (H, W, 3) uint8
    model.start_frames = torch.from_numpy(frame).permute(2, 0, 1)[None].contiguous()  # (1, 3, H, W)
    if metadata is not None:
        model.metadata = metadata
    return ActionLog(gym.make("GlassWorld-v0", model=model, render_mode="rgb_array", task=task, **kwargs))


def run(env: gym.Env, keys: str = "", **kw) -> play_mod.PlayResult:
    return play(PlayConfig(headless=True, keys=keys, seed=0, **kw), env=env)


def read_png(path: str | Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def scaled(frame: np.ndarray, s: int) -> np.ndarray:
    return np.repeat(np.repeat(frame, s, axis=0), s, axis=1)


def crop(img: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = rect
    return img[y:y + h, x:x + w]


# ------------------------------------------------------------------------------------------------
# pure input functions
# ------------------------------------------------------------------------------------------------
def test_shift_index_names_diagonals_and_fallbacks():
    assert shift_index([], NAMES9) == 0
    assert shift_index(["right"], NAMES9) == 1
    assert shift_index(["up", "left"], NAMES9) == 8
    assert shift_index(["left", "up"], NAMES9) == 8  # order does not matter
    assert shift_index(["down", "right"], NAMES9) == 5
    assert shift_index(["left", "right"], NAMES9) == 0  # opposite keys cancel
    assert shift_index(["left", "right", "up"], NAMES9) == 4
    four = ["stay", "Up", "Down", "Left", "Right"]  # another naming, no diagonals
    assert shift_index(["up", "right"], four) == 4  # horizontal part when the diagonal is missing
    assert shift_index(["down"], four) == 2
    assert shift_index([], four) == 0
    assert shift_index(["up", "left"], ["none", "left_up"]) == 1
    with pytest.raises(ValueError, match="unknown direction"):
        shift_index(["jump"], NAMES9)


def test_idle_code_and_digits():
    assert idle_code(["code 0", "code 1", "code 2"]) == 0  # nothing says idle: code 0
    assert idle_code(["FIRE 81%", "NOOP 60%", "UP 50%", "NOOP 74%"]) == 3  # the most confident NOOP
    assert idle_code(["swing", "idle"]) == 1
    names = ["FIRE 81%", "NOOP 60%", "UP 50%"]
    assert [code_for_digit(d, names) for d in (1, 2, 3)] == [0, 1, 2]
    assert code_for_digit(0, names) == 1
    assert code_for_digit(4, names) is None


def test_parse_keys_tokens_repeats_and_errors():
    script = parse_keys("right*3 up+left 2 noop*2 reset pause right+1")
    assert len(script) == 10
    assert script[0] == FrameInput(frozenset({"right"}), None, (), True)
    assert script[3].directions == {"up", "left"}
    assert script[4].digit == 2 and script[4].human
    assert script[5] == FrameInput() and not script[5].human
    assert script[7].commands == ("reset",) and not script[7].human
    assert script[9].directions == {"right"} and script[9].digit == 1
    assert parse_keys("") == []
    with pytest.raises(PlayError, match="unknown token part 'jump'"):
        parse_keys("right jump")
    with pytest.raises(PlayError, match="TOKEN\\*N"):
        parse_keys("right*x")


def test_check_display_needs_a_real_driver():
    check_display("x11", None, headless=False)
    check_display("dummy", "dummy", headless=True)
    with pytest.raises(PlayError, match="--headless"):
        check_display("offscreen", None, headless=False)


# ------------------------------------------------------------------------------------------------
# the play loop (headless)
# ------------------------------------------------------------------------------------------------
def test_right_moves_the_agent_right():
    env = square_env(8, 20)
    try:
        res = run(env, "right*10")
        assert env.actions == [(1, 0)] * 10 and res.actions == env.actions
        xs = np.array([p[0] for p in res.positions])
        ys = np.array([p[1] for p in res.positions])
        assert xs[-1] - 8 > 25  # 10 steps of 3 px (+ jitter)
        assert np.all(np.diff(xs) > 1.5)
        assert abs(ys[-1] - 20) < 3
        # the rendered square itself moved: its centroid in the frame is right of the start
        frame = env.render()
        sat = frame.max(axis=2).astype(int) - frame.min(axis=2)
        cols = np.nonzero((sat > 70).any(axis=0))[0]
        assert cols.mean() > 30
    finally:
        env.close()


def test_diagonal_and_release():
    env = square_env(20, 20)
    try:
        run(env, "up+left*2 noop down+right")
        assert env.actions == [(8, 0), (8, 0), (0, 0), (5, 0)]
    finally:
        env.close()


def test_code_keys_change_the_code_the_env_receives():
    env = square_env(10, 20)
    try:
        res = run(env, "right 3 right*2 2+left 0 right")
        # the digit frame moves nothing; the code stays until changed; 0 = idle = code 0 (no meanings say idle)
        assert env.actions == [(1, 0), (0, 2), (1, 2), (1, 2), (2, 1), (0, 0), (1, 0)]
        assert res.actions == env.actions
        # the square is painted in the colour of the code it received last
        frame = env.render().astype(np.float32) / 255
        x, y = (round(v) for v in res.positions[-1])
        assert np.allclose(frame[y, x], PALETTE[0].numpy(), atol=0.02)
    finally:
        env.close()


def test_code_key_beyond_k_is_ignored():
    env = square_env(10, 20)
    try:
        run(env, "2 9 right")
        assert env.actions == [(0, 1), (0, 1), (1, 1)]
    finally:
        env.close()


def test_screenshot_equals_the_render_scaled_up(tmp_path):
    env = square_env(10, 20, task="reach")
    try:
        shot = tmp_path / "shot.png"
        res = run(env, "right*3 down", screenshot=str(shot), scale=5)
        img = read_png(shot)
        render = env.render()
        assert (render == np.array([255, 0, 255], np.uint8)).all(axis=2).any()  # the target is drawn in it
        _, _, w, h = res.frame_rects[0]
        assert (w, h) == (48 * 5, 40 * 5)
        assert img.shape[0] > h  # the HUD is below the frame
        np.testing.assert_array_equal(crop(img, res.frame_rects[0]), scaled(render, 5))
        assert res.screenshot == str(shot)
        assert not list(tmp_path.glob(".*partial*"))
    finally:
        env.close()


def test_help_overlay_covers_the_frame_and_goes_away(tmp_path):
    env = square_env(10, 20)
    try:
        res = run(env, "help noop", screenshot=str(tmp_path / "a.png"), scale=4)
        with_help = crop(read_png(tmp_path / "a.png"), res.frame_rects[0])
        assert not np.array_equal(with_help, scaled(env.render(), 4))
        res = run(env, "help help", screenshot=str(tmp_path / "b.png"), scale=4)
        np.testing.assert_array_equal(crop(read_png(tmp_path / "b.png"), res.frame_rects[0]),
                                      scaled(env.render(), 4))
    finally:
        env.close()


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_recording_has_one_frame_per_frame(tmp_path, suffix):
    import av

    env = square_env(10, 20)
    try:
        path = tmp_path / f"play{suffix}"
        res = run(env, "right*5 1 left*5", record=str(path), frames=14, scale=3)
        assert res.recordings == [str(path)] and path.is_file()
        with av.open(str(path)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(frames) == 14
        assert frames[0].shape[1] >= 48 * 3
        assert not list(tmp_path.glob(".*partial*"))
    finally:
        env.close()


def _count_frames(path: str | Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_record_key_toggles_numbered_recordings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default recording names land in the working directory
    env = square_env(10, 20)
    try:
        res = run(env, "record right*4 record noop record noop*2")
        assert len(res.recordings) == 2
        assert [_count_frames(r) for r in res.recordings] == [5, 3]
        assert all(Path(r).parent == Path(".") and r.endswith(".mp4") for r in res.recordings)
        base = tmp_path / "clip.mp4"
        res = run(env, "right*3 record noop record right*2", record=str(base))
        # record=PATH records from the first frame: frames 1-3 -> clip.mp4; frames 6-8 -> clip-2.mp4
        assert res.recordings == [str(base), str(tmp_path / "clip-2.mp4")]
        assert [_count_frames(r) for r in res.recordings] == [3, 3]
    finally:
        env.close()


def test_reset_key_restarts_the_episode():
    env = square_env(8, 20)
    try:
        res = run(env, "right*5 reset noop right")
        assert res.resets == 1 and env.resets == 2
        assert env.actions == [(1, 0)] * 5 + [(0, 0), (1, 0)]  # the reset frame steps nothing
        assert res.positions[4][0] > 18
        assert abs(res.positions[5][0] - 8) < 2  # back at the start
    finally:
        env.close()


def test_pause_stops_stepping():
    env = square_env(8, 20)
    try:
        res = run(env, "right*2 pause right*5 pause right*2")
        # paused frames step nothing; the frame that unpauses steps (with no key held)
        assert env.actions == [(1, 0), (1, 0), (0, 0), (1, 0), (1, 0)]
        assert res.frames == 11 and res.steps == 5
    finally:
        env.close()


def test_episode_end_resets_automatically():
    env = square_env(8, 20, max_episode_steps=5)
    try:
        res = run(env, "right*13")
        # 5 steps, the time limit ends the episode, the next frame shows a fresh start (no step), and so on
        assert env.resets == 3 and res.resets == 2
        assert res.steps == 11 and res.frames == 13
        assert abs(res.positions[5][0] - 8 - 3) < 2  # the first step of episode 2 starts from the start again
    finally:
        env.close()


def test_policy_mode_steps_without_input_and_hands_over():
    env = square_env(20, 20)
    try:
        res = run(env, "", frames=12, policy="random")
        assert res.steps == 12 and res.controllers == ["policy"] * 12
        assert len(set(env.actions)) > 1  # a random policy, not a constant action
        env.actions.clear()
        res = run(env, "noop*3 right*2 noop*2 policy noop*2", policy="random")
        assert res.controllers == ["policy"] * 3 + ["you"] * 4 + ["policy"] * 3
        assert env.actions[3:7] == [(1, res.actions[2][1])] * 2 + [(0, res.actions[2][1])] * 2
    finally:
        env.close()


def test_planner_policy_plays_toward_the_target():
    env = square_env(8, 20, task="reach")
    try:
        res = run(env, "", frames=6, policy="planner")
        assert res.steps == 6 and set(res.controllers) == {"policy"}
        assert res.rewards and sum(res.rewards) > 0  # the planner closes the distance to the target
    finally:
        env.close()


def test_sb3_policy_file_plays(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecTransposeImage

    from agents.policy_file import save_policy
    from agents.sb3 import SB3VecEnv, SmallCNN

    venv = gym.make_vec("GlassWorld-v0", num_envs=1, vectorization_mode="vector_entry_point", model=SquareWorld(),
                        autoreset_mode="same_step")
    algo = PPO("CnnPolicy", VecTransposeImage(SB3VecEnv(venv)), n_steps=8, batch_size=8, device="cpu", seed=0,
               policy_kwargs={"features_extractor_class": SmallCNN, "features_extractor_kwargs": {"features_dim": 16}})
    save_policy(algo, tmp_path / "policy.zip", {"observation": "rgb"})  # as `glassworld agent` saves it
    venv.close()
    env = square_env(20, 20, task="reach")
    try:
        res = run(env, "noop*3 right", policy=str(tmp_path / "policy.zip"))
        assert res.controllers == ["policy"] * 3 + ["you"]
        obs, _ = env.reset(seed=0)  # the first observation the policy saw
        first, _ = algo.predict(obs, deterministic=True)
        assert res.actions[0] == tuple(int(v) for v in first)
        algo.save(tmp_path / "sb3.zip")  # an SB3 archive from elsewhere unpickles code: refused by the viewer
        with pytest.raises(PlayError, match="trust_policy=true"):
            run(env, "noop", policy=str(tmp_path / "sb3.zip"))
    finally:
        env.close()


def test_policy_file_errors():
    env = square_env()
    try:
        with pytest.raises(PlayError, match="no such file"):
            run(env, "", frames=1, policy="/nonexistent/policy.zip")
    finally:
        env.close()


def test_posted_key_events_drive_the_viewer():
    env = square_env(10, 20)
    try:
        cfg = PlayConfig(headless=True, seed=0)
        viewer = Viewer(env, cfg)
        pg = viewer.pg
        try:
            pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_RIGHT))
            viewer.run(frames=2)  # held: right on both frames
            pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_w))
            viewer.run(frames=1)  # right + W = up-right
            pg.event.post(pg.event.Event(pg.KEYUP, key=pg.K_RIGHT))
            pg.event.post(pg.event.Event(pg.KEYUP, key=pg.K_w))
            pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_3))
            viewer.run(frames=1)  # code 2, nothing held
            pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_SPACE))
            viewer.run(frames=3)  # paused
            pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_SPACE))
            pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_a))
            pg.event.post(pg.event.Event(pg.KEYUP, key=pg.K_a))  # a tap within one frame still counts
            viewer.run(frames=1)
            pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_ESCAPE))
            res = viewer.run(frames=5)
        finally:
            viewer.close()
        assert env.actions == [(1, 0), (1, 0), (7, 0), (0, 2), (2, 2)]
        assert res.frames == 8  # 2 + 1 + 1 + 3 + 1, then Esc quits before drawing
    finally:
        env.close()


def test_resized_window_keeps_an_integer_scale_centred(tmp_path):
    env = square_env(10, 20)
    try:
        viewer = Viewer(env, PlayConfig(headless=True, seed=0, scale=2))
        pg = viewer.pg
        try:
            viewer.run(parse_keys("right"), frames=1)
            assert viewer.frame_rect(0) == ((560 - 96) // 2, 0, 96, 80)  # narrow frames: centred in the HUD width
            pg.display.set_mode((1000, 700))  # what the window manager does on a resize
            pg.event.post(pg.event.Event(pg.VIDEORESIZE, size=(1000, 700), w=1000, h=700))
            viewer.run(parse_keys("right"), frames=1)
            scale = min(1000 // 48, (700 - viewer.hud_h) // 40)
            assert viewer.scale == scale
            x, y, w, h = viewer.frame_rect(0)
            assert (w, h) == (48 * scale, 40 * scale) and x == (1000 - w) // 2
            np.testing.assert_array_equal(crop(viewer.snapshot(), (x, y, w, h)), scaled(env.render(), scale))
        finally:
            viewer.close()
    finally:
        env.close()


class _RealLike(ActionLog):
    """A stand-in for the real game: another square world (vector of one), recording its actions."""

    game_config = type("G", (), {"game": "Square"})()


def test_tab_shows_a_real_game_receiving_the_same_actions(tmp_path):
    env = square_env(10, 20)
    real_model = SquareWorld()
    real_model.start_frames = torch.from_numpy(square_start_frame(real_model, 30, 10)).permute(2, 0, 1)[None]
    real_vec = gym.make_vec("GlassWorld-v0", num_envs=1, vectorization_mode="vector_entry_point", model=real_model,
                            task="none", render_mode="rgb_array")
    sent: list[np.ndarray] = []
    orig_step = real_vec.step

    def step(a):
        sent.append(np.array(a))
        return orig_step(a)

    real_vec.step = step
    real_vec.game_config = _RealLike.game_config
    try:
        shot = tmp_path / "tab.png"
        res = play(PlayConfig(headless=True, keys="tab right*2 3 down", seed=0, screenshot=str(shot), scale=4),
                   env=env, real_factory=lambda: real_vec)
        # the Tab frame itself steps both with no key held
        assert [tuple(a[0]) for a in sent] == env.actions == [(0, 0), (1, 0), (1, 0), (0, 2), (3, 2)]
        assert len(res.frame_rects) == 2
        img = read_png(shot)
        np.testing.assert_array_equal(crop(img, res.frame_rects[0]), scaled(env.render(), 4))
        np.testing.assert_array_equal(crop(img, res.frame_rects[1]), scaled(real_vec.render()[0], 4))
    finally:
        env.close()


def test_tab_without_a_real_game_says_so():
    env = square_env(10, 20)
    try:
        cfg = PlayConfig(headless=True, seed=0)
        viewer = Viewer(env, cfg, real_factory=lambda: play_mod.make_real_env(env))
        try:
            viewer.run(parse_keys("tab right"), frames=2)
            assert viewer.real is None and viewer.panes == 1
            assert "Tab:" in viewer.message and "game=" in viewer.message
        finally:
            viewer.close()
    finally:
        env.close()


def test_tab_with_the_real_atari_game(monkeypatch):
    """A model whose card says Tennis gets the real ALE game side by side, stepped with mapped joystick actions."""
    from envs.real import RealCore

    sent: list[int] = []  # the joystick ids that reach the emulator, one per real step
    act = RealCore._act
    monkeypatch.setattr(RealCore, "_act", lambda self, i, joystick: (sent.append(int(joystick)),
                                                                        act(self, i, joystick))[1])
    card = {"generator": {"command": "atari", "game": "Tennis", "frame_skip": 4}, "frame_skip": 0}
    # no task: a reach target the real player arrives at would end its episode mid-sequence, and the step after an
    # end is a reset, not a joystick action (seen once in CI: the sent actions then lag the dream's by one)
    env = square_env(10, 20, task="none", metadata=card)
    try:
        cfg = PlayConfig(headless=True, seed=0)
        viewer = Viewer(env, cfg, real_factory=lambda: play_mod.make_real_env(env))
        try:
            res = viewer.run(parse_keys("tab right*3 left*3"), frames=7)
            assert viewer.real is not None and "Tennis (real, " in viewer.real.name
            amap = viewer.real.env.core.action_map  # (n_shifts, K) ALE joystick ids, learned or name-based
            assert amap.shape == (9, 4)
            # every (shift, code) the dream got reached ALE as the map's joystick id: right and left differ
            expected = [int(amap[s, c]) for s, c in res.actions]
            assert sent[-6:] == expected[-6:] and sent[-6] != sent[-1], (sent, expected)
            assert viewer.real.frame.shape == env.render().shape
            assert viewer.real.frame.std() > 0
            assert res.steps == 7 and len(res.frame_rects) == 2
            x_first = viewer.real.info["position"][0]
            assert np.isfinite(x_first)
        finally:
            viewer.close()
    finally:
        env.close()


# ------------------------------------------------------------------------------------------------
# the command line: checkpoints, ids and errors
# ------------------------------------------------------------------------------------------------
def test_cli_plays_a_checkpoint_headless(square_checkpoint, tmp_path, capsys):
    from worldmodel.cli import main

    shot = tmp_path / "cli.png"
    rc = main(["play", f"checkpoint={square_checkpoint}", "--headless", "keys=right*4 2 noop*2", "task=none",
               f"screenshot={shot}", "device=auto", "seed=3"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "played 7 frames, 7 steps" in out
    assert read_png(shot).shape[1] >= 48


def test_cli_unknown_env_id_lists_the_ids(capsys):
    rc = play_mod.cli_main(["NoSuchGame-v0", "--headless"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown env id 'NoSuchGame-v0'" in err
    assert "GlassWorld-v0" in err and "GlassTennis-v0" in err


def test_cli_missing_checkpoint_lists_the_ids(tmp_path, capsys):
    rc = play_mod.cli_main([f"checkpoint={tmp_path / 'nope.pt'}", "--headless"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and "GlassWorld-v0" in err


def test_cli_missing_shipped_checkpoint(monkeypatch, tmp_path, capsys):
    envs.register_checkpoint_env("GlassTestMissing-v0", tmp_path / "absent.pt")
    try:
        rc = play_mod.cli_main(["GlassTestMissing-v0", "--headless"])
    finally:
        gym.registry.pop("GlassTestMissing-v0", None)
    err = capsys.readouterr().err
    assert rc == 2 and "absent.pt" in err and "registered glassworld ids" in err


def test_cli_bad_arguments(capsys):
    assert play_mod.cli_main(["GlassWorld-v0", "--headless"]) == 2
    assert "needs checkpoint=PATH" in capsys.readouterr().err
    assert play_mod.cli_main(["colour=red"]) == 2
    assert "unknown setting" in capsys.readouterr().err
    assert play_mod.cli_main(["fps=fast"]) == 2
    assert "fps='fast'" in capsys.readouterr().err
    assert play_mod.cli_main(["keys=right jump", "--headless"]) == 2
    assert "jump" in capsys.readouterr().err
    assert play_mod.cli_main(["--help"]) == 0
    assert "glassworld play" in capsys.readouterr().out


def test_not_a_glassworld_env():
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    try:
        with pytest.raises(PlayError, match="not a glassworld env"):
            play(PlayConfig(headless=True, frames=1), env=env)
    finally:
        env.close()


def test_no_display_error(monkeypatch):
    import pygame

    def fail():
        raise pygame.error("No available video device")

    monkeypatch.setattr(pygame.display, "init", fail)
    with pytest.raises(PlayError, match="no display available .*--headless"):
        play_mod.import_pygame(headless=False)


def test_glass_checkpoint_plays(tmp_path):
    """An untrained tiny GLASS checkpoint: the screenshot's frame region is the env's render scaled up."""
    from worldmodel.checkpoint import save_checkpoint
    from worldmodel.glass.config import GlassConfig
    from worldmodel.glass.model import GlassModel

    torch.manual_seed(0)
    cfg = GlassConfig.preset("tiny", 32, 48)
    model = GlassModel(cfg).eval()
    start = (torch.rand(2, 3, 32, 48) * 255).to(torch.uint8)
    env_info = {"shift_grid": model.shift_grid.tolist(), "shift_names": list(model.shift_names),
                "code_meanings": ["NOOP 70%"] + [f"FIRE {i}%" for i in range(model.num_codes - 1)],
                "start_frames": start}
    ckpt = save_checkpoint(tmp_path / "tiny.pt", {"model": "glass", "model_config": cfg.to_dict(),
                                                  "state_dict": model.state_dict(), "step": 0,
                                                  "env_info": env_info, "perceptual": "off",
                                                  "card": {"dataset": "none"}})
    env = ActionLog(play_mod.make_env(PlayConfig(checkpoint=str(ckpt), device="cpu")))
    try:
        shot = tmp_path / "glass.png"
        res = run(env, "right*3 2 up+right 0 left", screenshot=str(shot))
        assert env.actions == [(1, 0)] * 3 + [(0, 1), (7, 1), (0, 0), (2, 0)]
        np.testing.assert_array_equal(crop(read_png(shot), res.frame_rects[0]),
                                      scaled(env.render(), res.frame_rects[0][2] // 48))
    finally:
        env.close()


def test_keypoint_checkpoint_plays_with_a_keypoint_overlay(world_checkpoint, tmp_path):
    """Both world models drive the viewer; a keypoint model's keypoints are drawn over the frame (K toggles)."""
    env = play_mod.make_env(PlayConfig(checkpoint=str(world_checkpoint), device="cpu"))
    try:
        on, off = tmp_path / "on.png", tmp_path / "off.png"
        res_on = run(env, "right*2", screenshot=str(on))
        rect = res_on.frame_rects[0]
        keypoints = env.unwrapped.core.info_tensors().get("keypoints")
        res_off = run(env, "keypoints+right right", screenshot=str(off))  # the same two steps
        drawn = crop(read_png(on), rect)
        plain = crop(read_png(off), res_off.frame_rects[0])
        np.testing.assert_array_equal(plain, scaled(env.render(), rect[2] // env.render().shape[1]))
        changed = (drawn != plain).any(-1)
        if keypoints is None:  # GLASS: nothing drawn either way
            assert not changed.any()
        else:
            assert keypoints.shape[-1] == 3 and changed.any()
            px = drawn[changed]  # every changed pixel has the overlay colour (level, level, 0)
            assert (px[:, 0] == px[:, 1]).all() and (px[:, 2] == 0).all() and (px[:, 0] >= 80).all()
    finally:
        env.close()


# ------------------------------------------------------------------------------------------------
# code keys: the codes in use, labelled; Tab and R keep the dream in the real game's state
# ------------------------------------------------------------------------------------------------
def _hud_says(viewer: Viewer) -> str:
    return "".join(text for line in viewer._hud_lines() for text, _ in line)


def test_every_listed_code_key_selects_a_code_in_use_and_changes_what_the_hud_says():
    model = SquareWorld()
    model.start_frames = torch.from_numpy(square_start_frame(model, 10, 20)).permute(2, 0, 1)[None].contiguous()
    model.code_meanings = ["unused", "NOOP 30%", "unused", "FIRE 60%"]
    env = ActionLog(gym.make("GlassWorld-v0", model=model, render_mode="rgb_array", task="none"))
    viewer = Viewer(env, PlayConfig(headless=True, seed=0, scale=4))
    pg = viewer.pg
    try:
        listed = [(k, text) for k, text in viewer.code_key_lines() if k]
        assert listed == [("1", "code 1 'NOOP 30%'"), ("2", "code 3 'FIRE 60%'"),
                          ("0", "the idle code: code 1 'NOOP 30%'")]  # unused codes 0 and 2 get no key
        assert "no key: unused codes 0, 2" in [t for k, t in viewer.code_key_lines() if not k]
        want = {"1": 1, "2": 3, "0": 1}
        for key, _ in listed:
            other = next(k for k, _ in listed if want[k] != want[key])  # first a key with another code
            for k in (other, key):
                before_text, before_img = _hud_says(viewer), viewer.snapshot()
                pg.event.post(pg.event.Event(pg.KEYDOWN, key=getattr(pg, f"K_{k}")))
                viewer.run(frames=1)
                assert _hud_says(viewer) != before_text, f"key {k} changed nothing the HUD says"
                _, _, _, fh = viewer.frame_rect(0)
                assert (viewer.snapshot()[fh:] != before_img[fh:]).any()  # and the HUD drawn changed
            assert env.actions[-1][1] == want[key]  # the env received that code
            meaning = model.code_meanings[want[key]]
            assert f"code {want[key]} '{meaning}' (key {1 if want[key] == 1 else 2}" in _hud_says(viewer)
        pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_3))  # beyond the codes in use: ignored, said
        viewer.run(frames=1)
        assert env.actions[-1][1] == 1 and "2 codes in use" in viewer.message
    finally:
        viewer.close()
        env.close()


def test_code_keys_skip_unused_codes():
    names = ["unused", "NOOP 8%", "unused", "UPRIGHTFIRE 14%", "unused", "NOOP 26%"]  # the shipped Tennis card
    assert [code_for_digit(d, names) for d in (1, 2, 3, 4)] == [1, 3, 5, None]
    assert code_for_digit(0, names) == 5 == idle_code(names)
    assert idle_code(["unused", "FIRE 50%"]) == 1  # no NOOP: the first code in use, never an unused one


def test_tab_starts_the_dream_from_the_real_screen_and_r_resyncs():
    from square_world import SquareConfig

    model = SquareWorld(SquareConfig(noise=0.0))  # no jitter: equal states give equal frames
    model.start_frames = torch.from_numpy(square_start_frame(model, 10, 20)).permute(2, 0, 1)[None].contiguous()
    env = ActionLog(gym.make("GlassWorld-v0", model=model, render_mode="rgb_array", task="none"))
    real_model = SquareWorld(SquareConfig(step_px=6.0, noise=0.0))  # a "real game": the agent moves twice as far
    real_model.start_frames = torch.from_numpy(square_start_frame(real_model, 30, 10)).permute(2, 0, 1)[None]
    real_vec = gym.make_vec("GlassWorld-v0", num_envs=1, vectorization_mode="vector_entry_point", model=real_model,
                            task="none", render_mode="rgb_array")
    real_vec.game_config = _RealLike.game_config
    viewer = Viewer(env, PlayConfig(headless=True, seed=0), real_factory=lambda: real_vec)
    try:
        assert not np.array_equal(env.render(), real_vec.render()[0])  # the dream's own start
        viewer.run(parse_keys("tab"), frames=1)
        np.testing.assert_array_equal(env.render(), real_vec.render()[0])  # the same state, the same (none) step
        viewer.run(parse_keys("right*3"), frames=3)
        assert not np.array_equal(env.render(), real_vec.render()[0])  # they drift apart (3 vs 6 px a step)
        real_x = viewer.real.info["position"][0]
        viewer.run(parse_keys("sync"), frames=1)  # R: the dream restarts from the real game's current screen
        np.testing.assert_array_equal(env.render(), real_vec.render()[0])
        assert viewer.real.info["position"][0] == real_x  # the real game went on (not reset)
        assert "R:" in viewer.message and viewer.result.resets == 2  # Tab and R each started a dream episode
        pg = viewer.pg
        viewer.run(parse_keys("right"), frames=1)
        pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_r))  # the R key itself
        viewer.run(frames=1)
        np.testing.assert_array_equal(env.render(), real_vec.render()[0])
    finally:
        viewer.close()
        env.close()


def test_the_viewer_makes_its_dream_with_the_one_dream_factory(square_checkpoint, monkeypatch):
    calls = []
    make_dream = envs.make_dream
    monkeypatch.setattr(envs, "make_dream", lambda *a, **kw: (calls.append((a, kw)), make_dream(*a, **kw))[1])
    env = play_mod.make_env(PlayConfig(checkpoint=str(square_checkpoint), device="cpu", task="none"))
    try:
        assert calls and calls[0][0] == ("GlassWorld-v0",) and calls[0][1]["checkpoint"] == str(
            square_checkpoint.resolve()) and calls[0][1]["task"] == "none"
    finally:
        env.close()
