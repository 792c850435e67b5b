"""The CEM planner, episode evaluation, the real-game env and the joystick map."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from agents.common import run_episodes
from agents.mapping import snap_shifts, vote_action_map
from agents.planner import CEMPlanner, PlannerConfig, RandomPolicy
from envs.dream import GlassWorldEnv, GlassWorldVectorEnv
from envs.real import JOYSTICK, RealGameConfig, RealGameVectorEnv, heuristic_action_map
from worldmodel.envinfo import SHIFT_NAMES

SMALL = PlannerConfig(horizon=5, population=24, elites=4, iterations=2)


def test_planner_reaches_targets_and_beats_random(square_model):
    venv = GlassWorldVectorEnv(4, model=square_model, max_episode_steps=30, autoreset_mode="same_step")
    planned = run_episodes(venv, CEMPlanner(venv, cfg=SMALL), episodes=8, seed=1)
    rand = run_episodes(venv, RandomPolicy(venv.single_action_space.nvec), episodes=8, seed=1)
    assert planned.episodes == 8 and planned.success_rate >= 0.75
    assert planned.mean_return > rand.mean_return and planned.mean_length < rand.mean_length


def test_planner_predict_works_for_single_envs_and_needs_a_model(square_model):
    env = GlassWorldEnv(model=square_model)
    obs, _ = env.reset(seed=0, options={"target": (40, 30)})
    action, state = CEMPlanner(env, cfg=SMALL).predict(obs)
    assert action.shape == (2,) and state is None and env.action_space.contains(action)
    before = {k: v.clone() for k, v in env.model_state.items()}
    CEMPlanner(env, cfg=SMALL).predict(obs)
    assert all(torch.equal(before[k], env.model_state[k]) for k in before)  # imagining never touches the env
    with pytest.raises(ValueError, match="elites"):
        CEMPlanner(env, cfg=PlannerConfig(population=2, elites=4))


def test_planner_imagines_with_the_envs_own_step_and_precision(square_model):
    """The planner's imagined step is the env's (model call at the env's precision, locator, reward): with a
    bfloat16 env every imagined model call runs under bfloat16 autocast, with a float32 env none does."""
    import gymnasium as gym

    calls = []
    step = square_model.step

    def spy(*args, **kwargs):
        calls.append(torch.is_autocast_enabled("cpu"))
        return step(*args, **kwargs)

    square_model.step = spy
    for precision in ("float32", "bfloat16"):
        venv = GlassWorldVectorEnv(2, model=square_model, precision=precision)
        venv.reset(seed=0)
        planner = CEMPlanner(venv, cfg=SMALL)
        assert planner.step_fn is venv.dream_step and planner.step_fn.precision == precision
        calls.clear()
        planner.plan()
        assert len(calls) == SMALL.iterations * SMALL.horizon
        assert all(calls) if precision == "bfloat16" else not any(calls)
    with pytest.raises(TypeError, match="glassworld env"):
        CEMPlanner(gym.make("CartPole-v1"), model=square_model)


def test_imagined_rewards_are_the_envs_rewards(square_model):
    """Imagining the same actions from the env's state with the env's noise gives the env's own rewards."""
    venv = GlassWorldVectorEnv(2, model=square_model, task="reach", task_kwargs={"radius": 2.0})
    venv.reset(seed=3)
    planner = CEMPlanner(venv, cfg=SMALL)
    state = planner._start_state()
    ts = {k: v.clone() for k, v in venv.task_state.items()}
    actions = torch.tensor([[[1, 0], [3, 1], [5, 2]], [[2, 0], [4, 1], [0, 3]]])  # (N, T, 2)
    planner.generator.set_state(venv.core.generator.get_state())
    imagined = planner.imagine(state, ts, actions[..., 0], actions[..., 1])
    rewards = [venv.step(actions[:, t].numpy())[1] for t in range(3)]
    disc = np.array([SMALL.discount ** t for t in range(3)])
    np.testing.assert_allclose(imagined.numpy(), (np.stack(rewards, 1) * disc).sum(1), atol=1e-5)


def test_one_real_env_factory_copies_the_dreams_task_limit_and_observation(square_model):
    """play's Tab pane and agent-eval get their real game from one factory: the dream's task, options, episode
    limit and observation mode (play used to drop the limit and the observation)."""
    import gymnasium as gym

    from agents.common import make_real_env
    from agents.play import make_real_env as play_real_env
    from square_world import SquareConfig, SquareWorld

    model = SquareWorld(SquareConfig(height=96, width=128))
    dream = gym.make("GlassWorld-v0", model=model, task="track", task_kwargs={"radius": 5.0}, observation="mask",
                     max_episode_steps=17)
    real, amap = make_real_env(dream, 2, learn_map=False, game="Tennis")
    assert (real.num_envs, real.task.name, real.task.cfg.radius, real.max_episode_steps) == (2, "track", 5.0, 17)
    assert real.core.observation_mode == "mask" and amap["source"] == "heuristic"
    assert np.array_equal(np.asarray(amap["table"]), real.action_map)
    real.close()
    tab = play_real_env(dream, game="Tennis", learned_map=False)
    assert (tab.num_envs, tab.max_episode_steps, tab.core.observation_mode) == (1, 17, "mask")
    assert tab.action_map_source == "name-based map"
    tab.close()


def test_vote_action_map_majority_and_fallbacks():
    fallback = np.zeros((3, 2), dtype=np.int64)
    shift = np.array([1, 1, 1, 2, 2, 0])
    code = np.array([0, 0, 0, 1, 1, 0])
    joy = np.array([3, 3, 4, 5, 5, 0])
    amap = vote_action_map(shift, code, joy, fallback)
    assert amap.table[1, 0] == 3  # majority 2 of 3
    assert amap.table[1, 1] == 3  # unseen pair: its shift's majority
    assert amap.table[2, 0] == 5 and amap.table[2, 1] == 5
    assert amap.table[0, 1] == 0  # unseen pair of shift 0: that shift's majority (NOOP)
    assert amap.agreement == pytest.approx(5 / 6) and amap.transitions == 6
    lines = amap.describe(["none", "right", "left"], ["a", "b"])
    assert "RIGHT" in lines[2] and "(3 votes, 67%)" in lines[2]


def test_snap_shifts_to_grid():
    grid = torch.tensor([[0.0, 0.0], [4.0, 0.0], [-4.0, 0.0]])
    idx = snap_shifts(torch.tensor([[[0.5, 0.2], [3.1, -1.0], [-9.0, 0.0]]]), grid)
    assert idx.tolist() == [[0, 1, 2]]


def test_heuristic_map_uses_the_games_directions():
    table = heuristic_action_map(SHIFT_NAMES, 2, list(range(18)))
    names = [JOYSTICK[a] for a in table[:, 0]]
    assert names == ["NOOP", "RIGHT", "LEFT", "DOWN", "UP", "DOWNRIGHT", "DOWNLEFT", "UPRIGHT", "UPLEFT"]
    breakout = heuristic_action_map(SHIFT_NAMES, 1, [0, 1, 3, 4])  # NOOP FIRE RIGHT LEFT
    assert [JOYSTICK[a] for a in breakout[:, 0]] == ["NOOP", "RIGHT", "LEFT", "NOOP", "NOOP", "RIGHT", "LEFT",
                                                     "RIGHT", "LEFT"]


def test_real_tennis_shares_the_dream_interface_and_moves_by_ram():
    codes = ["c0", "c1"]
    real = RealGameVectorEnv(2, 96, 128, SHIFT_NAMES, codes, RealGameConfig("Tennis", start_steps_max=4),
                             max_episode_steps=12, autoreset_mode="same_step", task="reach")
    obs, info = real.reset(seed=0)
    assert obs.shape == (2, 96, 128, 3) and obs.dtype == np.uint8
    assert real.action_space.shape == (2, 2) and real.single_action_space.nvec.tolist() == [9, 2]
    x0 = info["position"][:, 0].copy()
    assert ((x0 > 0) & (x0 < 128)).all()
    for _ in range(4):
        obs, rew, term, trunc, info = real.step(np.array([[1, 0], [1, 1]]))  # "right"
    assert (info["position"][:, 0] > x0 + 5).all()  # RAM says the orange player moved right
    for _ in range(8):
        obs, rew, term, trunc, info = real.step(np.array([[0, 0], [0, 0]]))
    assert (trunc | term).all() and info["_final_obs"].all()  # same-step reset after 12 steps
    stats = run_episodes(real, RandomPolicy(real.single_action_space.nvec), episodes=2)
    assert stats.episodes == 2 and np.isfinite(stats.mean_return)
    real.close()


def test_learn_action_map_on_real_frames(square_model):
    """The square world's "inference" finds the orange Tennis player by colour: a legal map comes out."""
    from agents.mapping import MappingConfig, learn_action_map
    from square_world import SquareConfig, SquareWorld

    model = SquareWorld(SquareConfig(height=96, width=128))
    real = RealGameVectorEnv.for_model(model, 2, game="Tennis")
    amap = learn_action_map(model, real, MappingConfig(steps=30, clip_len=6, seed=0))
    assert amap.table.shape == (9, 4) and np.isin(amap.table, real.legal).all()
    assert amap.transitions == 2 * 30 and amap.votes.sum() == 60
    assert 0.0 < amap.agreement <= 1.0


def test_action_map_for_env_is_learned_once_then_cached(tmp_path, monkeypatch):
    import gymnasium as gym

    import agents.mapping as mapping
    from square_world import SquareConfig, SquareWorld, register_square_model
    from worldmodel.checkpoint import save_checkpoint

    register_square_model(monkeypatch)
    model = SquareWorld(SquareConfig(height=96, width=128))
    model.metadata = {"generator": {"command": "atari", "game": "Tennis", "frame_skip": 4}, "frame_skip": 0}
    ckpt = save_checkpoint(tmp_path / "tennis_square.pt", model.checkpoint_payload())
    env = gym.make("GlassWorld-v0", checkpoint=ckpt)
    cfg = mapping.MappingConfig(steps=12, clip_len=4)
    table = mapping.action_map_for_env(env, cfg)
    assert table.shape == (9, 4) and mapping.cache_path(ckpt).is_file()

    def no_learning(*a, **k):
        raise AssertionError("the cached map should have been used")

    monkeypatch.setattr(mapping, "learn_action_map", no_learning)
    np.testing.assert_array_equal(mapping.action_map_for_env(env, cfg), table)
    env.unwrapped.model.inference_tag = "agent window"  # same weights, actions inferred otherwise: learned again
    with pytest.raises(AssertionError, match="cached"):
        mapping.action_map_for_env(env, cfg)
    del env.unwrapped.model.inference_tag
    with pytest.raises(AssertionError, match="cached"):  # other settings: learned again
        mapping.action_map_for_env(env, mapping.MappingConfig(steps=13, clip_len=4))
    monkeypatch.undo()
    register_square_model(monkeypatch)
    other = mapping.action_map_for_env(env, mapping.MappingConfig(steps=13, clip_len=4))  # cached beside the first
    monkeypatch.setattr(mapping, "learn_action_map", no_learning)
    np.testing.assert_array_equal(mapping.action_map_for_env(env, cfg), table)  # the first map was not evicted
    np.testing.assert_array_equal(mapping.action_map_for_env(env, mapping.MappingConfig(steps=13, clip_len=4)), other)
    assert len(json.loads(mapping.cache_path(ckpt).read_text())["entries"]) == 2
    import os
    import shutil

    os.utime(ckpt, (1e9, 1e9))  # as after a fresh clone: same bytes, another mtime -> still cached
    np.testing.assert_array_equal(mapping.action_map_for_env(gym.make("GlassWorld-v0", checkpoint=ckpt), cfg), table)
    copy = tmp_path / "copy" / ckpt.name
    copy.parent.mkdir()
    shutil.copy(ckpt, copy)
    shutil.copy(mapping.cache_path(ckpt), mapping.cache_path(copy))
    np.testing.assert_array_equal(mapping.action_map_for_env(gym.make("GlassWorld-v0", checkpoint=copy), cfg), table)
    with open(copy, "ab") as f:
        f.write(b"\0")  # other bytes: learned again
    with pytest.raises(AssertionError, match="cached"):
        mapping.action_map_for_env(gym.make("GlassWorld-v0", checkpoint=copy), cfg)
    monkeypatch.undo()
    register_square_model(monkeypatch)
    mapping.action_map_for_env(gym.make("GlassWorld-v0", checkpoint=copy), cfg)
    entries = json.loads(mapping.cache_path(copy).read_text())["entries"]
    assert len(entries) == 1 and entries[0]["key"]["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert mapping.action_map_for_env(GlassWorldEnv(model=SquareWorld())) is None  # no game in its card


def test_mask_observations_in_dream_and_real_game(square_model):
    """observation="mask": the dream shows its agent mask, the real game the model's segmentation of its frames."""
    from gymnasium.utils.env_checker import check_env

    from envs.tasks import MARKER_COLOR
    from square_world import SquareConfig, SquareWorld

    venv = GlassWorldVectorEnv(2, model=square_model, task="reach", observation="mask")
    obs, _ = venv.reset(seed=0)
    obs, *_ = venv.step(np.array([[1, 0], [2, 1]]))
    grey = (venv.core.masks[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # (N, H, W)
    marker = (obs == np.array(MARKER_COLOR, np.uint8)).all(-1)
    assert marker.any(axis=(1, 2)).all()  # the target is still drawn
    assert np.array_equal(obs[..., 1][~marker], grey[~marker]) and (grey > 200).sum() > 10
    check_env(GlassWorldEnv(model=square_model, observation="mask"), skip_render_check=True)
    with pytest.raises(ValueError, match="observation must be one of"):
        GlassWorldVectorEnv(1, model=square_model, observation="depth")

    model = SquareWorld(SquareConfig(height=96, width=128))
    real = RealGameVectorEnv.for_model(model, 1, game="Tennis", observation="mask")
    obs, _ = real.reset(seed=0)
    frame = real.frames.permute(0, 3, 1, 2)
    want = (model.segment(frame[:, None])[:, 0, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    marker = (obs == np.array(MARKER_COLOR, np.uint8)).all(-1)
    assert np.array_equal(obs[..., 0][~marker], want[~marker]) and (want > 200).any()  # the player is segmented
    real.close()
    with pytest.raises(ValueError, match="needs a world model"):
        RealGameVectorEnv(1, 96, 128, SHIFT_NAMES, ["c0"], RealGameConfig("Tennis"), observation="mask")


def test_greedy_policy_walks_straight_to_targets(square_model):
    """The square world moves exactly as its shift names say, so steering at the target always arrives."""
    from agents.planner import GreedyPolicy

    venv = GlassWorldVectorEnv(4, model=square_model, task="reach", task_kwargs={"radius": 3.0},
                               max_episode_steps=40, autoreset_mode="same_step")
    greedy = GreedyPolicy(venv, square_model, code=1)
    stats = run_episodes(venv, greedy, episodes=8)
    assert stats.success_rate == 1.0 and stats.mean_length < 40
    random = run_episodes(venv, RandomPolicy(venv.single_action_space.nvec), episodes=8)
    assert random.success_rate < stats.success_rate
    a, _ = greedy.predict(np.zeros((4, 1)))
    assert a.shape == (4, 2) and (a[:, 1] == 1).all()
    with pytest.raises(ValueError, match="code must be in"):
        GreedyPolicy(venv, square_model, code=99)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (gpu marker)")
def test_planner_on_cuda_plans_on_the_envs_device_and_precision():
    from square_world import SquareWorld

    venv = GlassWorldVectorEnv(2, model=SquareWorld(device="cuda"), precision="bfloat16", max_episode_steps=30,
                               autoreset_mode="same_step")
    planner = CEMPlanner(venv, cfg=SMALL)
    assert planner.device.type == "cuda" and planner.step_fn is venv.dream_step
    stats = run_episodes(venv, planner, episodes=4, seed=1)
    assert stats.success_rate >= 0.5
