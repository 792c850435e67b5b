"""Agent discovery over several seeds: which of a few GMA pretrainings found an agent its shifts explain.

Which thing GLASS calls the agent is decided early, in the GMA-only pretraining (the first
``pretraining_steps``), and it depends on the random stream: on Tennis at 64x64 three seeds of the same settings
gave shift estimates that explain 9 %, 39 % and 8 % of the segmented agent's motion after 300 steps (whole frame,
docs/results/discovery_seeds/), and 60 %, -9 % and 5 % with the derived 32x32 agent window. So
``glassworld world`` pretrains ``candidates`` seeds and keeps going with the one whose segmentation the global
action explains best, judged on training clips with no ground truth:

* ``agent_found``: share of frames where the shared locator finds an agent in the model's mask;
* ``shift_explained``: ``1 - sum |d - s| / sum |d|`` over transitions where the segmented agent moved, ``d`` its
  displacement and ``s`` the model's shift estimate (the health check's figure, :mod:`worldmodel.health`).

A candidate that finds an agent on at least ``min_found`` of the frames beats one that does not; among those, the
higher ``shift_explained`` wins (one without the figure ranks last); ties go to the lower seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


@dataclass
class DiscoveryConfig:
    """How the candidates are scored."""

    clips: int = 32  # training-split clips each candidate is scored on
    clip_len: int = 8  # frames per clip (7 transitions)
    min_found: float = 0.95  # agent found on this share of frames, or the candidate ranks below those that do
    tolerance: float = 0.05  # a later training snapshot within this of the best shift_explained replaces it
    batch_size: int = 8


def score(checkpoint: str | Path | None, data: str | Path, cfg: DiscoveryConfig | None = None,
          device: str = "cpu", seed: int = 0, model: Any | None = None) -> dict[str, Any]:
    """``agent_found``, ``shift_explained`` and ``track_moves`` of one checkpoint (or of ``model``, which is left in
    eval mode) on ``cfg.clips`` training clips.

    The model segments each frame (``segment``: (B, T, 1, H, W)) and estimates the agent's shift of each transition
    (``estimate_shifts``: (B, T-1, 2) px); both go through :class:`worldmodel.health.HealthAccumulator`, so the
    figures are those of the health check, on clips the health check never sees (it uses val).
    """
    from .evaluate import EvalConfig, resolve_device
    from .evaluation.clips import prepare
    from .health import HealthAccumulator

    cfg = cfg or DiscoveryConfig()
    dev = resolve_device(device)
    ev = EvalConfig(checkpoint=None if checkpoint is None else str(checkpoint), data_path=str(data), split="train",
                    clips=cfg.clips, clip_len=cfg.clip_len, batch_size=cfg.batch_size, device=str(dev), seed=seed)
    with torch.no_grad():
        prep = prepare(ev, model, dev)
        acc = HealthAccumulator(prep.height, prep.width)
        for batch in prep.loader:
            video = batch["frames"].to(prep.device).float() / 255.0  # (B, T, 3, H, W) in [0, 1]
            fg, _bg = prep.model.estimate_shifts(video)  # (B, T-1, 2) px
            acc.add_real_masks(prep.model.segment(video), shifts=fg)
    e = acc.evidence(None, None)
    return {"agent_found": e.agent_found, "shift_explained": e.shift_explained, "track_moves": e.track_moves,
            "clips": len(prep.chosen)}


def rank_key(s: dict[str, Any], min_found: float) -> tuple[bool, float, int]:
    """Sort key (descending) of a scored candidate ``{"seed", "agent_found", "shift_explained"}``."""
    found = s.get("agent_found") is not None and s["agent_found"] >= min_found
    explained = s.get("shift_explained")
    return found, float("-inf") if explained is None else float(explained), -int(s["seed"])


def keeps(s: dict[str, Any], best_explained: float | None, cfg: DiscoveryConfig) -> tuple[bool, float | None]:
    """Whether a training snapshot scored ``s`` becomes the run's ``best.pt``, and the best ``shift_explained`` so
    far with it counted. A snapshot counts when it finds an agent on ``cfg.min_found`` of the frames; it is kept when
    its ``shift_explained`` is within ``cfg.tolerance`` of that best (this snapshot included), so of two nearly equal
    snapshots the later, longer-trained one is kept."""
    explained = s.get("shift_explained")
    if s.get("agent_found") is None or s["agent_found"] < cfg.min_found or explained is None:
        return False, best_explained
    best = explained if best_explained is None else max(best_explained, explained)
    return explained >= best - cfg.tolerance, best


def share(x: float | None) -> str:
    """A share as a whole percentage, or "n/a"."""
    return "n/a" if x is None else f"{x:.0%}"


def choose(scores: list[dict[str, Any]], min_found: float) -> dict[str, Any]:
    """The winning candidate of ``scores`` (see the module docstring)."""
    if not scores:
        raise ValueError("no candidates to choose from")
    return max(scores, key=lambda s: rank_key(s, min_found))
