"""Rollout videos of a policy: what a person sees of the world, whatever the policy observes.

* :func:`record_dream` plays a policy in a one-env dream and films the dreamed RGB frames, with the agent the model
  segments tinted and outlined and the task's target drawn, each frame upscaled and captioned with the episode,
  step, return and outcome. The policy still gets its own observation (e.g. ``observation="mask"``).
* :func:`record_side_by_side` plays the same policy in the dream and in the real game at once. Every episode
  starts from the same real screen and target: the real game is reset, and the dream starts from that screen
  (``reset(options={"frame", "target"})``), so the two panes show how far imagination and reality drift apart
  under the same policy. Both restart together when either episode ends. The real pane shows the real screen with
  the world model's segmentation of it outlined (what a mask policy sees there).
* :class:`Strip` keeps a few of those views and writes them as one PNG (rows: dream, real; columns: time).

Videos are mp4 (H.264 through PyAV, :class:`agents.play.Recorder`), written to a temp file and moved into place,
so a video either exists complete or not at all. A video of ``steps`` frames shows the start frame of every
episode and one frame per env step. The envs are one-env vector envs with next-step autoreset: an episode's last
frame is still the env's frame when it ends, and the video restarts the episode itself.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

HEADER_PX = 12  # caption bar height (PIL's default bitmap font is 11 px tall)
GAP_PX = 4  # black gap between side-by-side panes
WHITE, GREEN, GREY = (235, 235, 235), (90, 220, 90), (160, 160, 160)
AGENT_RGB = (0, 255, 255)  # outline (and light tint) of the agent the model segments: cyan, rare in both games
TINT = 0.25  # share of the agent colour blended into agent pixels
MASK_LEVEL = 0.5  # mask values above this count as agent


@dataclass
class VideoConfig:
    """``video.*`` of ``configs/agent.yaml``."""

    steps: int = 200  # frames per video (episode starts + one per env step); 0 = no videos
    path: str = "rollout.mp4"  # dream rollout, relative to the run folder
    real_path: str = "rollout_real.mp4"  # dream | real side by side (when the real game is evaluated)
    strip_path: str = "rollout.png"  # a PNG strip of the side-by-side video (else of the dream one); "" = none
    strip_frames: int = 8  # columns of the strip
    strip_every: int = 6  # video frames between columns
    scale: int = 4  # nearest-neighbour upscaling of the model's frames
    fps: int = 15
    deterministic: bool = True  # the policy's greedy actions (as in evaluation)
    seed: int = 0

    def validate(self) -> None:
        if self.steps < 0 or self.scale < 1 or self.fps < 1 or self.strip_frames < 1 or self.strip_every < 1:
            raise ValueError(f"video.steps must be >= 0; video.scale, video.fps, video.strip_frames and "
                             f"video.strip_every >= 1; got steps={self.steps}, scale={self.scale}, fps={self.fps}, "
                             f"strip_frames={self.strip_frames}, strip_every={self.strip_every}")
        for name in ("path", "real_path"):
            if Path(getattr(self, name)).suffix.lower() != ".mp4":
                raise ValueError(f"video.{name} must end in .mp4, got {getattr(self, name)!r}")
        if self.strip_path and Path(self.strip_path).suffix.lower() != ".png":
            raise ValueError(f"video.strip_path must end in .png (or be empty), got {self.strip_path!r}")


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, C) -> (H * scale, W * scale, C), nearest neighbour (pixels stay sharp)."""
    if scale == 1:
        return frame
    return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)


def caption(frame: np.ndarray, text: str, color: tuple[int, int, int] = WHITE) -> np.ndarray:
    """(H, W, 3) uint8 -> (HEADER_PX + H, W, 3) uint8 with ``text`` on a black bar above (cut at the width)."""
    from PIL import Image, ImageDraw, ImageFont

    bar = Image.new("RGB", (frame.shape[1], HEADER_PX))
    ImageDraw.Draw(bar).text((2, 0), text, fill=color, font=ImageFont.load_default())
    return np.concatenate([np.asarray(bar), frame], axis=0)


# ------------------------------------------------------------------------------------------------
# what a person sees: the world's RGB frame, the agent outlined, the target drawn
# ------------------------------------------------------------------------------------------------
@dataclass
class View:
    """One env's world at one moment: ``frame`` (H, W, 3) uint8 with the target marker, ``mask`` (H, W) in [0, 1]
    (the agent the world model segments; None when there is none to show)."""

    frame: np.ndarray
    mask: np.ndarray | None = None


Segmenter = Callable[[torch.Tensor], torch.Tensor]  # frames (N, 3, H, W) uint8 -> agent masks (N, 1, H, W)


def model_segmenter(model: Any) -> Segmenter | None:
    """The world model's agent segmentation as a :data:`Segmenter` (None for a model without ``segment``)."""
    if not hasattr(model, "segment"):
        return None
    return lambda frames: model.segment(frames.to(model.device)[:, None])[:, 0]  # (N, 1, H, W) in [0, 1]


@torch.no_grad()
def world_view(venv: Any, segment: Segmenter | None = None) -> View:
    """Env 0's RGB frame with the task's target drawn and, with ``segment``, the agent it finds in that frame.

    The same for dreams and real games (the agent interface's ``frames``, ``task`` and ``task_state``), whatever
    the policy observes: with the world model's segmenter, the real pane shows the agent a mask policy sees there.
    """
    frames = venv.frames[:1]  # (1, H, W, 3) uint8, without the target marker
    state = {k: v[:1] for k, v in venv.task_state.items()}
    frame = venv.task.draw(frames, state)[0].cpu().numpy()  # (H, W, 3) uint8
    if segment is None:
        return View(frame)
    masks = segment(frames.permute(0, 3, 1, 2).contiguous())  # (1, 1, H, W) in [0, 1]
    return View(frame, masks[0, 0].float().cpu().numpy())


def overlay(view: View, scale: int) -> np.ndarray:
    """The view upscaled by ``scale`` with the agent tinted and outlined (1 px at the upscaled size): (H*s, W*s, 3)."""
    img = upscale(view.frame, scale).astype(np.float32)  # (H*s, W*s, 3)
    if view.mask is None:
        return img.astype(np.uint8)
    agent = upscale(view.mask[..., None] > MASK_LEVEL, scale)[..., 0]  # (H*s, W*s) bool
    if not agent.any():
        return img.astype(np.uint8)
    color = np.asarray(AGENT_RGB, np.float32)
    img[agent] = (1 - TINT) * img[agent] + TINT * color
    inner = agent.copy()  # agent pixels whose 4 neighbours are agent too
    inner[1:] &= agent[:-1]
    inner[:-1] &= agent[1:]
    inner[:, 1:] &= agent[:, :-1]
    inner[:, :-1] &= agent[:, 1:]
    img[agent & ~inner] = color
    return img.round().clip(0, 255).astype(np.uint8)


@dataclass
class _Episode:
    """Running totals of the episode shown in one pane."""

    index: int = 1
    step: int = 0
    ret: float = 0.0

    def label(self, name: str, outcome: str = "") -> str:
        return f"{name}  ep {self.index}  t {self.step}  R {self.ret:+.2f}  {outcome}".rstrip()


def _pane(view: View, name: str, ep: _Episode, scale: int, outcome: str = "") -> np.ndarray:
    color = GREEN if outcome == "success" else (GREY if outcome else WHITE)
    return caption(overlay(view, scale), ep.label(name, outcome), color)


@dataclass
class Strip:
    """Every ``every``-th view of a video (up to ``frames`` columns) as one PNG: one row per world, a caption each."""

    frames: int = 8
    every: int = 6
    scale: int = 2
    names: tuple[str, ...] = ("dream",)
    columns: list[tuple[int, list[View]]] = field(default_factory=list)  # (video frame index, a view per world)

    def offer(self, index: int, views: list[View]) -> None:
        """Video frame ``index`` shows ``views`` (one per world): kept when it falls on the strip's grid."""
        if index % self.every == 0 and len(self.columns) < self.frames:
            self.columns.append((index, views))

    def image(self) -> np.ndarray:
        """(rows * (HEADER_PX + H*scale), cols * W*scale + gaps, 3) uint8."""
        rows = []
        for r, name in enumerate(self.names):
            cells = [caption(overlay(views[r], self.scale), f"{name} {i}") for i, views in self.columns]
            gap = np.zeros((cells[0].shape[0], GAP_PX, 3), np.uint8)
            rows.append(np.concatenate([c for cell in cells for c in (cell, gap)][:-1], axis=1))
        hgap = np.zeros((GAP_PX, rows[0].shape[1], 3), np.uint8)
        return np.concatenate([c for row in rows for c in (row, hgap)][:-1], axis=0)

    def save(self, path: str | Path) -> str | None:
        """Write the PNG atomically; returns its path (None without columns)."""
        from PIL import Image

        from worldmodel.data.format import atomic_write_bytes

        if not self.columns:
            return None
        buf = io.BytesIO()
        Image.fromarray(self.image()).save(buf, format="PNG")
        atomic_write_bytes(Path(path), buf.getvalue())
        return str(path)


# ------------------------------------------------------------------------------------------------
# playing and filming
# ------------------------------------------------------------------------------------------------
def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="frame", leave=False, disable=None if enabled else True)


def _check_env(venv: Any) -> None:
    from gymnasium.vector import AutoresetMode

    if venv.num_envs != 1 or venv.metadata.get("autoreset_mode") != AutoresetMode.NEXT_STEP:
        raise ValueError("rollout videos need a one-env vector env with autoreset_mode='next_step' (the episode's "
                         "last frame stays in the env until the video restarts it)")


def _discard(rec: Any) -> None:
    """Drop an unfinished video (an error or Ctrl-C mid-way): no partial file is left behind."""
    try:
        rec.container.close()
    finally:
        rec.tmp.unlink(missing_ok=True)


def _act(policy: Any, obs: np.ndarray, cfg: VideoConfig) -> np.ndarray:
    action, _ = policy.predict(obs, deterministic=cfg.deterministic)
    return np.asarray(action, dtype=np.int64).reshape(1, 2)


def _outcome(term: np.ndarray, trunc: np.ndarray, info: dict[str, Any]) -> str:
    """"" while env 0 plays on, else "success" or "ended"."""
    if not (term[0] or trunc[0]):
        return ""
    return "success" if bool(np.asarray(info.get("is_success", [False]))[0]) else "ended"


def record_dream(venv: Any, policy: Any, path: str | Path, cfg: VideoConfig, name: str = "dream",
                 progress: bool = True, strip: Strip | None = None, segment: Segmenter | None = None
                 ) -> dict[str, Any]:
    """Play ``policy`` in ``venv`` (1 env, next-step autoreset) for ``cfg.steps`` frames written to ``path``.

    The policy sees its observation; the video shows :func:`world_view` (the agent outlined with ``segment``).
    ``strip`` (if given) collects columns.
    Returns ``{"path", "frames", "episodes_finished", "successes"}``.
    """
    from .play_record import Recorder

    _check_env(venv)
    rec = Recorder(path, cfg.fps)
    bar = _progress(cfg.steps, f"video {Path(path).name}", progress)

    def add(ep: _Episode, outcome: str = "") -> None:
        view = world_view(venv, segment)
        if strip is not None:
            strip.offer(rec.frames, [view])
        rec.add(_pane(view, name, ep, cfg.scale, outcome))
        bar.update()

    ep, finished, successes = _Episode(), 0, 0
    try:
        obs, _ = venv.reset(seed=cfg.seed)
        add(ep)
        while rec.frames < cfg.steps:
            obs, reward, term, trunc, info = venv.step(_act(policy, obs, cfg))
            ep.step += 1
            ep.ret += float(reward[0])
            outcome = _outcome(term, trunc, info)
            add(ep, outcome)
            if outcome:
                finished, successes = finished + 1, successes + int(outcome == "success")
                ep = _Episode(ep.index + 1)
                if rec.frames < cfg.steps:  # the new episode's start frame
                    obs, _ = venv.reset()
                    add(ep)
    except BaseException:
        _discard(rec)
        raise
    finally:
        bar.close()
    out = rec.close()
    return {"path": str(out) if out else None, "frames": rec.frames, "episodes_finished": finished,
            "successes": successes}


def _sync_reset(dream: Any, real: Any, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Reset the real game, then start the dream from its screen and target; both observations (1, H, W, 3)."""
    real_obs, _ = real.reset(seed=seed)
    frame = real.frames[0].cpu().numpy()  # (H, W, 3) uint8, the screen without the target marker
    target = real.task_state["target"][0].cpu().numpy()  # (2,) px
    dream_obs, _ = dream.reset(seed=seed, options={"frame": frame, "target": target})
    return dream_obs, real_obs


def record_side_by_side(dream: Any, real: Any, policy: Any, path: str | Path, cfg: VideoConfig,
                        real_name: str = "real", progress: bool = True, strip: Strip | None = None,
                        segment: Segmenter | None = None) -> dict[str, Any]:
    """Play ``policy`` in a one-env dream and a one-env real game from the same starts; ``dream | real`` video.

    Both envs need next-step autoreset and the same frame size. When either episode ends, its last frame is
    shown and both restart from a new real start. Returns ``{"path", "frames", "episodes", "dream_successes",
    "real_successes"}`` (episodes = synchronised episodes started).
    """
    from .play_record import Recorder

    _check_env(dream)
    _check_env(real)
    if dream.single_observation_space.shape != real.single_observation_space.shape:
        raise ValueError(f"dream and real frames differ: {dream.single_observation_space.shape} vs "
                         f"{real.single_observation_space.shape}")
    rec = Recorder(path, cfg.fps)
    bar = _progress(cfg.steps, f"video {Path(path).name}", progress)
    names = ("dream", real_name)
    envs = (dream, real)

    def add(eps: list[_Episode], outcomes: list[str]) -> None:
        views = [world_view(env, segment) for env in envs]
        if strip is not None:
            strip.offer(rec.frames, views)
        left, right = (_pane(v, n, e, cfg.scale, o) for v, n, e, o in zip(views, names, eps, outcomes))
        gap = np.zeros((left.shape[0], GAP_PX, 3), np.uint8)
        rec.add(np.concatenate([left, gap, right], axis=1))  # (HEADER_PX + H*s, 2*W*s + GAP_PX, 3)
        bar.update()

    successes, episodes = [0, 0], 1
    eps = [_Episode(), _Episode()]
    try:
        obs = list(_sync_reset(dream, real, cfg.seed))
        add(eps, ["", ""])
        while rec.frames < cfg.steps:
            outcomes = ["", ""]
            for i, env in enumerate(envs):
                obs[i], reward, term, trunc, info = env.step(_act(policy, obs[i], cfg))
                eps[i].step += 1
                eps[i].ret += float(reward[0])
                outcomes[i] = _outcome(term, trunc, info)
                successes[i] += int(outcomes[i] == "success")
            add(eps, outcomes)
            if any(outcomes) and rec.frames < cfg.steps:
                obs = list(_sync_reset(dream, real, None))
                eps = [_Episode(e.index + 1) for e in eps]
                episodes += 1
                add(eps, ["", ""])
    except BaseException:
        _discard(rec)
        raise
    finally:
        bar.close()
    out = rec.close()
    return {"path": str(out) if out else None, "frames": rec.frames, "episodes": episodes,
            "dream_successes": successes[0], "real_successes": successes[1]}
