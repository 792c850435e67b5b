"""The dream env over real (untrained, tiny) GLASS and keypoint checkpoints loaded through worldmodel.models
(every test runs once per model: the ``world_checkpoint`` fixture is parametrized)."""

from __future__ import annotations

import numpy as np
import torch
import pytest
import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from envs.diagnostics import rollout_stats
from envs.dream import GlassWorldVectorEnv, load_model


@pytest.mark.filterwarnings("ignore:The minimal resolution for an image")  # SB3's NatureCNN hint; we use SmallCNN
def test_world_checkpoint_passes_both_checkers(world_checkpoint):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("GlassWorld-v0", checkpoint=world_checkpoint, render_mode="rgb_array")
    assert env.observation_space.shape == (32, 48, 3)
    assert env.action_space.nvec.tolist() == [9, 4]
    assert env.unwrapped.action_meanings[0][0] == "none"
    check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(gym.make("GlassWorld-v0", checkpoint=world_checkpoint).unwrapped)


def test_glass_vector_env_with_one_env_equals_single_env(world_checkpoint):
    single = gym.make("GlassWorld-v0", checkpoint=world_checkpoint, task="track", max_episode_steps=4)
    vec = gym.make_vec("GlassWorld-v0", num_envs=1, vectorization_mode="vector_entry_point",
                       checkpoint=world_checkpoint, task="track", max_episode_steps=4)
    rng = np.random.default_rng(1)
    obs_s, _ = single.reset(seed=2)
    obs_v, _ = vec.reset(seed=2)
    np.testing.assert_array_equal(obs_v[0], obs_s)
    done = False
    for _ in range(10):
        a = rng.integers(0, [9, 4])
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(a[None])
        if done:
            obs_s, info_s = single.reset()
            rew_s, term_s, trunc_s = 0.0, False, False
        else:
            obs_s, rew_s, term_s, trunc_s, info_s = single.step(a)
        done = term_s or trunc_s
        np.testing.assert_array_equal(obs_v[0], obs_s)
        assert rew_v[0] == pytest.approx(rew_s, abs=1e-5) and trunc_v[0] == trunc_s


def test_glass_seeded_rollouts_repeat(world_checkpoint):
    venv = GlassWorldVectorEnv(3, checkpoint=world_checkpoint, max_episode_steps=5)

    def run(seed):
        obs, _ = venv.reset(seed=seed)
        venv.action_space.seed(seed)
        out = [obs]
        for _ in range(8):
            out.append(venv.step(venv.action_space.sample())[:2])
        return out

    np.testing.assert_equal(run(3), run(3))


@pytest.mark.slow
def test_glass_long_random_rollout_stays_finite(world_checkpoint):
    env = GlassWorldVectorEnv(2, checkpoint=world_checkpoint, task="none")
    stats = rollout_stats(env, steps=200, seed=0)
    assert stats.nonfinite_frames == 0
    assert 0.0 <= stats.mask_area_min <= stats.mask_area_max <= 1.0
    assert np.isfinite([stats.frame_change_last, stats.frame_std_last]).all()


def test_models_are_loaded_once_per_file_and_device(world_checkpoint):
    a = load_model(world_checkpoint, None, "cpu")
    assert load_model(world_checkpoint, None, "cpu") is a


def test_bfloat16_precision_stays_close_to_float32(world_checkpoint):
    envs_ = {p: GlassWorldVectorEnv(2, checkpoint=world_checkpoint, task="none", precision=p)
             for p in ("float32", "bfloat16")}
    obs = {p: [e.reset(seed=0)[0]] for p, e in envs_.items()}
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.integers(0, envs_["float32"].single_action_space.nvec, size=(2, 2))
        for p, e in envs_.items():
            obs[p].append(e.step(a)[0])
    f32, b16 = (np.stack(obs[p]).astype(np.int16) for p in ("float32", "bfloat16"))
    assert np.abs(f32 - b16).mean() < 4.0  # grey levels, averaged over 6 frames of 2 envs
    state = envs_["bfloat16"].core.model_state
    assert all(v.dtype == torch.float32 for v in state.values() if torch.is_tensor(v) and v.is_floating_point())
    with pytest.raises(ValueError, match="precision must be one of"):
        GlassWorldVectorEnv(1, checkpoint=world_checkpoint, precision="fp8")
