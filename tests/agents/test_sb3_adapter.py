"""The SB3 VecEnv adapter: SB3's same-step contract on top of Gymnasium's vector envs."""

from __future__ import annotations

import numpy as np
import pytest

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
    model.learn(total_timesteps=48)
    assert model.num_timesteps >= 48
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (2, 2)
