"""``glassworld agent``: train a Stable-Baselines3 agent (PPO or A2C) inside a dream.

Usage (``key=value`` overrides of ``configs/agent.yaml``)::

    glassworld agent env=GlassWorld-v0 checkpoint=runs/glass/checkpoint.pt algo=ppo n_envs=16 \\
        total_timesteps=200000 run_dir=runs/agent-ppo seed=0 device=auto
    glassworld agent env=GlassTennis-v0 task=track +task_kwargs.speed=2.0

The agent plays the batched dream through :class:`agents.sb3.SB3VecEnv` (one forward pass of the world model for
all ``n_envs`` per step). The run folder gets TensorBoard logs (``tb/``: SB3's rollout/train/time tags,
``eval/mean_reward`` and ``eval/success_rate``, the hyperparameters), periodic evaluations (``eval/``),
``best_model.zip``, the final ``policy.zip``, ``agent.json`` (the resolved config) and ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from worldmodel.data.format import DatasetError

from .common import DreamSpec, make_dream, run_episodes, to_plain, write_json

log = logging.getLogger(__name__)

ALGOS = ("ppo", "a2c")


@dataclass
class PolicyConfig:
    """SB3 hyperparameters (PPO uses all; A2C uses lr, n_steps, gamma, gae_lambda, ent_coef)."""

    features: str = "small"  # small (agents.sb3.SmallCNN, any frame size, CPU-friendly) | nature (NatureCNN)
    features_dim: int = 256
    lr: float = 3e-4
    n_steps: int = 128  # rollout length per env between updates
    batch_size: int = 256
    n_epochs: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.01  # some exploration: reach rewards are dense but small


@dataclass
class EvalConfig:
    freq: int = 10_000  # env steps (summed over envs) between evaluations; 0 = only the final one
    episodes: int = 16
    n_envs: int = 8


@dataclass
class AgentConfig:
    """``configs/agent.yaml`` as a dataclass (the CLI converts at the boundary)."""

    env: str = "GlassWorld-v0"
    checkpoint: str | None = None
    task: str | None = None
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    algo: str = "ppo"
    n_envs: int = 16
    total_timesteps: int = 100_000
    run_dir: str | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None = torch's default (1 is fastest on a busy machine)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentConfig:
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise DatasetError(f"unknown agent option(s) {bad}; known: {sorted(known)}")
        policy = PolicyConfig(**(d.pop("policy", None) or {}))
        ev = EvalConfig(**(d.pop("eval", None) or {}))
        d["task_kwargs"] = dict(d.get("task_kwargs") or {})
        cfg = cls(**d, policy=policy, eval=ev)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise DatasetError(f"algo must be one of {ALGOS}, got {self.algo!r} (algo=ppo)")
        for name in ("n_envs", "total_timesteps"):
            if int(getattr(self, name)) < 1:
                raise DatasetError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.policy.features not in ("small", "nature"):
            raise DatasetError(f"policy.features must be small or nature, got {self.policy.features!r}")

    def dream(self) -> DreamSpec:
        return DreamSpec(env=self.env, checkpoint=self.checkpoint, task=self.task, task_kwargs=self.task_kwargs,
                         max_episode_steps=self.max_episode_steps, device=self.device)


def _sb3_device(device: str) -> str:
    return "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)


def make_sb3_env(cfg: AgentConfig, num_envs: int):
    """Dream vector env -> SB3 VecEnv (+ episode statistics, + channel-first images for the CNN)."""
    from stable_baselines3.common.vec_env import VecMonitor, VecTransposeImage

    from .sb3 import SB3VecEnv

    return VecTransposeImage(VecMonitor(SB3VecEnv(make_dream(cfg.dream(), num_envs, "same_step"))))


def build_algo(cfg: AgentConfig, venv, run_dir: Path):
    from stable_baselines3 import A2C, PPO

    from .sb3 import SmallCNN

    p = cfg.policy
    policy_kwargs: dict[str, Any] = {}
    if p.features == "small":
        policy_kwargs = {"features_extractor_class": SmallCNN,
                         "features_extractor_kwargs": {"features_dim": p.features_dim}}
    common = dict(policy="CnnPolicy", env=venv, learning_rate=p.lr, n_steps=p.n_steps, gamma=p.gamma,
                  gae_lambda=p.gae_lambda, ent_coef=p.ent_coef, policy_kwargs=policy_kwargs,
                  tensorboard_log=str(run_dir / "tb"), seed=cfg.seed, device=_sb3_device(cfg.device), verbose=0)
    if cfg.algo == "ppo":
        batch = min(p.batch_size, p.n_steps * cfg.n_envs)
        return PPO(batch_size=batch, n_epochs=p.n_epochs, **common)
    return A2C(**common)


def _hparam_callback(cfg: AgentConfig):
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import HParam

    class HParams(BaseCallback):
        def _on_training_start(self) -> None:
            flat = {"algo": cfg.algo, "env": cfg.env, "task": str(cfg.task), "n_envs": cfg.n_envs,
                    "total_timesteps": cfg.total_timesteps, "seed": cfg.seed,
                    **{f"policy/{k}": v for k, v in asdict(cfg.policy).items()}}
            self.logger.record("hparams", HParam(flat, {"eval/success_rate": 0.0, "eval/mean_reward": 0.0}),
                               exclude=("stdout", "log", "json", "csv"))

        def _on_step(self) -> bool:
            return True

    return HParams()


def train(cfg: AgentConfig, run_dir: str | Path) -> dict[str, Any]:
    """Train, evaluate and save an agent; returns the metrics also written to ``run_dir/metrics.json``."""
    from stable_baselines3.common.callbacks import CallbackList, EvalCallback
    from stable_baselines3.common.utils import set_random_seed

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    set_random_seed(cfg.seed)
    venv = make_sb3_env(cfg, cfg.n_envs)  # first, so that a bad env leaves no run folder behind
    eval_env = make_sb3_env(cfg, cfg.eval.n_envs)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "agent.json", asdict(cfg))
    venv.seed(cfg.seed)
    eval_env.seed(cfg.seed + 10_000)
    algo = build_algo(cfg, venv, run_dir)
    callbacks = [_hparam_callback(cfg)]
    if cfg.eval.freq > 0:
        callbacks.append(EvalCallback(eval_env, n_eval_episodes=cfg.eval.episodes,
                                      eval_freq=max(1, cfg.eval.freq // cfg.n_envs),
                                      best_model_save_path=str(run_dir), log_path=str(run_dir / "eval"),
                                      deterministic=True, verbose=0))
    log.info("training %s on %s (%d envs, %d steps) -> %s", cfg.algo, cfg.env, cfg.n_envs, cfg.total_timesteps,
             run_dir)
    t0 = time.perf_counter()
    algo.learn(total_timesteps=cfg.total_timesteps, callback=CallbackList(callbacks), tb_log_name="agent")
    seconds = time.perf_counter() - t0
    algo.save(run_dir / "policy.zip")
    final_env = make_dream(cfg.dream(), cfg.eval.n_envs, "same_step")
    stats = run_episodes(final_env, algo, cfg.eval.episodes, seed=cfg.seed + 20_000)
    metrics = {"algo": cfg.algo, "env": cfg.env, "timesteps": int(algo.num_timesteps), "train_seconds": seconds,
               "steps_per_second": algo.num_timesteps / max(seconds, 1e-9), "final_eval": stats.to_dict(),
               "policy": str(run_dir / "policy.zip")}
    write_json(run_dir / "metrics.json", metrics)
    for env in (venv, eval_env, final_env):
        env.close()
    return metrics


def default_run_dir(cfg: AgentConfig) -> Path:
    return Path("runs") / f"agent-{cfg.env.split('-v')[0]}-{cfg.algo}-{time.strftime('%Y%m%d-%H%M%S')}"


def cli_main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    from worldmodel.config import compose

    try:
        cfg = AgentConfig.from_dict(to_plain(compose(list(argv), config_name="agent")))
        run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
        metrics = train(cfg, run_dir)
    except (DatasetError, ValueError, FileNotFoundError) as e:
        print(f"glassworld agent: error: {e}", file=sys.stderr)
        return 2
    ev = metrics["final_eval"]
    print(f"{cfg.algo} on {cfg.env}: {metrics['timesteps']} steps in {metrics['train_seconds']:.0f} s "
          f"({metrics['steps_per_second']:.0f} steps/s); final eval over {ev['episodes']} episodes: "
          f"success {100 * ev['success_rate']:.0f}%, return {ev['mean_return']:.3f} ± {ev['std_return']:.3f}\n"
          f"policy: {metrics['policy']}")
    return 0
