"""Health checks of a world model: does it find its agent, beat a frozen frame, move by sane steps, use its codes?

A world that fails them is not a world to play or train agents in, whatever else it scores. The checks are computed
by ``glassworld eval`` (the ``health`` key of its JSON), stored by ``ship`` in the model card, logged by ``train``,
and enforced by ``gym.make`` (``envs.dream``), which refuses an unhealthy world unless ``allow_unhealthy=True``.

Checks (each a key of the ``health`` dict):

* ``agent_found``: share of real frames on which the model's agent mask locates an agent
  (:func:`worldmodel.metrics.locate_agent`: not empty, not flooding the frame). Problem below
  :attr:`HealthConfig.min_agent_found`.
* ``beats_copy``: the dream animates the world better than not animating it: on the pixels where the real frame
  differs from frame 0 (where a frozen frame is wrong), generated frames score a higher PSNR than the real frame 0
  repeated (``psnr_moving`` vs ``copy_psnr_moving``; same clips, frames 1..T-1, PSNR of the pooled MSE). A dream that
  freezes, or moves the agent the wrong way, fails it. Problem when False. Over whole frames (``psnr`` vs
  ``copy_psnr``) a copy is exact on everything that does not move, which a model re-rendering the frame never is:
  losing there is a *warning* (the dream draws the static scene worse than a still image), not a problem. (Clips
  where nothing moves fall back to whole frames.) Pooled MSE, because a per-frame mean would give the copy 100 dB
  on every frame where nothing moved.
* ``agent_kept``: share of generated frames (1..T-1 of the same clips, actions inferred from the real ones) on which
  the model's own rendered mask still locates an agent, among those whose real frame has one located (the model's
  mask of that real frame): the MDR protocol of method.md 8.3 (missed = reference detected, generated not), with
  the shared locator as the detector, so it needs no labels. Only clips whose first frame has a located agent
  count: a dream started from a frame without one (Seaquest's submarine respawning) has nothing to keep, and one
  that draws no agent where the real video has none (the agent died, left the screen) loses nothing. Problem below
  :attr:`HealthConfig.min_agent_kept`: the dream loses its agent (the issue's ``mdr <= 0.05``).
* ``shift_grid_ok``: every step of the shift grid is at most :attr:`HealthConfig.max_step_frac` of the frame on its
  axis, and an axis has a non-zero step exactly when the agent moves along it in the data (ground-truth shifts
  when the dataset has them, else the motion of the model's own segmented agent: the displacement of the located
  mask between consecutive real frames, which the shift estimator does not produce). Problem when False.
* ``shift_explained``: how much of the motion of the model's own segmented agent its shift estimates explain:
  ``1 - sum |d - s| / sum |d|`` over consecutive real frames where the located agent moved (``d``: its
  displacement, ``s``: the model's estimate of the agent's motion, both px; teleports left out). 1: the global
  action is exactly how the segmented agent moves; 0: no better than saying it never moves. Problem below
  :attr:`HealthConfig.min_shift_explained`: the global action does not move what the model calls the agent (a
  shift estimator stuck at a constant, or a mask on something the shift does not follow). Needs no ground truth,
  so it also judges video nobody labelled. Too few moving transitions: a warning (it cannot be checked).
* ``agent_pos_err`` (only on data with ground-truth agent positions): the median distance, px at a 64-px scale,
  between where the model locates its agent on real frames and where the labelled agent is. Problem above
  :attr:`HealthConfig.max_agent_pos_err`: the model found *something*, but not the agent (a lane of cars instead of
  Freeway's chicken, both boxers instead of one). Unlabelled video has no such check: there, which moving thing is
  the agent is the model's guess.
* ``codes_used``: local-action codes that explain at least :attr:`HealthConfig.min_code_share` of the inferred
  transitions. Fewer than :attr:`HealthConfig.min_codes_used` is a *warning* (local actions then do nothing
  visible; the world still plays by its shifts), not a problem.
* ``healthy``: no problem; ``problems`` / ``warnings``: one sentence each, naming the figure and the threshold.

A check whose evidence is missing (e.g. no generated frames) is a problem too: unknown is not healthy.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from . import metrics as M

_train_log = logging.getLogger("worldmodel.train")  # the mask watch speaks in the training log


class UnhealthyWorldError(ValueError):
    """A world whose health checks failed was asked for without ``allow_unhealthy=True``."""


@dataclass
class HealthConfig:
    """Thresholds of the checks (defaults are the issue's goals, not tuned per game)."""

    min_agent_found: float = 0.95  # the agent must be found on (almost) every real frame
    max_step_frac: float = 0.25  # a step beyond a quarter of the frame per action is no motion a video shows
    min_codes_used: int = 2  # one code: the local action does nothing (a warning)
    min_code_share: float = 0.01  # a code "in use" explains at least 1 % of transitions
    mask_threshold: float = 0.5  # as the envs' locator (worldmodel.metrics.locate_agent)
    min_mask_area: float = 4.0  # agent pixels at the 64-px scale, as eval's mdr
    min_agent_kept: float = 0.95  # the dream keeps its agent on (almost) every generated frame
    max_agent_pos_err: float = 3.0  # px at the 64-px scale: the located agent is the labelled one
    min_shift_explained: float = 0.25  # the shift estimates must explain a quarter of the segmented agent's motion
    min_track_moves: int = 16  # moving transitions of the segmented agent needed before shift_explained is judged
    track_min_move: float = 0.5  # px at the 64-px scale: a smaller displacement of the mask centroid is no move


@dataclass
class HealthEvidence:
    """What the checks are computed from (filled by :class:`HealthAccumulator`, or by hand in tests)."""

    height: int
    width: int
    agent_found: float | None = None  # share of real frames with an agent located
    psnr: float | None = None  # generated frames 1..T-1 vs real (PSNR of the pooled MSE)
    copy_psnr: float | None = None  # real frame 0 repeated vs real frames 1..T-1 (the same)
    psnr_moving: float | None = None  # both on the pixels where the real frame differs from frame 0
    copy_psnr_moving: float | None = None
    shift_step: tuple[float, float] | None = None  # the grid's (dx, dy) step in px
    data_motion: tuple[float | None, float | None] | None = None  # typical |motion| per axis; None on an axis: still
    motion_source: str = "unknown"
    code_counts: list[int] | None = None  # transitions per code
    shift_explained: float | None = None  # share of the segmented agent's motion explained by the shift estimates
    agent_kept: float | None = None  # ... with an agent located in the rendered mask, where the real frame has one
    agent_pos_err: float | None = None  # median |located agent - labelled agent| on real frames, px at 64-px scale
    track_moves: int = 0  # moving transitions behind shift_explained
    frames: int = 0  # real frames behind agent_found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def short_of(value: float, need: float) -> str:
    """``value`` as a percentage with enough digits to read below ``need``: 0.9482 against 0.95 is "94.8%", not
    the "95%" that a whole-percent format prints and that reads as meeting the bar."""
    for digits in range(0, 3):
        text = f"{value:.{digits}%}"
        if float(text.rstrip("%")) / 100 < need:
            return text
    return f"{value:.3%}"


def assess(ev: HealthEvidence, cfg: HealthConfig | None = None) -> dict[str, Any]:
    """The ``health`` dict of a world from its evidence (see the module docstring for each key)."""
    cfg = cfg or HealthConfig()
    problems: list[str] = []
    warnings: list[str] = []
    # the agent is found
    if ev.agent_found is None:
        problems.append("agent_found unknown: the model has no segment() or no real frame was scored")
    elif ev.agent_found < cfg.min_agent_found:
        problems.append(f"the agent is found on only {short_of(ev.agent_found, cfg.min_agent_found)} of real frames "
                        f"(needs >= {cfg.min_agent_found:.0%}): its mask is empty or floods the frame")
    if ev.agent_kept is not None and ev.agent_kept < cfg.min_agent_kept:
        problems.append(f"the dream loses its agent: its rendered mask locates one on only "
                        f"{short_of(ev.agent_kept, cfg.min_agent_kept)} of "
                        f"generated frames whose real frame has one (needs >= {cfg.min_agent_kept:.0%})")
    # generation beats copying frame 0
    beats = None
    moving = ev.psnr_moving is not None and ev.copy_psnr_moving is not None
    gen, copy = (ev.psnr_moving, ev.copy_psnr_moving) if moving else (ev.psnr, ev.copy_psnr)
    where = "where the real video moves" if moving else "over whole frames"
    if gen is None or copy is None:
        problems.append("beats_copy unknown: no generated frame was scored")
    else:
        beats = bool(gen > copy)
        if not beats:
            problems.append(f"{where}, generation scores PSNR {gen:.2f} dB, no better than repeating frame 0 "
                            f"({copy:.2f} dB): the dream does not animate the world")
    if moving and ev.psnr is not None and ev.copy_psnr is not None and not ev.psnr > ev.copy_psnr:
        warnings.append(f"over whole frames, generation scores PSNR {ev.psnr:.2f} dB against {ev.copy_psnr:.2f} dB "
                        "for repeating frame 0: the dream draws the still parts of the scene worse than a still image")
    # the shift grid
    grid_ok, grid_problem = _shift_grid_check(ev, cfg)
    if grid_problem:
        problems.append(grid_problem)
    explained = _explained_check(ev, cfg, problems, warnings)
    if ev.agent_pos_err is not None and ev.agent_pos_err > cfg.max_agent_pos_err:
        problems.append(f"the model's agent is not the labelled one: on real frames it is located "
                        f"{ev.agent_pos_err:.1f} px from the ground-truth agent position (median, 64-px scale; "
                        f"needs <= {cfg.max_agent_pos_err:g} px)")
    # codes
    used = None
    if ev.code_counts is not None and sum(ev.code_counts) > 0:
        counts = np.asarray(ev.code_counts, dtype=np.float64)
        used = int((counts / counts.sum() >= cfg.min_code_share).sum())
        if used < cfg.min_codes_used:
            warnings.append(f"only {used} of {len(counts)} local-action codes in use (>= {cfg.min_code_share:.0%} "
                            "of transitions): local actions do little")
    else:
        warnings.append("codes_used unknown: the model inferred no local actions")
    return {
        "healthy": not problems, "problems": problems, "warnings": warnings,
        "agent_found": _round(ev.agent_found), "agent_kept": _round(ev.agent_kept), "beats_copy": beats,
        "psnr": _round(ev.psnr),
        "copy_psnr": _round(ev.copy_psnr), "psnr_moving": _round(ev.psnr_moving),
        "copy_psnr_moving": _round(ev.copy_psnr_moving), "shift_grid_ok": grid_ok,
        "shift_step": None if ev.shift_step is None else [round(float(s), 3) for s in ev.shift_step],
        "data_motion": None if ev.data_motion is None else [_round(m) for m in ev.data_motion],
        "motion_source": ev.motion_source, "shift_explained": explained, "track_moves": ev.track_moves,
        "agent_pos_err": _round(ev.agent_pos_err),
        "codes_used": used,
        "num_codes": None if ev.code_counts is None else len(ev.code_counts), "frames": ev.frames,
        "thresholds": asdict(cfg),
    }


def _shift_grid_check(ev: HealthEvidence, cfg: HealthConfig) -> tuple[bool | None, str | None]:
    if ev.shift_step is None:
        return None, "shift_grid_ok unknown: the world has no shift grid"
    sx, sy = (abs(float(s)) for s in ev.shift_step)
    if not all(math.isfinite(s) for s in (sx, sy)):
        return False, f"the shift grid has a non-finite step ({sx}, {sy})"
    limits = (cfg.max_step_frac * ev.width, cfg.max_step_frac * ev.height)
    for axis, step, limit in (("x", sx, limits[0]), ("y", sy, limits[1])):
        if step > limit:
            return False, (f"the shift grid steps {step:.1f} px along {axis}, more than {cfg.max_step_frac:.0%} of "
                           f"the frame ({limit:.1f} px): the shift estimator is broken")
    if sx == 0 and sy == 0:
        return False, "the shift grid has no step on either axis: no global action moves the agent"
    if ev.data_motion is not None:
        for axis, step, motion in (("x", sx, ev.data_motion[0]), ("y", sy, ev.data_motion[1])):
            if (motion is None) != (step == 0):
                seen = "never moves" if motion is None else f"moves ~{motion:.1f} px per step"
                return False, (f"the shift grid steps {step:.2f} px along {axis}, but in the data the agent {seen} "
                               f"along {axis} ({ev.motion_source})")
    return True, None


def _explained_check(ev: HealthEvidence, cfg: HealthConfig, problems: list[str], warnings: list[str]) -> float | None:
    """Adds the shift_explained problem or warning; returns the rounded figure."""
    if ev.shift_explained is None:
        warnings.append(f"the model's segmented agent moved on only {ev.track_moves} real transitions (needs >= "
                        f"{cfg.min_track_moves}): whether the shift estimates explain its motion is unchecked")
        return None
    if ev.shift_explained < cfg.min_shift_explained:
        problems.append(f"the shift estimates explain {short_of(ev.shift_explained, cfg.min_shift_explained)} of "
                        f"the motion of the model's own segmented agent (needs >= {cfg.min_shift_explained:.0%}): "
                        "the global action does not move what the model calls the agent")
    return _round(ev.shift_explained)


def _round(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), nd)


@dataclass
class HealthAccumulator:
    """Collects health evidence over evaluation batches; :meth:`evidence` turns it into :class:`HealthEvidence`."""

    height: int
    width: int
    cfg: HealthConfig = field(default_factory=HealthConfig)
    found: list[np.ndarray] = field(default_factory=list)
    sq_err: np.ndarray = field(default_factory=lambda: np.zeros(4))  # gen, copy: all pixels; gen, copy: moving
    counts: np.ndarray = field(default_factory=lambda: np.zeros(2))  # pixel values: all, moving
    codes: list[np.ndarray] = field(default_factory=list)
    motion: list[torch.Tensor] = field(default_factory=list)
    motion_is_gt: bool = False
    track_moves: list[torch.Tensor] = field(default_factory=list)  # (N, 2) segmented agent's displacements, px
    track_shifts: list[torch.Tensor] = field(default_factory=list)  # (N, 2) the model's estimates of them, px
    kept: list[np.ndarray] = field(default_factory=list)  # generated frames 1..T-1: agent located or not
    kept_ref: list[np.ndarray] = field(default_factory=list)  # ... and whether the real frame has one located
    last_found: torch.Tensor | None = None  # (B, T) of the last add_real_masks batch: the reference of kept
    pos_errs: list[np.ndarray] = field(default_factory=list)  # located vs labelled agent on real frames, 64-px scale

    def _locate(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared locator at the checks' settings: mask (..., 1, H, W) -> positions (..., 2), found (...)."""
        pos, found = M.locate_agent(mask.float(), self.cfg.mask_threshold,
                                    M.area_at_scale(self.cfg.min_mask_area, self.height, self.width))
        return pos.float().cpu(), found.cpu()

    def add_real_masks(self, mask: torch.Tensor, shifts: torch.Tensor | None = None,
                       gt_pos: torch.Tensor | np.ndarray | None = None) -> None:
        """The model's agent masks of real frames, located once for every check that needs them.

        Args:
            mask: (B, T, 1, H, W) in [0, 1]: ``agent_found``, and the segmented agent's motion between consecutive
                frames (``shift_explained``, and the data's axes without ground truth).
            shifts: (B, T-1, 2) the model's estimates of the agent's motion (dx, dy) px, or None without them.
            gt_pos: (B, T, 2) labelled agent positions px (NaN where unknown), or None: ``agent_pos_err`` over the
                frames where the model locates an agent (``agent_found`` counts the others).
        """
        pos, found = self._locate(mask)  # (B, T, 2), (B, T)
        self.found.append(found.reshape(-1).numpy())
        self.last_found = found
        ok = found[:, 1:] & found[:, :-1]  # (B, T-1): located on both frames
        d = pos[:, 1:] - pos[:, :-1]  # (B, T-1, 2)
        self.track_moves.append(d[ok])
        if shifts is not None:
            self.track_shifts.append(shifts.float().cpu().reshape(d.shape)[ok])
        if gt_pos is not None:
            gt = torch.as_tensor(np.asarray(gt_pos, dtype=np.float32)).reshape(pos.shape)
            err = (pos - gt).norm(dim=-1)[found]  # (N,)
            self.pos_errs.append((err[torch.isfinite(err)] * M.POSITION_SCALE_PX / max(self.height, self.width))
                                 .numpy())

    def _track(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Displacements (N, 2) of the segmented agent without teleports, and the estimates (N, 2) or None."""
        d = torch.cat(self.track_moves) if self.track_moves else torch.zeros(0, 2)
        s = torch.cat(self.track_shifts) if self.track_shifts else None
        norm = d.norm(dim=1)
        moving = norm[norm > 0]
        if moving.numel():
            keep = norm <= M.JUMP_FACTOR * float(torch.quantile(moving, 0.95))  # a jump is no action's doing
            d, s = d[keep], None if s is None else s[keep]
        return d, s

    def _shift_explained(self, d: torch.Tensor, s: torch.Tensor | None) -> tuple[float | None, int]:
        """``1 - sum |d - s| / sum |d|`` over transitions where the segmented agent moved, and their number."""
        floor = self.cfg.track_min_move * max(self.height, self.width) / M.POSITION_SCALE_PX
        moved = d.norm(dim=1) > floor
        n = int(moved.sum())
        if s is None or n < self.cfg.min_track_moves:
            return None, n
        dm, sm = d[moved].double(), s[moved].double()
        return float(1.0 - (dm - sm).norm(dim=1).sum() / dm.norm(dim=1).sum()), n

    def add_generation(self, video: torch.Tensor, gen: torch.Tensor, change: float = 0.08,
                       gen_mask: torch.Tensor | None = None) -> None:
        """video, gen: (B, T, 3, H, W) in [0, 1]; gen_mask: (B, T, 1, H, W) the rendered agent masks, or None
        (``agent_kept`` counts its frames 1..T-1 whose real frame, and real frame 0, have an agent located: call
        :meth:`add_real_masks` with the same clips first; without it every generated frame counts). Frames 1..T-1
        of ``gen`` and of frame 0 repeated are scored against the real ones; "moving" pixels are those where a
        channel of the real frame differs from frame 0 by more than ``change``."""
        real, pred = video[:, 1:].float(), gen[:, 1:].float()  # (B, T-1, 3, H, W)
        copy = video[:, :1].float().expand_as(real)
        moving = ((real - copy).abs().amax(2, keepdim=True) > change).expand_as(real)  # (B, T-1, 3, H, W)
        e_gen, e_copy = (pred - real) ** 2, (copy - real) ** 2
        self.sq_err += np.array([float(e_gen.sum()), float(e_copy.sum()), float(e_gen[moving].sum()),
                                 float(e_copy[moving].sum())])
        self.counts += np.array([real.numel(), float(moving.sum())])
        if gen_mask is not None:
            kept = self._locate(gen_mask[:, 1:])[1]  # (B, T-1)
            ref = self.last_found
            # the reference: the real frame has an agent located, and so had the clip's first frame (the start)
            ref = ref[:, 1:] & ref[:, :1] if ref is not None and ref.shape == gen_mask.shape[:2] \
                else torch.ones_like(kept)
            self.kept.append(kept.reshape(-1).numpy())
            self.kept_ref.append(ref.reshape(-1).numpy())
            self.last_found = None  # one reference per batch

    def add_codes(self, codes: torch.Tensor) -> None:
        """codes: (B, T-1) inferred local-action codes."""
        self.codes.append(codes.reshape(-1).cpu().numpy())

    def add_motion(self, shifts: torch.Tensor, ground_truth: bool) -> None:
        """shifts: (..., 2) per-transition agent motion in px (ground truth, or the model's estimates)."""
        if ground_truth and not self.motion_is_gt:
            self.motion, self.motion_is_gt = [], True  # ground truth replaces estimates
        if ground_truth == self.motion_is_gt:
            self.motion.append(shifts.reshape(-1, 2).float().cpu())

    def evidence(self, shift_step: tuple[float, float] | None, num_codes: int | None) -> HealthEvidence:
        """The evidence, given the world's shift-grid (dx, dy) step and its number of codes."""
        from .envinfo import typical_magnitude

        found = np.concatenate(self.found) if self.found else np.zeros(0, bool)
        d, s = self._track()
        explained, moves = self._shift_explained(d, s)
        data_motion, source = None, "unknown"
        if self.motion:
            allm = torch.cat(self.motion)
            data_motion = (typical_magnitude(allm[:, 0]), typical_magnitude(allm[:, 1]))
            source = "ground-truth shifts" if self.motion_is_gt else "the model's motion estimates"
        if not self.motion_is_gt and len(d):  # without ground truth: how the segmented agent moved, not the estimator
            data_motion = (typical_magnitude(d[:, 0]), typical_magnitude(d[:, 1]))
            source = "the motion of the model's segmented agent"
        counts = None
        if self.codes and num_codes:
            counts = np.bincount(np.concatenate(self.codes).astype(np.int64), minlength=num_codes).tolist()
        return HealthEvidence(
            height=self.height, width=self.width, agent_found=float(found.mean()) if found.size else None,
            psnr=_pooled_psnr(self.sq_err[0], self.counts[0]), copy_psnr=_pooled_psnr(self.sq_err[1], self.counts[0]),
            psnr_moving=_pooled_psnr(self.sq_err[2], self.counts[1]),
            copy_psnr_moving=_pooled_psnr(self.sq_err[3], self.counts[1]), shift_step=shift_step,
            data_motion=data_motion,
            motion_source=source, code_counts=counts, frames=int(found.size), shift_explained=explained,
            track_moves=moves, agent_pos_err=_median(self.pos_errs),
            agent_kept=self._kept_share())

    def _kept_share(self) -> float | None:
        """Share of generated frames with an agent located among those whose real frame has one (None: none)."""
        if not self.kept:
            return None
        kept, ref = np.concatenate(self.kept), np.concatenate(self.kept_ref)
        return float(kept[ref].mean()) if ref.any() else None


def _median(parts: list[np.ndarray]) -> float | None:
    values = np.concatenate(parts) if parts else np.zeros(0)
    return float(np.median(values)) if values.size else None


def _pooled_psnr(sq_err: float, count: float) -> float | None:
    """PSNR (data range 1) of the mean squared error ``sq_err / count``; None without pixels, 100 dB at 0 error."""
    if count <= 0:
        return None
    mse = sq_err / count
    return 100.0 if mse <= 1e-10 else float(min(100.0, 10 * np.log10(1.0 / mse)))


def health_summary(health: dict[str, Any]) -> str:
    """One line of a health dict's verdict and key figures (eval's table and the model card both print it)."""
    found = "-" if health.get("agent_found") is None else f"{health['agent_found']:.0%}"
    expl = health.get("shift_explained")
    kept = "-" if health.get("agent_kept") is None else f"{health['agent_kept']:.0%}"
    return (f"{'HEALTHY' if health.get('healthy') else 'UNHEALTHY'} (agent found on {found} of "
            f"{health.get('frames', 0)} real frames, kept on {kept} of generated ones, beats copying frame 0: "
            f"{health.get('beats_copy')}, shift grid "
            f"ok: {health.get('shift_grid_ok')}, shifts explain the agent's motion: "
            f"{'-' if expl is None else f'{expl:.0%}'}, codes used: {health.get('codes_used')}/"
            f"{health.get('num_codes')})")


def card_health(card: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``health`` dict of a model card (or of its eval), or None when the world was never checked."""
    card = card or {}
    return card.get("health") or (card.get("eval") or {}).get("health")


def require_healthy(card: dict[str, Any] | None, name: str, allow_unhealthy: bool = False) -> dict[str, Any] | None:
    """Raise :class:`UnhealthyWorldError` naming the problems of an unhealthy world unless ``allow_unhealthy``.

    Returns the health dict (None for a world never checked: the caller warns).
    """
    health = card_health(card)
    if health is not None and not health.get("healthy", False) and not allow_unhealthy:
        problems = "; ".join(health.get("problems") or ["no reason recorded"])
        raise UnhealthyWorldError(
            f"{name} is an unhealthy world: {problems}. Agents trained in it learn nothing about the real game. "
            "Retrain it (README: `glassworld world`), or pass allow_unhealthy=True to use it anyway (gym.make; "
            "`allow_unhealthy=true` for glassworld play, agent and agent-eval)")
    return health


@dataclass
class MaskWatch:
    """Watches the agent masks of training batches; warns the moment the mask collapses (or never forms).

    :meth:`update` takes the model's masks of real training frames, returns the share of frames on which the shared
    locator finds an agent (logged as ``health/agent_found``), and logs a warning when that share falls below
    ``collapse_below`` after having reached ``formed_above`` — an agent mask that was found and then emptied or
    flooded the frame — and once when the mask has not reached ``formed_above`` by step ``formed_by_step``.
    :meth:`final_problem` says, at the end of training, whether the agent is still not found.
    """

    height: int
    width: int
    cfg: HealthConfig = field(default_factory=HealthConfig)
    formed_above: float = 0.5
    collapse_below: float = 0.1
    formed_by_step: int = 250  # an agent mask not formed by then is warned about once (it may never form)
    best: float = 0.0
    last: float | None = None
    warned_at: int | None = None
    warned_unformed: bool = False

    def update(self, mask: torch.Tensor, step: int) -> float:
        """mask: (B, T, 1, H, W) in [0, 1]; returns the share of frames with an agent found."""
        _, found = M.locate_agent(mask.detach().float(), self.cfg.mask_threshold,
                                  M.area_at_scale(self.cfg.min_mask_area, self.height, self.width))
        share = float(found.float().mean())
        if share >= self.formed_above:
            self.warned_at = None  # formed (again): a later collapse is news
        elif self.best >= self.formed_above and share < self.collapse_below and self.warned_at is None:
            self.warned_at = step
            _train_log.warning(
                "HEALTH: the agent mask collapsed at step %d: an agent is found on %.0f%% of training frames (it was "
                "%.0f%%); the mask is empty or floods the frame", step, 100 * share, 100 * self.best)
        self.best, self.last = max(self.best, share), share
        if step >= self.formed_by_step and self.best < self.formed_above and not self.warned_unformed:
            self.warned_unformed = True
            _train_log.warning(
                "HEALTH: after %d steps the agent mask has not formed: an agent is found on at most %.0f%% of "
                "training frames (the mask is empty or floods the frame)", step, 100 * self.best)
        return share

    def final_problem(self) -> str | None:
        """A sentence when the agent is not found on enough of the last training batch's frames, else None."""
        if self.last is None or self.last >= self.cfg.min_agent_found:
            return None
        return (f"at the end of training the agent is found on {short_of(self.last, self.cfg.min_agent_found)} of "
                f"training frames (needs >= {self.cfg.min_agent_found:.0%})")
