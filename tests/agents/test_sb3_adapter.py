"""The SB3 VecEnv adapter: SB3's same-step contract on top of Gymnasium's vector envs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.sb3 import SB3VecEnv, SmallCNN
from envs.dream import GlassWorldVectorEnv


def test_adapter_refuses_next_step_autoreset(square_model):
    with pytest.raises(ValueError, match="same_step"):
        SB3VecEnv(GlassWorldVectorEnv(2, model=square_model))


def test_sb3_same_step_contract_matches_gymnasium_next_step(square_model):
    """Both contracts describe the same episodes: SB3 resets within the step, Gymnasium one step later."""
    sb3 = SB3VecEnv(GlassWorldVectorEnv(2, model=square_model, task="none", max_episode_steps=3,
                                        autoreset_mode="same_step"))
    gym_next = GlassWorldVectorEnv(2, model=square_model, task="none", max_episode_steps=3)
    sb3.seed(4)
    obs_a = sb3.reset()
    obs_b, _ = gym_next.reset(seed=4)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert len(sb3.reset_infos) == 2 and "position" in sb3.reset_infos[0]
    rng = np.random.default_rng(0)
    for t in range(1, 8):
        actions = rng.integers(0, [9, 4], size=(2, 2))
        obs_a, rew_a, done_a, infos_a = sb3.step(actions)
        obs_b, rew_b, term_b, trunc_b, _ = gym_next.step(actions)
        np.testing.assert_allclose(rew_a, rew_b, atol=1e-6)
        if t % 3 == 0:  # episode ends: SB3 already returns the next episode's first observation
            assert done_a.all() and (term_b | trunc_b).all()
            for i in range(2):
                np.testing.assert_array_equal(infos_a[i]["terminal_observation"], obs_b[i])
                assert infos_a[i]["TimeLimit.truncated"] is True
            obs_b, rew_b, term_b, trunc_b, _ = gym_next.step(actions)  # Gymnasium's reset step
            assert (rew_b == 0).all() and not (term_b | trunc_b).any()
        else:
            assert not done_a.any() and "terminal_observation" not in infos_a[0]
        np.testing.assert_array_equal(obs_a, obs_b)


def test_terminal_info_carries_success_of_the_finished_episode(square_model):
    from square_world import square_start_frame

    venv = GlassWorldVectorEnv(1, model=square_model, task="reach", task_kwargs={"radius": 3.0},
                               autoreset_mode="same_step")
    sb3 = SB3VecEnv(venv)
    sb3.set_options({"frame": square_start_frame(square_model, 10, 10), "target": (19, 10)})
    sb3.reset()
    for _ in range(6):
        _, _, done, infos = sb3.step(np.array([[1, 0]]))
        if done[0]:
            break
    assert done[0] and infos[0]["is_success"] is True and infos[0]["TimeLimit.truncated"] is False
    assert infos[0]["distance"] <= 3.0


def test_seed_passes_through(square_model):
    sb3 = SB3VecEnv(GlassWorldVectorEnv(3, model=square_model, autoreset_mode="same_step"))
    sb3.seed(7)
    a = sb3.reset()
    sb3.seed(7)
    np.testing.assert_array_equal(sb3.reset(), a)
    assert sb3.get_attr("num_envs") == [3, 3, 3] and sb3.env_is_wrapped(object) == [False] * 3


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_sb3_algorithms_learn_on_the_adapter(square_model, algo):
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.vec_env import VecMonitor

    venv = VecMonitor(SB3VecEnv(GlassWorldVectorEnv(2, model=square_model, max_episode_steps=10,
                                                    autoreset_mode="same_step")))
    kw = dict(policy_kwargs={"features_extractor_class": SmallCNN,
                             "features_extractor_kwargs": {"features_dim": 32}}, n_steps=8, seed=0, device="cpu")
    model = PPO("CnnPolicy", venv, batch_size=16, n_epochs=1, **kw) if algo == "ppo" else A2C("CnnPolicy", venv, **kw)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=48)
    assert model.num_timesteps >= 48
    # it learned: the weights moved, and SB3 saw whole episodes through the adapter (VecMonitor's records)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    assert len(model.ep_info_buffer) >= 2 and all(1 <= e["l"] <= 10 for e in model.ep_info_buffer)
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (2, 2)


# ---------------------------------------------------------------------------------------------- SB3's contract
@pytest.mark.parametrize("max_steps, radius", [(1, 1000.0), (5, 4.0)])
def test_one_env_adapter_matches_sb3s_dummy_vec_env(square_checkpoint, max_steps, radius):
    """SB3's own reference VecEnv (DummyVecEnv over the TimeLimit-wrapped single env) and the adapter over the
    vector env give the same observations, rewards, dones and infos (terminal_observation, TimeLimit.truncated),
    also when an episode terminates on its time-limit step (max_steps 1, radius 1000)."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    kw = dict(checkpoint=square_checkpoint, task="reach", task_kwargs={"radius": radius},
              max_episode_steps=max_steps)
    ref = DummyVecEnv([lambda: gym.make("GlassWorld-v0", **kw)])
    ours = SB3VecEnv(gym.make_vec("GlassWorld-v0", num_envs=1, vectorization_mode="vector_entry_point",
                                  autoreset_mode="same_step", **kw))
    assert ours.seed(9) == ref.seed(9) == [9]
    np.testing.assert_array_equal(ours.reset(), ref.reset())
    rng, ends = np.random.default_rng(1), 0
    for _ in range(12):
        a = rng.integers(0, [9, 4], size=(1, 2))
        o1, r1, d1, i1 = ours.step(a)
        o2, r2, d2, i2 = ref.step(a)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_allclose(r1, r2, atol=1e-6)
        assert d1.tolist() == d2.tolist()
        if d2[0]:
            ends += 1
            np.testing.assert_array_equal(i1[0]["terminal_observation"], i2[0]["terminal_observation"])
            assert i1[0]["TimeLimit.truncated"] == i2[0]["TimeLimit.truncated"]
        for k in ("position", "target", "distance", "is_success"):
            np.testing.assert_allclose(i1[0][k], i2[0][k], atol=1e-5, err_msg=k)
    assert ends >= 2
    assert ours.get_attr("render_mode") == ref.get_attr("render_mode") == [None]


def test_per_env_seeds_and_options_reach_every_env(square_model):
    sb3 = SB3VecEnv(GlassWorldVectorEnv(3, model=square_model, autoreset_mode="same_step"))

    def start(seeds):
        sb3._seeds = list(seeds)
        obs = sb3.reset()
        return obs, [i["start_index"] for i in sb3.reset_infos]

    base, _ = start([1, 2, 3])
    np.testing.assert_array_equal(start([1, 2, 3])[0], base)  # the same seeds: the same episodes
    assert not np.array_equal(start([1, 2, 99])[0], base)  # the third env's seed counts (it used to be ignored)
    sb3.seed(1)  # SB3's [1, 2, 3]
    np.testing.assert_array_equal(sb3.reset(), base)
    gym_obs, _ = GlassWorldVectorEnv(3, model=square_model).reset(seed=1)  # = the Gymnasium env's seed=1
    np.testing.assert_array_equal(gym_obs, base)
    sb3.set_options([{"frame": 0}, {"frame": 3}, {"frame": 5}])  # one start frame per env
    sb3.reset()
    assert [i["start_index"] for i in sb3.reset_infos] == [0, 3, 5]
    sb3.set_options({"frame": 2, "target": (10, 12)})  # one dict for all
    sb3.reset()
    assert [i["start_index"] for i in sb3.reset_infos] == [2, 2, 2]
    assert all(np.allclose(i["target"], (10, 12)) for i in sb3.reset_infos)
    sb3.set_options([{"frame": 1}, {}, {}])
    with pytest.raises(ValueError, match="give every env the option"):
        sb3.reset()


def test_attributes_and_methods_honour_indices(square_model):
    sb3 = SB3VecEnv(GlassWorldVectorEnv(3, model=square_model, autoreset_mode="same_step"))
    assert sb3.get_attr("num_envs") == [3, 3, 3]
    assert sb3.get_attr("max_episode_steps", indices=1) == [None]
    assert sb3.get_attr("render_scale", indices=[0, 2]) == [2, 2]
    with pytest.raises(IndexError, match="out of range"):
        sb3.get_attr("num_envs", indices=[3])
    sb3.set_attr("max_episode_steps", 4)  # all envs
    assert sb3.get_attr("max_episode_steps") == [4, 4, 4]
    with pytest.raises(ValueError, match="without indices"):
        sb3.set_attr("max_episode_steps", 9, indices=[0])  # one env of a batched env: refused, not applied to all
    assert sb3.get_attr("max_episode_steps") == [4, 4, 4]
    with pytest.raises(ValueError, match="without indices"):
        sb3.env_method("reset", indices=[1])
    shown = SB3VecEnv(GlassWorldVectorEnv(3, model=square_model, autoreset_mode="same_step", render_mode="rgb_array"))
    obs = shown.reset()
    frames = shown.env_method("render")  # one frame per env: each index gets its own
    assert len(frames) == 3 and all(np.array_equal(f, o) for f, o in zip(frames, obs))
    assert sb3.env_is_wrapped(object, indices=[0, 1]) == [False, False]
