"""Long-rollout health checks of a dream: NaNs, drift to blank frames, the agent vanishing or exploding."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .dream import GlassWorldVectorEnv


@dataclass
class RolloutStats:
    """Summary of a random rollout (frames in [0, 255]; per-step values averaged over envs)."""

    steps: int
    num_envs: int
    nonfinite_frames: int  # model frames with NaN / inf before clamping
    frame_change_first: float  # mean |frame_t - frame_{t-1}| over the first 10% of steps
    frame_change_last: float  # same over the last 10%
    frame_std_first: float  # mean per-frame pixel std (0 = blank frame) over the first 10%
    frame_std_last: float
    frame_std_min: float  # lowest per-frame std seen
    mask_area_first: float  # mean agent-mask area (fraction of the frame) over the first 10%
    mask_area_last: float
    mask_area_min: float
    mask_area_max: float
    # share of envs whose agent mask still peaks above 0.5 (a soft, diffuse mask keeps its area but shows no agent)
    # after 10 / 25 / 50 / 100 / ... steps without a reset (steps where no env has been reset count)
    agent_visible_at: dict[str, float]
    agent_visible_last: float  # the same share, averaged over the last 10% of steps
    episodes: int  # episodes finished during the rollout
    seconds: float
    windows: list[dict[str, float]]  # the same means over 10 consecutive windows of steps (a drift curve)
    warnings: list[str]  # signs of collapse: non-finite frames, frames going blank, the agent vanishing

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def rollout_stats(env: GlassWorldVectorEnv, steps: int, seed: int = 0) -> RolloutStats:
    """Step ``env`` with uniformly random actions for ``steps`` steps and summarise its frames and masks.

    Model frames are checked for non-finite values before the env clamps them to uint8.
    """
    core = env.core
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    n = env.num_envs
    change, std, area, visible = np.zeros(steps), np.zeros(steps), np.zeros(steps), np.zeros(steps)
    horizons = [h for h in (10, 25, 50, 100, 200, 500, 1000) if h <= steps]
    visible_at: dict[str, float] = {}
    nonfinite, episodes = 0, 0
    prev = core.frames.float()
    t0 = time.perf_counter()
    for t in range(steps):
        actions = np.stack([rng.integers(0, env._nvec[0], n), rng.integers(0, env._nvec[1], n)], axis=1)
        _, _, term, trunc, _ = env.step(actions)
        episodes += int((term | trunc).sum())
        raw = core.last_model_frames  # (k, 3, H, W) of the envs stepped this step
        if raw is not None:
            nonfinite += int((~torch.isfinite(raw)).flatten(1).any(dim=1).sum())
        cur = core.frames.float()  # (N, H, W, 3)
        change[t] = float((cur - prev).abs().mean())
        std[t] = float(cur.flatten(1).std(dim=1).mean())
        area[t] = float(core.masks.mean())
        visible[t] = float((core.masks.flatten(1).amax(dim=1) > 0.5).float().mean())
        if t + 1 in horizons and episodes == 0:
            visible_at[str(t + 1)] = visible[t]
        prev = cur
    seconds = time.perf_counter() - t0
    k = max(1, steps // 10)
    windows = [{"first_step": int(w[0]) + 1, "frame_change": float(change[w].mean()),
                "frame_std": float(std[w].mean()), "mask_area": float(area[w].mean()),
                "agent_visible": float(visible[w].mean())}
               for w in np.array_split(np.arange(steps), min(10, steps))]
    warnings = []
    if nonfinite:
        warnings.append(f"{nonfinite} model frames had NaN/inf values")
    if std[-k:].mean() < 0.25 * std[:k].mean():
        warnings.append(f"frames fade to blank: pixel std {std[:k].mean():.1f} -> {std[-k:].mean():.1f}")
    if change[-k:].mean() < 0.05:
        warnings.append("frames froze (mean change < 0.05 / 255 per step at the end)")
    if area[:k].mean() > 0 and area[-k:].mean() < 0.1 * area[:k].mean():
        warnings.append(f"the agent mask vanishes: area {area[:k].mean():.4f} -> {area[-k:].mean():.4f}")
    if visible[:k].mean() > 0 and visible[-k:].mean() < 0.5 * visible[:k].mean():
        warnings.append(f"the agent fades: mask peaks above 0.5 in {100 * visible[:k].mean():.0f}% of envs at the "
                        f"start, {100 * visible[-k:].mean():.0f}% at the end")
    if area[-k:].mean() > 0.5:
        warnings.append(f"the agent mask covers {100 * area[-k:].mean():.0f}% of the frame at the end")
    return RolloutStats(
        steps=steps, num_envs=n, nonfinite_frames=nonfinite,
        frame_change_first=float(change[:k].mean()), frame_change_last=float(change[-k:].mean()),
        frame_std_first=float(std[:k].mean()), frame_std_last=float(std[-k:].mean()),
        frame_std_min=float(std.min()),
        mask_area_first=float(area[:k].mean()), mask_area_last=float(area[-k:].mean()),
        mask_area_min=float(area.min()), mask_area_max=float(area.max()),
        agent_visible_at=visible_at, agent_visible_last=float(visible[-k:].mean()),
        episodes=episodes, seconds=seconds, windows=windows, warnings=warnings,
    )

