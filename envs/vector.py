"""The vector interface shared by the dream and the real game: batched tensor cores behind one Gymnasium VectorEnv.

A *core* (:class:`BatchedCore`) holds N episodes as tensors on a device and knows how to reset rows and step
rows; :class:`TaskVectorEnv` turns any core into a Gymnasium :class:`~gymnasium.vector.VectorEnv` with
autoreset, time limits, Gymnasium-style infos and rendering. The dream (:class:`envs.dream.DreamCore`) and the
real ALE game (:class:`envs.real.RealCore`) are both cores, so agents, evaluation and the viewer never branch
on which one they hold.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .render import PygameWindow, tile_frames
from .tasks import Task, TaskState

RENDER_FPS = 15


def default_render_scale(num_envs: int) -> int:
    """The window's default zoom: 4 for one env (a 96x128 frame becomes 384x512), 2 for a grid of several
    (up to 4x4 tiles). The single env and the vector env with N = 1 use the same value."""
    return 4 if num_envs == 1 else 2


class BatchedCore(Protocol):
    """N episodes as tensors (see :class:`envs.dream.DreamCore` for the reference implementation)."""

    num_envs: int
    device: torch.device
    task: Task
    task_state: TaskState  # (N, ...) tensors
    frames: torch.Tensor  # (N, H, W, 3) uint8, the last frames without the task marker
    bank_index: np.ndarray  # (N,) int64 start-bank index of each episode (-1 = none)

    def seed(self, rng: np.random.Generator) -> None: ...

    def reset(self, rng: np.random.Generator, rows: torch.Tensor | None = None,
              options: dict[str, Any] | None = None) -> None: ...

    def step(self, action: torch.Tensor, rows: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def observation(self) -> torch.Tensor: ...

    def info_tensors(self) -> dict[str, torch.Tensor]: ...


def check_actions(action: Any, nvec: np.ndarray, batch: int | None) -> np.ndarray:
    """Validate (shift, code) actions; returns an int64 array of shape (2,) or (batch, 2).

    One clear ValueError for a wrong shape, a non-integer dtype or an out-of-range value.
    """
    want = (2,) if batch is None else (batch, 2)
    arr = np.asarray(action)
    if arr.shape != want:
        raise ValueError(f"action must have shape {want} = (shift index, code index)"
                         f"{'' if batch is None else ' per env'}, got shape {arr.shape}: {action!r}"[:300])
    if arr.dtype.kind not in "iu":
        raise ValueError(f"action must be integers (shift index, code index), got dtype {arr.dtype}: "
                         f"{action!r}"[:300])
    # compare before casting: a uint64 above 2**63 would wrap to a negative int64 (and the message would lie)
    bad = (arr >= nvec.astype(np.uint64)) if arr.dtype.kind == "u" else ((arr < 0) | (arr >= nvec))
    if bad.any():
        raise ValueError(f"action out of range: shift must be in [0, {nvec[0]}) and code in [0, {nvec[1]}), "
                         f"got {arr.tolist()}"[:300])
    return arr.astype(np.int64, copy=False)


def combine_seeds(seed: int | list[int | None] | None, num_envs: int) -> int | None:
    """One seed for a batched env's single generator from Gymnasium's ``reset(seed=int | list)``.

    An int or None is used as is. A list needs one entry per env, all ints or all None; ``[s, s+1, ...,
    s+N-1]`` (what SB3's ``VecEnv.seed(s)`` gives) is ``s``, so it reproduces ``reset(seed=s)``; any other list
    becomes one seed drawn from all of them (:class:`numpy.random.SeedSequence`): the same list gives the same
    episodes, and changing any env's seed changes them (env i's episode depends on every seed of the list, since
    the N envs share one generator).
    """
    if seed is None or isinstance(seed, (int, np.integer)):
        return None if seed is None else int(seed)
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"reset(seed=[...]) needs one seed per env ({num_envs}), got {len(seeds)}")
    if all(s is None for s in seeds):
        return None
    if any(s is None or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"reset(seed=[...]) needs non-negative ints for every env (or all None), got {seeds}")
    if all(int(s) == int(seeds[0]) + i for i, s in enumerate(seeds)):
        return int(seeds[0])
    return int(np.random.SeedSequence([int(s) for s in seeds]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def take_rows(state: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rows ``idx`` (k,) of every tensor of a batched state."""
    return {k: v.index_select(0, idx.to(v.device)) for k, v in state.items()}


def put_rows(state: dict[str, torch.Tensor], idx: torch.Tensor, rows: dict[str, torch.Tensor]
             ) -> dict[str, torch.Tensor]:
    """A copy of ``state`` with rows ``idx`` (k,) replaced by ``rows`` (k, ...): a masked reset, no Python loop."""
    assert state.keys() == rows.keys(), f"state keys differ: {sorted(state)} vs {sorted(rows)}"
    return {k: v.index_copy(0, idx.to(v.device), rows[k].to(v.dtype)) for k, v in state.items()}


def infos_to_numpy(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Move info tensors (N, ...) to numpy in one transfer (columns packed as float32, then split)."""
    keys = list(tensors)
    cols = [tensors[k].reshape(tensors[k].shape[0], -1).float() for k in keys]  # (N, c_k)
    packed = torch.cat(cols, dim=1).cpu().numpy()  # (N, sum c_k)
    out, i = {}, 0
    for k, c in zip(keys, cols):
        v = packed[:, i:i + c.shape[1]].reshape(tensors[k].shape)
        out[k] = v.astype(bool) if tensors[k].dtype == torch.bool else v
        i += c.shape[1]
    return out


def parse_autoreset(mode: str | AutoresetMode) -> AutoresetMode:
    """``"next_step"`` / ``"same_step"`` (or the enum) -> :class:`AutoresetMode`."""
    if isinstance(mode, AutoresetMode):
        if mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode must be next_step or same_step, not disabled")
        return mode
    names = {"next_step": AutoresetMode.NEXT_STEP, "nextstep": AutoresetMode.NEXT_STEP,
             "same_step": AutoresetMode.SAME_STEP, "samestep": AutoresetMode.SAME_STEP}
    key = str(mode).lower().replace("-", "_")
    if key not in names:
        raise ValueError(f"autoreset_mode must be 'next_step' or 'same_step', got {mode!r}")
    return names[key]


class CoreEdge:
    """What the single env (:class:`envs.dream.GlassWorldEnv`) and :class:`TaskVectorEnv` share, written once:
    seeding and starting every episode of their core, and the agent interface.

    **The agent interface** (what agents, evaluation, the planner and the viewer read; never ``.core``), on the
    unwrapped env, with N = 1 for the single env:

    * ``task`` (:class:`envs.tasks.Task`) and ``task_state``: the task's state, (N, ...) tensors (``pos``,
      ``target``, ``dist``, ``known``, ...) on the env's device;
    * ``frames``: (N, H, W, 3) uint8, the last frames without the task marker (the real screen, or the dream);
    * ``model_state``: the world model's state, (N, ...) tensors (the dream), None in the real game;
    * ``dream_step``: the dream's transition (:class:`envs.dream.DreamStep`: model, task and precision), None in
      the real game.

    The host class provides ``core`` (a :class:`BatchedCore`) and ``np_random`` (Gymnasium's, reseeded by
    ``super().reset(seed=seed)`` before :meth:`_start_all` is called).
    """

    core: BatchedCore
    np_random: np.random.Generator
    _seeded: bool = False

    @property
    def task_state(self) -> TaskState:
        return self.core.task_state

    @property
    def frames(self) -> torch.Tensor:
        return self.core.frames

    @property
    def model_state(self) -> dict[str, torch.Tensor] | None:
        return getattr(self.core, "model_state", None)

    @property
    def dream_step(self) -> Any:
        return getattr(self.core, "transition", None)

    def _start_all(self, seed: int | None, options: dict[str, Any] | None) -> None:
        """Seed the core's model noise from ``np_random`` (first reset, or a new seed) and start every episode."""
        if seed is not None or not self._seeded:
            self.core.seed(self.np_random)
            self._seeded = True
        self.core.reset(self.np_random, None, options)


class TaskVectorEnv(CoreEdge, VectorEnv):
    """A Gymnasium vector env over a :class:`BatchedCore` with (shift, code) actions.

    Autoreset (``metadata["autoreset_mode"]``): ``"next_step"`` (Gymnasium's default: the step after an
    episode ends returns the new episode's first observation, reward 0, and ignores that env's action) or
    ``"same_step"`` (the finished env restarts within the step; its last observation and info are in
    ``info["final_obs"]`` / ``info["final_info"]``, which is what SB3 needs, see :mod:`agents.sb3`).
    Finished envs are reset by index in one batched call (no Python loop over envs); truncation after
    ``max_episode_steps`` happens here (wrappers cannot be applied to a vector entry point), with the rule of
    Gymnasium's ``TimeLimit`` on the single env: ``truncated`` is True on the ``max_episode_steps``-th step even
    when that step also terminates. Observations and infos go to numpy once per step.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": RENDER_FPS,
                "autoreset_mode": AutoresetMode.NEXT_STEP}

    def _setup(self, core: BatchedCore, single_observation_space: spaces.Box,
               single_action_space: spaces.MultiDiscrete, action_meanings: tuple[list[str], list[str]],
               max_episode_steps: int | None, autoreset_mode: str | AutoresetMode, render_mode: str | None,
               render_scale: int | None, title: str) -> None:
        mode = parse_autoreset(autoreset_mode)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.core = core
        self.task = core.task
        self.num_envs = core.num_envs
        self.single_observation_space, self.single_action_space = single_observation_space, single_action_space
        self._nvec = np.asarray(single_action_space.nvec, dtype=np.int64)
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self.action_meanings = action_meanings
        self.max_episode_steps = max_episode_steps
        scale = default_render_scale(self.num_envs) if render_scale is None else int(render_scale)
        self.render_mode, self.render_scale, self._title = render_mode, scale, title
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._obs: np.ndarray | None = None
        self._window: PygameWindow | None = None
        self._seeded = False

    @property
    def device(self) -> torch.device:
        return self.core.device

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start all N episodes. ``seed``: an int, or one per env (:func:`combine_seeds`); ``options``: as the
        core's reset (each value one for all envs, or one row per env)."""
        seed = combine_seeds(seed, self.num_envs)
        super().reset(seed=seed)  # (re)seeds self.np_random when seed is given
        self._start_all(seed, options)
        self._elapsed[:] = 0
        self._autoreset[:] = False
        self._obs = self.core.observation().cpu().numpy()
        info = self._vector_info(infos_to_numpy(self.core.info_tensors()))
        if self.render_mode == "human":
            self.render()
        return self._obs, info

    def _rows(self, mask: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.flatnonzero(mask), dtype=torch.long, device=self.device)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._obs is None:
            raise gym.error.ResetNeeded("call envs.reset() before envs.step()")
        act = torch.as_tensor(check_actions(actions, self._nvec, self.num_envs), device=self.device)  # (N, 2)
        core = self.core
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset.any():
            restart = self._autoreset.copy()
            core.reset(self.np_random, self._rows(restart))
            reward, terminated = core.step(act, self._rows(~restart))
            self._elapsed[restart] = 0
        else:
            restart = np.zeros(self.num_envs, dtype=bool)
            reward, terminated = core.step(act)
        self._elapsed[~restart] += 1
        info_t = core.info_tensors()
        info_t["reward"], info_t["terminated"] = reward, terminated
        info = infos_to_numpy(info_t)  # one transfer for all per-env scalars
        reward_np, term_np = info.pop("reward").astype(np.float32), info.pop("terminated")
        trunc_np = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is not None:  # as Gymnasium's TimeLimit: True on the last step, terminal or not
            trunc_np = self._elapsed >= self.max_episode_steps
        done = term_np | trunc_np
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            final_obs_np = core.observation().cpu().numpy()
            final_info = info
            core.reset(self.np_random, self._rows(done))
            self._elapsed[done] = 0
            self._obs = core.observation().cpu().numpy()
            out_info = self._vector_info(infos_to_numpy(core.info_tensors()))
            final = np.full(self.num_envs, None, dtype=object)  # Gymnasium's format: per-env objects
            for i in np.flatnonzero(done):
                final[i] = final_obs_np[i]
            out_info["final_obs"], out_info["_final_obs"] = final, done.copy()
            out_info["final_info"], out_info["_final_info"] = self._vector_info(final_info, done), done.copy()
        else:
            self._obs = core.observation().cpu().numpy()
            out_info = self._vector_info(info)
        self._autoreset = done if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros_like(done)
        if self.render_mode == "human":
            self.render()
        return self._obs, reward_np, term_np, trunc_np, out_info

    def _vector_info(self, info: dict[str, np.ndarray], present: np.ndarray | None = None) -> dict[str, Any]:
        """Gymnasium's vector info: each key has a ``_key`` bool mask of the envs it belongs to."""
        mask = np.ones(self.num_envs, dtype=bool) if present is None else present
        out: dict[str, Any] = {}
        for k, v in info.items():
            out[k], out[f"_{k}"] = v, mask.copy()
        out["start_index"], out["_start_index"] = self.core.bank_index.copy(), mask.copy()
        return out

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make_vec(..., render_mode='rgb_array')")
            return None
        obs = self._obs if self._obs is not None else np.zeros(self.observation_space.shape, np.uint8)
        if self.render_mode == "rgb_array":
            return tuple(o.copy() for o in obs)
        if self._window is None:
            self._window = PygameWindow(self._title, self.render_scale, self.metadata["render_fps"])
        self._window.show(tile_frames(obs[:16]))
        return None

    def close_extras(self, **kwargs: Any) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
