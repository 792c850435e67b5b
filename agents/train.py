"""``glassworld agent``: the main job. Train a Stable-Baselines3 agent (PPO or A2C) inside a dream, then score it
in the dream and in the real game, film it, and summarise.

Usage (``key=value`` overrides of ``configs/agent.yaml``)::

    glassworld agent                                    # PPO in GlassTennis-v0 for a few CPU minutes
    glassworld agent env=GlassWorld-v0 checkpoint=runs/glass/checkpoint.pt algo=ppo n_envs=16 \\
        total_timesteps=200000 time_budget_s=null run_dir=runs/agent-ppo seed=0 device=auto
    glassworld agent env=GlassTennis-v0 task=track +task_kwargs.speed=2.0 final_eval.real=false video.steps=0

One run:

1. trains for ``total_timesteps`` env steps or ``time_budget_s`` seconds, whichever ends first (the budget
   stops before an iteration that would not fit), in the batched dream through :class:`agents.sb3.SB3VecEnv`
   (one forward pass of the world model for all ``n_envs`` per step), evaluating every ``eval.freq`` steps
   (the learning curve);
2. plays ``final_eval.episodes`` episodes of the final policy and of a random policy in the dream and, when the
   checkpoint's card names an Atari game (``final_eval.real``), in the real ALE game through
   :mod:`agents.evaluate` (joystick map learned from labelled real transitions, cached beside the checkpoint);
3. films ``video.steps`` frames of the policy in the dream (``video.path``) and, with the real game, the dream
   and the real game side by side from the same real starts (``video.real_path``), as mp4, plus a PNG strip of
   them (``video.strip_path``). The videos show the world (dreamed and real RGB frames, the agent the model
   segments outlined, the target drawn), whatever the policy observes;
4. prints a summary table and writes ``summary.json`` (all figures, the learning curve, the paths, and the
   machine: versions, threads, CPU flags, a fingerprint of the results).

A run is deterministic for a given machine and library versions: fixed torch threads (``threads``), seeded
Python, numpy, torch and envs, ``torch.use_deterministic_algorithms`` (warn-only), and no wall-clock budget by
default (``time_budget_s`` cuts training where the machine is slow or busy, so a budgeted run may stop at another
step: ``stopped_by`` says so). Another CPU (other SIMD instructions) or other versions may round
differently and change the figures; ``summary.json["machine"]`` says which ran.

The run folder gets TensorBoard logs (``tb/``: SB3's rollout/train/time tags, ``eval/mean_reward``,
``eval/success_rate``, ``final/*``, the hyperparameters), periodic evaluations (``eval/evaluations.npz``),
``best_model.zip``, the final ``policy.zip``, ``agent.json`` (the resolved config), ``metrics.json``,
``summary.json`` and the videos.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from worldmodel.config import plain, settings
from worldmodel.data.format import DatasetError, check_writable
from worldmodel.paths import portable_path

from .common import DreamSpec, make_dream, write_json
from .evaluate import MappingOptions
from .video import VideoConfig

log = logging.getLogger(__name__)

ALGOS = ("ppo", "a2c")
FEATURES = ("small", "nature")


@dataclass
class PolicyConfig:
    """SB3 hyperparameters (PPO uses all; A2C uses lr, n_steps, gamma, gae_lambda, ent_coef)."""

    features: str = "small"  # small (agents.sb3.SmallCNN, any frame size, CPU-friendly) | nature (NatureCNN)
    features_dim: int = 256
    channels: int = 16  # SmallCNN width (convolutions of channels, 2x, 2x); 16 updates ~2.5x faster than 32 on CPU
    pool: int = 2  # features=small: average-pool frames by this factor first (2: 4x cheaper CNN at 96x128)
    lr: float = 1e-3  # with n_steps=64 and 16 envs: an update every 1024 steps (3e-4 barely moves in so few)
    n_steps: int = 64  # rollout length per env between updates
    batch_size: int = 256
    n_epochs: int = 4
    gamma: float = 0.9  # reach/track rewards are dense and immediate: a short horizon learns them much faster
    gae_lambda: float = 0.95
    ent_coef: float = 0.01  # some exploration: reach rewards are dense but small


@dataclass
class EvalConfig:
    """Periodic evaluations during training (the learning curve)."""

    freq: int = 4096  # env steps (summed over envs) between evaluations; 0 = none
    episodes: int = 8
    n_envs: int = 8


@dataclass
class FinalEvalConfig:
    """The evaluation after training: the policy and a baseline, in the dream and the real game."""

    episodes: int = 16
    n_envs: int = 8
    real: bool = True  # also the real ALE game, when the checkpoint's card names one (else dream only, noted)
    game: str | None = None  # real game for models whose card names none (Tennis | Breakout)
    action_map: str = "learned"  # learned (from labelled real transitions, cached) | heuristic (by shift names)
    mapping: MappingOptions = field(default_factory=lambda: MappingOptions(steps=200))  # cached per checkpoint
    baseline: str | None = "random"  # random | planner | greedy | null: a reference policy played in the same envs
    deterministic: bool = True


@dataclass
class AgentConfig:
    """``configs/agent.yaml`` as a dataclass (the CLI converts at the boundary)."""

    env: str = "GlassTennis-v0"
    checkpoint: str | None = None
    task: str | None = None
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = 100  # None: the id's registration (200)
    observation: str = "mask"  # mask: the model's agent mask (in the real game: its segmentation of real frames),
    # which transfers from dream to real where dreamed pixels differ from real ones | rgb: the frames themselves
    allow_unhealthy: bool = False  # train in a world whose model card records failed health checks
    algo: str = "ppo"
    train_in: str = "dream"  # dream | real: train in the real ALE game (same spaces, task, action map): the baseline
    n_envs: int = 16
    total_timesteps: int = 32_768
    time_budget_s: float | None = None  # training wall-clock limit (None = none: a cut depends on the machine's
    # load and would make the result so); evaluations count, setup not
    run_dir: str | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = 1  # torch CPU threads; None = torch's default (1: as fast here, robust on busy CPUs)
    progress: bool = True  # tqdm progress bars (stderr; off when it is not a terminal)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    final_eval: FinalEvalConfig = field(default_factory=FinalEvalConfig)
    video: VideoConfig = field(default_factory=VideoConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentConfig:
        d = dict(d)  # worldmodel.config.settings: an unknown key, in any section, names the nearest valid one
        fe = dict(d.pop("final_eval", None) or {})
        fe_mapping = settings(MappingOptions, dict(fe.pop("mapping", None) or {}), "final_eval.mapping")
        sections = {"policy": settings(PolicyConfig, dict(d.pop("policy", None) or {}), "policy"),
                    "eval": settings(EvalConfig, dict(d.pop("eval", None) or {}), "eval"),
                    "final_eval": settings(FinalEvalConfig, fe, "final_eval", mapping=fe_mapping),
                    "video": settings(VideoConfig, dict(d.pop("video", None) or {}), "video")}
        d["task_kwargs"] = dict(d.get("task_kwargs") or {})
        cfg = settings(cls, d, **sections)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise DatasetError(f"algo must be one of {ALGOS}, got {self.algo!r} (algo=ppo)")
        if self.train_in not in ("dream", "real"):
            raise DatasetError(f"train_in must be dream or real, got {self.train_in!r}")
        for name in ("n_envs", "total_timesteps"):
            if int(getattr(self, name)) < 1:
                raise DatasetError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.time_budget_s is not None and not float(self.time_budget_s) > 0:
            raise DatasetError(f"time_budget_s must be > 0 or null (no limit), got {self.time_budget_s}")
        if self.policy.features not in FEATURES:
            raise DatasetError(f"policy.features must be one of {FEATURES}, got {self.policy.features!r}")
        fe = self.final_eval
        if fe.episodes < 1 or fe.n_envs < 1 or self.eval.episodes < 1 or self.eval.n_envs < 1:
            raise DatasetError("eval.episodes, eval.n_envs, final_eval.episodes and final_eval.n_envs must be >= 1")
        if fe.action_map not in ("learned", "heuristic"):
            raise DatasetError(f"final_eval.action_map must be learned or heuristic, got {fe.action_map!r}")
        try:
            self.video.validate()
        except ValueError as e:
            raise DatasetError(str(e)) from None

    def dream(self) -> DreamSpec:
        return DreamSpec(env=self.env, checkpoint=self.checkpoint, task=self.task, task_kwargs=self.task_kwargs,
                         max_episode_steps=self.max_episode_steps, device=self.device,
                         observation=self.observation, allow_unhealthy=self.allow_unhealthy)


def check_checkpoint(cfg: AgentConfig) -> None:
    """Fail early, with the fix, when a shipped env id's checkpoint is not in this install (and none is given)."""
    import envs

    if cfg.checkpoint or cfg.env not in envs.SHIPPED:
        return
    path = envs.CHECKPOINT_DIR / envs.SHIPPED[cfg.env]
    if not path.is_file():
        raise envs.MissingCheckpointError(
            f"{cfg.env} needs its world model {path}, which is not in this install. Put the shipped checkpoint "
            f"there, or train a world model (`glassworld data atari ...`, then `glassworld train ...`) and pass "
            f"checkpoint=PATH (env=GlassWorld-v0 checkpoint=PATH plays any checkpoint).")


def _sb3_device(device: str) -> str:
    from worldmodel.device import resolve_device; return str(resolve_device(device))  # noqa: E702 - one device rule


def make_sb3_env(cfg: AgentConfig, num_envs: int, world: str = "dream"):
    """The dream (or, ``world="real"``, the real ALE game behind it: same observation size, (shift, code) actions
    through the learned joystick map, same task and episode limit) -> SB3 VecEnv (+ episode statistics,
    + channel-first images for the CNN)."""
    from stable_baselines3.common.vec_env import VecMonitor, VecTransposeImage

    from .sb3 import SB3VecEnv

    if world == "dream":
        return VecTransposeImage(VecMonitor(SB3VecEnv(make_dream(cfg.dream(), num_envs, "same_step"))))
    from .evaluate import make_real_env

    dream = make_dream(cfg.dream(), 1, "same_step")
    try:
        real, _ = make_real_env(_eval_config(cfg, "random", True), dream, num_envs, "same_step")
    except ValueError as e:  # the checkpoint's card names no playable Atari game
        raise DatasetError(f"train_in=real needs the real game of {cfg.env}: {e}") from None
    finally:
        dream.close()
    return VecTransposeImage(VecMonitor(SB3VecEnv(real)))


def build_algo(cfg: AgentConfig, venv, run_dir: Path):
    from stable_baselines3 import A2C, PPO

    from .features import PooledSmallCNN
    from .sb3 import SmallCNN

    p = cfg.policy
    policy_kwargs: dict[str, Any] = {}
    if p.features == "small" and p.pool == 1:
        policy_kwargs = {"features_extractor_class": SmallCNN,
                         "features_extractor_kwargs": {"features_dim": p.features_dim, "channels": p.channels}}
    elif p.features == "small":
        policy_kwargs = {"features_extractor_class": PooledSmallCNN,
                         "features_extractor_kwargs": {"features_dim": p.features_dim, "channels": p.channels,
                                                       "pool": p.pool}}
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
                    "total_timesteps": cfg.total_timesteps, "time_budget_s": str(cfg.time_budget_s),
                    "seed": cfg.seed, **{f"policy/{k}": v for k, v in asdict(cfg.policy).items()}}
            self.logger.record("hparams", HParam(flat, {"eval/success_rate": 0.0, "eval/mean_reward": 0.0}),
                               exclude=("stdout", "log", "json", "csv"))

        def _on_step(self) -> bool:
            return True

    return HParams()


def _budget_callback(cfg: AgentConfig, eval_cb: Any):
    """Progress bar over ``total_timesteps`` plus the ``time_budget_s`` stop.

    The budget is checked when a rollout starts: training stops there when the last iteration (rollout, update,
    evaluation) would not fit in the time left, and in any case once the budget is spent.
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm.auto import tqdm

    budget = None if cfg.time_budget_s is None else float(cfg.time_budget_s)

    class Budget(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.t0 = self.iter_start = 0.0
            self.last_iter = 0.0
            self.stop_now = False
            self.stopped_by_budget = False
            self.bar: Any = None
            self.evals_seen = 0

        def _on_training_start(self) -> None:
            self.t0 = self.iter_start = time.perf_counter()
            self.bar = tqdm(total=cfg.total_timesteps, desc=f"train {cfg.algo}", unit="step", leave=True,
                            disable=None if cfg.progress else True, dynamic_ncols=True)

        def _on_rollout_start(self) -> None:
            now = time.perf_counter()
            if self.num_timesteps > 0:
                self.last_iter = now - self.iter_start
            self.iter_start = now
            if budget is not None and self.num_timesteps > 0 and now - self.t0 + self.last_iter > budget:
                self.stop_now = True

        def _on_step(self) -> bool:
            self.bar.update(max(0, min(self.num_timesteps, cfg.total_timesteps) - self.bar.n))
            if eval_cb is not None and len(eval_cb.evaluations_timesteps) > self.evals_seen:
                self.evals_seen = len(eval_cb.evaluations_timesteps)
                succ = eval_cb.evaluations_successes[-1] if eval_cb.evaluations_successes else []
                post = {"eval_return": f"{eval_cb.last_mean_reward:.2f}"}
                if succ:
                    post["eval_success"] = f"{100 * sum(succ) / len(succ):.0f}%"
                self.bar.set_postfix(post)
            if budget is not None and (self.stop_now or time.perf_counter() - self.t0 > budget):
                self.stopped_by_budget = True
                return False
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return Budget()


def learning_curve(eval_cb: Any) -> list[dict[str, Any]]:
    """The periodic evaluations of an SB3 ``EvalCallback``: one dict per evaluation (success may be None)."""
    if eval_cb is None:
        return []
    curve = []
    for i, t in enumerate(eval_cb.evaluations_timesteps):
        returns = [float(r) for r in eval_cb.evaluations_results[i]]
        succ = eval_cb.evaluations_successes[i] if i < len(eval_cb.evaluations_successes) else []
        curve.append({"timesteps": int(t), "episodes": len(returns),
                      "success_rate": float(sum(succ) / len(succ)) if len(succ) else None,
                      "mean_return": float(sum(returns) / max(1, len(returns)))})
    return curve


SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
              "avx_vnni", "amx_bf16", "amx_tile")  # the CPU features that change which kernels torch runs


def make_deterministic(cfg: AgentConfig) -> None:
    """Fixed threads and deterministic torch kernels where torch has them (warn-only where it has none)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (ignored on CPU)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.use_deterministic_algorithms(True, warn_only=True)


def _cpu() -> dict[str, Any]:
    """CPU model, the SIMD flags of :data:`SIMD_FLAGS` it has, and the kernel level torch picked."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:  # not Linux: the model name only
        pass
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: None)()
    return {"model": model, "flags": [f for f in SIMD_FLAGS if f in flags], "torch_capability": capability,
            "cores": os.cpu_count()}


def machine_info() -> dict[str, Any]:
    """What a run's figures depend on besides its config: versions, threads, determinism and the CPU."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def ver(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": ver("numpy"),
            "gymnasium": ver("gymnasium"), "stable_baselines3": ver("stable-baselines3"), "ale_py": ver("ale-py"),
            "threads": torch.get_num_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cuda": torch.version.cuda if torch.cuda.is_available() else None, "cpu": _cpu()}


def policy_digest(algo: Any) -> str:
    """sha256 of the policy's parameters (names and bytes in order): equal digests = the same trained policy."""
    h = hashlib.sha256()
    for name, tensor in algo.policy.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(cfg: AgentConfig, run_dir: str | Path) -> dict[str, Any]:
    """Train and save an agent in the dream (step 1 of the main job).

    Returns ``{"algo", "env", "timesteps", "train_seconds", "steps_per_second", "stopped_by", "learning_curve",
    "policy", "best_model"}``; the trained SB3 model is ``result["model"]`` (not JSON).
    """
    from stable_baselines3.common.callbacks import CallbackList, EvalCallback
    from stable_baselines3.common.utils import set_random_seed

    from .policy_file import SaveBestPolicy, save_policy

    make_deterministic(cfg)
    set_random_seed(cfg.seed)
    venv = make_sb3_env(cfg, cfg.n_envs, cfg.train_in)  # first, so that a bad env leaves no run folder behind
    eval_env = make_sb3_env(cfg, cfg.eval.n_envs, cfg.train_in) if cfg.eval.freq > 0 else None
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "agent.json", asdict(cfg))
    venv.seed(cfg.seed)
    algo = build_algo(cfg, venv, run_dir)
    meta = {"algo": cfg.algo, "env": cfg.env, "observation": cfg.observation}  # stored in each policy file
    callbacks: list[Any] = [_hparam_callback(cfg)]
    eval_cb = None
    if eval_env is not None:
        eval_env.seed(cfg.seed + 10_000)
        eval_cb = EvalCallback(eval_env, n_eval_episodes=cfg.eval.episodes,
                               eval_freq=max(1, cfg.eval.freq // cfg.n_envs), log_path=str(run_dir / "eval"),
                               callback_on_new_best=SaveBestPolicy(run_dir / "best_model.zip", meta),
                               deterministic=True, verbose=0)
        callbacks.append(eval_cb)
    budget = _budget_callback(cfg, eval_cb)
    callbacks.append(budget)
    limit = "" if cfg.time_budget_s is None else f" or {cfg.time_budget_s:.0f} s"
    where = cfg.env if cfg.train_in == "dream" else f"the real game of {cfg.env}"
    log.info("training %s in %s (%d envs, %d steps%s) -> %s", cfg.algo, where, cfg.n_envs, cfg.total_timesteps,
             limit, run_dir)
    t0 = time.perf_counter()
    try:
        algo.learn(total_timesteps=cfg.total_timesteps, callback=CallbackList(callbacks), tb_log_name="agent")
    finally:
        seconds = time.perf_counter() - t0
        save_policy(algo, run_dir / "policy.zip", meta)  # also after Ctrl-C: what was learned so far is kept
        for env in (venv, eval_env):
            if env is not None:
                env.close()
    stopped_by = "time_budget" if budget.stopped_by_budget else "total_timesteps"
    if budget.stopped_by_budget:
        log.info("time budget of %.0f s reached after %d steps", cfg.time_budget_s, algo.num_timesteps)
    best = run_dir / "best_model.zip"
    return {"algo": cfg.algo, "env": cfg.env, "timesteps": int(algo.num_timesteps), "train_seconds": seconds,
            "steps_per_second": algo.num_timesteps / max(seconds, 1e-9), "stopped_by": stopped_by,
            "learning_curve": learning_curve(eval_cb), "policy": str(run_dir / "policy.zip"),
            "best_model": str(best) if best.is_file() else None, "model": algo}


def _eval_config(cfg: AgentConfig, policy: str, real: bool) -> Any:
    from .evaluate import EvalAgentConfig

    fe = cfg.final_eval
    return EvalAgentConfig(policy=policy, env=cfg.env, checkpoint=cfg.checkpoint, task=cfg.task,
                           task_kwargs=dict(cfg.task_kwargs), max_episode_steps=cfg.max_episode_steps,
                           observation=cfg.observation, episodes=fe.episodes, n_envs=fe.n_envs, deterministic=fe.deterministic,
                           seed=cfg.seed + 20_000, device=cfg.device, real=real, game=fe.game, action_map=fe.action_map,
                           mapping=dataclasses.replace(fe.mapping), baseline=fe.baseline, progress=cfg.progress)


def real_game_or_note(cfg: AgentConfig) -> tuple[str | None, str | None]:
    """(the real game to evaluate in, None) or (None, a note saying why the real game is skipped)."""
    from .evaluate import real_game_of

    if not cfg.final_eval.real:
        return None, "real-game evaluation is off (final_eval.real=false)"
    dream = make_dream(cfg.dream(), 1, "same_step")
    try:
        return real_game_of(dream.model, cfg.final_eval.game), None
    except (ValueError, ImportError) as e:
        return None, f"real-game evaluation skipped: {e}"
    finally:
        dream.close()


def final_evaluation(cfg: AgentConfig, policy_path: str | Path) -> tuple[dict[str, Any], str | None]:
    """Step 2: the policy and the baseline in the dream (and the real game); :func:`agents.evaluate.evaluate`'s
    results and the note on the real game (None when it was played)."""
    from .evaluate import evaluate

    game, note = real_game_or_note(cfg)
    if note:
        log.info("%s", note)
    results = evaluate(_eval_config(cfg, str(policy_path), game is not None))
    return results, note


def record_videos(cfg: AgentConfig, run_dir: Path, policy: Any, results: dict[str, Any]) -> dict[str, Any]:
    """Step 3: the dream rollout video, the dream | real one when the real game was evaluated, and a PNG strip
    of the latter (else of the former)."""
    from .evaluate import make_real_env
    from .video import Strip, model_segmenter, record_dream, record_side_by_side

    out: dict[str, Any] = {}
    v = cfg.video
    if v.steps < 1:
        return out
    real_name = f"real {results.get('real_game')}"
    strip = Strip(v.strip_frames, v.strip_every, names=("dream", real_name) if "real" in results else ("dream",))
    dream = make_dream(cfg.dream(), 1, "next_step")
    segment = model_segmenter(dream.model)  # the agent outlined in both panes: the one the model finds
    try:
        out["dream"] = record_dream(dream, policy, run_dir / v.path, v, progress=cfg.progress,
                                    strip=None if "real" in results else strip, segment=segment)
        if "real" in results:
            table = results.get("action_map", {}).get("table")
            real, _ = make_real_env(_eval_config(cfg, "", True), dream, 1, "next_step", action_map=table)
            try:
                out["real"] = record_side_by_side(dream, real, policy, run_dir / v.real_path, v,
                                                  real_name=real_name, progress=cfg.progress, strip=strip,
                                                  segment=segment)
            finally:
                real.close()
    finally:
        dream.close()
    if v.strip_path:
        out["strip"] = strip.save(run_dir / v.strip_path)
    return out


def build_summary(cfg: AgentConfig, run_dir: Path, trained: dict[str, Any], results: dict[str, Any],
                  note: str | None, videos: dict[str, Any]) -> dict[str, Any]:
    """Everything the run found, for ``summary.json`` (plain JSON types)."""
    base = results.get("baseline") or {}
    base_name = base.get("policy")
    videos = {k: ({**v, "path": portable_path(v["path"])} if isinstance(v, dict) else portable_path(v))
              for k, v in videos.items()}
    config = asdict(cfg) | {"checkpoint": portable_path(cfg.checkpoint), "run_dir": portable_path(cfg.run_dir)}
    summary: dict[str, Any] = {
        "env": cfg.env, "task": results["task"], "checkpoint": portable_path(cfg.checkpoint), "algo": cfg.algo,
        "trained_in": cfg.train_in, "timesteps": trained["timesteps"], "train_seconds": round(trained["train_seconds"], 2),
        "steps_per_second": round(trained["steps_per_second"], 2), "stopped_by": trained["stopped_by"],
        "episodes": results["episodes"], "max_episode_steps": results["max_episode_steps"],
        "baseline": base_name,
        "dream": {"policy": results["dream"], "baseline": base.get("dream")},
        "real": None if "real" not in results else {
            "game": results["real_game"], "policy": results["real"], "baseline": base.get("real"),
            "action_map": {k: v for k, v in results.get("action_map", {}).items() if k not in ("table", "votes")}},
        "real_note": note,
        "learning_curve": trained["learning_curve"],
        "videos": videos,
        "paths": {"run_dir": portable_path(run_dir), "policy": portable_path(trained["policy"]),
                  "best_model": portable_path(trained["best_model"]),
                  "video": (videos.get("dream") or {}).get("path"),
                  "real_video": (videos.get("real") or {}).get("path"), "strip": videos.get("strip"),
                  "tensorboard": portable_path(run_dir / "tb"), "metrics": portable_path(run_dir / "metrics.json"),
                  "summary": portable_path(run_dir / "summary.json"), "config": portable_path(run_dir / "agent.json")},
        "config": config,
    }
    return summary


def fingerprint(summary: dict[str, Any], policy_sha256: str) -> str:
    """12 hex digits over everything a deterministic run must reproduce: the trained policy's parameters, the
    evaluation figures and the learning curve (not times or paths)."""
    keep = {k: summary[k] for k in ("env", "task", "algo", "trained_in", "timesteps", "stopped_by", "dream",
                                    "real", "learning_curve")}
    blob = json.dumps({"policy_sha256": policy_sha256, **keep}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def main_job(cfg: AgentConfig, run_dir: str | Path) -> dict[str, Any]:
    """Train, evaluate (dream, real, baseline), film and summarise; returns what ``summary.json`` holds."""
    check_checkpoint(cfg)
    run_dir = check_writable(run_dir, "run_dir")  # before any work: one clear error for an unwritable folder
    t0 = time.perf_counter()
    trained = train(cfg, run_dir)
    algo = trained.pop("model")
    t1 = time.perf_counter()
    results, note = final_evaluation(cfg, trained["policy"])
    metrics = {k: v for k, v in trained.items() if k != "learning_curve"} | {"final_eval": results["dream"]}
    metrics |= {k: portable_path(metrics[k]) for k in ("policy", "best_model")}
    if "real" in results:
        metrics["final_eval_real"] = results["real"]
    write_json(run_dir / "metrics.json", metrics)
    t2 = time.perf_counter()
    videos = record_videos(cfg, run_dir, algo, results)
    t3 = time.perf_counter()
    summary = build_summary(cfg, run_dir, trained, results, note, videos)
    summary["policy_sha256"] = policy_digest(algo)
    summary["fingerprint"] = fingerprint(summary, summary["policy_sha256"])
    summary["machine"] = machine_info()
    summary["seconds"] = {"train": round(t1 - t0, 1), "final_eval": round(t2 - t1, 1), "videos": round(t3 - t2, 1),
                          "total": round(t3 - t0, 1)}
    _log_final(algo, summary)
    write_json(run_dir / "summary.json", summary)
    return summary


def _log_final(algo: Any, summary: dict[str, Any]) -> None:
    """The final figures as TensorBoard scalars (``final/dream_success_rate``, ...) at the last step."""
    try:
        for world in ("dream", "real"):
            block = summary.get(world) or {}
            for who in ("policy", "baseline"):
                stats = block.get(who)
                if stats:
                    tag = f"final/{world}_{'' if who == 'policy' else 'baseline_'}"
                    algo.logger.record(tag + "success_rate", stats["success_rate"])
                    algo.logger.record(tag + "mean_return", stats["mean_return"])
        algo.logger.dump(algo.num_timesteps)
    except Exception as e:  # noqa: BLE001 - TensorBoard extras must never lose a finished run
        log.info("could not log the final figures to TensorBoard (%s)", e)


def format_summary(summary: dict[str, Any]) -> str:
    """The short printed summary: a success / return table (dream, real; policy, baseline), curve and paths."""
    rows = [("policy", "policy")] + ([(summary["baseline"], "baseline")] if summary["baseline"] else [])
    worlds = [("dream", summary["dream"])]
    if summary["real"]:
        worlds.append((f"real {summary['real']['game']}", summary["real"]))
    stop = "time budget" if summary["stopped_by"] == "time_budget" else "total_timesteps"
    where = summary["env"] if summary.get("trained_in", "dream") == "dream" else \
        f"the real game of {summary['env']}"
    lines = [(f"{summary['algo']} in {where} (task {summary['task']}): {summary['timesteps']} steps (stopped by "
              f"{stop}); {summary['episodes']} evaluation episodes of <= {summary['max_episode_steps']} steps")]
    # column widths fit the longest header ("real Breakout success") with two spaces to spare
    wide = [(len(name) + 10, len(name) + 9) for name, _ in worlds]
    head = f"{'':<10}" + "".join(f"{name + ' success':>{ws}}{name + ' return':>{wr}}"
                                 for (name, _), (ws, wr) in zip(worlds, wide))
    lines.append(head)
    for label, key in rows:
        cells = ""
        for (_, block), (ws, wr) in zip(worlds, wide):
            s = block[key]
            cells += f"{s['success_rate']:>{ws}.1%}{s['mean_return']:>{wr}.3f}" if s else f"{'-':>{ws}}{'-':>{wr}}"
        lines.append(f"{label:<10}{cells}")
    if summary["real_note"]:
        lines.append(f"note: {summary['real_note']}")
    curve = [c for c in summary["learning_curve"] if c["success_rate"] is not None]
    if curve:
        lines.append(f"learning curve ({summary.get('trained_in', 'dream')} success): " + "  ".join(
            f"{c['timesteps']}: {c['success_rate']:.0%}" for c in curve))
    p = summary["paths"]
    if "fingerprint" in summary:
        lines.append(f"fingerprint: {summary['fingerprint']} (policy and figures; equal on a rerun with the same "
                     f"machine, versions and seed)")
    lines.append(f"time: {summary['train_seconds']:.0f} s of training ({summary['steps_per_second']:.0f} steps/s)")
    if "seconds" in summary:
        sec = summary["seconds"]
        lines[-1] = (f"time: {sec['total']:.0f} s (training {sec['train']:.0f} s at "
                     f"{summary['steps_per_second']:.0f} steps/s, final evaluation {sec['final_eval']:.0f} s, "
                     f"videos {sec['videos']:.0f} s)")
    lines.append(f"policy:      {p['policy']}")
    for key, label in (("video", "video:      "), ("real_video", "real video: "), ("strip", "strip:      ")):
        if p.get(key):
            lines.append(f"{label} {p[key]}")
    lines.append(f"tensorboard: tensorboard --logdir {p['tensorboard']}")
    lines.append(f"summary:     {p['summary']}")
    return "\n".join(lines)


def default_run_dir(cfg: AgentConfig) -> Path:
    return Path("runs") / f"agent-{cfg.env.split('-v')[0]}-{cfg.algo}-{time.strftime('%Y%m%d-%H%M%S')}"


def cli_main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        from worldmodel.cli import usage_of

        print(usage_of("agent"))
        return 0
    from worldmodel.config import compose

    try:
        cfg = AgentConfig.from_dict(plain(compose(list(argv), config_name="agent")))
        run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
        summary = main_job(cfg, run_dir)
    except (DatasetError, ValueError, FileNotFoundError) as e:
        print(f"glassworld agent: error: {e}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0
