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


def merge_options(options: Sequence[dict[str, Any] | None], num_envs: int) -> dict[str, Any] | None:
    """SB3's per-env reset options (one dict per env) -> one vector-env options dict.

    A key every env gives the same value keeps that value; a key whose values differ becomes one row per env
    (``np.stack``: e.g. N start frames, N bank indices, N targets), which the glassworld vector envs accept.
    Every env must then give that key (one clear ValueError otherwise).
    """
    opts = [dict(o or {}) for o in options]
    if len(opts) != num_envs:
        raise ValueError(f"set_options needs one options dict per env ({num_envs}) or one dict, got {len(opts)}")
    keys = sorted(set().union(*opts))
    if not keys:
        return None
    out: dict[str, Any] = {}
    for k in keys:
        missing = [i for i, o in enumerate(opts) if k not in o]
        values = [np.asarray(o[k]) for o in opts if k in o]
        if not missing and all(v.shape == values[0].shape and np.array_equal(v, values[0]) for v in values[1:]):
            out[k] = opts[0][k]
            continue
        if missing:
            raise ValueError(f"reset option {k!r} is set for some envs but not for envs {missing}: a batched env "
                             "starts all envs together; give every env the option (or none)")
        try:
            out[k] = np.stack(values)  # (N, ...)
        except ValueError as e:
            raise ValueError(f"reset option {k!r} has values of different shapes per env ({e})") from None
    return out


class SB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` over a Gymnasium ``VectorEnv`` with same-step autoreset (see the module docstring).

    * Seeds: :meth:`seed` (SB3's ``[s, s+1, ...]``) or ``_seeds`` set per env reach the vector env at the next
      :meth:`reset` as one list (:func:`envs.vector.combine_seeds`: ``seed(s)`` reproduces the Gymnasium env's
      ``reset(seed=s)``; other lists are combined, so every env's seed counts).
    * Options: :meth:`set_options` (one dict, or one per env) reach it merged (:func:`merge_options`).
    * Attributes and methods: the vector env is one object for all N envs, so an attribute has one value,
      which ``get_attr`` returns once per requested index (as SB3's ``DummyVecEnv`` does for N identical envs);
      ``set_attr`` and ``env_method`` act on all envs at once and refuse a subset of ``indices`` with one clear
      error (a batched env cannot give one env another attribute, or run a method on some envs only).
      ``env_method`` returns one result per index: the method's item for that env when it returns one per env
      (a sequence of length N), else its whole result.
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
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, info = self.venv.reset(seed=seeds, options=merge_options(self._options, self.num_envs))
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

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        """SB3's indices (None = all, an int, or a sequence) as a checked list."""
        idx = [int(i) for i in self._get_indices(indices)]
        bad = [i for i in idx if not -self.num_envs <= i < self.num_envs]
        if bad:
            raise IndexError(f"env indices {bad} out of range for {self.num_envs} envs")
        return [i % self.num_envs for i in idx]

    def _all_envs(self, indices: VecEnvIndices, what: str) -> list[int]:
        idx = self._indices(indices)
        if sorted(set(idx)) != list(range(self.num_envs)):
            raise ValueError(f"{what} with indices={idx}: the {self.num_envs} envs are one batched vector env, so "
                             "this acts on all of them at once; call it without indices (or with all of them)")
        return idx

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._all_envs(indices, f"set_attr({attr_name!r})")
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        idx = self._all_envs(indices, f"env_method({method_name!r})")
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        per_env = isinstance(result, (list, tuple, np.ndarray)) and len(result) == self.num_envs
        return [result[i] if per_env else result for i in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

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
