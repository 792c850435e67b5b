"""Stable-Baselines3 on glassworld vector envs: the VecEnv adapter and a small CNN for small frames.

SB3 trains on its own :class:`~stable_baselines3.common.vec_env.VecEnv` contract: a finished env is reset
*within* the step that ended it, the returned observation is the new episode's first one, and the last
observation of the old episode is ``info["terminal_observation"]`` (plus ``info["TimeLimit.truncated"]``).
Gymnasium vector envs with ``autoreset_mode="same_step"`` return exactly that information as
``info["final_obs"]`` / ``info["final_info"]``; :class:`SB3VecEnv` translates one into the other. It works on
any such env (the dream and the real game), never on next-step autoreset (which would hand SB3 a reset
transition as if it were a real one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices
from torch import nn


def _split_info(info: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Gymnasium vector info (key -> (N, ...) array, ``_key`` masks) -> a list of N per-env dicts."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in info.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        mask = info.get(f"_{key}", np.ones(n, dtype=bool))
        for i in np.flatnonzero(mask):
            v = value[i]
            out[i][key] = v.item() if isinstance(v, np.generic) else v
    return out


class SB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` over a Gymnasium ``VectorEnv`` with same-step autoreset (see the module docstring).

    Seeds given through :meth:`seed` reach the vector env at the next :meth:`reset` (first env's seed; the
    vector env derives the others). ``get_attr``/``env_method`` read the vector env itself.
    """

    def __init__(self, venv: VectorEnv) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"SB3VecEnv needs a vector env with same-step autoreset (SB3 resets within the step); "
                             f"got {mode}. Make it with autoreset_mode='same_step'.")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    # -- the VecEnv contract ---------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        seed = self._seeds[0]
        options = self._options[0] or None
        obs, info = self.venv.reset(seed=seed, options=options)
        self.reset_infos = _split_info(info, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        assert self._actions is not None, "step_async must come before step_wait"
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        infos = _split_info(info, self.num_envs)
        if dones.any():
            final_infos = _split_info(info["final_info"], self.num_envs)
            for i in np.flatnonzero(dones):
                infos[i] = {**final_infos[i], "terminal_observation": info["final_obs"][i],
                            "TimeLimit.truncated": bool(truncated[i] and not terminated[i])}
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render() if self.venv.render_mode == "rgb_array" else None
        return list(frames) if frames is not None else [None] * self.num_envs


class SmallCNN(BaseFeaturesExtractor):
    """A CNN for small frames (any size >= 8x8; SB3's NatureCNN needs >= 36x36 and is slow on CPU).

    (B, C, H, W) uint8-scaled images -> (B, features_dim): three stride-2 convolutions, a 4x6 adaptive average
    pool (keeps coarse positions, which reach/track need), a linear layer.
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 256, channels: int = 32) -> None:
        super().__init__(observation_space, features_dim)
        c = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(c, channels, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * channels, 2 * channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 6)), nn.Flatten(),
        )
        self.linear = nn.Sequential(nn.Linear(2 * channels * 24, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))
