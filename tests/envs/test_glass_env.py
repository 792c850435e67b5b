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
        assert rew_v[0] == pytest.approx(rew_s, abs=1e-5)
        assert (bool(term_v[0]), bool(trunc_v[0])) == (term_s, trunc_s)
        np.testing.assert_allclose(info_v["position"][0], info_s["position"], atol=1e-5)
        np.testing.assert_allclose(info_v["mask_area"][0], info_s["mask_area"], atol=1e-6)


def test_glass_seeded_rollouts_repeat(world_checkpoint):
    venv = GlassWorldVectorEnv(3, checkpoint=world_checkpoint, max_episode_steps=5)

    def run(seed):
        obs, _ = venv.reset(seed=seed)
        venv.action_space.seed(seed)
        out = [obs]
        for _ in range(8):
            out.append(venv.step(venv.action_space.sample())[:2])
        return out

    first = run(3)
    np.testing.assert_equal(run(3), first)
    other = run(4)
    assert not np.array_equal(other[0], first[0]) or not all(
        np.array_equal(o[0], f[0]) for o, f in zip(other[1:], first[1:]))  # another seed: another rollout


@pytest.mark.slow
def test_glass_long_random_rollout_stays_finite(world_checkpoint):
    env = GlassWorldVectorEnv(2, checkpoint=world_checkpoint, task="none")
    stats = rollout_stats(env, steps=200, seed=0)
    assert stats.nonfinite_frames == 0
    assert 0.0 <= stats.mask_area_min <= stats.mask_area_max <= 1.0
    assert np.isfinite([stats.frame_change_last, stats.frame_std_last]).all()


def test_each_env_gets_its_own_model_read_once_per_file_content(world_checkpoint, tmp_path, monkeypatch):
    import shutil

    import envs.dream as dream
    import worldmodel.models as models

    monkeypatch.setattr(dream, "_MODEL_CACHE", type(dream._MODEL_CACHE)())
    reads = []
    real_load = models.load_world_model

    def counting_load(path, dev):
        reads.append(path)
        return torch.nn.Linear(1, 1) if path.name.startswith("other") else real_load(path, dev)

    monkeypatch.setattr(models, "load_world_model", counting_load)
    a, b = GlassWorldVectorEnv(1, checkpoint=world_checkpoint), GlassWorldVectorEnv(1, checkpoint=world_checkpoint)
    copy = shutil.copy(world_checkpoint, tmp_path / "same_bytes.pt")
    c = load_model(copy, None, "cpu")
    assert len(reads) == 1  # one read for three envs/loads of the same bytes (keyed by content, not path)
    assert a.model is not b.model and c is not a.model
    params_a = dict(a.model.named_parameters()) if hasattr(a.model, "named_parameters") else {}
    assert params_a, "the tiny world models are torch modules"
    name, p = next(iter(params_a.items()))
    before = dict(b.model.named_parameters())[name].detach().clone()
    with torch.no_grad():
        p.add_(1.0)  # env a corrupts its own model...
    torch.testing.assert_close(dict(b.model.named_parameters())[name], before)  # ...env b's is untouched
    torch.testing.assert_close(dict(load_model(world_checkpoint, None, "cpu").named_parameters())[name], before)
    for i in range(dream.MODEL_CACHE_SIZE):  # bounded: other files evict the least recently used
        other = tmp_path / f"other{i}.pt"
        other.write_bytes(f"model {i}".encode())
        load_model(other, None, "cpu")
    assert len(dream._MODEL_CACHE) == dream.MODEL_CACHE_SIZE
    load_model(world_checkpoint, None, "cpu")
    assert len(reads) == 2 + dream.MODEL_CACHE_SIZE  # evicted, so read again


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
    state = envs_["bfloat16"].model_state
    assert all(v.dtype == torch.float32 for v in state.values() if torch.is_tensor(v) and v.is_floating_point())
    with pytest.raises(ValueError, match="precision must be one of"):
        GlassWorldVectorEnv(1, checkpoint=world_checkpoint, precision="fp8")


# ---------------------------------------------------------------------------------------------- CUDA paths
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (gpu marker)")


@pytest.mark.gpu
@needs_cuda
def test_cuda_dream_repeats_and_bfloat16_stays_close(world_checkpoint):
    from worldmodel.device import resolve_device

    assert resolve_device("auto").type == "cuda"
    envs_ = {p: GlassWorldVectorEnv(2, checkpoint=world_checkpoint, task="reach", device="auto", precision=p)
             for p in ("float32", "bfloat16")}
    assert envs_["float32"].device.type == "cuda" and envs_["float32"].dream_step.device.type == "cuda"
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, envs_["float32"].single_action_space.nvec, size=(2, 2)) for _ in range(5)]

    def run(env):
        out = [env.reset(seed=1)[0]]
        for a in actions:
            out.append(env.step(a)[0])
        return np.stack(out).astype(np.int16)  # (6, 2, H, W, 3)

    f32 = run(envs_["float32"])
    np.testing.assert_array_equal(run(envs_["float32"]), f32)  # seeded CUDA rollouts repeat
    assert np.abs(f32 - run(envs_["bfloat16"])).mean() < 4.0  # grey levels
    state = envs_["bfloat16"].model_state
    assert all(v.device.type == "cuda" for v in state.values() if torch.is_tensor(v))
