"""``glassworld agent-eval``: play a policy in the dream and in the real game, and compare.

Usage (``key=value`` overrides of ``configs/agent_eval.yaml``)::

    glassworld agent-eval policy=runs/agent-ppo/policy.zip env=GlassWorld-v0 checkpoint=MODEL.pt episodes=32
    glassworld agent-eval policy=planner env=GlassTennis-v0 real=true episodes=16
    glassworld agent-eval policy=random env=GlassBreakout-v0 real=true +task_kwargs.target_axes=xy
    glassworld agent-eval policy=runs/agent-ppo/policy.zip env=GlassTennis-v0 real=true baseline=random

``policy``: a zip saved by ``glassworld agent`` (PPO or A2C), ``planner`` (:class:`agents.planner.CEMPlanner`
imagining in the model), ``random`` or ``greedy`` (:class:`agents.planner.GreedyPolicy`: steers straight at the
target from the true task state, the ceiling of what a policy can get out of a world); ``baseline=random`` also plays a second policy in the same envs, as a
reference column. With ``real=true`` the same policy plays the ALE game the model was
trained on (:class:`envs.real.RealGameVectorEnv`: same observation size, same task, agent position from RAM),
its (shift, code) actions turned into joystick actions by a map learned from labelled real transitions
(:mod:`agents.mapping`). Success rate and return are printed side by side for the dream and the real game.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.config import plain, settings
from worldmodel.data.format import DatasetError
from worldmodel.paths import portable_paths

from .common import DreamSpec, make_dream, run_episodes, write_json
from .common import make_real_env as make_real_env_for
from .planner import CEMPlanner, GreedyPolicy, PlannerConfig, RandomPolicy

log = logging.getLogger(__name__)


@dataclass
class MappingOptions:
    steps: int = 400
    clip_len: int = 8
    seed: int = 0


@dataclass
class PlannerOptions:
    horizon: int = 8
    population: int = 64
    elites: int = 8
    iterations: int = 3


@dataclass
class EvalAgentConfig:
    """``configs/agent_eval.yaml`` as a dataclass."""

    policy: str = "random"
    env: str = "GlassWorld-v0"
    checkpoint: str | None = None
    task: str | None = None
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    observation: str = "rgb"  # rgb | mask: what the policy sees, in the dream and the real game (as it was trained)
    allow_unhealthy: bool = False  # play in a world whose model card records failed health checks
    episodes: int = 16
    n_envs: int = 4
    deterministic: bool = True
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None = torch's default (1 is fastest on a busy machine)
    real: bool = False
    game: str | None = None
    action_map: str = "learned"
    mapping: MappingOptions = field(default_factory=MappingOptions)
    planner: PlannerOptions = field(default_factory=PlannerOptions)
    out: str | None = None
    baseline: str | None = None  # a second policy (random | planner | PATH) played in the same envs, for reference
    progress: bool = False  # tqdm bars of finished episodes (stderr)
    trust_policy: bool = False  # also load Stable-Baselines3 archives, which unpickle code: only files you trust

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalAgentConfig:
        d = dict(d)  # worldmodel.config.settings: an unknown key, in any section, names the nearest valid one
        mapping = settings(MappingOptions, dict(d.pop("mapping", None) or {}), "mapping")
        planner = settings(PlannerOptions, dict(d.pop("planner", None) or {}), "planner")
        d["task_kwargs"] = dict(d.get("task_kwargs") or {})
        cfg = settings(cls, d, mapping=mapping, planner=planner)
        if cfg.episodes < 1 or cfg.n_envs < 1:
            raise DatasetError("episodes and n_envs must be >= 1")
        if cfg.action_map not in ("learned", "heuristic"):
            raise DatasetError(f"action_map must be learned or heuristic, got {cfg.action_map!r}")
        return cfg

    def dream(self) -> DreamSpec:
        return DreamSpec(env=self.env, checkpoint=self.checkpoint, task=self.task, task_kwargs=self.task_kwargs,
                         max_episode_steps=self.max_episode_steps, device=self.device,
                         observation=self.observation, allow_unhealthy=self.allow_unhealthy)


def load_policy(name: str, venv: Any, model: Any, cfg: EvalAgentConfig) -> Any:
    """``random`` | ``planner`` | ``greedy`` | a policy zip from ``glassworld agent`` -> an object with ``predict``.

    Policy files load without running code (agents/policy_file.py); a Stable-Baselines3 archive from elsewhere is
    refused unless ``cfg.trust_policy``.
    """
    if name == "random":
        return RandomPolicy(venv.single_action_space.nvec, seed=cfg.seed)
    if name == "greedy":
        return GreedyPolicy(venv, model)
    if name == "planner":
        return CEMPlanner(venv, model=model, cfg=PlannerConfig(**dataclasses.asdict(cfg.planner), seed=cfg.seed))
    path = Path(name)
    if not path.is_file():
        raise DatasetError(f"policy {name!r} is neither random, planner, greedy nor a policy file (policy=PATH.zip)")
    from .policy_file import load_policy_file, read_spec

    spec = read_spec(path) or {}
    meta = {**_agent_json(path), **spec.get("meta", {})}
    trained_on = meta.get("observation", "rgb")
    if trained_on != cfg.observation:
        raise DatasetError(f"policy {path} was trained on observation={trained_on}; play it with "
                           f"observation={trained_on}, not {cfg.observation}")
    return load_policy_file(path, device="cpu", trust_sb3=cfg.trust_policy, algo=str(meta.get("algo", "ppo")))


def _agent_json(path: Path) -> dict[str, Any]:
    """The ``agent.json`` beside a policy zip (its training config: algo, observation, ...), or {}."""
    import json

    meta = path.parent / "agent.json"
    return dict(json.loads(meta.read_text())) if meta.is_file() else {}


class EpisodeProgress:
    """A vector env that advances a tqdm bar for every finished episode (delegates everything else).

    ``total``: the bar's length (episodes); ``desc``: its label; :meth:`done` closes the bar (not the env).
    """

    def __init__(self, venv: Any, total: int, desc: str, enabled: bool = True) -> None:
        from tqdm.auto import tqdm

        self.venv = venv
        self.bar = tqdm(total=total, desc=desc, unit="ep", leave=False, disable=None if enabled else True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.venv, name)

    def step(self, actions: Any) -> tuple[Any, ...]:
        out = self.venv.step(actions)
        done = int((out[2] | out[3]).sum())
        if done:
            self.bar.update(min(done, self.bar.total - self.bar.n))
        return out

    def done(self) -> None:
        self.bar.close()


def _play(venv: Any, policy: Any, cfg: EvalAgentConfig, desc: str) -> dict[str, Any]:
    """:func:`run_episodes` of ``policy`` in ``venv`` with an optional progress bar; the stats as a dict."""
    per_env = -(-cfg.episodes // venv.num_envs)
    env = EpisodeProgress(venv, per_env * venv.num_envs, desc, cfg.progress)
    try:
        return run_episodes(env, policy, cfg.episodes, cfg.seed, cfg.deterministic).to_dict()  # type: ignore[arg-type]
    finally:
        env.done()


def real_game_of(model: Any, game: str | None = None) -> str:
    """The playable real game of a world model (its checkpoint card's Atari game, or ``game``).

    Raises a ValueError saying why there is none: the card names no Atari game, or the game has no RAM agent
    position (tasks need one).
    """
    from envs.real import RealGameVectorEnv

    env = RealGameVectorEnv.for_model(model, 1, game=game, task="none")
    env.close()
    return env.game_config.game


def make_real_env(cfg: EvalAgentConfig, dream: Any, num_envs: int, autoreset_mode: str = "same_step",
                  action_map: np.ndarray | None = None) -> tuple[Any, dict[str, Any]]:
    """:func:`agents.common.make_real_env` with agent-eval's settings: the map is ``action_map`` when given, else
    per ``cfg.action_map`` learned (with ``cfg.mapping``) or name-based; the game is ``cfg.game`` when set."""
    from .mapping import MappingConfig

    m = cfg.mapping
    return make_real_env_for(dream, num_envs, autoreset_mode=autoreset_mode, action_map=action_map,
                             learn_map=cfg.action_map != "heuristic", game=cfg.game,
                             mapping=MappingConfig(steps=m.steps, clip_len=m.clip_len, seed=m.seed))


def evaluate(cfg: EvalAgentConfig) -> dict[str, Any]:
    """Play ``cfg.policy`` (and ``cfg.baseline``) in the dream, and in the real game when ``cfg.real``.

    Returns ``{"policy", "env", "task", "episodes", "max_episode_steps", "dream": stats, ["real_game",
    "action_map", "real": stats], ["baseline": {"policy", "dream": stats, ["real": stats]}]}`` with stats as
    :meth:`agents.common.EpisodeStats.to_dict`; also written to ``cfg.out`` when set.
    """
    if cfg.threads:
        import torch

        torch.set_num_threads(int(cfg.threads))
    dream = make_dream(cfg.dream(), cfg.n_envs, "same_step")
    model = dream.model
    results: dict[str, Any] = {"policy": cfg.policy, "env": cfg.env, "task": dream.task.name,
                               "episodes": cfg.episodes, "max_episode_steps": dream.max_episode_steps}
    names = [("policy", cfg.policy)] + ([("baseline", cfg.baseline)] if cfg.baseline else [])
    if cfg.baseline:
        results["baseline"] = {"policy": cfg.baseline}
    try:
        for key, name in names:
            log.info("dream: %d episodes of %s", cfg.episodes, name)
            stats = _play(dream, load_policy(name, dream, model, cfg), cfg, f"dream: {name}")
            (results if key == "policy" else results["baseline"])["dream"] = stats
        if cfg.real:
            real, amap = make_real_env(cfg, dream, cfg.n_envs)
            try:
                results["action_map"] = amap
                results["real_game"] = real.game_config.game
                for key, name in names:
                    log.info("real %s: %d episodes of %s", real.game_config.game, cfg.episodes, name)
                    stats = _play(real, load_policy(name, real, model, cfg), cfg, f"real: {name}")
                    (results if key == "policy" else results["baseline"])["real"] = stats
            finally:
                real.close()
    finally:
        dream.close()
    if cfg.out:
        write_json(Path(cfg.out), portable_paths(results))  # no machine paths in results people commit
    return results


def format_results(results: dict[str, Any]) -> str:
    """A table of the results of :func:`evaluate`: one column per (policy, world), baseline columns last."""
    cols = [("dream", results["dream"])] + ([("real", results["real"])] if "real" in results else [])
    base = results.get("baseline") or {}
    cols += [(f"{w} ({base['policy']})", base[w]) for w in ("dream", "real") if w in base]
    lines = [(f"policy {results['policy']} on {results['env']} (task {results['task']}, "
              f"{results['episodes']} episodes, limit {results['max_episode_steps']} steps)"),
             f"{'':>14}" + "".join(f"{name:>18}" for name, _ in cols)]
    for key, label, fmt in (("success_rate", "success rate", "{:.1%}"), ("mean_return", "mean return", "{:.3f}"),
                            ("std_return", "std return", "{:.3f}"), ("mean_length", "mean length", "{:.1f}")):
        lines.append(f"{label:>14}" + "".join(f"{fmt.format(s[key]):>18}" for _, s in cols))
    if "action_map" in results and "agreement" in results["action_map"]:
        am = results["action_map"]
        lines.append(f"action map: learned from {am['transitions']} real transitions, "
                     f"agreement {100 * am['agreement']:.1f}%")
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    from worldmodel.config import compose

    try:
        cfg = EvalAgentConfig.from_dict(plain(compose(list(argv), config_name="agent_eval")))
        results = evaluate(cfg)
    except (DatasetError, ValueError, FileNotFoundError) as e:
        print(f"glassworld agent-eval: error: {e}", file=sys.stderr)
        return 2
    print(format_results(results))
    return 0

