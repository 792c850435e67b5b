"""Tasks: what an agent is asked to do inside a world (dream or real), i.e. the reward and the episode end.

A task is stateless: everything it remembers about an episode lives in a :data:`TaskState`, a dict of
``(N, ...)`` tensors on the device, one row per environment. This makes it cheap to reset finished
environments by mask (:func:`worldmodel.api.select_state`), to clone episodes for planning (repeat the rows),
and to share one task between the dream env, the real-game env and the planner.

The agent's position is measured the same way everywhere: :func:`worldmodel.metrics.locate_agent` on the agent's
foreground mask (the world model's own mask in the dream; RAM positions in the real game). An empty mask and a mask
flooding the frame locate nothing: the position stays the last known one and the step earns no distance reward.

Tasks: ``reach`` (a target placed at reset, by default a place the agent really went to from near its start in
the training recordings; reward = decrease of the distance to it; ends on arrival),
``track`` (a target that moves across the frame; reward = closeness to it; never ends by itself) and
``none`` (reward 0, never ends; for free play and data collection). A learned reward head is not included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from worldmodel.metrics import locate_agent  # noqa: F401 - the one agent locator (re-exported for envs)

TaskState = dict[str, torch.Tensor]  # every tensor has the env dimension first

# Colour of the target marker drawn into observations (RGB, uint8): magenta, rare in both games.
MARKER_COLOR = (255, 0, 255)
# What an observation shows under the marker: the world's RGB frame, or the agent mask as a grey image.
OBSERVATION_MODES = ("rgb", "mask")
# Where reach/track targets may lie: both axes, the agent's start row ("x"), its column ("y"), or "auto": the axes
# the world's shift grid moves the agent along (:func:`moving_axes`).
TARGET_AXES = ("auto", "xy", "x", "y")


def check_observation_mode(mode: str) -> None:
    if mode not in OBSERVATION_MODES:
        raise ValueError(f"observation must be one of {OBSERVATION_MODES}, got {mode!r} (observation=rgb|mask)")


def mask_image(mask: torch.Tensor) -> torch.Tensor:
    """Agent masks (N, 1, H, W) in [0, 1] -> grey uint8 images (N, H, W, 3) (255 = agent)."""
    grey = (mask[:, 0].float().clamp(0, 1) * 255).round().to(torch.uint8)  # (N, H, W)
    return grey[..., None].expand(*grey.shape, 3).contiguous()


@dataclass
class ReachConfig:
    """``reach``: walk the agent to a target placed at reset."""

    radius: float = 6.0  # px: arrival distance (≈ half an agent's width at 96x128)
    # "recorded": a place the agent really went to in the training recordings, 1..64 steps after being near
    # (within match_radius of) where this episode starts (the checkpoint's env_info reach_from / reach_to); a
    # checkpoint without them falls back to "uniform": anywhere in the frame minus the margin
    targets: str = "recorded"
    match_radius: float = 8.0  # px: recorded starts this close to the episode's start count as "from here"
    margin: float = 8.0  # px: uniform targets are placed at least this far from the frame border
    min_start_distance: float = 24.0  # px: targets closer than this to the agent's start are avoided
    target_axes: str = "auto"  # "x": targets on the agent's start row; "auto": the axes the world's shift grid moves
    reward_scale: float = 0.0  # px per reward unit; 0 = 10% of the frame diagonal
    success_bonus: float = 0.0  # added on arrival (0 = pure distance shaping)
    draw_target: bool = True  # draw the target marker into the observation (the policy must see it)


@dataclass
class TrackConfig:
    """``track``: keep the agent on a target that glides across the frame and bounces off the borders."""

    radius: float = 6.0  # px: "on target" distance (info["on_target"])
    margin: float = 8.0  # px: the target stays this far inside the frame
    speed: float = 1.5  # px per step
    target_axes: str = "auto"  # "x": glides along the agent's start row; "y": its column; "auto": see ReachConfig
    reward_scale: float = 0.0  # px; 0 = 10% of the frame diagonal; reward = exp(-distance / scale)
    draw_target: bool = True


@dataclass
class NoneConfig:
    """``none``: no reward, no episode end."""

    draw_target: bool = False


class Task:
    """Base class: reward and episode end as batched tensor functions (see the module docstring)."""

    name = "base"
    config_cls: type = NoneConfig

    def __init__(self, height: int, width: int, cfg: Any = None,
                 places: tuple[torch.Tensor, torch.Tensor] | None = None,
                 shift_grid: torch.Tensor | None = None) -> None:
        self.height, self.width = int(height), int(width)
        self.cfg = cfg if cfg is not None else self.config_cls()
        if getattr(self.cfg, "target_axes", None) == "auto":  # the axes the world's grid moves (no grid: both)
            self.cfg = replace(self.cfg, target_axes=moving_axes(shift_grid))
        # recorded (start, later) agent positions, (M, 2) px each (the world model's ``reach_places``)
        self.places = places
        diag = math.hypot(self.height, self.width)
        scale = getattr(self.cfg, "reward_scale", 0.0)
        self.reward_scale = float(scale) if scale and scale > 0 else 0.1 * diag

    # -- to override ------------------------------------------------------------------------------
    def _sample_target(self, pos: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """(N, 2) targets for agents at ``pos`` (N, 2)."""
        return pos.clone()

    def _init_extra(self, target: torch.Tensor, rng: np.random.Generator) -> TaskState:
        return {}

    def _advance_target(self, ts: TaskState) -> TaskState:
        return ts

    def _reward(self, ts: TaskState, dist_prev: torch.Tensor, dist: torch.Tensor,
                known_prev: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros_like(dist)
        return z, torch.zeros_like(known)

    # -- shared -----------------------------------------------------------------------------------
    def init(self, pos: torch.Tensor, visible: torch.Tensor, rng: np.random.Generator,
             target: torch.Tensor | None = None) -> TaskState:
        """Start N episodes.

        Args:
            pos: (N, 2) agent positions (x, y) px; visible: (N,) bool (False = position unknown).
            rng: numpy generator for random targets (the env's ``np_random``).
            target: optional (N, 2) targets to use instead of sampling.
        """
        pos = pos.float()
        if target is None:
            target = self._sample_target(pos, rng)
        target = target.to(pos).reshape(-1, 2)
        ts: TaskState = {
            "pos": pos,
            "known": visible.bool(),
            "target": target,
            "dist": torch.linalg.vector_norm(pos - target, dim=1),
            "steps": torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device),
        }
        ts.update(self._init_extra(target, rng))
        return ts

    def step(self, ts: TaskState, pos: torch.Tensor, visible: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, TaskState]:
        """Score one transition.

        Args:
            ts: the task state before the step.
            pos: (N, 2) agent position after the step; visible: (N,) bool (False: keep the last known one).
        Returns:
            reward (N,) float32, terminated (N,) bool, next task state.
        """
        new = self._advance_target(dict(ts))
        visible = visible.bool()
        pos = torch.where(visible[:, None], pos.float(), ts["pos"])
        known = ts["known"] | visible
        dist = torch.linalg.vector_norm(pos - new["target"], dim=1)
        reward, terminated = self._reward(new, ts["dist"], dist, ts["known"], known)
        new.update(pos=pos, known=known, dist=dist, steps=ts["steps"] + 1)
        return reward.float(), terminated.bool(), new

    def info(self, ts: TaskState) -> dict[str, torch.Tensor]:
        """Per-env info tensors: position (N, 2), target (N, 2), distance (N,), position_known (N,)."""
        return {"position": ts["pos"], "target": ts["target"], "distance": ts["dist"],
                "position_known": ts["known"]}

    def success(self, ts: TaskState, terminated: torch.Tensor) -> torch.Tensor:
        """(N,) bool: did the episode that just ended succeed? (reach: terminated = arrived)."""
        return terminated.bool()

    def marker_offsets(self) -> torch.Tensor | None:
        """(P, 2) integer (dx, dy) pixel offsets of the target marker, or None when nothing is drawn.

        A hollow square ring of half-size ``max(2, radius / 2)`` around the target, plus its centre pixel.
        """
        if not getattr(self.cfg, "draw_target", False):
            return None
        r = int(round(max(2.0, float(getattr(self.cfg, "radius", 4.0)) * 0.5)))
        d = torch.arange(-r, r + 1)
        dy, dx = torch.meshgrid(d, d, indexing="ij")
        ring = (torch.maximum(dx.abs(), dy.abs()) == r) | ((dx == 0) & (dy == 0))
        return torch.stack([dx[ring], dy[ring]], dim=1)  # (P, 2)

    def draw(self, frames: torch.Tensor, ts: TaskState) -> torch.Tensor:
        """Paint the task marker into uint8 frames (N, H, W, 3); returns a new tensor (or the input)."""
        offsets = self.marker_offsets()
        if offsets is None:
            return frames
        n, h, w, _ = frames.shape
        pts = ts["target"].round().long()[:, None, :] + offsets.to(frames.device)[None]  # (N, P, 2)
        x, y = pts[..., 0], pts[..., 1]
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)  # (N, P)
        flat = (torch.arange(n, device=frames.device)[:, None] * (h * w) + y * w + x)[inside]  # (M,)
        out = frames.reshape(n * h * w, 3).clone()
        out[flat] = torch.tensor(MARKER_COLOR, dtype=frames.dtype, device=frames.device)
        return out.view(n, h, w, 3)

    def _uniform_points(self, pos: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
        """(N, k, 2) points uniform in the frame minus ``cfg.margin``; fixed axes copy the agent's ``pos`` (N, 2)."""
        m = float(getattr(self.cfg, "margin", 0.0))
        lo = np.array([min(m, (self.width - 1) / 2), min(m, (self.height - 1) / 2)])
        hi = np.array([self.width - 1, self.height - 1]) - lo
        u = rng.random((pos.shape[0], k, 2))
        pts = torch.as_tensor(lo + u * (hi - lo), dtype=torch.float32, device=pos.device)
        for axis, name in enumerate("xy"):
            if name not in self.cfg.target_axes:
                pts[..., axis] = pos[:, None, axis]
        return pts


class NoTask(Task):
    name = "none"
    config_cls = NoneConfig


class ReachTask(Task):
    """Reach a target sampled at reset (see :class:`ReachConfig`)."""

    name = "reach"
    config_cls = ReachConfig

    def _sample_target(self, pos: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.cfg.targets == "recorded" and self.places is not None:
            return self._recorded_target(pos, rng)
        k = 8  # candidates per env; keep the first far enough from the start, else the farthest
        cand = self._uniform_points(pos, k, rng)  # (N, k, 2)
        d = torch.linalg.vector_norm(cand - pos[:, None], dim=2)  # (N, k)
        ok = d >= self.cfg.min_start_distance
        first_ok = torch.argmax(ok.float(), dim=1)  # first True (0 when none)
        idx = torch.where(ok.any(dim=1), first_ok, torch.argmax(d, dim=1))
        return cand[torch.arange(pos.shape[0], device=pos.device), idx]

    def _recorded_target(self, pos: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """(N, 2) targets: the later position of a random recorded pair that starts within ``match_radius`` of
        ``pos`` (N, 2) and ends at least ``min_start_distance`` away; without one, the far-enough pair whose start
        is nearest; without any far-enough pair, the pair that ends farthest away."""
        src, dst = (t.to(pos.device) for t in self.places)  # (M, 2) each
        d_start = torch.cdist(pos, src)  # (N, M)
        d_goal = torch.cdist(pos, dst)  # (N, M)
        far = d_goal >= self.cfg.min_start_distance
        near = d_start <= self.cfg.match_radius
        u = torch.as_tensor(rng.random(tuple(d_start.shape)), dtype=pos.dtype, device=pos.device)
        diag = math.hypot(self.height, self.width)
        # scores: eligible pairs in [2, 3) (random among them), far-only in [0, 1] (nearest start best),
        # the rest in [-1, 0) (farthest end best)
        score = torch.where(far & near, 2.0 + u, torch.where(far, 1.0 - d_start / diag, d_goal / diag - 1.0))
        target = dst[score.argmax(dim=1)].clone()  # (N, 2)
        for axis, name in enumerate("xy"):
            if name not in self.cfg.target_axes:
                target[:, axis] = pos[:, axis]
        return target

    def _reward(self, ts, dist_prev, dist, known_prev, known):
        arrived = known & (dist <= self.cfg.radius)
        shaped = torch.where(known_prev & known, (dist_prev - dist) / self.reward_scale, torch.zeros_like(dist))
        return shaped + self.cfg.success_bonus * arrived.float(), arrived


class TrackTask(Task):
    """Follow a target gliding at constant speed and bouncing off the borders (see :class:`TrackConfig`)."""

    name = "track"
    config_cls = TrackConfig

    def _sample_target(self, pos: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return self._uniform_points(pos, 1, rng)[:, 0]

    def _init_extra(self, target: torch.Tensor, rng: np.random.Generator) -> TaskState:
        angle = torch.as_tensor(rng.random(target.shape[0]) * 2 * math.pi, dtype=torch.float32,
                                device=target.device)
        vel = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (N, 2)
        for axis, name in enumerate("xy"):
            if name not in self.cfg.target_axes:
                vel[:, axis] = 0.0
        vel = vel / torch.linalg.vector_norm(vel, dim=1, keepdim=True).clamp_min(1e-6) * self.cfg.speed
        return {"velocity": vel}

    def _advance_target(self, ts: TaskState) -> TaskState:
        m = float(self.cfg.margin)
        lo = torch.tensor([min(m, (self.width - 1) / 2), min(m, (self.height - 1) / 2)], device=ts["target"].device)
        hi = torch.tensor([self.width - 1.0, self.height - 1.0], device=lo.device) - lo
        t = ts["target"] + ts["velocity"]
        over, under = t > hi, t < lo
        t = torch.where(over, 2 * hi - t, torch.where(under, 2 * lo - t, t))  # reflect at the borders
        v = torch.where(over | under, -ts["velocity"], ts["velocity"])
        ts["target"], ts["velocity"] = torch.minimum(torch.maximum(t, lo), hi), v
        return ts

    def _reward(self, ts, dist_prev, dist, known_prev, known):
        reward = torch.where(known, torch.exp(-dist / self.reward_scale), torch.zeros_like(dist))
        return reward, torch.zeros_like(known)

    def info(self, ts: TaskState) -> dict[str, torch.Tensor]:
        out = super().info(ts)
        out["on_target"] = ts["known"] & (ts["dist"] <= self.cfg.radius)
        return out

    def success(self, ts: TaskState, terminated: torch.Tensor) -> torch.Tensor:
        return ts["known"] & (ts["dist"] <= self.cfg.radius)


TASKS: dict[str, type[Task]] = {"reach": ReachTask, "track": TrackTask, "none": NoTask}


def moving_axes(shift_grid: torch.Tensor | np.ndarray | None, min_step: float = 0.5) -> str:
    """The axes a world's global actions move the agent along: "xy", "x" or "y".

    shift_grid: (n_shifts, 2) px (dx, dy). An axis counts when some row steps at least ``min_step`` px along it
    (the world command zeroes the axes the agent never moves along in the data: Breakout's paddle gets "x");
    no grid, or a grid that moves nothing, gives "xy".
    """
    if shift_grid is None:
        return "xy"
    step = torch.as_tensor(shift_grid, dtype=torch.float32).abs().reshape(-1, 2).amax(0)  # (2,) px
    return "".join(a for a, s in zip("xy", step.tolist()) if s >= min_step) or "xy"


def make_task(name: str, height: int, width: int, kwargs: dict[str, Any] | None = None,
              places: tuple[torch.Tensor, torch.Tensor] | None = None,
              shift_grid: torch.Tensor | None = None) -> Task:
    """Build a task by name with config overrides (``task_kwargs``), with one clear error for bad input.

    ``places``: recorded (start, later) agent positions, (M, 2) px each, for ``reach``'s recorded targets
    (a world model's ``reach_places``). ``shift_grid``: the world's (n_shifts, 2) px grid, which resolves
    ``target_axes="auto"`` (:func:`moving_axes`; without it "auto" means "xy").
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)} (task=NAME)")
    cls = TASKS[name]
    known = {f.name for f in fields(cls.config_cls)}
    kwargs = dict(kwargs or {})
    bad = sorted(set(kwargs) - known)
    if bad:
        raise ValueError(f"task {name!r} has no option(s) {bad}; its options are {sorted(known)}")
    axes = kwargs.get("target_axes", "auto")
    if axes not in TARGET_AXES:
        raise ValueError(f"target_axes must be one of {TARGET_AXES}, got {axes!r}")
    if name == "reach" and kwargs.get("targets", "recorded") not in ("recorded", "uniform"):
        raise ValueError(f"reach targets must be 'recorded' or 'uniform', got {kwargs['targets']!r}")
    return cls(height, width, cls.config_cls(**kwargs), places, shift_grid)


def task_for_model(name: str, model: Any, kwargs: dict[str, Any] | None = None) -> Task:
    """:func:`make_task` at a world model's frame size, with its recorded reach places (when it has them) and its
    shift grid (for ``target_axes="auto"``)."""
    return make_task(name, model.height, model.width, kwargs, getattr(model, "reach_places", None),
                     getattr(model, "shift_grid", None))
