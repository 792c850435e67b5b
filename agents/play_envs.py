"""The envs and policies of ``glassworld play``: making the dream to play, the policy to watch and the real game
to show beside it (:class:`RealPane`), each with one clear :class:`PlayError` for bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .play_config import PlayConfig, PlayError

def _import_envs() -> Any:
    try:
        import envs  # registers the glassworld ids
    except ImportError as e:  # pragma: no cover - part of this package
        raise PlayError(f"glassworld play needs the envs package: {e}") from e
    return envs


def glassworld_ids() -> str:
    """One line per registered glassworld id, saying whether it can be played in this install."""
    envs = _import_envs()
    ready = set(envs.available_ids())
    lines = ["  GlassWorld-v0  (any checkpoint: checkpoint=PATH)"]
    for env_id, fname in envs.SHIPPED.items():
        state = "ready" if env_id in ready else f"missing {envs.CHECKPOINT_DIR / fname}"
        lines.append(f"  {env_id}  ({state})")
    return "registered glassworld ids:\n" + "\n".join(lines)


def make_env(cfg: PlayConfig) -> Any:
    """The env to play (render_mode rgb_array), made by the one dream factory (:func:`envs.make_dream`), with one
    clear :class:`PlayError` for bad input."""
    import gymnasium as gym

    envs = _import_envs()
    env_id = cfg.env or "GlassWorld-v0"
    kwargs: dict[str, Any] = {"render_mode": "rgb_array", "device": cfg.device}
    checkpoint = None
    if cfg.checkpoint:
        path = Path(cfg.checkpoint).expanduser()
        if not path.is_file():
            raise PlayError(f"checkpoint {path} does not exist; pass checkpoint=PATH of a model trained with "
                            f"`glassworld train ...`, or a ready id.\n{glassworld_ids()}")
        checkpoint = str(path.resolve())
    if cfg.task:
        kwargs["task"] = cfg.task
    if cfg.allow_unhealthy:
        kwargs["allow_unhealthy"] = True
    try:
        gym.spec(env_id)
    except gym.error.Error as e:
        raise PlayError(f"unknown env id {env_id!r} ({e}).\n{glassworld_ids()}") from None
    if env_id == "GlassWorld-v0" and checkpoint is None:
        raise PlayError(f"GlassWorld-v0 needs checkpoint=PATH (a model trained with `glassworld train`), or play a "
                        f"ready id.\n{glassworld_ids()}")
    try:
        env = envs.make_dream(env_id, checkpoint=checkpoint, **kwargs)
    except envs.MissingCheckpointError as e:
        raise PlayError(f"{e}\n{glassworld_ids()}") from None
    except (FileNotFoundError, ValueError) as e:
        raise PlayError(f"{env_id}: {e}") from None
    check_env_api(env)
    return env


def check_env_api(env: Any) -> tuple[list[str], list[str]]:
    """The env's (shift names, code names); a PlayError when it is not a glassworld (shift, code) env."""
    from gymnasium import spaces

    meanings = getattr(env.unwrapped, "action_meanings", None)
    space = env.action_space
    if (meanings is None or not isinstance(space, spaces.MultiDiscrete) or space.nvec.shape != (2,)
            or len(meanings) != 2 or len(meanings[0]) != int(space.nvec[0]) or len(meanings[1]) != int(space.nvec[1])):
        raise PlayError(f"{getattr(env.spec, 'id', env)} is not a glassworld env (it needs MultiDiscrete([n_shifts, "
                        f"K]) actions and env.unwrapped.action_meanings).\n{glassworld_ids()}")
    return [str(s) for s in meanings[0]], [str(c) for c in meanings[1]]


Policy = Callable[[np.ndarray, dict[str, Any]], np.ndarray]  # (obs (H, W, 3) uint8, info) -> action (2,) int


def _predictor(agent: Any) -> Policy:
    """An SB3-style agent (``predict(obs, deterministic=True) -> (action, state)``) as a :data:`Policy`."""
    return lambda obs, info: np.asarray(agent.predict(obs, deterministic=True)[0], dtype=np.int64).reshape(2)


def make_policy(spec: str, env: Any, seed: int | None = None) -> Policy:
    """``random`` | ``planner`` | PATH (a zip saved by ``glassworld agent``) -> a function (obs, info) -> action.

    ``random`` and ``planner`` are :class:`agents.planner.RandomPolicy` and :class:`agents.planner.CEMPlanner`
    (imagining in the env's own model); PATH is loaded as ``glassworld agent-eval`` loads it.
    """
    from agents.planner import CEMPlanner, RandomPolicy

    if spec == "random":
        return _predictor(RandomPolicy(np.asarray(env.action_space.nvec), seed=seed or 0))
    if spec == "planner":
        try:
            return _predictor(CEMPlanner(env))
        except (TypeError, ValueError) as e:
            raise PlayError(f"policy=planner: {e}") from None
    if not Path(spec).expanduser().is_file():
        raise PlayError(f"policy={spec!r}: no such file; use policy=PATH (a zip saved by `glassworld agent`), "
                        "planner or random")
    from agents.evaluate import EvalAgentConfig, load_policy

    try:
        agent = load_policy(str(Path(spec).expanduser()), env, None, EvalAgentConfig(policy=spec, seed=seed or 0))
    except ValueError as e:
        raise PlayError(f"policy={spec!r}: {e}") from None
    return _predictor(agent)


class RealPane:
    """A real-game env (single or a vector env of one) seen as a single env (observation (H, W, 3), info)."""

    def __init__(self, env: Any, name: str) -> None:
        self.env, self.name = env, name
        self.vector = hasattr(env, "num_envs")
        self.frame: np.ndarray | None = None
        self.info: dict[str, Any] = {}
        self.reward = 0.0

    def _single(self, obs: Any, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        if not self.vector:
            return np.asarray(obs), info
        one = {k: v[0] for k, v in info.items() if not k.startswith("_") and isinstance(v, np.ndarray)
               and v.shape[:1] == (1,)}
        return np.asarray(obs)[0], one

    def reset(self, target: Any = None) -> None:
        options = None if target is None else {"target": np.asarray(target, np.float32)}
        obs, info = self.env.reset(options=options)
        self.frame, self.info = self._single(obs, info)
        self.reward = 0.0

    def state_options(self) -> dict[str, np.ndarray]:
        """The real game's current screen (H, W, 3) uint8 without the target marker, and its target (2,) px when
        it has one: the ``reset(options=...)`` that starts a dream in the same state ({} when the env does not
        expose its frames)."""
        u = getattr(self.env, "unwrapped", self.env)
        frames = getattr(u, "frames", None)  # the agent interface's (N, H, W, 3) uint8
        if frames is None:
            return {}
        out = {"frame": np.asarray(frames[0].cpu() if hasattr(frames, "cpu") else frames[0], dtype=np.uint8)}
        target = (getattr(u, "task_state", None) or {}).get("target")
        if target is not None:
            out["target"] = np.asarray(target[0].cpu() if hasattr(target, "cpu") else target[0], np.float32)
        return out

    def step(self, action: np.ndarray) -> bool:
        a = np.asarray(action, dtype=np.int64)
        obs, r, term, trunc, info = self.env.step(a[None] if self.vector else a)
        self.frame, self.info = self._single(obs, info)
        self.reward = float(np.asarray(r).reshape(-1)[0])
        return bool(np.asarray(term).reshape(-1)[0] or np.asarray(trunc).reshape(-1)[0])

    def close(self) -> None:
        self.env.close()


def make_real_env(env: Any, game: str | None = None, learned_map: bool = True) -> Any:
    """The real ALE game behind a dream env, with the dream's spaces, task, episode limit and observation (1 env;
    :func:`agents.common.make_real_env`), or a PlayError saying why not.

    The (shift, code) -> joystick mapping is learned from labelled real transitions (cached beside the checkpoint)
    when ``learned_map``, else the name-based :func:`envs.real.heuristic_action_map`. The env's
    ``action_map_source`` says which.
    """
    if getattr(getattr(env, "unwrapped", env), "model", None) is None:
        raise PlayError("no real game for this env (it has no world model card to name one)")
    try:
        from agents.common import make_real_env as make_real

        real, amap = make_real(env, 1, autoreset_mode="next_step", learn_map=learned_map, game=game,
                               render_mode="rgb_array")
    except (ValueError, ImportError) as e:
        raise PlayError(f"no real game: {e}") from None
    real.action_map_source = "learned map" if amap["source"] == "learned" else "name-based map"
    return real
