"""Shared pieces of ``glassworld agent`` and ``glassworld agent-eval``: making envs and playing episodes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import envs  # registers the glassworld ids; envs.make_dream is the one dream factory
from envs.vector import TaskVectorEnv
from worldmodel.data.format import DatasetError, atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass
class DreamSpec:
    """Which dream to play: a registered id plus overrides (``configs/agent*.yaml`` top-level keys)."""

    env: str = "GlassWorld-v0"
    checkpoint: str | None = None  # required for GlassWorld-v0; overrides a shipped id's own file
    task: str | None = None  # None: the id's default (reach)
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None  # None: the id's registration
    device: str = "auto"
    observation: str = "rgb"  # rgb | mask: what the policy sees (envs.dream.GlassWorldEnv's observation)
    allow_unhealthy: bool = False  # play a world whose model card records failed health checks (worldmodel.health)


def make_dream(spec: DreamSpec, num_envs: int, autoreset_mode: str = "same_step") -> TaskVectorEnv:
    """The batched dream of ``spec`` (:func:`envs.make_dream`; one clear DatasetError for unknown ids and missing
    checkpoints)."""
    kwargs: dict[str, Any] = {"device": spec.device, "autoreset_mode": autoreset_mode}
    if spec.task:
        kwargs["task"] = spec.task
    if spec.task_kwargs:
        kwargs["task_kwargs"] = dict(spec.task_kwargs)
    if spec.max_episode_steps:
        kwargs["max_episode_steps"] = int(spec.max_episode_steps)
    if spec.observation != "rgb":
        kwargs["observation"] = spec.observation
    if spec.allow_unhealthy:
        kwargs["allow_unhealthy"] = True
    try:
        return envs.make_dream(spec.env, num_envs, checkpoint=spec.checkpoint or None, **kwargs)
    except (FileNotFoundError, ValueError) as e:
        raise DatasetError(str(e)) from None


def make_real_env(dream: Any, num_envs: int = 1, *, autoreset_mode: str = "same_step",
                  action_map: np.ndarray | None = None, learn_map: bool = True, mapping: Any = None,
                  game: str | None = None, render_mode: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The real ALE game behind a dream env (single or vector), and a description of its action map: the one
    real-env factory of agent-eval, the agent's real-game checks, the video and the viewer.

    The real env copies the dream's task (its name and options, an id's defaults included; ``target_axes="auto"``
    resolves to the same axes, from the model's shift grid), episode limit and observation mode. Its (shift, code) -> joystick map
    is ``action_map`` when given; else learned from labelled real transitions with ``mapping``
    (:class:`agents.mapping.MappingConfig`, cached beside the checkpoint) when ``learn_map``; else name-based.

    Returns:
        the env (:class:`envs.real.RealGameVectorEnv`) and ``{"source": "given" | "heuristic" | "learned",
        "table": [[joystick id]], ...}``. Raises ValueError when the model's card names no Atari game and
        ``game`` is not given.
    """
    from envs.real import RealGameVectorEnv

    from .mapping import MappingConfig, load_or_learn_action_map

    u = getattr(dream, "unwrapped", dream)
    model, dream_cfg = u.model, u.config
    limit = getattr(u, "max_episode_steps", None) or getattr(getattr(dream, "spec", None), "max_episode_steps", None)
    kw: dict[str, Any] = {"task": u.task.name, "task_kwargs": dream_cfg.task_kwargs or None,
                          "max_episode_steps": limit, "autoreset_mode": autoreset_mode, "game": game,
                          "observation": dream_cfg.observation, "render_mode": render_mode}
    if action_map is not None:
        real = RealGameVectorEnv.for_model(model, num_envs, action_map=np.asarray(action_map, dtype=np.int64), **kw)
        return real, {"source": "given", "table": real.action_map.tolist()}
    real = RealGameVectorEnv.for_model(model, num_envs, **kw)
    if not learn_map:
        return real, {"source": "heuristic", "table": real.action_map.tolist()}
    collector = RealGameVectorEnv.for_model(model, num_envs, **{**kw, "render_mode": None})
    try:
        amap = load_or_learn_action_map(model, collector, dream_cfg.checkpoint, mapping or MappingConfig())
    finally:
        collector.close()
    real.set_action_map(amap.table)
    for line in amap.describe(*u.action_meanings):
        log.debug("action map: %s", line)
    return real, amap.to_dict()


def episode_limit(venv: TaskVectorEnv) -> int | None:
    return getattr(venv, "max_episode_steps", None)


@dataclass
class EpisodeStats:
    """Results of :func:`run_episodes`."""

    episodes: int
    success_rate: float  # share of episodes that ended by arrival (reach) / on target at the end (track)
    mean_return: float
    std_return: float
    mean_length: float
    returns: list[float] = field(repr=False, default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "returns"} | {"returns": self.returns}


def run_episodes(venv: TaskVectorEnv, policy: Any, episodes: int, seed: int = 0,
                 deterministic: bool = True) -> EpisodeStats:
    """Play ``episodes`` episodes with ``policy.predict`` in a same-step-autoreset vector env (dream or real).

    Every env plays ``ceil(episodes / num_envs)`` episodes and the first ``episodes`` in env order are kept,
    so short episodes are not over-represented (as SB3's ``evaluate_policy``).
    """
    n = venv.num_envs
    per_env = -(-episodes // n)
    obs, _ = venv.reset(seed=seed)
    ret, length = np.zeros(n), np.zeros(n, dtype=np.int64)
    done_eps: list[list[tuple[float, bool, int]]] = [[] for _ in range(n)]
    if hasattr(policy, "reset"):
        policy.reset()
    while min(len(d) for d in done_eps) < per_env:
        action, _ = policy.predict(obs, deterministic=deterministic)
        obs, reward, term, trunc, info = venv.step(np.asarray(action, dtype=np.int64))
        ret += reward
        length += 1
        for i in np.flatnonzero(term | trunc):
            success = bool(info["final_info"]["is_success"][i])
            if len(done_eps[i]) < per_env:
                done_eps[i].append((float(ret[i]), success, int(length[i])))
            ret[i], length[i] = 0.0, 0
    flat = [e for d in done_eps for e in d][:episodes]
    r = np.array([e[0] for e in flat])
    return EpisodeStats(episodes=len(flat), success_rate=float(np.mean([e[1] for e in flat])),
                        mean_return=float(r.mean()), std_return=float(r.std()),
                        mean_length=float(np.mean([e[2] for e in flat])), returns=r.round(4).tolist())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=1) + "\n").encode())
