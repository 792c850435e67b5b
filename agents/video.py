"""Rollout videos of a policy: the dream alone, and the dream beside the real game from the same start.

* :func:`record_dream` plays a policy in a one-env dream and writes what it sees (the model's frames with the
  task's target drawn), each frame upscaled and captioned with the episode, step, return and outcome.
* :func:`record_side_by_side` plays the same policy in the dream and in the real game at once. Every episode
  starts from the same real screen and target: the real game is reset, and the dream starts from that screen
  (``reset(options={"frame", "target"})``), so the two panes show how far imagination and reality drift apart
  under the same policy. Both restart together when either episode ends.

Videos are mp4 (H.264 through PyAV, :class:`agents.play.Recorder`), written to a temp file and moved into place,
so a video either exists complete or not at all. A video of ``steps`` frames shows the start frame of every
episode and one frame per env step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

HEADER_PX = 12  # caption bar height (PIL's default bitmap font is 11 px tall)
GAP_PX = 4  # black gap between side-by-side panes
WHITE, GREEN, GREY = (235, 235, 235), (90, 220, 90), (160, 160, 160)


@dataclass
class VideoConfig:
    """``video.*`` of ``configs/agent.yaml``."""

    steps: int = 200  # frames per video (episode starts + one per env step); 0 = no videos
    path: str = "rollout.mp4"  # dream rollout, relative to the run folder
    real_path: str = "rollout_real.mp4"  # dream | real side by side (when the real game is evaluated)
    scale: int = 4  # nearest-neighbour upscaling of the model's frames
    fps: int = 15
    deterministic: bool = True  # the policy's greedy actions (as in evaluation)
    seed: int = 0

    def validate(self) -> None:
        if self.steps < 0 or self.scale < 1 or self.fps < 1:
            raise ValueError(f"video.steps must be >= 0, video.scale and video.fps >= 1; got steps={self.steps}, "
                             f"scale={self.scale}, fps={self.fps}")
        for name in ("path", "real_path"):
            if Path(getattr(self, name)).suffix.lower() != ".mp4":
                raise ValueError(f"video.{name} must end in .mp4, got {getattr(self, name)!r}")


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (H * scale, W * scale, 3) uint8, nearest neighbour (pixels stay sharp)."""
    if scale == 1:
        return frame
    return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)


def caption(frame: np.ndarray, text: str, color: tuple[int, int, int] = WHITE) -> np.ndarray:
    """(H, W, 3) uint8 -> (HEADER_PX + H, W, 3) uint8 with ``text`` on a black bar above (cut at the width)."""
    from PIL import Image, ImageDraw, ImageFont

    bar = Image.new("RGB", (frame.shape[1], HEADER_PX))
    ImageDraw.Draw(bar).text((2, 0), text, fill=color, font=ImageFont.load_default())
    return np.concatenate([np.asarray(bar), frame], axis=0)


@dataclass
class _Episode:
    """Running totals of the episode shown in one pane."""

    index: int = 1
    step: int = 0
    ret: float = 0.0

    def label(self, name: str, outcome: str = "") -> str:
        return f"{name}  ep {self.index}  t {self.step}  R {self.ret:+.2f}  {outcome}".rstrip()


def _pane(obs: np.ndarray, name: str, ep: _Episode, scale: int, outcome: str = "") -> np.ndarray:
    color = GREEN if outcome == "success" else (GREY if outcome else WHITE)
    return caption(upscale(obs, scale), ep.label(name, outcome), color)


def _ended(info: dict[str, Any], i: int = 0) -> tuple[np.ndarray, bool]:
    """The last observation (H, W, 3) and success of env ``i`` after a same-step autoreset."""
    return info["final_obs"][i], bool(info["final_info"]["is_success"][i])


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="frame", leave=False, disable=None if enabled else True)


def _check_env(venv: Any) -> None:
    from gymnasium.vector import AutoresetMode

    if venv.num_envs != 1 or venv.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
        raise ValueError("rollout videos need a one-env vector env with autoreset_mode='same_step'")


def _discard(rec: Any) -> None:
    """Drop an unfinished video (an error or Ctrl-C mid-way): no partial file is left behind."""
    try:
        rec.container.close()
    finally:
        rec.tmp.unlink(missing_ok=True)


def _act(policy: Any, obs: np.ndarray, cfg: VideoConfig) -> np.ndarray:
    action, _ = policy.predict(obs, deterministic=cfg.deterministic)
    return np.asarray(action, dtype=np.int64).reshape(1, 2)


def record_dream(venv: Any, policy: Any, path: str | Path, cfg: VideoConfig, name: str = "dream",
                 progress: bool = True) -> dict[str, Any]:
    """Play ``policy`` in ``venv`` (1 env, same-step autoreset) for ``cfg.steps`` frames written to ``path``.

    Returns ``{"path", "frames", "episodes_finished", "successes"}``.
    """
    from .play import Recorder

    _check_env(venv)
    rec = Recorder(path, cfg.fps)
    bar = _progress(cfg.steps, f"video {Path(path).name}", progress)

    def add(frame: np.ndarray) -> None:
        rec.add(frame)
        bar.update()

    ep, finished, successes = _Episode(), 0, 0
    try:
        obs, _ = venv.reset(seed=cfg.seed)
        add(_pane(obs[0], name, ep, cfg.scale))
        while rec.frames < cfg.steps:
            obs, reward, term, trunc, info = venv.step(_act(policy, obs, cfg))
            ep.step += 1
            ep.ret += float(reward[0])
            if not (term[0] or trunc[0]):
                add(_pane(obs[0], name, ep, cfg.scale))
                continue
            last, success = _ended(info)
            finished, successes = finished + 1, successes + int(success)
            add(_pane(last, name, ep, cfg.scale, "success" if success else "ended"))
            ep = _Episode(ep.index + 1)
            if rec.frames < cfg.steps:  # the new episode's start frame (the same-step autoreset made it)
                add(_pane(obs[0], name, ep, cfg.scale))
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
                        real_name: str = "real", progress: bool = True) -> dict[str, Any]:
    """Play ``policy`` in a one-env dream and a one-env real game from the same starts; ``dream | real`` video.

    Both envs need same-step autoreset and the same frame size. When either episode ends, its last frame is
    shown and both restart from a new real start. Returns ``{"path", "frames", "episodes", "dream_successes",
    "real_successes"}`` (episodes = synchronised episodes started).
    """
    from .play import Recorder

    _check_env(dream)
    _check_env(real)
    if dream.single_observation_space.shape != real.single_observation_space.shape:
        raise ValueError(f"dream and real frames differ: {dream.single_observation_space.shape} vs "
                         f"{real.single_observation_space.shape}")
    rec = Recorder(path, cfg.fps)
    bar = _progress(cfg.steps, f"video {Path(path).name}", progress)
    gap: np.ndarray | None = None
    names = ("dream", real_name)

    def add(frames: list[np.ndarray], eps: list[_Episode], outcomes: list[str]) -> None:
        nonlocal gap
        left, right = (_pane(f, n, e, cfg.scale, o) for f, n, e, o in zip(frames, names, eps, outcomes))
        if gap is None:
            gap = np.zeros((left.shape[0], GAP_PX, 3), np.uint8)
        rec.add(np.concatenate([left, gap, right], axis=1))  # (HEADER_PX + H*s, 2*W*s + GAP_PX, 3)
        bar.update()

    envs, successes, episodes = (dream, real), [0, 0], 1
    eps = [_Episode(), _Episode()]
    try:
        obs = list(_sync_reset(dream, real, cfg.seed))
        add([o[0] for o in obs], eps, ["", ""])
        while rec.frames < cfg.steps:
            shown, outcomes, ended = [], ["", ""], False
            for i, env in enumerate(envs):
                obs[i], reward, term, trunc, info = env.step(_act(policy, obs[i], cfg))
                eps[i].step += 1
                eps[i].ret += float(reward[0])
                if term[0] or trunc[0]:
                    last, success = _ended(info)
                    successes[i] += int(success)
                    outcomes[i], ended = ("success" if success else "ended"), True
                    shown.append(last)
                else:
                    shown.append(obs[i][0])
            add(shown, eps, outcomes)
            if ended and rec.frames < cfg.steps:
                obs = list(_sync_reset(dream, real, None))
                eps = [_Episode(e.index + 1) for e in eps]
                episodes += 1
                add([o[0] for o in obs], eps, ["", ""])
    except BaseException:
        _discard(rec)
        raise
    finally:
        bar.close()
    out = rec.close()
    return {"path": str(out) if out else None, "frames": rec.frames, "episodes": episodes,
            "dream_successes": successes[0], "real_successes": successes[1]}
