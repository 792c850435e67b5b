"""A CEM / MPC planner that imagines futures in the batched world model and plays the best first action.

For each env, the planner clones the world-model state ``population`` times, rolls out candidate
(shift, code) sequences of ``horizon`` steps in one batched model call per step, scores them with the env's
own task (the same reward the env pays), refits per-step categorical distributions to the best ``elites``
(cross-entropy method) for ``iterations`` rounds, and returns the first action of the best sequence it
imagined. It is re-planned every step (model-predictive control).

It is usable wherever a policy is: ``planner.predict(obs, state=None, episode_start=None, deterministic=True)
-> (actions, None)`` like SB3. It reads the bound env through the agent interface of
:class:`envs.vector.CoreEdge` (never ``.core``): the task state (the target is part of the task, not of the pixels
it could parse) and, in the dream, the env's exact world-model state; in the real game it starts the model from
the real frame. Its imagined step is the dream env's own step (:class:`envs.dream.DreamStep`: the same model call
at the env's precision, the same agent locator and reward), so a plan scores what the env would pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from envs.dream import DreamStep
from envs.tasks import TaskState
from envs.vector import CoreEdge, take_rows
from worldmodel.api import State, WorldModel


def _agent_interface(env: Any, who: str) -> Any:
    """The unwrapped glassworld env (its agent interface, :class:`envs.vector.CoreEdge`), or one clear TypeError."""
    u = getattr(env, "unwrapped", env)
    if not isinstance(u, CoreEdge):
        raise TypeError(f"{who} needs a glassworld env (dream or real; envs.vector.CoreEdge), got {type(env).__name__}")
    return u


@dataclass
class PlannerConfig:
    """CEM settings. Cost per decision: iterations x horizon model steps on num_envs x population rows."""

    horizon: int = 8  # imagined steps (≈ the distance a target needs at 4 px per step / 4)
    population: int = 64  # candidate sequences per env and iteration
    elites: int = 8  # best candidates the distributions are refitted to
    iterations: int = 3  # CEM rounds
    smoothing: float = 0.2  # new = (1 - smoothing) * elite frequencies + smoothing * old
    discount: float = 0.97  # later imagined rewards count a little less (the model drifts)
    seed: int = 0  # the planner's own generator (candidate sampling and model noise)


class CEMPlanner:
    """See the module docstring.

    Args:
        env: a glassworld env (single or vector, dream or real) with the agent interface of
            :class:`envs.vector.CoreEdge` (``task``, ``task_state``, ``frames``, ``model_state``, ``dream_step``).
        model: the world model to imagine with; default the env's own (dream envs).
        cfg: :class:`PlannerConfig`.
        precision: the imagination's precision when it is not the env's own step (another model, or the real
            game); None = the env's precision (float32 in the real game).
    """

    def __init__(self, env: Any, model: WorldModel | None = None, cfg: PlannerConfig | None = None,
                 precision: str | None = None) -> None:
        self.env = _agent_interface(env, "the planner")
        own = self.env.dream_step
        self.model = model if model is not None else getattr(own, "model", None)
        if self.model is None:
            raise ValueError("this env has no world model of its own (the real game): pass model=")
        # the env's own transition when it dreams with this model; else the same step class over ``model``
        if own is not None and own.model is self.model and precision in (None, own.precision):
            self.step_fn: DreamStep = own
        else:
            prec = precision or (own.precision if own is not None else "float32")
            self.step_fn = DreamStep(self.model, self.env.task, prec)
        self.cfg = cfg or PlannerConfig()
        if not 1 <= self.cfg.elites <= self.cfg.population or self.cfg.horizon < 1 or self.cfg.iterations < 1:
            raise ValueError(f"bad planner config {self.cfg}: need 1 <= elites <= population, horizon, iterations >= 1")
        self.device = torch.device(self.model.device)
        self.generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        self.n_shifts, self.n_codes = int(self.model.shift_grid.shape[0]), int(self.model.num_codes)

    # -- SB3-like interface ----------------------------------------------------------------------------------
    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Plan for the bound env's current episodes; ``observation`` (H, W, 3) or (N, H, W, 3) sets the shape."""
        single = np.ndim(observation) == 3
        actions = self.plan(deterministic=deterministic)  # (N, 2)
        return (actions[0] if single else actions), None

    def reset(self) -> None:
        """Nothing to forget between episodes (every step is planned afresh)."""

    # -- planning --------------------------------------------------------------------------------------------
    def _start_state(self) -> State:
        dream = self.env.dream_step
        if dream is not None and dream.model is self.model and self.env.model_state:  # the env's exact state
            return {k: v.to(self.device) for k, v in self.env.model_state.items()}
        frames = self.env.frames.to(self.device).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W) uint8
        return self.step_fn.call(self.model.start, frames)

    @torch.no_grad()
    def imagine(self, state: State, task_state: TaskState, shifts: torch.Tensor, codes: torch.Tensor
                ) -> torch.Tensor:
        """Discounted task return of each candidate sequence.

        Args:
            state, task_state: (B, ...) start states, one row per candidate.
            shifts, codes: (B, T) long action sequences.
        Returns:
            (B,) float returns (rewards after the task terminates are not counted).
        """
        b, horizon = shifts.shape
        total = torch.zeros(b, device=self.device)
        alive = torch.ones(b, dtype=torch.bool, device=self.device)
        ts = dict(task_state)
        for t in range(horizon):
            action = torch.stack([shifts[:, t], codes[:, t]], dim=1)  # (B, 2)
            _, _, state, r, term, ts = self.step_fn(state, ts, action, self.generator)
            total += (self.cfg.discount ** t) * r * alive
            alive &= ~term
        return total

    @torch.no_grad()
    def plan(self, deterministic: bool = True) -> np.ndarray:
        """(N, 2) int64 actions for the bound env's N current episodes."""
        c = self.cfg
        state0 = self._start_state()
        ts0 = {k: v.to(self.device) for k, v in self.env.task_state.items()}
        n = next(iter(ts0.values())).shape[0]
        rep = torch.arange(n, device=self.device).repeat_interleave(c.population)  # (N*P,)
        state, ts = take_rows(state0, rep), take_rows(ts0, rep)
        p_shift = torch.full((n, c.horizon, self.n_shifts), 1.0 / self.n_shifts, device=self.device)
        p_code = torch.full((n, c.horizon, self.n_codes), 1.0 / self.n_codes, device=self.device)
        best_score = torch.full((n,), -float("inf"), device=self.device)
        best_first = torch.zeros(n, 2, dtype=torch.long, device=self.device)
        for _ in range(c.iterations):
            shifts = self._sample(p_shift, c.population)  # (N, P, T)
            codes = self._sample(p_code, c.population)
            score = self.imagine(state, ts, shifts.flatten(0, 1), codes.flatten(0, 1)).view(n, c.population)
            top_score, top = score.topk(c.elites, dim=1)  # (N, E)
            better = top_score[:, 0] > best_score
            first = torch.stack([shifts[:, :, 0], codes[:, :, 0]], dim=2)  # (N, P, 2)
            cand = first.gather(1, top[:, :1, None].expand(n, 1, 2))[:, 0]  # (N, 2)
            best_first = torch.where(better[:, None], cand, best_first)
            best_score = torch.maximum(best_score, top_score[:, 0])
            p_shift = self._refit(p_shift, shifts, top, self.n_shifts)
            p_code = self._refit(p_code, codes, top, self.n_codes)
        if deterministic:
            return best_first.cpu().numpy()
        return torch.stack([self._sample(p_shift[:, :1], 1)[:, 0, 0], self._sample(p_code[:, :1], 1)[:, 0, 0]],
                           dim=1).cpu().numpy()

    def _sample(self, probs: torch.Tensor, count: int) -> torch.Tensor:
        """(N, T, C) categorical probabilities -> (N, count, T) samples."""
        n, t, k = probs.shape
        s = torch.multinomial(probs.reshape(n * t, k), count, replacement=True, generator=self.generator)
        return s.view(n, t, count).permute(0, 2, 1)  # (N, count, T)

    def _refit(self, probs: torch.Tensor, samples: torch.Tensor, top: torch.Tensor, k: int) -> torch.Tensor:
        """Elite frequencies per step, smoothed with the old distribution. samples (N, P, T), top (N, E)."""
        n, _, t = samples.shape
        elite = samples.gather(1, top[:, :, None].expand(n, top.shape[1], t))  # (N, E, T)
        freq = torch.nn.functional.one_hot(elite, k).float().mean(dim=1)  # (N, T, K)
        return (1 - self.cfg.smoothing) * freq + self.cfg.smoothing * probs


class RandomPolicy:
    """Uniformly random (shift, code) actions with the SB3-like ``predict`` (the baseline of agent-eval)."""

    def __init__(self, nvec: np.ndarray, seed: int = 0) -> None:
        self.nvec = np.asarray(nvec, dtype=np.int64)
        self.rng = np.random.default_rng(seed)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        n = 1 if np.ndim(observation) == 3 else len(observation)
        a = self.rng.integers(0, self.nvec, size=(n, 2))
        return (a[0] if np.ndim(observation) == 3 else a), None

    def reset(self) -> None:
        pass


class GreedyPolicy:
    """Steer straight at the target: each step, the shift whose grid direction is closest to (target - agent).

    A diagnostic, not a learner: it reads the bound env's task state (agent position and target: the model's mask
    in the dream, RAM in the real game), so its success rate is what a perfect reach policy gets out of a world when
    the world does what the shift names say. Low in the dream but high in the real game = the dream is the
    bottleneck. ``code`` is played with every shift.
    """

    def __init__(self, env: Any, model: WorldModel, code: int = 0) -> None:
        self.env = _agent_interface(env, "the greedy policy")
        grid = model.shift_grid.float().cpu()  # (S, 2) px
        self.directions = grid / torch.linalg.vector_norm(grid, dim=1, keepdim=True).clamp_min(1e-6)  # (S, 2)
        self.still = int(torch.argmin(torch.linalg.vector_norm(grid, dim=1)))  # the "none" row
        if not 0 <= code < model.num_codes:
            raise ValueError(f"code must be in [0, {model.num_codes}), got {code}")
        self.code = int(code)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        ts = self.env.task_state
        d = (ts["target"] - ts["pos"]).float().cpu()  # (N, 2)
        shift = (d @ self.directions.T).argmax(dim=1)  # (N,) best-aligned direction
        shift[torch.linalg.vector_norm(d, dim=1) < 0.5] = self.still
        a = np.stack([shift.numpy(), np.full(len(shift), self.code)], axis=1).astype(np.int64)
        return (a[0] if np.ndim(observation) == 3 else a), None

    def reset(self) -> None:
        pass
