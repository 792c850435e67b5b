"""The dream env and its vector version over the square-world test model (and registry behaviour)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import gymnasium as gym
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from square_world import SquareWorld, square_start_frame

import envs
from envs.dream import GlassWorldEnv, GlassWorldVectorEnv
from envs.tasks import MARKER_COLOR, locate_agent, make_task


def greedy_action(info: dict, model: SquareWorld) -> np.ndarray:
    """Shift index that moves most directly toward the target (an oracle for the square world)."""
    d = np.asarray(info["target"]) - np.asarray(info["position"])
    grid = model.shift_grid.cpu().numpy()
    scores = grid @ d / (np.linalg.norm(grid, axis=1) + 1e-6)
    scores[0] = 0.0
    return np.array([int(np.argmax(scores)), 0])


# ---------------------------------------------------------------------------------------------- checkers
@pytest.mark.parametrize("task", ["reach", "track", "none"])
def test_gymnasium_check_env_passes(square_checkpoint, task):
    env = gym.make("GlassWorld-v0", checkpoint=square_checkpoint, task=task, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_sb3_check_env_passes(square_model):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(GlassWorldEnv(model=square_model), warn=True)


def test_spaces_and_action_meanings(square_model):
    env = GlassWorldEnv(model=square_model)
    assert env.observation_space == gym.spaces.Box(0, 255, (40, 48, 3), np.uint8)
    assert env.action_space == gym.spaces.MultiDiscrete([9, 4])
    shifts, codes = env.action_meanings
    assert shifts[0] == "none" and len(shifts) == 9 and "up-left" in shifts
    assert codes == ["paint 0", "paint 1", "paint 2", "paint 3"]
    square_model.code_meanings = None
    assert GlassWorldEnv(model=square_model).action_meanings[1] == ["code 0", "code 1", "code 2", "code 3"]


# ---------------------------------------------------------------------------------------------- dynamics
def test_step_moves_agent_and_observation_is_the_model_frame(square_model):
    env = GlassWorldEnv(model=square_model, task="none")
    frame = square_start_frame(square_model, 20, 20, code=0)
    obs, info = env.reset(seed=0, options={"frame": frame})
    assert np.array_equal(obs, frame)  # task none draws nothing: the real start frame itself
    assert info["position"] == pytest.approx([19.5, 19.5], abs=0.6)
    obs, reward, term, trunc, info = env.step(np.array([1, 2]))  # right, paint 2
    assert reward == 0.0 and not term and not trunc
    assert info["position"][0] == pytest.approx(19.5 + 3, abs=1.5)
    assert info["mask_area"] == pytest.approx(36 / (40 * 48))
    blue = (obs[..., 2] > 200) & (obs[..., 0] < 60)
    assert blue.sum() == 36


def test_reach_rewards_progress_and_terminates_on_arrival(square_model):
    env = GlassWorldEnv(model=square_model, task="reach", task_kwargs={"radius": 3.0})
    obs, info = env.reset(seed=3, options={"frame": square_start_frame(square_model, 10, 10), "target": (36, 30)})
    assert np.all(obs[30, 36] == MARKER_COLOR)  # target centre drawn into the observation
    d0, total = info["distance"], 0.0
    for _ in range(40):
        obs, reward, term, trunc, info = env.step(greedy_action(info, square_model))
        total += reward
        if term:
            break
    assert term and info["is_success"] and info["distance"] <= 3.0
    scale = 0.1 * np.hypot(40, 48)
    assert total == pytest.approx((d0 - info["distance"]) / scale, rel=1e-4)


def test_reach_moving_away_is_penalised(square_model):
    env = GlassWorldEnv(model=square_model, task="reach")
    env.reset(seed=0, options={"frame": square_start_frame(square_model, 20, 20), "target": (40, 20)})
    rewards = [env.step(np.array([2, 0]))[1] for _ in range(3)]  # "left", away from the target
    assert all(r < 0 for r in rewards)


def test_track_target_moves_inside_frame_and_rewards_closeness(square_model):
    env = GlassWorldEnv(model=square_model, task="track", task_kwargs={"speed": 4.0})
    obs, info = env.reset(seed=1)
    targets = [info["target"]]
    for _ in range(60):
        obs, reward, term, trunc, info = env.step(greedy_action(info, square_model))
        assert 0.0 < reward <= 1.0 and not term
        targets.append(info["target"])
    t = np.array(targets)
    assert np.all(t[:, 0] >= 0) and np.all(t[:, 0] <= 47) and np.all(t[:, 1] >= 0) and np.all(t[:, 1] <= 39)
    assert np.abs(np.diff(t, axis=0)).sum(axis=1).min() > 0  # moves every step
    assert info["distance"] < 12.0  # the greedy follower keeps up


def test_reset_from_bank_index_and_bad_options(square_model):
    env = GlassWorldEnv(model=square_model)
    obs, info = env.reset(seed=0, options={"frame": 5})
    assert info["start_index"] == 5
    differ = (square_model.start_frames[5].permute(1, 2, 0).numpy() != obs).any(axis=2)
    assert 0 < differ.sum() < 100 and np.all(obs[differ] == MARKER_COLOR)  # the bank frame plus the marker
    with pytest.raises(ValueError, match="bank index must be in"):
        env.reset(options={"frame": 99})
    with pytest.raises(ValueError, match="uint8 array of shape"):
        env.reset(options={"frame": np.zeros((10, 10, 3), np.uint8)})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"framez": 1})


def test_empty_start_bank_is_a_clear_error(square_model):
    square_model.start_frames = square_model.start_frames[:0]
    env = GlassWorldEnv(model=square_model)
    with pytest.raises(ValueError, match="no start frames"):
        env.reset(seed=0)
    env.reset(seed=0, options={"frame": square_start_frame(square_model, 10, 10)})  # a given frame still works


@pytest.mark.parametrize("bad, match", [
    (np.array([1, 2, 3]), "shape"), (np.array([1.0, 2.0]), "integers"), (np.array([9, 0]), "out of range"),
    (np.array([0, -1]), "out of range"), (5, "shape"), ("up", "shape"),
])
def test_bad_actions_raise_one_clear_error(square_model, bad, match):
    env = GlassWorldEnv(model=square_model)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(bad)
    venv = GlassWorldVectorEnv(2, model=square_model)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape|integers|out of range"):
        venv.step(np.array([bad, bad]) if np.ndim(bad) else bad)


def test_out_of_range_uint64_action_message_shows_the_real_value(square_model):
    env = GlassWorldEnv(model=square_model)
    env.reset(seed=0)
    huge = np.array([2**63, 0], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"out of range.*got \[9223372036854775808, 0\]"):
        env.step(huge)
    venv = GlassWorldVectorEnv(1, model=square_model)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"got \[\[18446744073709551615, 1\]\]"):
        venv.step(np.array([[2**64 - 1, 1]], dtype=np.uint64))
    env.step(np.array([8, 3], dtype=np.uint64))  # in range: accepted


def test_device_is_resolved_by_the_one_helper(square_checkpoint, monkeypatch):
    """device=auto|cpu|cuda means the same in the envs as in training and evaluation (worldmodel.device)."""
    from worldmodel.data.format import DatasetError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert GlassWorldVectorEnv(1, checkpoint=square_checkpoint, device="auto").device.type == "cpu"
    with pytest.raises(DatasetError, match="CUDA is not available here; use device=cpu or device=auto"):
        gym.make("GlassWorld-v0", checkpoint=square_checkpoint, device="cuda")
    with pytest.raises(DatasetError, match="not a device torch knows"):
        GlassWorldEnv(square_checkpoint, device="gpu0")


def test_step_before_reset_and_missing_checkpoint_are_clear(square_model, tmp_path):
    with pytest.raises(gym.error.ResetNeeded):
        GlassWorldEnv(model=square_model).step(np.array([0, 0]))
    with pytest.raises(ValueError, match="checkpoint="):
        GlassWorldEnv()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        GlassWorldEnv(checkpoint=tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="unknown task"):
        GlassWorldEnv(model=square_model, task="fly")
    with pytest.raises(ValueError, match="no option"):
        GlassWorldEnv(model=square_model, task="reach", task_kwargs={"radius_px": 3})


# ---------------------------------------------------------------------------------------------- determinism
def _rollout(env, seed: int, steps: int = 30):
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, term, trunc, info = env.step(env.action_space.sample())
        out.append((obs, reward, term, trunc, info["position"]))
        if np.any(term) or np.any(trunc):
            if isinstance(env.unwrapped, GlassWorldEnv):
                obs, info = env.reset()
    return out


def _same(a, b) -> bool:
    try:
        np.testing.assert_equal(a, b)
        return True
    except AssertionError:
        return False


def test_seeded_rollouts_repeat_exactly(square_checkpoint):
    env = gym.make("GlassWorld-v0", checkpoint=square_checkpoint, max_episode_steps=10)
    assert _same(_rollout(env, 7), _rollout(env, 7))
    assert not _same(_rollout(env, 7), _rollout(env, 8))
    venv = gym.make_vec("GlassWorld-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        checkpoint=square_checkpoint, max_episode_steps=10)
    assert _same(_rollout(venv, 7), _rollout(venv, 7))
    assert not _same(_rollout(venv, 7), _rollout(venv, 8))


# ---------------------------------------------------------------------------------------------- vector env
def test_make_vec_uses_the_batched_env(square_checkpoint):
    venv = gym.make_vec("GlassWorld-v0", num_envs=4, vectorization_mode="vector_entry_point",
                        checkpoint=square_checkpoint)
    assert isinstance(venv, GlassWorldVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert venv.max_episode_steps == envs.MAX_EPISODE_STEPS
    obs, info = venv.reset(seed=0)
    assert obs.shape == (4, 40, 48, 3) and obs.dtype == np.uint8
    assert info["position"].shape == (4, 2) and info["_position"].all()
    assert venv.action_space.shape == (4, 2)


@pytest.mark.parametrize("task", ["reach", "track"])
def test_vector_env_with_one_env_equals_single_env_across_autoreset(square_checkpoint, task):
    kw = dict(checkpoint=square_checkpoint, task=task, task_kwargs={"radius": 4.0})
    single = gym.make("GlassWorld-v0", max_episode_steps=6, **kw)
    vec = gym.make_vec("GlassWorld-v0", num_envs=1, vectorization_mode="vector_entry_point",
                       max_episode_steps=6, **kw)
    rng = np.random.default_rng(0)
    obs_s, info_s = single.reset(seed=11)
    obs_v, info_v = vec.reset(seed=11)
    np.testing.assert_array_equal(obs_v[0], obs_s)
    resets = 0
    for t in range(20):
        action = rng.integers(0, [9, 4])
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(action[None])
        if t > 0 and (term_s or trunc_s):  # noqa: F821 - the vector env resets in the next step
            obs_s, info_s = single.reset()
            rew_s, term_s, trunc_s = 0.0, False, False
            resets += 1
        else:
            obs_s, rew_s, term_s, trunc_s, info_s = single.step(action)
        np.testing.assert_array_equal(obs_v[0], obs_s)
        assert rew_v[0] == pytest.approx(rew_s, abs=1e-6)
        assert (term_v[0], trunc_v[0]) == (term_s, trunc_s)
        np.testing.assert_allclose(info_v["position"][0], info_s["position"], atol=1e-5)
        np.testing.assert_allclose(info_v["target"][0], info_s["target"], atol=1e-5)
    assert resets >= 2


def _assert_same_info(vector_info: dict, single_info: dict) -> None:
    """Row 0 of a vector info equals a single env's info, key for key."""
    keys = {k for k in vector_info if not k.startswith("_")}
    assert keys == set(single_info)
    for k in keys:
        assert vector_info[f"_{k}"][0], k
        np.testing.assert_allclose(np.asarray(vector_info[k][0], dtype=np.float64),
                                   np.asarray(single_info[k], dtype=np.float64), atol=1e-5, err_msg=k)


@pytest.mark.parametrize("max_steps, radius", [(1, 1000.0), (4, 4.0)])
def test_single_env_is_the_vector_env_with_one_env(square_checkpoint, max_steps, radius):
    """All five outputs agree, across terminations on the time-limit step (max_episode_steps 1 and radius 1000:
    every step arrives and hits the limit) and the autoresets after them (the single env is reset by hand when the
    vector env autoresets)."""
    kw = dict(checkpoint=square_checkpoint, task="reach", task_kwargs={"radius": radius})
    single = gym.make("GlassWorld-v0", max_episode_steps=max_steps, **kw)
    vec = gym.make_vec("GlassWorld-v0", num_envs=1, vectorization_mode="vector_entry_point",
                       max_episode_steps=max_steps, **kw)
    assert vec.render_scale == single.unwrapped.render_scale
    obs_s, info_s = single.reset(seed=4)
    obs_v, info_v = vec.reset(seed=4)
    np.testing.assert_array_equal(obs_v[0], obs_s)
    _assert_same_info(info_v, info_s)
    rng, done, both, resets = np.random.default_rng(0), False, 0, 0
    for _ in range(12):
        action = rng.integers(0, [9, 4])
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(action[None])
        if done:  # the vector env's next-step autoreset = the single env's reset
            obs_s, info_s = single.reset()
            rew_s, term_s, trunc_s = 0.0, False, False
            resets += 1
        else:
            obs_s, rew_s, term_s, trunc_s, info_s = single.step(action)
        both += bool(term_s and trunc_s)
        done = term_s or trunc_s
        np.testing.assert_array_equal(obs_v[0], obs_s)
        assert rew_v[0] == pytest.approx(rew_s, abs=1e-6)
        assert (bool(term_v[0]), bool(trunc_v[0])) == (term_s, trunc_s)
        _assert_same_info(info_v, info_s)
    assert resets >= 2
    if max_steps == 1:
        assert both >= 2  # terminated on the time-limit step: truncated too, in both (Gymnasium's TimeLimit)


def test_render_scale_default_is_the_same_for_one_env(square_model):
    single = GlassWorldEnv(model=square_model)
    one = GlassWorldVectorEnv(1, model=square_model)
    assert single.render_scale == one.render_scale == 4
    assert GlassWorldVectorEnv(4, model=square_model).render_scale == 2  # a tiled grid


def test_same_step_autoreset_returns_final_obs(square_model):
    single = GlassWorldEnv(model=square_model)
    vec = GlassWorldVectorEnv(1, model=square_model, max_episode_steps=4, autoreset_mode="same_step")
    assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs_s, _ = single.reset(seed=5)
    vec.reset(seed=5)
    for t in range(1, 9):
        a = np.array([t % 9, t % 4])
        obs_s, rew_s, term_s, _, info_s = single.step(a)
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(a[None])
        assert rew_v[0] == pytest.approx(rew_s, abs=1e-6)
        if t % 4 == 0:
            assert trunc_v[0] and info_v["_final_obs"][0]
            np.testing.assert_array_equal(info_v["final_obs"][0], obs_s)
            np.testing.assert_allclose(info_v["final_info"]["position"][0], info_s["position"], atol=1e-5)
            obs_s, _ = single.reset()
        else:
            assert not trunc_v[0] and "final_obs" not in info_v
        np.testing.assert_array_equal(obs_v[0], obs_s)


def test_vector_env_resets_only_finished_envs(square_model):
    venv = GlassWorldVectorEnv(3, model=square_model, task="reach", task_kwargs={"radius": 3.0})
    frame = square_start_frame(square_model, 10, 10)
    obs, info = venv.reset(seed=0, options={"frame": frame, "target": (19, 10)})
    right = np.array([[1, 0], [1, 0], [0, 0]])  # envs 0 and 1 walk to the target, env 2 stays
    for _ in range(10):
        obs, rew, term, trunc, info = venv.step(right)
        if term.any():
            break
    assert term[0] and term[1] and not term[2]
    before = info["position"][2].copy()
    obs, rew, term, trunc, info = venv.step(right)  # autoreset step for 0 and 1, a normal step for 2
    assert np.all(rew[:2] == 0) and not term.any()
    assert info["start_index"][0] >= 0 and info["start_index"][2] == -1  # 0 restarted from the bank; 2 did not
    assert np.allclose(info["position"][2], before, atol=1.5)


def test_rendering_rgb_array_and_headless_human(square_model, monkeypatch):
    env = GlassWorldEnv(model=square_model, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), obs)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    human = GlassWorldEnv(model=square_model, render_mode="human", render_scale=2)
    human.metadata = {**human.metadata, "render_fps": 1000}
    obs, _ = human.reset(seed=0)
    obs, *_ = human.step(np.array([1, 1]))
    shot = human._window.snapshot()
    assert shot.shape == (80, 96, 3)
    np.testing.assert_array_equal(shot[::2, ::2], obs)
    human.close()


def test_human_render_without_pygame_names_the_fix(square_model, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pygame", None)
    env = GlassWorldEnv(model=square_model, render_mode="human")
    with pytest.raises(gym.error.DependencyNotInstalled, match="pip install pygame"):
        env.reset(seed=0)


# ---------------------------------------------------------------------------------------------- registry
def test_one_dream_factory_for_single_and_vector_envs(square_checkpoint, tmp_path):
    """envs.make_dream: the single and the batched env of an id get the same defaults, and checkpoint=PATH replaces
    a registered id's file even when that file is missing (it used to work for agents but not for the viewer)."""
    envs.register_checkpoint_env("SquareGone-v0", tmp_path / "gone.pt", max_episode_steps=9,
                                 task_kwargs={"target_axes": "x"})
    try:
        with pytest.raises(envs.MissingCheckpointError, match="gone.pt"):
            envs.make_dream("SquareGone-v0")
        single = envs.make_dream("SquareGone-v0", checkpoint=square_checkpoint)
        vec = envs.make_dream("SquareGone-v0", 3, checkpoint=square_checkpoint)
    finally:
        del gym.registry["SquareGone-v0"]
    assert isinstance(single.unwrapped, GlassWorldEnv) and isinstance(vec, GlassWorldVectorEnv)
    assert single.spec.max_episode_steps == vec.max_episode_steps == 9
    assert single.unwrapped.task.cfg.target_axes == vec.task.cfg.target_axes == "x"
    with pytest.raises(ValueError, match="glassworld ids: GlassWorld-v0"):
        envs.make_dream("NoSuchWorld-v0")
    with pytest.raises(ValueError, match="needs checkpoint=PATH"):
        envs.make_dream("GlassWorld-v0", 2)


def test_registry_shipped_ids_fail_clearly_when_their_file_is_absent(square_checkpoint, tmp_path):
    for env_id, fname in envs.SHIPPED.items():
        assert env_id in gym.registry
        if not (envs.CHECKPOINT_DIR / fname).is_file():
            assert env_id not in envs.available_ids()
            with pytest.raises(envs.MissingCheckpointError, match=fname):
                gym.make(env_id)
    envs.register_checkpoint_env("GlassSquareTest-v0", square_checkpoint, max_episode_steps=3, task="track")
    env = gym.make("GlassSquareTest-v0")
    assert env.unwrapped.task.name == "track"
    env.reset(seed=0)
    assert [env.step(np.array([0, 0]))[3] for _ in range(3)] == [False, False, True]
    assert envs.checkpoint_of("GlassSquareTest-v0") == square_checkpoint.resolve()


@pytest.mark.parametrize("env_id", envs.available_ids())
def test_every_available_id_passes_both_checkers(env_id, square_checkpoint):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from worldmodel.checkpoint import load_checkpoint
    from worldmodel.health import UnhealthyWorldError, card_health

    kw = {"checkpoint": square_checkpoint} if env_id == "GlassWorld-v0" else {}
    health = None if kw else card_health(load_checkpoint(envs.checkpoint_of(env_id))["card"])
    if health is not None and not health["healthy"]:  # a shipped world its card calls unhealthy is refused ...
        with pytest.raises(UnhealthyWorldError, match=re.escape(health["problems"][0])):
            gym.make(env_id)
        kw["allow_unhealthy"] = True  # ... and still a valid env when asked for anyway
    env = gym.make(env_id, **kw)
    check_env(env.unwrapped)
    sb3_check_env(gym.make(env_id, **kw).unwrapped)


# ---------------------------------------------------------------------------------------------- tasks
def test_locate_agent_finds_squares_and_nothing_in_empty_faint_or_flooding_masks():
    mask = torch.zeros(4, 1, 10, 12)
    mask[0, 0, 2:4, 6:10] = 1.0  # an agent
    mask[2] = 0.4  # a faint haze: no pixel above the threshold
    mask[3] = 0.9  # floods the frame: no agent either (it used to be "at the centre")
    pos, visible = locate_agent(mask)
    assert pos.shape == (4, 2) and visible.shape == (4,)
    assert pos[0].tolist() == pytest.approx([7.5, 2.5]) and visible.tolist() == [True, False, False, False]
    assert pos[3].tolist() == [0.0, 0.0]
    faint = mask[:1] + 0.02  # a faint haze over the whole frame weighs more than the agent, but is not the agent
    assert locate_agent(faint)[0][0].tolist() == pytest.approx([7.5, 2.5])
    assert locate_agent(mask[3:], max_frac=1.0)[1].item()  # flood rejection is a setting, on by default
    half = torch.zeros(2, 1, 10, 12)
    half[:, :, :5, :] = 1.0  # 60 of 120 pixels: exactly the flood limit (half the frame) still counts
    half[1, 0, 5, 0] = 1.0  # one pixel more does not
    assert locate_agent(half)[1].tolist() == [True, False]
    pos, visible = locate_agent(mask[:2])
    task = make_task("reach", 10, 12, {"min_start_distance": 0.0})
    ts = task.init(pos, visible, np.random.default_rng(0), target=torch.tensor([[0.0, 0.0]]).expand(2, 2))
    r, term, ts2 = task.step(ts, torch.zeros(2, 2), torch.tensor([False, False]))
    assert r.tolist() == [0.0, 0.0]  # nothing seen: no reward, last known position kept
    assert ts2["pos"][0].tolist() == pytest.approx([7.5, 2.5])


def test_a_flooding_mask_earns_no_reach_reward(square_model):
    """A world whose agent mask floods the frame puts no agent anywhere: no reward, no arrival at a target in the
    middle of the frame (where the flood's centroid lies), the last known position kept."""
    step = square_model.step

    def flooding_step(*args, **kwargs):
        frame, mask, state = step(*args, **kwargs)
        return frame, torch.ones_like(mask), state

    square_model.step = flooding_step
    env = GlassWorldEnv(model=square_model, task="reach", task_kwargs={"radius": 6.0})
    centre = ((48 - 1) / 2, (40 - 1) / 2)  # where the flood's centroid is
    _, info = env.reset(seed=0, options={"frame": square_start_frame(square_model, 8, 8), "target": centre})
    start = np.array(info["position"])
    assert info["position_known"] and np.linalg.norm(start - centre) > 10
    for _ in range(3):
        _, reward, term, _, info = env.step(np.array([0, 0]))
        assert reward == 0.0 and not term and not info["is_success"]
        np.testing.assert_allclose(info["position"], start)


def test_targets_on_the_agents_row_for_sideways_agents(square_model):
    env = GlassWorldVectorEnv(8, model=square_model, task="reach", task_kwargs={"target_axes": "x"})
    _, info = env.reset(seed=0)
    np.testing.assert_allclose(info["target"][:, 1], info["position"][:, 1])
    assert np.ptp(info["target"][:, 0]) > 5
    track = GlassWorldVectorEnv(4, model=square_model, task="track", task_kwargs={"target_axes": "x"})
    track.reset(seed=0)
    info0 = track.step(np.zeros((4, 2), dtype=np.int64))[4]  # (a start row inside the margin is pushed in once)
    for _ in range(5):
        _, _, _, _, info = track.step(np.zeros((4, 2), dtype=np.int64))
    np.testing.assert_allclose(info["target"][:, 1], info0["target"][:, 1])
    assert (np.abs(info["target"][:, 0] - info0["target"][:, 0]) > 1).all()
    with pytest.raises(ValueError, match="target_axes"):
        GlassWorldEnv(model=square_model, task_kwargs={"target_axes": "z"})


def test_target_axes_follow_the_worlds_shift_grid(square_model):
    """target_axes="auto" (the default): a world whose shift grid never steps along y (Breakout's paddle) puts its
    targets on the agent's row, with no per-world setting; a grid that moves both ways keeps both axes."""
    from envs.tasks import moving_axes

    assert moving_axes(torch.tensor([[0.0, 0.0], [4.3, 0.0], [-4.3, 0.2]])) == "x"
    assert moving_axes(torch.tensor([[0.0, 0.0], [0.0, 3.0]])) == "y"
    assert moving_axes(torch.tensor([[0.0, 0.0], [2.0, 3.0]])) == moving_axes(None) == "xy"
    both = GlassWorldVectorEnv(8, model=square_model, task="reach")
    assert both.task.cfg.target_axes == moving_axes(square_model.shift_grid) == "xy"
    grid = square_model.shift_grid.clone()
    try:
        square_model.shift_grid = grid * torch.tensor([1.0, 0.0])
        env = GlassWorldVectorEnv(8, model=square_model, task="reach")
        _, info = env.reset(seed=0)
    finally:
        square_model.shift_grid = grid
    assert env.task.cfg.target_axes == "x"
    np.testing.assert_allclose(info["target"][:, 1], info["position"][:, 1])


def test_long_random_rollout_stays_alive(square_model):
    from envs.diagnostics import rollout_stats

    stats = rollout_stats(GlassWorldVectorEnv(4, model=square_model, task="none"), steps=300, seed=0)
    assert stats.nonfinite_frames == 0 and stats.warnings == []
    assert stats.frame_change_last > 0.05 and stats.frame_std_last > 0.5 * stats.frame_std_first
    assert 24 / (40 * 48) < stats.mask_area_min <= stats.mask_area_max < 37 / (40 * 48)  # 5x5..6x6, never gone
    assert len(stats.windows) == 10 and stats.windows[-1]["first_step"] == 271
    assert stats.agent_visible_at == {"10": 1.0, "25": 1.0, "50": 1.0, "100": 1.0, "200": 1.0}
    assert stats.agent_visible_last == 1.0


def test_rollout_stats_see_an_agent_that_fades(square_model):
    """A world whose agent mask dims by 2% a step keeps a mask but shows no agent after ~35 steps: flagged."""
    from envs.diagnostics import rollout_stats

    step, calls = square_model.step, [0]

    def fading_step(*args, **kwargs):
        frame, mask, state = step(*args, **kwargs)
        calls[0] += 1
        return frame, mask * 0.98 ** calls[0], state

    square_model.step = fading_step
    stats = rollout_stats(GlassWorldVectorEnv(2, model=square_model, task="none"), steps=100, seed=0)
    assert stats.agent_visible_at["10"] == 1.0 and stats.agent_visible_at["50"] == 0.0
    assert stats.mask_area_last > 0 and any("the agent fades" in w for w in stats.warnings)


def test_a_model_is_checked_by_its_members_not_a_runtime_protocol(square_model):
    """``model=`` is checked member by member (worldmodel.api.missing_members): Python 3.12's runtime-protocol
    isinstance looks attributes up statically and rejected real GLASS models, whose shift grid is a buffer."""
    from worldmodel.api import missing_members
    from worldmodel.glass import GlassConfig, GlassModel

    glass = GlassModel(GlassConfig.preset("tiny", 32, 32))
    assert "shift_grid" in glass._buffers or hasattr(glass, "shift_grid")
    assert missing_members(glass) == [] and missing_members(square_model) == []
    with pytest.raises(TypeError, match="lacks .*shift_grid"):
        GlassWorldEnv(model=object())
