"""``glassworld eval``: score a trained world model on the val or test split of a dataset.

Usage::

    glassworld eval checkpoint=PATH data.path=DIR out=FILE.json [split=val|test] [eval.clips=N]
                    [eval.clip_len=T] [device=auto|cpu|cuda] [seed=N]

Protocol (method.md section 8, adapted as in section 14). ``eval.clips`` windows of ``eval.clip_len`` frames
(taken every ``frame_skip + 1`` frames, the checkpoint's training frame skip unless ``eval.frame_skip`` is set)
are drawn at random without replacement (seeded) from all windows of the split. On each clip:

* **GMA on real frames**: ``model.segment`` vs the GT masks -> ``miou`` (soft IoU, 8.1);
  ``model.estimate_shifts`` vs the GT shifts of transitions 1..T-1 -> ``fg_shift_err`` / ``bg_shift_err``
  (mean L2 in px of the frame) and ``fg_angle_acc`` / ``bg_angle_acc`` (within 45 degrees, over non-zero GT).
* **Action codes**: ``model.infer_actions`` vs the GT local labels of the destination frames (label -1 =
  none is left out) -> ``nmi_g`` (all transitions), ``nmi_s`` (mean over identities of the pooled per-identity
  NMI) and ``con = nmi_s - nmi_g``.
* **Generation from the first frame**: ``model.generate`` (or, for a model without it, ``start`` + ``step``
  replaying the inferred actions) in eval mode, autoregressive, clamped to [0, 1]. Frame 0 is a copy of the
  real frame and is **excluded** from ``lpips``, ``psnr``, ``ssim``, ``fid``, ``pos_err`` and ``mdr``
  (``fvd`` scores whole clips, frame 0 included, as videos).
* **Agent position without a detector** (section 14): the centroid of the generated agent mask (pixels with
  mask > ``eval.mask_threshold``; fewer than ``eval.min_mask_area`` pixels at a 64-px scale = no agent) against
  the GT position (``pos``, or the GT mask's centroid when the dataset has masks but no positions); a mask
  covering more than ``eval.max_mask_frac`` of the frame locates nothing and also counts as no agent.
  ``pos_err[h]`` is the mean distance at frame h, times ``64 / max(H, W)`` (a 64-px frame scale);
  ``mdr`` is the share of generated frames with a known GT position where no agent was found (a fraction,
  not a percentage). Windows in which the GT agent teleports (one move longer than
  :data:`worldmodel.metrics.JUMP_FACTOR` x the 95th percentile of the evaluated moves: a new point or a change
  of ends in Atari Tennis, a respawn) are left out of both, because no action-conditioned model can predict
  them; ``notes`` gives their count and ``pos_err_all_windows`` (with them).
* ``lpips`` uses :class:`worldmodel.perceptual.Perceptual` (``lpips_backbone`` says "pretrained" or "random");
  ``fid`` needs Inception weights on disk, ``fvd`` a TorchScript I3D in ``$GLASSWORLD_I3D_WEIGHTS``; nothing is
  downloaded.

Every metric that cannot be computed is ``null`` and ``reasons[key]`` says why.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import metrics as M
from .data.format import DatasetError, atomic_write_json, check_writable
from .evaluation.clips import EvalData, prepare
from .evaluation.common import Results
from .evaluation.generation import GenerationScores
from .evaluation.generation import generate as _generate
from .evaluation.gma import CodeScores, GmaScores
from .evaluation.networks import FeatureNets, load_networks
from .evaluation.networks import load_i3d, load_inception, load_perceptual  # noqa: F401 - still importable from here
from .evaluation.positions import KeypointScores, PositionScores
from .health import HealthAccumulator, assess, health_summary
from .models import generation_of

log = logging.getLogger(__name__)

METRIC_KEYS = ("miou", "fg_shift_err", "fg_angle_acc", "bg_shift_err", "bg_angle_acc", "nmi_g", "nmi_s", "con",
               "lpips", "lpips_backbone", "psnr", "ssim", "pos_err", "mdr", "fid", "fvd", "kp_track_err",
               "kp_track_last_pos_err")


@dataclass
class EvalConfig:
    """What ``glassworld eval`` scores and how (see the module docstring for the protocol)."""

    checkpoint: str | None = None  # a checkpoint file; may be None when a model is passed to evaluate()
    data_path: str | None = None  # dataset folder
    split: str = "test"  # val | test
    clips: int = 64  # windows drawn at random without replacement (all of them if the split has fewer)
    clip_len: int = 17  # frames per window; pos_err at horizon 16 needs >= 17
    frame_skip: int | None = None  # None: the checkpoint's training frame skip
    batch_size: int = 8
    horizons: tuple[int, ...] = (1, 4, 8, 16)
    mask_threshold: float = 0.5
    min_mask_area: float = 4.0  # agent pixels at a 64-px frame scale (scaled by (max(H, W) / 64)^2)
    max_mask_frac: float = 0.5  # a generated agent mask covering more of the frame than this = no agent found
    pos_source: str = "render"  # render: the composed agent mask; segment: model.segment on generated frames
    lpips: bool = True
    fid: bool = True
    fvd: bool = True
    device: str = "auto"
    seed: int = 0
    workers: int = 0
    track_train_clips: int = 64  # train-split windows whose frames fit the kp_track_err regression
    # generation settings applied to the checkpoint eval loads, e.g. {"reencode_every": 5, "burn_in": 1} (GLASS)
    generation: dict[str, int] = field(default_factory=dict)
    out: str | None = None

    def __post_init__(self) -> None:
        if self.split not in ("train", "val", "test"):
            raise DatasetError(f"split must be val or test (or train), got {self.split!r}")
        if self.clips < 1 or self.clip_len < 2 or self.batch_size < 1:
            raise DatasetError(
                f"need eval.clips >= 1, eval.clip_len >= 2 and eval.batch_size >= 1; got {self.clips}, "
                f"{self.clip_len}, {self.batch_size}")
        if self.frame_skip is not None and self.frame_skip < 0:
            raise DatasetError(f"eval.frame_skip must be >= 0 (or null), got {self.frame_skip}")
        if not 0 < self.max_mask_frac <= 1:
            raise DatasetError(f"eval.max_mask_frac must be in (0, 1], got {self.max_mask_frac}")
        if self.pos_source not in ("render", "segment"):
            raise DatasetError(f"eval.pos_source must be render or segment, got {self.pos_source!r}")
        self.horizons = tuple(int(h) for h in self.horizons)
        if any(h < 1 for h in self.horizons):
            raise DatasetError(f"eval.horizons must be >= 1, got {list(self.horizons)}")

    @classmethod
    def from_omegaconf(cls, c: Any) -> EvalConfig:
        """Build from the composed ``configs/eval.yaml`` (a DictConfig)."""
        from .config import plain, settings

        d = plain(c)
        data = d.get("data") or {}
        return settings(cls, dict(d.get("eval") or {}), "eval", checkpoint=d.get("checkpoint"),
                        data_path=data.get("path"), split=d.get("split", "test"), device=str(d.get("device", "auto")),
                        seed=int(d.get("seed", 0)), workers=int(data.get("workers", 0)), out=d.get("out"))


def resolve_device(name: str) -> torch.device:
    """:func:`worldmodel.device.resolve_device` (the one device rule)."""
    from .device import resolve_device as resolve; return resolve(name)  # noqa: E702 - one rule, one helper


# ----------------------------------------------------------------------------------------------------------------
# the evaluation (its parts: worldmodel.evaluation)
# ----------------------------------------------------------------------------------------------------------------

def evaluate(cfg: EvalConfig, model: Any | None = None) -> dict[str, Any]:
    """Score a world model on ``cfg.split`` of ``cfg.data_path`` (protocol: module docstring).

    Args:
        cfg: what to evaluate and how.
        model: an already loaded :class:`~worldmodel.api.WorldModel` (e.g. at the end of training); None loads
            ``cfg.checkpoint`` with :func:`worldmodel.models.load_world_model`.
    Returns:
        a JSON-ready dict with the keys of :data:`METRIC_KEYS`, ``reasons`` (key -> why it is null),
        ``split``, ``clips``, ``checkpoint``, ``dataset`` and ``notes`` (protocol details).
    A model passed in is put in eval mode and given back in the mode it had; the caller's RNG is untouched.
    """
    if cfg.data_path is None:
        raise DatasetError("no dataset given: pass data.path=DIR (a folder made by `glassworld data ...`)")
    device = resolve_device(cfg.device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    was_training = isinstance(model, torch.nn.Module) and model.training
    try:
        with torch.random.fork_rng(devices=cuda), torch.no_grad():  # seeded here only
            torch.manual_seed(cfg.seed)
            return _evaluate(cfg, model, device)
    finally:
        if was_training:
            model.train()


def _evaluate(cfg: EvalConfig, model: Any | None, device: torch.device) -> dict[str, Any]:
    """The body of :func:`evaluate` (under no_grad, with a forked, seeded RNG): the model and its clips, the
    feature networks, every batch scored by every metric family, then the result."""
    data = prepare(cfg, model, device)
    reasons: dict[str, str] = {}  # metric -> why it is null, shared by the families
    nets = load_networks(cfg, data.device, reasons)
    families = _Families.start(cfg, data, nets, reasons)
    n_done = 0
    for batch in data.loader:
        n_done += families.add(batch)
        log.info("evaluated %d/%d clips", n_done, len(data.chosen))
    res, pos_notes = families.aggregate(cfg, reasons)
    return {
        "split": cfg.split, "clips": len(data.chosen),
        "checkpoint": str(cfg.checkpoint) if cfg.checkpoint else None,
        "dataset": str(cfg.data_path),
        **res,
        "reasons": {k: reasons[k] for k in sorted(reasons)},
        "notes": _notes(cfg, data, nets, families.positions.min_area_px, pos_notes),
    }


@dataclass
class _Families:
    """The metric families of one evaluation (each an accumulator of :mod:`worldmodel.evaluation`) and the health
    evidence they feed, given the same batches in turn."""

    data: EvalData
    health: HealthAccumulator
    gma: GmaScores  # miou, fg/bg shift_err and angle_acc
    codes: CodeScores  # nmi_g, nmi_s, con
    generation: GenerationScores  # psnr, ssim, lpips (+ copy_frame0), fid, fvd
    positions: PositionScores  # pos_err, mdr, agent_sharpness, agent_psnr_aligned
    keypoints: KeypointScores  # kp_track_err, kp_track_last_pos_err

    @classmethod
    def start(cls, cfg: EvalConfig, data: EvalData, nets: FeatureNets, reasons: dict[str, str]) -> _Families:
        """Empty accumulators for ``data``'s model and frames."""
        model, h, w = data.model, data.height, data.width
        health = HealthAccumulator(h, w)
        return cls(data, health, GmaScores(model, data.device, health), CodeScores(model, health, data.dataset),
                   GenerationScores(nets, reasons), PositionScores(cfg, model, h, w), KeypointScores(cfg, model))

    def add(self, batch: dict[str, torch.Tensor]) -> int:
        """Score one batch of the loader (uint8 ``frames`` (B, T, 3, H, W) and ground truth); returns B."""
        video = batch["frames"].to(self.data.device).float() / 255.0  # (B, T, 3, H, W) in [0, 1]
        self.gma.add(batch, video)
        self.codes.add(batch, video)
        gen, gen_mask = _generate(self.data.model, video)  # (B, T, 3, H, W), (B, T, 1, H, W)
        self.generation.add(video, gen)
        self.health.add_generation(video, gen, gen_mask=gen_mask)
        self.positions.add(batch, video, gen, gen_mask)
        self.keypoints.add(batch, video)
        return video.shape[0]

    def aggregate(self, cfg: EvalConfig, reasons: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the metrics: :data:`METRIC_KEYS` then ``copy_frame0``, the agent-look keys and ``health``; the notes on
        the position windows), null metrics' reasons added to ``reasons``."""
        data = self.data
        out = Results(METRIC_KEYS, reasons)
        self.gma.aggregate(out, data.gt_keys)
        self.codes.aggregate(out, data.gt_keys, cfg.clip_len)
        self.generation.aggregate(out, data.height, data.width)
        pos_notes = self.positions.aggregate(out, data.frame_skip, data.gt_keys)
        self.keypoints.aggregate(out, data.frame_skip, data.gt_keys)
        res = out.values
        res["copy_frame0"] = self.generation.copy_frame0()
        res.update(self.positions.agent_look(reasons))  # agent_sharpness, agent_psnr_aligned (+ _copy)
        grid = getattr(data.model, "shift_grid", None)
        step = None if grid is None else tuple(float(v) for v in grid.abs().amax(0).tolist())  # (dx, dy) px
        res["health"] = assess(self.health.evidence(step, getattr(data.model, "num_codes", None)))
        return res, pos_notes


def _notes(cfg: EvalConfig, data: EvalData, nets: FeatureNets, min_area_px: float,
           pos_notes: dict[str, Any]) -> dict[str, Any]:
    """The protocol details stored with the result (``notes``): settings, what each metric measures, the feature
    networks used, and ``pos_notes`` (the windows left out of pos_err)."""
    h, w = data.height, data.width
    notes = {
        "clip_len": cfg.clip_len, "frame_skip": data.frame_skip, "seed": cfg.seed, "device": str(data.device),
        "windows_in_split": len(data.dataset),
        "frames": "frame 0 of every generated clip is the real first frame; it is excluded from lpips, psnr, "
                  "ssim, fid, pos_err and mdr; fvd scores whole clips",
        "generation": "from the first frame, autoregressive, eval mode, replaying actions inferred on the real "
                      "clip, clamped to [0, 1]",
        "pos_err": f"mean px distance at frame h between the generated agent-mask centroid ({cfg.pos_source}) "
                   f"and the GT position, x 64/max(H, W) = {M.POSITION_SCALE_PX / max(h, w):.4g} (64-px scale)",
        "mdr": "fraction (not %) of generated frames with a known GT position where no agent was found: the "
               f"agent mask has < {min_area_px:.3g} px or covers > {cfg.max_mask_frac:.0%} of the frame",
        "shift_units": "pixels of the frame",
        "agent_look": "agent_sharpness@h: mean |image gradient| in a crop centred on the generated agent / the same "
                      "on the real agent; agent_psnr_aligned@h: PSNR between the two crops; crop = the GT mask's "
                      "box, else 12x8 px at 64 px; *_copy: frame 0 repeated, its crop on frame 0's real agent",
        "copy_frame0": "lpips, psnr and ssim of the real frame 0 repeated, on the same frames; its per-frame psnr is "
                       "100 dB wherever nothing moved, so health.beats_copy compares the PSNR of the pooled MSE",
        "model_generation": generation_of(data.model),
        "jumps": f"pos_err and mdr leave out windows whose GT agent moves more than {M.JUMP_FACTOR:g} x the 95th "
                 "percentile of its moves in one step (a teleport: new point, change of ends, respawn); "
                 "pos_err_all_windows keeps them",
        **pos_notes,
    }
    if nets.inception is not None:
        notes["fid_network"] = nets.inception.name
    if nets.i3d is not None:
        notes["fvd_network"] = nets.i3d.name
    return notes


# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------

def format_table(result: dict[str, Any]) -> str:
    """A readable two-column table of the metrics (None shown as '-' with its reason)."""
    head = (f"eval of {result.get('checkpoint')} on {result.get('dataset')} [{result['split']}, "
            f"{result['clips']} clips]")
    lines = [head]
    reasons = result.get("reasons", {})
    rows: list[tuple[str, str, str]] = []
    for key in METRIC_KEYS:
        v = result.get(key)
        if key == "pos_err" and isinstance(v, dict):
            for hz, e in v.items():
                rows.append((f"pos_err@{hz}", "-" if e is None else f"{e:.4g}", reasons.get(f"pos_err.{hz}", "")))
            continue
        text = "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        copy = (result.get("copy_frame0") or {}).get(key)
        note = f"copy frame 0: {copy:.4g}" if copy is not None else ""
        rows.append((key, text, reasons.get(key, "") if v is None else note))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, text, why in rows:
        lines.append(f"  {name:<{width}}  {text:>{vwidth}}" + (f"  ({why})" if why else ""))
    for key in ("agent_sharpness", "agent_psnr_aligned"):
        for hz, v in (result.get(key) or {}).items():
            copy = (result.get(f"{key}_copy") or {}).get(hz)
            lines.append(f"  {key}@{hz}: {'-' if v is None else f'{v:.4g}'}"
                         + ("" if copy is None else f"  (copy frame 0: {copy:.4g})"))
    health = result.get("health")
    if health is not None:
        lines.append(health_line(health))
    return "\n".join(lines)


def health_line(health: dict[str, Any]) -> str:
    """One block saying whether the world is healthy, its key figures, and each problem and warning."""
    head = "health: " + health_summary(health)
    return "\n".join([head, *(f"  problem: {p}" for p in health.get("problems", [])),
                       *(f"  warning: {w}" for w in health.get("warnings", []))])


def cli_main(argv: list[str]) -> int:
    """``glassworld eval key=value ...`` (see the module docstring); returns the exit status."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from .config import compose

    try:
        cfg = EvalConfig.from_omegaconf(compose(list(argv), config_name="eval"))
        if cfg.checkpoint is None or cfg.data_path is None:
            raise DatasetError("usage: glassworld eval checkpoint=PATH data.path=DIR [out=FILE.json] "
                               "[split=val|test] [eval.clips=N] [eval.clip_len=T] [device=...] [seed=N]")
        if cfg.out:
            check_writable(cfg.out, "out=", folder=False)  # before any work
        result = evaluate(cfg)
    except (DatasetError, ValueError) as e:
        print(f"glassworld eval: error: {e}", file=sys.stderr)
        return 2
    print(format_table(result), flush=True)  # first: the results are shown even if writing them fails
    if cfg.out:
        try:
            atomic_write_json(Path(cfg.out), result)
        except OSError as e:
            print(f"glassworld eval: error: could not write {cfg.out}: {e.strerror or e} (the results are above)",
                  file=sys.stderr)
            return 1
        print(f"wrote {cfg.out}")
    return 0
