"""From the model's actions to the joystick: learn which ALE action each (shift, code) pair stands for.

The world model never saw joystick labels. To play the real game with a dream policy we play the real game
with random (held) joystick actions, let the model infer the (shift, code) of every real transition
(``infer_actions``; the shift is snapped to the nearest row of the model's shift grid), and give each
(shift, code) pair the joystick action that most often produced it (majority vote). Pairs never seen fall back
to the majority of their shift, then to the name-based map (:func:`envs.real.heuristic_action_map`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.real import JOYSTICK, RealGameVectorEnv, heuristic_action_map
from worldmodel.api import WorldModel
from worldmodel.data.format import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass
class MappingConfig:
    """How labelled real transitions are collected."""

    steps: int = 400  # env steps per emulator (transitions = steps x envs)
    max_hold: int = 8  # a random joystick action is held for 1..max_hold steps (as `glassworld data atari`)
    clip_len: int = 8  # frames per clip given to infer_actions
    batch: int = 16  # clips per infer_actions call
    seed: int = 0


@dataclass
class ActionMap:
    """The learned map and how much to trust it."""

    table: np.ndarray  # (n_shifts, K) ALE action ids
    votes: np.ndarray = field(repr=False)  # (n_shifts, K, 18) transition counts
    agreement: float  # share of transitions whose joystick action is the table's entry for their (shift, code)
    transitions: int
    source: str  # "learned" | "heuristic"

    def describe(self, shift_names: list[str], code_names: list[str]) -> list[str]:
        """Human-readable lines "shift / code -> JOYSTICK (n votes, p%)"."""
        lines = []
        for s, sname in enumerate(shift_names):
            for c, cname in enumerate(code_names):
                n = int(self.votes[s, c].sum())
                share = self.votes[s, c, self.table[s, c]] / n if n else 0.0
                lines.append(f"{sname:>10} / {cname:<12} -> {JOYSTICK[self.table[s, c]]:<13} "
                             f"({n} votes, {100 * share:.0f}%)")
        return lines

    def to_dict(self) -> dict:
        return {"table": self.table.tolist(), "agreement": self.agreement, "transitions": self.transitions,
                "source": self.source, "table_names": [[JOYSTICK[a] for a in row] for row in self.table]}


def vote_action_map(shift_idx: np.ndarray, codes: np.ndarray, joystick: np.ndarray, fallback: np.ndarray
                    ) -> ActionMap:
    """Majority vote of joystick actions per (shift, code).

    Args:
        shift_idx, codes, joystick: (M,) int arrays, one entry per labelled transition.
        fallback: (n_shifts, K) table for pairs (and shifts) that were never seen.
    """
    n_shifts, k = fallback.shape
    votes = np.zeros((n_shifts, k, len(JOYSTICK)), dtype=np.int64)
    np.add.at(votes, (shift_idx, codes, joystick), 1)
    table = fallback.copy()
    per_shift = votes.sum(axis=1)  # (n_shifts, 18)
    for s in range(n_shifts):
        if per_shift[s].sum():
            table[s, :] = per_shift[s].argmax()
        for c in range(k):
            if votes[s, c].sum():
                table[s, c] = votes[s, c].argmax()
    m = len(joystick)
    agreement = float((table[shift_idx, codes] == joystick).mean()) if m else 0.0
    return ActionMap(table=table, votes=votes, agreement=agreement, transitions=m, source="learned" if m else
                     "heuristic")


def snap_shifts(shifts: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(..., 2) pixel shifts -> (...) long index of the nearest row of ``grid`` (n, 2)."""
    d = torch.cdist(shifts.reshape(-1, 2).float(), grid.float().to(shifts.device))  # (M, n)
    return d.argmin(dim=1).view(shifts.shape[:-1])


@torch.no_grad()
def collect_transitions(env: RealGameVectorEnv, cfg: MappingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Play ``env``'s emulators with held random joystick actions.

    Returns:
        frames (N, steps + 1, H, W, 3) uint8 and joystick (N, steps) ALE ids, action t producing frame t + 1.
        Episodes that end are restarted in place (rare at these lengths); the clips spanning them are kept.
    """
    rng = np.random.default_rng(cfg.seed)
    env.reset(seed=cfg.seed)
    n = env.num_envs
    legal = np.asarray(env.legal)
    height, width = env.single_observation_space.shape[:2]
    frames = np.zeros((n, cfg.steps + 1, height, width, 3), dtype=np.uint8)
    joystick = np.zeros((n, cfg.steps), dtype=np.int64)
    frames[:, 0] = env.frames.cpu().numpy()
    current = rng.choice(legal, size=n)
    hold = rng.integers(1, cfg.max_hold + 1, size=n)
    for t in range(cfg.steps):
        expired = hold <= 0
        current = np.where(expired, rng.choice(legal, size=n), current)
        hold = np.where(expired, rng.integers(1, cfg.max_hold + 1, size=n), hold) - 1
        frames[:, t + 1], _ = env.play_joystick(current, rng)
        joystick[:, t] = current
    return frames, joystick


@torch.no_grad()
def learn_action_map(model: WorldModel, env: RealGameVectorEnv, cfg: MappingConfig | None = None) -> ActionMap:
    """Learn the (shift, code) -> joystick map of ``env``'s game for ``model`` (see the module docstring)."""
    cfg = cfg or MappingConfig()
    frames, joystick = collect_transitions(env, cfg)  # (N, S+1, H, W, 3), (N, S)
    n, s1 = frames.shape[:2]
    L = max(2, min(cfg.clip_len, s1))
    starts = list(range(0, s1 - L + 1, L - 1))  # clips share their boundary frame: every transition once
    clips = np.stack([frames[:, a:a + L] for a in starts], axis=1).reshape(-1, L, *frames.shape[2:])
    labels = np.stack([joystick[:, a:a + L - 1] for a in starts], axis=1).reshape(-1, L - 1)
    shift_idx, codes = [], []
    for b in range(0, len(clips), cfg.batch):
        video = torch.as_tensor(clips[b:b + cfg.batch], device=model.device).permute(0, 1, 4, 2, 3)  # (B, L, 3, H, W)
        shifts, code = model.infer_actions(video)  # (B, L-1, 2), (B, L-1)
        shift_idx.append(snap_shifts(shifts, model.shift_grid).cpu().numpy())
        codes.append(code.cpu().numpy())
    fallback = heuristic_action_map(list(model.shift_names), int(model.num_codes), env.legal)
    amap = vote_action_map(np.concatenate(shift_idx).ravel(), np.concatenate(codes).ravel(), labels.ravel(),
                           fallback)
    log.info("learned action map from %d real transitions: agreement %.1f%%", amap.transitions,
             100 * amap.agreement)
    return amap


def cache_path(checkpoint: str | Path) -> Path:
    """Where the learned map of a checkpoint is cached: ``<checkpoint>.actionmap.json`` beside it."""
    p = Path(checkpoint)
    return p.with_name(p.name + ".actionmap.json")


def _cache_key(checkpoint: Path, model: WorldModel, env: RealGameVectorEnv, cfg: MappingConfig) -> dict[str, Any]:
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()  # content, not mtime: a fresh clone reuses it
    key = {"checkpoint": checkpoint.name, "sha256": digest,
           "game": env.game_config.game, "frames_per_step": env.game_config.frames_per_step,
           "shift_grid": model.shift_grid.cpu().tolist(), "num_codes": int(model.num_codes), "mapping": asdict(cfg)}
    # how the model infers actions, where that changed for the same weights (a map voted with other inferred
    # codes is stale); absent for models whose inference never changed, so their cached maps stay valid
    tag = getattr(model, "inference_tag", None)
    if tag is not None:
        key["inference"] = tag
    return key


CACHE_ENTRIES = 8  # maps kept per checkpoint (one per game / step size / mapping settings)


def _cached_entries(path: Path) -> list[dict[str, Any]]:
    """The maps cached in ``path`` ([] when absent or unreadable); reads the older one-map layout too."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    entries = data.get("entries") if isinstance(data, dict) else None
    if entries is None:
        entries = [data] if isinstance(data, dict) and "key" in data else []
    return [e for e in entries if isinstance(e, dict) and "key" in e]


def load_or_learn_action_map(model: WorldModel, env: RealGameVectorEnv, checkpoint: str | Path | None,
                             cfg: MappingConfig | None = None) -> ActionMap:
    """:func:`learn_action_map`, cached beside the checkpoint (:func:`cache_path`) when it can be written.

    A cached map is used only when it was learned for the same checkpoint file (its SHA-256), game, step size,
    shift grid and mapping settings; the cache keeps the last :data:`CACHE_ENTRIES` distinct ones of the current
    file, so an evaluation with other mapping settings does not evict the main job's map.
    """
    cfg = cfg or MappingConfig()
    key = None
    entries: list[dict[str, Any]] = []
    if checkpoint is not None and Path(checkpoint).is_file():
        key = _cache_key(Path(checkpoint).resolve(), model, env, cfg)
        path = cache_path(checkpoint)
        entries = _cached_entries(path)
        for cached in entries:
            if cached.get("key") != key:
                continue
            try:
                amap = ActionMap(table=np.asarray(cached["table"], dtype=np.int64),
                                 votes=np.asarray(cached["votes"], dtype=np.int64),
                                 agreement=float(cached["agreement"]), transitions=int(cached["transitions"]),
                                 source="learned")
            except (KeyError, TypeError, ValueError):
                break
            log.info("action map from cache %s", path)
            return amap
    amap = learn_action_map(model, env, cfg)
    if key is not None:
        entry = {"key": key, **amap.to_dict(), "votes": amap.votes.tolist()}
        # maps of an older version of the file can never match again: drop them
        kept = [e for e in entries if e.get("key") != key and e["key"].get("sha256") == key["sha256"]]
        kept = kept[-(CACHE_ENTRIES - 1):] + [entry]
        try:
            atomic_write_bytes(cache_path(checkpoint), json.dumps({"entries": kept}).encode())
        except OSError as e:  # a read-only install: learn again next time
            log.info("cannot cache the action map beside %s (%s)", checkpoint, e)
    return amap


def action_map_for_env(env: Any, cfg: MappingConfig | None = None) -> np.ndarray | None:
    """The learned (n_shifts, K) joystick map of a dream env's real game (cached), or None when there is none.

    ``env``: a dream env (single or vector) made from a checkpoint of a model trained on Atari data.
    """
    u = getattr(env, "unwrapped", env)
    model = getattr(u, "model", None)
    if model is None:
        return None
    try:
        real = RealGameVectorEnv.for_model(model, 1, task="none")
    except (ValueError, ImportError):
        return None
    try:
        checkpoint = getattr(getattr(u, "config", None), "checkpoint", None)
        return load_or_learn_action_map(model, real, checkpoint, cfg).table
    finally:
        real.close()
