"""The dream: Gymnasium environments that step a learned world model instead of a game.

* :class:`GlassWorldEnv` — one environment (``gym.make("GlassWorld-v0", checkpoint=PATH)``).
* :class:`GlassWorldVectorEnv` — N environments stepped in one batched forward pass on the model's device
  (``gym.make_vec("GlassWorld-v0", num_envs=N, vectorization_mode="vector_entry_point", checkpoint=PATH)``).

Both are thin edges around :class:`DreamCore`, which keeps every episode as ``(N, ...)`` tensors: the world
model's state (:data:`worldmodel.api.State`), the task state (:data:`envs.tasks.TaskState`) and the last frame.
The single env is the core with N = 1, so the two agree step for step (tests check it).
"""

from __future__ import annotations


import copy
import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from worldmodel.api import State, WorldModel, missing_members
from worldmodel.device import resolve_device
from worldmodel.precision import autocast, check_precision

from .render import PygameWindow
from .tasks import Task, TaskState, check_observation_mode, locate_agent, mask_image, task_for_model
from .vector import (RENDER_FPS, CoreEdge, TaskVectorEnv, check_actions, default_render_scale, infos_to_numpy,
                     put_rows, take_rows)

log = logging.getLogger(__name__)


@dataclass
class DreamConfig:
    """What a dream env needs besides the world model (the ``gym.make`` keyword arguments)."""

    task: str = "reach"  # reach | track | none (envs.tasks.TASKS)
    task_kwargs: dict[str, Any] | None = None  # overrides of the task's config dataclass, e.g. {"radius": 8}
    device: str = "cpu"  # cpu | cuda | auto (cuda when available)
    checkpoint: str | None = None  # the model's file (None when a model object was given)
    precision: str = "float32"  # float32 | bfloat16 (autocast: ~1.5x faster on CPUs with AVX512-BF16, and on GPUs)
    observation: str = "rgb"  # rgb: the dreamed frame | mask: the agent mask as a grey image (envs.tasks)
    allow_unhealthy: bool = False  # make a world whose health checks failed (worldmodel.health) anyway


# ------------------------------------------------------------------------------------------------
# model loading and frame conversion
# ------------------------------------------------------------------------------------------------
# Loaded models by (sha256 of the file's bytes, device): a pristine copy that is never handed out. Each env gets
# its own deep copy (:func:`load_model`), so an env (or a user of ``env.unwrapped.model``) that changes its model
# cannot change another env's. Bounded: the least recently used entry goes first.
_MODEL_CACHE: OrderedDict[tuple[str, str], WorldModel] = OrderedDict()
MODEL_CACHE_SIZE = 4  # distinct (file content, device) pairs kept; a shipped world is 1.5-6.5 MB


def _as_float32(x: Any) -> Any:
    """Reduced-precision floating tensors (also inside tuples, lists and dicts) back to float32."""
    if torch.is_tensor(x):
        return x.float() if x.is_floating_point() and x.dtype != torch.float32 else x
    if isinstance(x, dict):
        return {k: _as_float32(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_as_float32(v) for v in x)
    return x


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_model(checkpoint: str | os.PathLike | None, model: WorldModel | None, device: str | torch.device,
               env_id: str = "GlassWorld-v0", allow_unhealthy: bool = False) -> WorldModel:
    """The world model of an env: ``model`` when given (used as is, shared with the caller), else the checkpoint.

    A checkpoint is read once per content and device (:data:`_MODEL_CACHE`, keyed by the file's sha256, so an
    edited file is reloaded and a renamed copy is not); every call returns a fresh deep copy of the cached model.
    A world whose model card records failed health checks raises
    :class:`worldmodel.health.UnhealthyWorldError` naming the problems, unless ``allow_unhealthy``; one never
    checked logs a warning.
    """
    if model is not None:
        missing = missing_members(model)
        if missing:
            raise TypeError(f"model must implement worldmodel.api.WorldModel, got {type(model).__name__} "
                            f"(it lacks {', '.join(missing)})")
        _check_health(model, env_id, allow_unhealthy)
        return model
    if checkpoint is None:
        raise ValueError(f"{env_id} needs a world model: gym.make({env_id!r}, checkpoint='path/to/model.pt') "
                         "(train one with `glassworld train ...`)")
    path = Path(checkpoint).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{env_id}: checkpoint {path} does not exist; pass checkpoint=PATH of a model "
                                "trained with `glassworld train ...`")
    dev = resolve_device(device)
    key = (_file_hash(path), str(dev))
    if key not in _MODEL_CACHE:
        from worldmodel.models import load_world_model

        log.info("loading world model %s on %s", path, dev)
        _MODEL_CACHE[key] = load_world_model(path, dev)
        while len(_MODEL_CACHE) > MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
    _MODEL_CACHE.move_to_end(key)
    _check_health(_MODEL_CACHE[key], f"{env_id} ({path.name})", allow_unhealthy)
    return copy.deepcopy(_MODEL_CACHE[key])


def _check_health(model: WorldModel, name: str, allow_unhealthy: bool) -> None:
    """Refuse an unhealthy world (see :func:`worldmodel.health.require_healthy`); warn about an unchecked one."""
    from worldmodel.health import require_healthy

    card = getattr(model, "metadata", None)
    health = require_healthy(card, name, allow_unhealthy)
    if health is None and card:  # a trained model's card without health checks (test models have no card)
        log.warning("%s was never health-checked (its model card has no 'health'); `glassworld eval` checks it", name)
    elif health is not None and not health.get("healthy", False):
        log.warning("%s is UNHEALTHY (allow_unhealthy=True): %s", name, "; ".join(health.get("problems", [])))


def to_uint8_hwc(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float in [0, 1] or uint8 -> (N, H, W, 3) uint8 (same device)."""
    if frames.dtype != torch.uint8:
        frames = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
    return frames.permute(0, 2, 3, 1).contiguous()  # (N, H, W, 3)


# ------------------------------------------------------------------------------------------------
# the dream's transition and the batched core
# ------------------------------------------------------------------------------------------------
class DreamStep:
    """One dream transition as a pure function of batched states: the step every dream env takes and the step the
    planner (:class:`agents.planner.CEMPlanner`) imagines with, so both see the same model call at the same
    precision, the same agent locator (:func:`worldmodel.metrics.locate_agent`) and the same reward.

    Args:
        model: the world model; task: the task that scores the transition.
        precision: "float32" | "bfloat16" (the model runs under autocast; its outputs come back as float32).
    """

    def __init__(self, model: WorldModel, task: Task, precision: str = "float32") -> None:
        check_precision(precision)
        self.model, self.task, self.precision = model, task, precision
        self.device = torch.device(model.device)

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``; with ``precision="bfloat16"`` under bfloat16 autocast, its outputs turned back
        to float32 (the env's state and frames stay float32)."""
        if self.precision == "float32":
            return fn(*args, **kwargs)
        with autocast(self.device, self.precision):
            return _as_float32(fn(*args, **kwargs))

    @torch.no_grad()
    def __call__(self, state: State, task_state: TaskState, action: torch.Tensor,
                 generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, State, torch.Tensor, torch.Tensor, TaskState]:
        """Advance B episodes by one frame.

        Args:
            state, task_state: (B, ...) world-model and task states; action: (B, 2) long (shift, code).
        Returns:
            frame (B, 3, H, W) float (unclamped), mask (B, 1, H, W), next state, reward (B,) float32,
            terminated (B,) bool, next task state.
        """
        frame, mask, state = self.call(self.model.step, state, action[:, 0], action[:, 1], generator=generator)
        pos, visible = locate_agent(mask)
        reward, terminated, task_state = self.task.step(task_state, pos, visible)
        return frame, mask, state, reward, terminated, task_state


class DreamCore:
    """N dream episodes as tensors on the model's device.

    Attributes:
        model_state: the world model's state, every tensor (N, ...).
        task_state: the task's state, every tensor (N, ...).
        frames: (N, H, W, 3) uint8, the last model frame of each env (without the task marker).
        masks: (N, 1, H, W) float, the last agent mask.
    ``observation``: "rgb" (the frames) or "mask" (the masks as grey images); the task marker is drawn on either.
    """

    def __init__(self, model: WorldModel, task: Task, num_envs: int, precision: str = "float32",
                 observation: str = "rgb") -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        check_observation_mode(observation)
        self.observation_mode = observation
        self.transition = DreamStep(model, task, precision)
        self.model, self.task, self.num_envs = model, task, int(num_envs)
        self.device = torch.device(model.device)
        self.precision = precision
        self.generator = torch.Generator(device=self.device)
        self.height, self.width = int(model.height), int(model.width)
        self.model_state: State = {}
        self.task_state: TaskState = {}
        self.frames = torch.zeros(num_envs, self.height, self.width, 3, dtype=torch.uint8, device=self.device)
        self.masks = torch.zeros(num_envs, 1, self.height, self.width, device=self.device)
        self.bank_index = np.full(num_envs, -1, dtype=np.int64)
        self.last_model_frames: torch.Tensor | None = None
        self.is_success = torch.zeros(num_envs, dtype=torch.bool, device=self.device)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` at the env's precision (:meth:`DreamStep.call`)."""
        return self.transition.call(fn, *args, **kwargs)

    # -- seeding and start frames ----------------------------------------------------------------
    def seed(self, rng: np.random.Generator) -> None:
        """Seed the model-noise generator from the env's numpy generator."""
        self.generator.manual_seed(int(rng.integers(0, 2**63 - 1)))

    def _start_frames(self, k: int, rng: np.random.Generator, frame: Any) -> tuple[torch.Tensor, np.ndarray]:
        """k start frames (k, 3, H, W) uint8 on the device and their bank indices (-1 = given frame)."""
        bank = self.model.start_frames
        n_bank = 0 if bank is None else int(bank.shape[0])
        if frame is None:
            if n_bank == 0:
                raise ValueError("this world model has no start frames (its checkpoint's env_info.start_frames is "
                                 "empty); pass reset(options={'frame': uint8 HxWx3 array})")
            idx = rng.integers(0, n_bank, size=k)
            return bank[torch.as_tensor(idx)].to(self.device), idx
        arr = np.asarray(frame)
        if arr.dtype.kind in "iu" and arr.ndim <= 1:  # bank index (or one per env)
            idx = np.broadcast_to(arr.astype(np.int64), (k,)).copy() if arr.size in (1, k) else None
            if idx is None or (idx < 0).any() or (idx >= n_bank).any():
                raise ValueError(f"options['frame'] as a bank index must be in [0, {n_bank}) (one, or one per env), "
                                 f"got {arr.tolist()}")
            return bank[torch.as_tensor(idx)].to(self.device), idx
        hw3 = (self.height, self.width, 3)
        if arr.dtype != np.uint8 or not (arr.shape == hw3 or arr.shape == (k, *hw3)):
            raise ValueError(f"options['frame'] must be a uint8 array of shape {hw3} (or ({k}, {hw3[0]}, {hw3[1]}, 3)"
                             f") or a start-bank index, got {arr.dtype} {arr.shape}")
        arr = np.array(np.broadcast_to(arr, (k, *hw3)))  # a writable copy: torch refuses read-only views
        t = torch.from_numpy(arr).to(self.device).permute(0, 3, 1, 2)  # (k, 3, H, W)
        return t.contiguous(), np.full(k, -1, dtype=np.int64)

    def _initial_masks(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Agent masks (k, 1, H, W), positions (k, 2) and visibility (k,) in start frames (k, 3, H, W) uint8.

        From the model's ``segment`` when it has one; otherwise empty masks (position unknown until the first
        step's mask; the first reward is then 0).
        """
        segment = getattr(self.model, "segment", None)
        if segment is None:
            mask = torch.zeros(frames.shape[0], 1, self.height, self.width, device=self.device)
        else:
            mask = segment(frames[:, None].float() / 255.0)[:, 0].float()  # (k, 1, H, W)
        pos, visible = locate_agent(mask)
        return mask, pos, visible

    # -- reset and step --------------------------------------------------------------------------
    @torch.no_grad()
    def reset(self, rng: np.random.Generator, rows: torch.Tensor | None = None,
              options: dict[str, Any] | None = None) -> None:
        """Start new episodes in ``rows`` (k,) long (None = all envs) from start frames.

        ``options``: ``{"frame": uint8 (H, W, 3) | (k, H, W, 3) | bank index | (k,) indices,
        "target": (2,) | (k, 2) px}``.
        """
        options = dict(options or {})
        unknown = sorted(set(options) - {"frame", "target"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; known: 'frame', 'target'")
        k = self.num_envs if rows is None else int(rows.numel())
        if k == 0:
            return
        frames, bank_idx = self._start_frames(k, rng, options.get("frame"))
        sub_state = self._call(self.model.start, frames)
        masks, pos, visible = self._call(self._initial_masks, frames)
        target = options.get("target")
        if target is not None:
            target = torch.as_tensor(np.asarray(target, dtype=np.float32), device=self.device).reshape(-1, 2)
            target = target.expand(k, 2)
        sub_task = self.task.init(pos, visible, rng, target)
        sub_frames = frames.permute(0, 2, 3, 1).contiguous()  # (k, H, W, 3)
        if rows is None:
            self.model_state, self.task_state, self.frames, self.masks = sub_state, sub_task, sub_frames, masks
            self.is_success = torch.zeros_like(self.is_success)
            self.bank_index = bank_idx
            return
        self.model_state = put_rows(self.model_state, rows, sub_state)
        self.task_state = put_rows(self.task_state, rows, sub_task)
        self.frames = self.frames.index_copy(0, rows, sub_frames)
        self.masks = self.masks.index_copy(0, rows, masks)
        self.is_success = self.is_success.index_fill(0, rows, False)
        self.bank_index[rows.cpu().numpy()] = bank_idx

    @torch.no_grad()
    def step(self, action: torch.Tensor, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance envs ``rows`` (k,) (None = all) by one frame in one batched model call.

        Args:
            action: (N, 2) long (shift index, code index) on the device (rows outside ``rows`` are ignored).
        Returns:
            reward (N,) float32 and terminated (N,) bool (0 / False outside ``rows``).
        """
        n = self.num_envs
        reward = torch.zeros(n, device=self.device)
        terminated = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.last_model_frames = None
        if rows is not None and rows.numel() == 0:
            return reward, terminated
        if rows is None:
            state, ts, act = self.model_state, self.task_state, action
        else:
            state, ts = take_rows(self.model_state, rows), take_rows(self.task_state, rows)
            act = action.index_select(0, rows)
        frame, mask, state, r, term, ts = self.transition(state, ts, act, self.generator)
        self.last_model_frames = frame  # (k, 3, H, W) float, unclamped (for diagnostics)
        success = self.task.success(ts, term)
        frame_u8 = to_uint8_hwc(frame)
        if rows is None:
            self.model_state, self.task_state, self.frames, self.masks = state, ts, frame_u8, mask.float()
            self.is_success = success
            return r, term
        self.model_state = put_rows(self.model_state, rows, state)
        self.task_state = put_rows(self.task_state, rows, ts)
        self.frames = self.frames.index_copy(0, rows, frame_u8)
        self.masks = self.masks.index_copy(0, rows, mask.float())
        self.is_success = self.is_success.index_copy(0, rows, success)
        return reward.index_copy(0, rows, r), terminated.index_copy(0, rows, term)

    # -- observation and info --------------------------------------------------------------------
    def observation(self) -> torch.Tensor:
        """(N, H, W, 3) uint8 on the device: the last frames (or agent masks) with the task marker drawn in."""
        base = self.frames if self.observation_mode == "rgb" else mask_image(self.masks)
        return self.task.draw(base, self.task_state)

    def info_tensors(self) -> dict[str, torch.Tensor]:
        """Per-env info as tensors: the task's info, mask_area (N,) and is_success (N,) of the last step."""
        out = dict(self.task.info(self.task_state))
        out["mask_area"] = self.masks.mean(dim=(1, 2, 3))
        out["is_success"] = self.is_success
        if "keypoints" in self.model_state:  # keypoint models: (N, K, 3) = (x, y) px and intensity mu
            out["keypoints"] = self.model_state["keypoints"]
        return out


def _action_meanings(model: WorldModel) -> tuple[list[str], list[str]]:
    shifts = [str(s) for s in model.shift_names]
    codes = list(model.code_meanings) if model.code_meanings else [f"code {k}" for k in range(model.num_codes)]
    return shifts, [str(c) for c in codes]


def _spaces(model: WorldModel) -> tuple[spaces.Box, spaces.MultiDiscrete, np.ndarray]:
    n_shifts, k = int(model.shift_grid.shape[0]), int(model.num_codes)
    if n_shifts < 1 or k < 1:
        raise ValueError(f"world model has {n_shifts} shifts and {k} codes; both must be >= 1")
    if len(model.shift_names) != n_shifts:
        raise ValueError(f"world model has {n_shifts} shifts but {len(model.shift_names)} shift names")
    obs = spaces.Box(0, 255, (int(model.height), int(model.width), 3), np.uint8)
    act = spaces.MultiDiscrete([n_shifts, k])
    return obs, act, np.array([n_shifts, k], dtype=np.int64)


# ------------------------------------------------------------------------------------------------
# single env
# ------------------------------------------------------------------------------------------------
class GlassWorldEnv(CoreEdge, gym.Env):
    """## Description

    A game dreamed by a world model learned from unlabelled video (GLASS or the keypoint model): each step the
    model renders the next frame from the current one and a (global shift, local code) action. The agent is the
    object the model segmented as foreground; the task asks it to reach or track a target drawn into the frame.

    ## Action Space

    ``MultiDiscrete([n_shifts, K])``: ``(shift, code)``. ``shift`` indexes the model's shift grid (row 0 = no
    move, then at least the 8 directions, in pixels of content motion); ``code`` is one of the K local actions
    the model discovered (e.g. "swing"). ``env.unwrapped.action_meanings = (shift names, code names)``, with
    code names from the model's code meanings (e.g. "FIRE 81%") when it has them.

    ## Observation Space

    ``Box(0, 255, (H, W, 3), uint8)``: the dreamed RGB frame at the model's resolution, with the task's target
    drawn as a small magenta square ring (``task_kwargs={"draw_target": False}`` to leave it out). With
    ``observation="mask"`` the frame is replaced by the model's agent mask as a grey image (255 = agent): a policy
    trained on masks in the dream plays the real game on the same model's segmentation of real frames
    (:class:`envs.real.RealGameVectorEnv`), which closes the gap between dreamed and real pixels.

    ## Rewards

    Set by ``task``: ``reach`` (default) gives the decrease of the agent's distance to the target in units of 10%
    of the frame diagonal (plus ``success_bonus`` on arrival); ``track`` gives ``exp(-distance / scale)`` per
    step; ``none`` gives 0. The agent's position is where :func:`worldmodel.metrics.locate_agent` finds it in
    the model's own foreground mask (the centroid of the pixels above 0.5); an empty mask, or one covering more
    than half the frame, locates nothing: the last known position is kept and the step earns no distance reward.

    ## Starting State

    A real frame from the model's start bank (validation frames stored in the checkpoint), chosen uniformly with
    the env's seed; ``reset(options={"frame": uint8 HxWx3 array | bank index, "target": (x, y)})`` picks one.
    ``reach`` places the target where the agent really went in the training recordings from near its start
    (``targets="recorded"``, from the checkpoint's ``env_info``; at least ``min_start_distance`` away), or
    uniformly in the frame (``targets="uniform"``, the fallback for checkpoints without recorded positions).

    ## Episode End

    Terminated when the agent arrives within ``radius`` px of the target (``reach``); ``track`` and ``none``
    never terminate. Truncation comes from ``max_episode_steps`` of the registration (TimeLimit): ``truncated``
    is True on the last allowed step even when that step also terminates (the vector env follows the same rule).
    ``info`` holds ``position``, ``target``, ``distance``, ``position_known``, ``mask_area`` and ``is_success``;
    with a keypoint model also ``keypoints`` (K, 3): each keypoint's (x, y) in frame pixels and its intensity.

    ## Arguments

    ``gym.make("GlassWorld-v0", checkpoint=PATH, task="reach", task_kwargs=None, device="cpu",
    render_mode=None, precision="float32", observation="rgb", allow_unhealthy=False)``; ``model=`` accepts an
    already loaded :class:`worldmodel.api.WorldModel` instead of a path. ``render_mode``: ``"rgb_array"`` or
    ``"human"`` (a pygame window; needs pygame). A world whose model card records failed health checks
    (:mod:`worldmodel.health`: agent not found, generation no better than a frozen frame, a broken shift grid)
    raises :class:`worldmodel.health.UnhealthyWorldError` naming the problems unless ``allow_unhealthy=True``.
    ``precision="bfloat16"`` runs the model under bfloat16 autocast (faster on CPUs with AVX512-BF16 and on GPUs;
    frames differ from float32 by about one grey level). ``render_scale``: the human window's zoom (default 4,
    as the vector env with one env).

    ## Version History

    * v0: initial version. Since then (same id): the agent locator rejects masks flooding the frame, and a
      step that terminates on the time limit is also truncated in the vector env.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": RENDER_FPS}

    def __init__(self, checkpoint: str | os.PathLike | None = None, *, model: WorldModel | None = None,
                 task: str = "reach", task_kwargs: dict[str, Any] | None = None, device: str = "cpu",
                 render_mode: str | None = None, render_scale: int | None = None, precision: str = "float32",
                 observation: str = "rgb", allow_unhealthy: bool = False) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.config = DreamConfig(task=task, task_kwargs=task_kwargs, device=device,
                                  checkpoint=None if model is not None or checkpoint is None else str(checkpoint),
                                  precision=precision, observation=observation, allow_unhealthy=allow_unhealthy)
        self.model = load_model(checkpoint, model, device, allow_unhealthy=allow_unhealthy)
        self.task = task_for_model(task, self.model, task_kwargs)
        self.observation_space, self.action_space, self._nvec = _spaces(self.model)
        self.action_meanings = _action_meanings(self.model)
        self.render_mode = render_mode
        self.render_scale = default_render_scale(1) if render_scale is None else int(render_scale)
        self.core = DreamCore(self.model, self.task, 1, precision, observation)
        self._obs: np.ndarray | None = None
        self._window: PygameWindow | None = None

    def _info(self, terminated: torch.Tensor | None = None) -> dict[str, Any]:
        info = infos_to_numpy(self.core.info_tensors())
        out: dict[str, Any] = {}
        for k, v in info.items():
            row = v[0]
            out[k] = row if row.ndim else row.item()
        out["start_index"] = int(self.core.bank_index[0])
        return out

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._start_all(seed, options)  # the vector env's own reset (envs.vector.CoreEdge)
        self._obs = self.core.observation()[0].cpu().numpy()
        info = self._info()
        if self.render_mode == "human":
            self.render()
        return self._obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._obs is None:
            raise gym.error.ResetNeeded("call env.reset() before env.step()")
        act = check_actions(action, self._nvec, None)
        reward, terminated = self.core.step(torch.as_tensor(act[None], device=self.core.device))
        self._obs = self.core.observation()[0].cpu().numpy()
        info = self._info(terminated)
        if self.render_mode == "human":
            self.render()
        return self._obs, float(reward[0]), bool(terminated[0]), False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; gym.make(..., render_mode='rgb_array')")
            return None
        frame = self._obs if self._obs is not None else np.zeros(self.observation_space.shape, np.uint8)
        if self.render_mode == "rgb_array":
            return frame.copy()
        if self._window is None:
            self._window = PygameWindow("GlassWorld", self.render_scale, self.metadata["render_fps"])
        self._window.show(frame)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None


# ------------------------------------------------------------------------------------------------
# vector env
# ------------------------------------------------------------------------------------------------
class GlassWorldVectorEnv(TaskVectorEnv):
    """N dream episodes stepped together in one forward pass of the world model (see :class:`GlassWorldEnv`).

    The world-model and task states live on the model's device as ``(N, ...)`` tensors (:class:`DreamCore`);
    autoreset, truncation and infos follow :class:`envs.vector.TaskVectorEnv` (``autoreset_mode="next_step"``
    by default, ``"same_step"`` for SB3). Made by ``gym.make_vec("GlassWorld-v0", num_envs=N,
    vectorization_mode="vector_entry_point", checkpoint=PATH)``; other arguments as :class:`GlassWorldEnv`.
    """

    def __init__(self, num_envs: int = 1, checkpoint: str | os.PathLike | None = None, *,
                 model: WorldModel | None = None, task: str = "reach", task_kwargs: dict[str, Any] | None = None,
                 device: str = "cpu", render_mode: str | None = None, max_episode_steps: int | None = None,
                 autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP, render_scale: int | None = None,
                 precision: str = "float32", observation: str = "rgb", allow_unhealthy: bool = False) -> None:
        self.config = DreamConfig(task=task, task_kwargs=task_kwargs, device=device,
                                  checkpoint=None if model is not None or checkpoint is None else str(checkpoint),
                                  precision=precision, observation=observation, allow_unhealthy=allow_unhealthy)
        self.model = load_model(checkpoint, model, device, allow_unhealthy=allow_unhealthy)
        core = DreamCore(self.model, task_for_model(task, self.model, task_kwargs), num_envs, precision, observation)
        obs_space, act_space, _ = _spaces(self.model)
        self._setup(core, obs_space, act_space, _action_meanings(self.model), max_episode_steps, autoreset_mode,
                    render_mode, render_scale, f"GlassWorld x{num_envs}")
