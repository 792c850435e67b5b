"""``glassworld play``: play a dreamed game with the keyboard in a pygame window (or headless, scripted).

    glassworld play GlassTennis-v0                      # a shipped id (``envs.available_ids()``)
    glassworld play checkpoint=runs/x/model.pt          # any checkpoint (GlassWorld-v0)
    glassworld play GlassTennis-v0 policy=random        # watch an agent; any game key takes over, P gives back
    glassworld play checkpoint=m.pt --headless keys="right*20 1 noop*5" screenshot=shot.png record=play.mp4

Keys (window): arrows / WASD = global shift (two keys held = diagonal, none held = no move); 1..K = local codes
0..K-1 (the code stays until changed); 0 = the *idle* code (below); Backspace = reset; Space = pause; Tab = the
real game side by side (models trained on Atari: the real game receives the same (shift, code), turned into a
joystick action by the map :func:`agents.mapping.action_map_for_env` learns, cached beside the checkpoint);
V = start/stop recording (mp4 via PyAV, or GIF when the path ends in .gif); H = help overlay; K = keypoint
overlay on/off (keypoint models: each keypoint a circle, brighter for larger intensity mu; on by default);
P = hand control back to the policy; F12 = screenshot; Esc / Q = quit. Other settings: ``device=auto|cpu|cuda``, ``fps=N``,
``scale=N``, ``task=reach|track|none``, ``seed=N``, ``real=true`` (start side by side), ``game=Tennis``,
``threads=N`` (torch CPU threads).

**The idle code (key 0).** Codes are learned, so none of them means "do nothing" by construction. When the
model's code meanings name one (a meaning whose first word is NOOP / NONE / IDLE / STAND, e.g. "NOOP 74%" from
evaluation against the true Atari actions), key 0 selects it (the most confident one when several do); otherwise
key 0 selects code 0, which is also the code every episode starts with. :func:`idle_code` implements this.

**Headless** (``--headless``: the SDL dummy video driver, no window) replays a script ``keys="..."``: one token
per frame, space separated; a token is ``+``-joined parts, optionally repeated with ``*N``:
``up down left right`` (held this frame; ``up+left`` = diagonal), a digit (select that code key), ``noop``
(nothing held), ``reset``, ``pause`` (toggle), ``tab``, ``record`` (toggle), ``help`` (toggle), ``keypoints``
(toggle the overlay), ``policy``
(give control back to the policy), ``quit``. ``frames=N`` runs N frames (default: the script's length, or 100).
Headless runs as fast as it can unless ``fps=N`` is given; a window runs at ``fps`` (default 15), one model
step per frame.

The viewer only drives a Gymnasium env (``env.unwrapped.action_meanings``, ``MultiDiscrete([n_shifts, K])``
actions, ``render()`` rgb_array, ``info`` position/target/distance) and, for Tab, an optional real-game env
with the same spaces; it knows nothing about the model behind them (building the real game and the planner is
left to :mod:`envs.real` and :mod:`agents.planner`). What the person pressed becomes an action
through pure functions (:func:`parse_keys`, :func:`shift_index`, :func:`code_for_digit`) so tests need no window.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class PlayConfig:
    """Everything ``glassworld play`` takes (``key=value`` on the command line)."""

    env: str | None = None  # registered id; None = GlassWorld-v0 with checkpoint=
    checkpoint: str | None = None  # a checkpoint file (for GlassWorld-v0, or to override an id's file)
    task: str | None = None  # reach | track | none; None = the id's default (reach)
    device: str = "auto"  # cuda when there is one, else cpu
    fps: float | None = None  # frames (= model steps) per second; None = 15 in a window, unlimited headless
    scale: int = 0  # integer zoom of the frame; 0 = the largest that keeps the window ~800 px wide
    headless: bool = False  # SDL dummy video driver: no window (tests, CI)
    keys: str = ""  # scripted input, one token per frame (see the module docstring)
    frames: int = 0  # stop after this many frames; 0 = until quit (window) / the script's length or 100 (headless)
    screenshot: str | None = None  # save the last frame of the window here (PNG)
    record: str | None = None  # record the window from the first frame to the end (.mp4 or .gif)
    policy: str | None = None  # PATH | planner | random: an agent plays until a game key is pressed
    seed: int | None = None  # env seed (start frame and target)
    real: bool = False  # start with the real game side by side (as if Tab was pressed)
    game: str | None = None  # real game override (Tennis, Breakout) for models whose card does not name one
    threads: int = 0  # torch CPU threads; 0 = torch's default (1 is often fastest for one small env on a busy CPU)


DEFAULT_FPS = 15.0  # the frame rate of the data (Atari at frame skip 4), so a dream runs at real speed
HEADLESS_FRAMES = 100  # frames of a headless run with neither keys= nor frames=
TARGET_WIDTH = 800  # px: auto scale picks the largest integer zoom with a window at most this wide (min 1)
MAX_SCALE = 8
PANE_GAP = 4  # px between the dream and the real game
MIN_WIDTH = 560  # px: the HUD needs this much; narrower frames are centred in a wider window
MESSAGE_FRAMES = 45  # a status message stays this many frames (3 s at 15 fps)
IDLE_WORDS = ("NOOP", "NONE", "IDLE", "STAND", "NOTHING")

DIRECTIONS = ("up", "down", "left", "right")
KEYPOINT_MIN_MU = 0.05  # keypoints fainter than this are not drawn
COMMANDS = ("reset", "pause", "tab", "record", "help", "policy", "quit", "screenshot", "keypoints")

# colours (RGB)
HUD_BG = (24, 24, 28)
HUD_FG = (230, 230, 230)
HUD_DIM = (150, 150, 160)
HUD_ACCENT = (255, 0, 255)  # the task marker colour of envs.tasks (the target)
HUD_WARN = (255, 190, 60)
HUD_REC = (235, 60, 60)


def _signed(value: float, digits: int) -> str:
    """``+0.125`` / ``-1.50``, with no ``-0.000`` for tiny negatives."""
    r = round(float(value), digits)
    return f"{(r if r != 0 else 0.0):+.{digits}f}"


class PlayError(ValueError):
    """Bad input to ``glassworld play`` (unknown id, missing checkpoint, no display, bad key script)."""


# ------------------------------------------------------------------------------------------------
# input: pure functions from keys to actions
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameInput:
    """What the person did during one frame.

    Attributes:
        directions: direction keys held this frame (subset of "up", "down", "left", "right").
        digit: the code key pressed this frame (0..9), or None.
        commands: commands in the order given ("reset", "pause", ...).
        human: a game key (direction or digit) was pressed: the person takes control from a policy.
    """

    directions: frozenset[str] = frozenset()
    digit: int | None = None
    commands: tuple[str, ...] = ()
    human: bool = False


NOOP = FrameInput()


def _normalise_shift_name(name: str) -> frozenset[str]:
    """"up-left" / "left_up" / "UpLeft" -> {"up", "left"}; "none" / "stay" -> {} (other words are dropped)."""
    return frozenset(re.findall(r"up|down|left|right", str(name).lower()))


def shift_index(directions: Iterable[str], shift_names: list[str]) -> int:
    """The shift-grid row for a set of held direction keys.

    Opposite keys cancel; two perpendicular keys give the diagonal. When the grid has no row for the diagonal
    (a grid of 4 directions), the horizontal part, then the vertical part is used; with nothing held (or nothing
    matching) the result is the "none" row (the row whose name has no direction, else row 0).

    Args:
        directions: held keys among "up", "down", "left", "right".
        shift_names: the env's shift names (``env.unwrapped.action_meanings[0]``), e.g. "none", "up-left".
    """
    held = set(directions)
    bad = held - set(DIRECTIONS)
    if bad:
        raise ValueError(f"unknown direction(s) {sorted(bad)}; use {list(DIRECTIONS)}")
    for a, b in (("up", "down"), ("left", "right")):
        if a in held and b in held:
            held -= {a, b}
    table = {}
    for i, name in enumerate(shift_names):
        table.setdefault(_normalise_shift_name(name), i)
    vert = held & {"up", "down"}
    horiz = held & {"left", "right"}
    for want in (frozenset(held), frozenset(horiz), frozenset(vert)):
        if want and want in table:
            return table[want]
    return table.get(frozenset(), 0)


def idle_code(code_names: list[str]) -> int:
    """The code key 0 selects: the most confident code whose meaning says "no action", else code 0.

    A meaning counts when its first word is one of :data:`IDLE_WORDS` ("NOOP 74%", "none", "idle");
    "NN%" in the meaning ranks several.
    """
    best, best_pct = 0, -1.0
    for i, name in enumerate(code_names):
        words = re.findall(r"[A-Za-z]+", str(name))
        if not words or words[0].upper() not in IDLE_WORDS:
            continue
        m = re.search(r"(\d+(?:\.\d+)?)\s*%", str(name))
        pct = float(m.group(1)) if m else 0.0
        if pct > best_pct:
            best, best_pct = i, pct
    return best


def code_for_digit(digit: int, code_names: list[str]) -> int | None:
    """Key ``digit`` -> code index: 1..K select codes 0..K-1, 0 selects :func:`idle_code`; None if out of range."""
    if digit == 0:
        return idle_code(code_names)
    return digit - 1 if 1 <= digit <= len(code_names) else None


def _parse_token(token: str) -> FrameInput:
    dirs: set[str] = set()
    digit: int | None = None
    cmds: list[str] = []
    for part in token.lower().split("+"):
        if part in DIRECTIONS:
            dirs.add(part)
        elif part.isdigit() and len(part) == 1:
            digit = int(part)
        elif part in COMMANDS:
            cmds.append(part)
        elif part != "noop":
            raise PlayError(f"keys: unknown token part {part!r} in {token!r}; use up/down/left/right (joined with "
                            f"+ for diagonals), a digit 0-9, noop, {', '.join(COMMANDS)}; TOKEN*N repeats")
    return FrameInput(frozenset(dirs), digit, tuple(cmds), bool(dirs) or digit is not None)


def parse_keys(script: str) -> list[FrameInput]:
    """A key script ("right*20 1 up+left noop*5 reset") -> one :class:`FrameInput` per frame."""
    out: list[FrameInput] = []
    for raw in script.split():
        token, _, count = raw.partition("*")
        if count:
            if not count.isdigit():
                raise PlayError(f"keys: bad repeat {raw!r}; write TOKEN*N with N a whole number, e.g. right*20")
            n = int(count)
        else:
            n = 1
        if not token:
            raise PlayError(f"keys: empty token in {raw!r}")
        out.extend([_parse_token(token)] * n)
    return out


# ------------------------------------------------------------------------------------------------
# environments and policies
# ------------------------------------------------------------------------------------------------
def _import_envs() -> Any:
    try:
        import envs  # registers the glassworld ids
    except ImportError as e:  # pragma: no cover - part of this package
        raise PlayError(f"glassworld play needs the envs package: {e}") from e
    return envs


def glassworld_ids() -> str:
    """One line per registered glassworld id, saying whether it can be played in this install."""
    envs = _import_envs()
    ready = set(envs.available_ids())
    lines = ["  GlassWorld-v0  (any checkpoint: checkpoint=PATH)"]
    for env_id, fname in envs.SHIPPED.items():
        state = "ready" if env_id in ready else f"missing {envs.CHECKPOINT_DIR / fname}"
        lines.append(f"  {env_id}  ({state})")
    return "registered glassworld ids:\n" + "\n".join(lines)


def make_env(cfg: PlayConfig) -> Any:
    """``gym.make`` the env to play (render_mode rgb_array), with one clear :class:`PlayError` for bad input."""
    import gymnasium as gym

    envs = _import_envs()
    env_id = cfg.env or "GlassWorld-v0"
    kwargs: dict[str, Any] = {"render_mode": "rgb_array", "device": cfg.device}
    if cfg.checkpoint:
        path = Path(cfg.checkpoint).expanduser()
        if not path.is_file():
            raise PlayError(f"checkpoint {path} does not exist; pass checkpoint=PATH of a model trained with "
                            f"`glassworld train ...`, or a ready id.\n{glassworld_ids()}")
        kwargs["checkpoint"] = str(path.resolve())
    if cfg.task:
        kwargs["task"] = cfg.task
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as e:
        raise PlayError(f"unknown env id {env_id!r} ({e}).\n{glassworld_ids()}") from None
    if env_id == "GlassWorld-v0" and "checkpoint" not in kwargs:
        raise PlayError(f"GlassWorld-v0 needs checkpoint=PATH (a model trained with `glassworld train`), or play a "
                        f"ready id.\n{glassworld_ids()}")
    try:
        env = gym.make(spec.id, **kwargs)
    except envs.MissingCheckpointError as e:
        raise PlayError(f"{e}\n{glassworld_ids()}") from None
    except (FileNotFoundError, ValueError) as e:
        raise PlayError(f"{env_id}: {e}") from None
    check_env_api(env)
    return env


def check_env_api(env: Any) -> tuple[list[str], list[str]]:
    """The env's (shift names, code names); a PlayError when it is not a glassworld (shift, code) env."""
    from gymnasium import spaces

    meanings = getattr(env.unwrapped, "action_meanings", None)
    space = env.action_space
    if (meanings is None or not isinstance(space, spaces.MultiDiscrete) or space.nvec.shape != (2,)
            or len(meanings) != 2 or len(meanings[0]) != int(space.nvec[0]) or len(meanings[1]) != int(space.nvec[1])):
        raise PlayError(f"{getattr(env.spec, 'id', env)} is not a glassworld env (it needs MultiDiscrete([n_shifts, "
                        f"K]) actions and env.unwrapped.action_meanings).\n{glassworld_ids()}")
    return [str(s) for s in meanings[0]], [str(c) for c in meanings[1]]


Policy = Callable[[np.ndarray, dict[str, Any]], np.ndarray]  # (obs (H, W, 3) uint8, info) -> action (2,) int


def _predictor(agent: Any) -> Policy:
    """An SB3-style agent (``predict(obs, deterministic=True) -> (action, state)``) as a :data:`Policy`."""
    return lambda obs, info: np.asarray(agent.predict(obs, deterministic=True)[0], dtype=np.int64).reshape(2)


def make_policy(spec: str, env: Any, seed: int | None = None) -> Policy:
    """``random`` | ``planner`` | PATH (a zip saved by ``glassworld agent``) -> a function (obs, info) -> action.

    ``random`` and ``planner`` are :class:`agents.planner.RandomPolicy` and :class:`agents.planner.CEMPlanner`
    (imagining in the env's own model); PATH is loaded as ``glassworld agent-eval`` loads it.
    """
    from agents.planner import CEMPlanner, RandomPolicy

    if spec == "random":
        return _predictor(RandomPolicy(np.asarray(env.action_space.nvec), seed=seed or 0))
    if spec == "planner":
        try:
            return _predictor(CEMPlanner(env))
        except (TypeError, ValueError) as e:
            raise PlayError(f"policy=planner: {e}") from None
    if not Path(spec).expanduser().is_file():
        raise PlayError(f"policy={spec!r}: no such file; use policy=PATH (a zip saved by `glassworld agent`), "
                        "planner or random")
    from agents.evaluate import EvalAgentConfig, load_policy

    try:
        agent = load_policy(str(Path(spec).expanduser()), env, None, EvalAgentConfig(policy=spec, seed=seed or 0))
    except ValueError as e:
        raise PlayError(f"policy={spec!r}: {e}") from None
    return _predictor(agent)


class _RealPane:
    """A real-game env (single or a vector env of one) seen as a single env (observation (H, W, 3), info)."""

    def __init__(self, env: Any, name: str) -> None:
        self.env, self.name = env, name
        self.vector = hasattr(env, "num_envs")
        self.frame: np.ndarray | None = None
        self.info: dict[str, Any] = {}
        self.reward = 0.0

    def _single(self, obs: Any, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        if not self.vector:
            return np.asarray(obs), info
        one = {k: v[0] for k, v in info.items() if not k.startswith("_") and isinstance(v, np.ndarray)
               and v.shape[:1] == (1,)}
        return np.asarray(obs)[0], one

    def reset(self, target: Any = None) -> None:
        options = None if target is None else {"target": np.asarray(target, np.float32)}
        obs, info = self.env.reset(options=options)
        self.frame, self.info = self._single(obs, info)
        self.reward = 0.0

    def step(self, action: np.ndarray) -> bool:
        a = np.asarray(action, dtype=np.int64)
        obs, r, term, trunc, info = self.env.step(a[None] if self.vector else a)
        self.frame, self.info = self._single(obs, info)
        self.reward = float(np.asarray(r).reshape(-1)[0])
        return bool(np.asarray(term).reshape(-1)[0] or np.asarray(trunc).reshape(-1)[0])

    def close(self) -> None:
        self.env.close()


def make_real_env(env: Any, game: str | None = None, learned_map: bool = True) -> Any:
    """The real ALE game behind a dream env, with the dream's spaces, task, episode limit and observation (1 env;
    :func:`agents.common.make_real_env`), or a PlayError saying why not.

    The (shift, code) -> joystick mapping is learned from labelled real transitions (cached beside the checkpoint)
    when ``learned_map``, else the name-based :func:`envs.real.heuristic_action_map`. The env's
    ``action_map_source`` says which.
    """
    if getattr(getattr(env, "unwrapped", env), "model", None) is None:
        raise PlayError("no real game for this env (it has no world model card to name one)")
    try:
        from agents.common import make_real_env as make_real

        real, amap = make_real(env, 1, autoreset_mode="next_step", learn_map=learned_map, game=game,
                               render_mode="rgb_array")
    except (ValueError, ImportError) as e:
        raise PlayError(f"no real game: {e}") from None
    real.action_map_source = "learned map" if amap["source"] == "learned" else "name-based map"
    return real


# ------------------------------------------------------------------------------------------------
# recording
# ------------------------------------------------------------------------------------------------
class Recorder:
    """Streams (H, W, 3) uint8 frames to an mp4 (H.264 via PyAV) or a GIF; the file appears only when closed.

    Frames must keep the first frame's size; larger ones are cropped, smaller ones padded (the window may change).
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        try:
            import av
        except ImportError as e:
            raise PlayError("recording needs PyAV: pip install av") from e
        self.av = av
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.gif = self.path.suffix.lower() == ".gif"
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self.fps = max(1, round(fps))
        self.container = av.open(str(self.tmp), "w", format="gif" if self.gif else "mp4")
        self.stream = None
        self.size: tuple[int, int] | None = None  # (H, W) even for mp4
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 frame."""
        if self.size is None:
            h, w = frame.shape[:2]
            if not self.gif:
                h, w = h - h % 2, w - w % 2  # yuv420p needs even sizes
            self.size = (h, w)
            codec = "gif" if self.gif else ("libx264" if "libx264" in self.av.codecs_available else "mpeg4")
            self.stream = self.container.add_stream(codec, rate=self.fps)
            self.stream.width, self.stream.height = w, h
            self.stream.pix_fmt = "rgb8" if self.gif else "yuv420p"
        h, w = self.size
        if frame.shape[:2] != (h, w):
            fixed = np.zeros((h, w, 3), np.uint8)
            fh, fw = min(h, frame.shape[0]), min(w, frame.shape[1])
            fixed[:fh, :fw] = frame[:fh, :fw]
            frame = fixed
        vf = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place; returns its path (None when no frame was added)."""
        if self.stream is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()
        if self.frames == 0:
            self.tmp.unlink(missing_ok=True)
            return None
        os.replace(self.tmp, self.path)
        return self.path


# ------------------------------------------------------------------------------------------------
# the viewer
# ------------------------------------------------------------------------------------------------
NO_DISPLAY = ("no display available ({why}); run with --headless (SDL dummy driver) and scripted keys, e.g. "
              "`glassworld play ID --headless keys=\"right*20 1 noop*5\" screenshot=shot.png`")


def check_display(driver: str, requested: str | None, headless: bool) -> None:
    """Raise the "no display" PlayError when a window was asked for but SDL only found an off-screen driver.

    Args:
        driver: ``pygame.display.get_driver()`` after init; requested: ``$SDL_VIDEODRIVER`` (None if unset).
    """
    if not headless and driver in ("dummy", "offscreen") and requested not in ("dummy", "offscreen"):
        raise PlayError(NO_DISPLAY.format(why=f"SDL found no screen, only its {driver} driver"))


def import_pygame(headless: bool) -> Any:
    """Import pygame and open its display and font modules (dummy video driver when headless)."""
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as e:
        raise PlayError("glassworld play needs pygame: pip install pygame") from e
    if headless and pygame.display.get_init() and pygame.display.get_driver() != "dummy":
        pygame.display.quit()  # a window opened earlier in this process
    try:
        pygame.display.init()
    except pygame.error as e:
        raise PlayError(NO_DISPLAY.format(why=e)) from None
    try:
        check_display(pygame.display.get_driver(), os.environ.get("SDL_VIDEODRIVER"), headless)
    except PlayError:
        pygame.display.quit()
        raise
    pygame.font.init()
    return pygame


@dataclass
class PlayResult:
    """What happened during a play session (for tests and scripts)."""

    frames: int = 0  # frames drawn
    steps: int = 0  # env steps (all episodes)
    resets: int = 0  # env resets after the first
    actions: list[tuple[int, int]] = field(default_factory=list)  # (shift, code) sent to the env, per step
    controllers: list[str] = field(default_factory=list)  # "you" | "policy", per step
    positions: list[tuple[float, float]] = field(default_factory=list)  # info["position"] after each step
    rewards: list[float] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    screenshot: str | None = None
    frame_rects: list[tuple[int, int, int, int]] = field(default_factory=list)  # (x, y, w, h) per pane at the end
    seconds: float = 0.0  # wall time of the loop
    step_seconds: float = 0.0  # of which env.step (+ the real game)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


class Viewer:
    """The play loop: input -> action -> env.step -> draw (frames, HUD, help) -> record.

    Args:
        env: a glassworld env made with ``render_mode="rgb_array"`` (see :func:`make_env`).
        cfg: the session settings.
        policy: an agent to watch (:func:`make_policy`), or None.
        real_factory: builds the real-game env for Tab (raises PlayError when there is none); None = no Tab.
    """

    def __init__(self, env: Any, cfg: PlayConfig, policy: Policy | None = None,
                 real_factory: Callable[[], Any] | None = None) -> None:
        self.env, self.cfg, self.policy, self.real_factory = env, cfg, policy, real_factory
        self.shift_names, self.code_names = check_env_api(env)
        self.pg = import_pygame(cfg.headless)
        self.idle = idle_code(self.code_names)
        self.code = 0
        self.shift = shift_index((), self.shift_names)
        self.paused = self.show_help = False
        self.show_keypoints = True
        self.control = "policy" if policy is not None else "you"
        self.real: _RealPane | None = None
        self.recorder: Recorder | None = None
        self.result = PlayResult()
        self.frame: np.ndarray | None = None
        self.info: dict[str, Any] = {}
        self.obs: np.ndarray | None = None
        self.reward = self.episode_return = 0.0
        self.episode_steps = 0
        self.episode = 0
        self.episode_over = False
        self.last_end = ""
        self.message, self.message_frames = "", 0
        self.fps_ema: float | None = None
        self.step_ms_ema: float | None = None
        self._held: set[str] = set()
        self._names: dict[int, str] | None = None  # pygame key code -> token
        self._font_cache: dict[tuple[str, tuple[int, int, int]], Any] = {}
        self._recordings = 0
        self._last_tick = time.perf_counter()
        fps = cfg.fps if cfg.fps else (None if cfg.headless else DEFAULT_FPS)
        self.fps_target: float | None = fps
        self.clock = self.pg.time.Clock()
        self._reset_env(first=True)
        h, w = self.frame.shape[:2]
        self.frame_hw = (h, w)
        self.scale = cfg.scale if cfg.scale > 0 else max(1, min(MAX_SCALE, TARGET_WIDTH // w))
        self.font_size = int(np.clip(self.scale * w // 42, 12, 20))
        self.font = self.pg.font.Font(None, self.font_size + 4)  # pygame's default font renders small
        self.line_h = self.font.get_linesize()
        self.screen = None
        self._open_window()
        if cfg.real:
            self._toggle_real()

    # -- layout ------------------------------------------------------------------------------------
    @property
    def panes(self) -> int:
        return 2 if self.real is not None else 1

    @property
    def hud_h(self) -> int:
        """HUD height: 4 lines, plus a line of pane names when the real game is shown."""
        return (4 + (self.panes - 1)) * self.line_h + 8

    def _wanted_size(self) -> tuple[int, int]:
        h, w = self.frame_hw
        return (max(MIN_WIDTH, self.panes * w * self.scale + (self.panes - 1) * PANE_GAP), h * self.scale + self.hud_h)

    def _open_window(self) -> None:
        pg = self.pg
        flags = 0 if self.cfg.headless else pg.RESIZABLE
        self.screen = pg.display.set_mode(self._wanted_size(), flags)
        name = getattr(self.env.spec, "id", None) or "glassworld"
        pg.display.set_caption(f"glassworld play — {name}")

    def _layout(self) -> None:
        """Largest integer scale that fits the (possibly resized) window."""
        sw, sh = self.screen.get_size()
        h, w = self.frame_hw
        fit_w = (sw - (self.panes - 1) * PANE_GAP) // (self.panes * w)
        fit_h = (sh - self.hud_h) // h
        self.scale = max(1, min(fit_w, fit_h))

    def frame_rect(self, pane: int = 0) -> tuple[int, int, int, int]:
        """(x, y, width, height) of pane 0 (the dream) or 1 (the real game) in the window."""
        sw, _ = self.screen.get_size()
        h, w = self.frame_hw
        fw, fh = w * self.scale, h * self.scale
        total = self.panes * fw + (self.panes - 1) * PANE_GAP
        x0 = max(0, (sw - total) // 2)
        return (x0 + pane * (fw + PANE_GAP), 0, fw, fh)

    # -- env ---------------------------------------------------------------------------------------
    def _reset_env(self, first: bool = False) -> None:
        seed = self.cfg.seed if first else None
        self.obs, self.info = self.env.reset(seed=seed)
        self.frame = self.env.render()
        if self.frame is None:
            raise PlayError("the env returned no frame from render(); make it with render_mode='rgb_array'")
        self.reward = self.episode_return = 0.0
        self.episode_steps = 0
        self.episode += 1
        self.episode_over = False
        if not first:
            self.result.resets += 1
        if self.real is not None:
            self.real.reset(self.info.get("target"))

    def _toggle_real(self) -> None:
        if self.real is not None:
            self.real.close()
            self.real = None
            self._resize_to_content()
            return
        if self.real_factory is None:
            self._say("Tab: this env has no real game to show side by side")
            return
        self._say("Tab: starting the real game (the first time, its joystick map is learned) ...")
        self.draw()
        try:
            real_env = self.real_factory()
        except PlayError as e:
            self._say(f"Tab: {e}")
            return
        name = getattr(getattr(real_env, "game_config", None), "game", "real game")
        source = getattr(real_env, "action_map_source", None)
        self.real = _RealPane(real_env, f"{name} (real{', ' + source if source else ''})")
        self.real.reset(self.info.get("target"))
        self._resize_to_content()
        self._say(f"Tab: the real {name} receives the same (shift, code) as its joystick action")

    def _resize_to_content(self) -> None:
        if self.screen is not None:
            self._open_window()

    def _step(self, action: np.ndarray) -> None:
        t0 = time.perf_counter()
        self.obs, reward, terminated, truncated, self.info = self.env.step(action)
        real_done = self.real.step(action) if self.real is not None else False
        dt = time.perf_counter() - t0
        self.result.step_seconds += dt
        self.step_ms_ema = dt * 1e3 if self.step_ms_ema is None else 0.9 * self.step_ms_ema + 0.1 * dt * 1e3
        self.frame = self.env.render()
        self.reward = float(reward)
        self.episode_return += self.reward
        self.episode_steps += 1
        r = self.result
        r.steps += 1
        r.actions.append((int(action[0]), int(action[1])))
        r.controllers.append(self.control)
        pos = np.asarray(self.info.get("position", (math.nan, math.nan)), dtype=np.float64).reshape(-1)
        r.positions.append((float(pos[0]), float(pos[1])) if pos.size >= 2 else (math.nan, math.nan))
        r.rewards.append(self.reward)
        if terminated or truncated:
            self.episode_over = True
            why = "reached the target" if self.info.get("is_success") else ("time up" if truncated else "ended")
            self.last_end = f"episode {self.episode}: {why} after {self.episode_steps} steps, " \
                            f"return {self.episode_return:+.2f}"
            self._say(self.last_end)
        if real_done and self.real is not None:  # the real game's own episode end (game over / its target)
            self.real.reset(self.info.get("target"))

    # -- input -------------------------------------------------------------------------------------
    def _key_names(self) -> dict[int, str]:
        pg = self.pg
        names = {pg.K_UP: "up", pg.K_w: "up", pg.K_DOWN: "down", pg.K_s: "down", pg.K_LEFT: "left", pg.K_a: "left",
                 pg.K_RIGHT: "right", pg.K_d: "right", pg.K_BACKSPACE: "reset", pg.K_SPACE: "pause",
                 pg.K_TAB: "tab", pg.K_v: "record", pg.K_h: "help", pg.K_p: "policy", pg.K_ESCAPE: "quit",
                 pg.K_q: "quit", pg.K_F12: "screenshot", pg.K_k: "keypoints"}
        for d in range(10):
            names[getattr(pg, f"K_{d}")] = str(d)
            names[getattr(pg, f"K_KP{d}")] = str(d)
        return names

    def events_input(self, events: list[Any], keys: bool = True) -> FrameInput:
        """Turn this frame's pygame events into a :class:`FrameInput` (keys tapped within the frame count).

        Window events (close, resize, focus) are always handled; key events only when ``keys``.
        """
        pg = self.pg
        if self._names is None:
            self._names = self._key_names()
        names = self._names
        tapped: set[str] = set()
        digit: int | None = None
        cmds: list[str] = []
        for ev in events:
            if ev.type == pg.QUIT:
                cmds.append("quit")
            elif ev.type == pg.KEYDOWN and keys:
                name = names.get(ev.key)
                if name in DIRECTIONS:
                    self._held.add(name)
                    tapped.add(name)
                elif name is not None and name.isdigit():
                    digit = int(name)
                elif name is not None:
                    cmds.append(name)
            elif ev.type == pg.KEYUP and keys:
                self._held.discard(names.get(ev.key, ""))
            elif ev.type == getattr(pg, "WINDOWFOCUSLOST", -1):
                self._held.clear()  # no stuck keys after alt-tab
            elif ev.type in (pg.VIDEORESIZE, getattr(pg, "WINDOWSIZECHANGED", -1)):
                self.screen = pg.display.get_surface()
                self._layout()
        dirs = frozenset(self._held | tapped)
        return FrameInput(dirs, digit, tuple(cmds), bool(tapped) or digit is not None)

    def apply(self, inp: FrameInput) -> bool:
        """Run one frame with input ``inp``; returns False when the session should end."""
        for cmd in inp.commands:
            if cmd == "quit":
                return False
        stepped = None  # None: this frame steps the env (unless paused); False: it shows a fresh reset
        if self.episode_over or "reset" in inp.commands:
            self._reset_env()
            stepped = False
            if "reset" in inp.commands:
                self._say("reset")
        for cmd in inp.commands:
            if cmd == "pause":
                self.paused = not self.paused
            elif cmd == "tab":
                self._toggle_real()
            elif cmd == "record":
                self._toggle_record()
            elif cmd == "help":
                self.show_help = not self.show_help
            elif cmd == "keypoints":
                self.show_keypoints = not self.show_keypoints
                self._say("keypoints " + ("on" if self.show_keypoints else "off"))
            elif cmd == "policy":
                if self.policy is None:
                    self._say("P: no policy to hand control to (start with policy=PATH|planner|random)")
                else:
                    self.control = "policy"
            elif cmd == "screenshot":
                self._save_screenshot(self._default_path("png"))
        if inp.digit is not None:
            code = code_for_digit(inp.digit, self.code_names)
            if code is None:
                self._say(f"key {inp.digit}: this model has only {len(self.code_names)} codes (keys 1..."
                          f"{min(9, len(self.code_names))}, 0 = idle)")
            else:
                self.code = code
        if inp.human and self.control == "policy":
            self.control = "you"
            self._say("you have control (P gives it back to the policy)")
        if stepped is None and not self.paused:
            if self.control == "policy" and self.policy is not None:
                action = np.asarray(self.policy(self.obs, self.info), dtype=np.int64).reshape(2)
                self.shift, self.code = int(action[0]), int(action[1])
            else:
                self.shift = shift_index(inp.directions, self.shift_names)
                action = np.array([self.shift, self.code], dtype=np.int64)
            self._step(action)
        return True

    # -- drawing -----------------------------------------------------------------------------------
    def _text(self, text: str, color: tuple[int, int, int] = HUD_FG) -> Any:
        key = (text, color)
        surf = self._font_cache.get(key)
        if surf is None:
            if len(self._font_cache) > 512:
                self._font_cache.clear()
            surf = self._font_cache[key] = self.font.render(text, True, color)
        return surf

    def _blit_frame(self, frame: np.ndarray, pane: int) -> None:
        pg = self.pg
        h, w = frame.shape[:2]
        surf = pg.image.frombuffer(np.ascontiguousarray(frame).tobytes(), (w, h), "RGB")  # (H, W, 3) bytes
        x, y, fw, fh = self.frame_rect(pane)
        # nearest neighbour, straight into the window (the source must have the window's pixel format)
        pg.transform.scale(surf.convert(self.screen), (fw, fh), self.screen.subsurface((x, y, fw, fh)))

    def _draw_keypoints(self, keypoints: Any, pane: int) -> None:
        """Circles at a keypoint model's keypoints (K, 3) = (x, y) frame px and mu in [0, 1] (no-op without)."""
        if keypoints is None:
            return
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
        x0, y0, fw, fh = self.frame_rect(pane)
        h, w = self.frame_hw
        radius = max(2, self.scale)
        for x, y, mu in kp:
            if not (np.isfinite(x) and np.isfinite(y)) or mu < KEYPOINT_MIN_MU:
                continue
            level = int(80 + 175 * min(1.0, float(mu)))
            centre = (int(x0 + (x + 0.5) * fw / w), int(y0 + (y + 0.5) * fh / h))
            self.pg.draw.circle(self.screen, (level, level, 0), centre, radius, width=max(1, radius // 3))

    def _fmt_xy(self, key: str) -> str:
        v = self.info.get(key)
        if v is None:
            return "?"
        a = np.asarray(v, dtype=np.float64).reshape(-1)
        return f"({a[0]:.0f}, {a[1]:.0f})" if a.size >= 2 else "?"

    def _hud_lines(self) -> list[list[tuple[str, tuple[int, int, int]]]]:
        sname = self.shift_names[self.shift] if 0 <= self.shift < len(self.shift_names) else str(self.shift)
        cname = self.code_names[self.code] if 0 <= self.code < len(self.code_names) else ""
        code_txt = f"code {self.code}"
        if cname and cname != f"code {self.code}":
            code_txt += f" '{cname}'"
        code_txt += f" (key {self.code + 1}{', idle' if self.code == self.idle else ''})"
        ctrl = "you" if self.control == "you" else f"policy {self.cfg.policy or ''}".strip()
        line1 = [(f"shift {sname}", HUD_FG), (f"   {code_txt}", HUD_FG), (f"   control: {ctrl}", HUD_DIM)]
        line2 = [(f"step {self.episode_steps}", HUD_FG), (f"   episode {self.episode}", HUD_DIM),
                 (f"   reward {_signed(self.reward, 3)}", HUD_FG),
                 (f"   return {_signed(self.episode_return, 2)}", HUD_FG)]
        dist = self.info.get("distance")
        dist_txt = f"{float(dist):.1f} px" if dist is not None else "?"
        line3 = [(f"agent {self._fmt_xy('position')}", HUD_FG), ("   target ", HUD_DIM),
                 (self._fmt_xy("target"), HUD_ACCENT), (f"   distance {dist_txt}", HUD_FG)]
        if self.real is not None and "distance" in self.real.info:
            line3.append((f"   real {float(self.real.info['distance']):.1f} px", HUD_DIM))
        fps = f"{self.fps_ema:.1f}" if self.fps_ema else "-"
        tgt = f"{self.fps_target:g}" if self.fps_target else "max"
        step_ms = f"{self.step_ms_ema:.1f} ms" if self.step_ms_ema is not None else "-"
        line4 = [(f"{fps} fps (target {tgt})", HUD_FG), (f"   step {step_ms}", HUD_DIM)]
        if self.recorder is not None:
            line4.append(("   REC", HUD_REC))
        if self.paused:
            line4.append(("   PAUSED", HUD_WARN))
        if self.message_frames > 0:
            line4.append((f"   {self.message}", HUD_WARN))
        else:
            line4.append(("   H: help", HUD_DIM))
        return [line1, line2, line3, line4]

    def _draw_hud(self) -> None:
        sw, sh = self.screen.get_size()
        _, _, _, fh = self.frame_rect(0)
        self.screen.fill(HUD_BG, (0, fh, sw, sh - fh))
        y = fh + 4
        if self.real is not None:  # pane names centred under each pane
            for pane, label in ((0, "dream"), (1, self.real.name)):
                x, _, fw, _ = self.frame_rect(pane)
                s = self._text(label, HUD_WARN)
                self.screen.blit(s, (x + (fw - s.get_width()) // 2, y))
            y += self.line_h
        for line in self._hud_lines():
            x = 6
            for text, color in line:
                s = self._text(text, color)
                self.screen.blit(s, (x, y))
                x += s.get_width()
            y += self.line_h

    def _help_lines(self) -> list[tuple[str, str]]:
        last = min(9, len(self.code_names))
        name = self.code_names[self.idle]
        idle_txt = f"idle code {self.idle} ({name})" if name != f"code {self.idle}" else \
            f"idle code {self.idle} (no code meaning says NOOP, so code 0)"
        return [
            ("arrows / WASD", "move (two keys = diagonal, none = stay)"),
            (f"1 .. {last}", f"local code 0 .. {last - 1} (stays until changed)"),
            ("0", idle_txt),
            ("Backspace", "reset"),
            ("Space", "pause"),
            ("Tab", "real game side by side (same actions)"),
            ("V", "record (mp4, or gif when record=*.gif)"),
            ("F12", "screenshot"),
            ("P", "give control back to the policy"),
            ("K", "keypoint overlay on/off (keypoint models)"),
            ("H", "this help"),
            ("Esc / Q", "quit"),
        ]

    def _draw_help(self) -> None:
        pg = self.pg
        sw, _ = self.screen.get_size()
        _, _, _, fh = self.frame_rect(0)
        overlay = pg.Surface((sw, fh), pg.SRCALPHA)
        overlay.fill((0, 0, 0, 200))
        self.screen.blit(overlay, (0, 0))
        lines = self._help_lines()
        col = max(self._text(k).get_width() for k, _ in lines) + 16
        ty = 8
        for key, what in lines:
            self.screen.blit(self._text(key, HUD_ACCENT), (10, ty))
            self.screen.blit(self._text(what), (10 + col, ty))
            ty += self.line_h

    def draw(self) -> None:
        """Draw frames, HUD and help into the window and show it."""
        self.screen.fill(HUD_BG)
        self._blit_frame(self.frame, 0)
        if self.show_keypoints:
            self._draw_keypoints(self.info.get("keypoints"), 0)
        if self.real is not None and self.real.frame is not None:
            self._blit_frame(self.real.frame, 1)
        self._draw_hud()
        if self.show_help:
            self._draw_help()
        self.pg.display.flip()

    def snapshot(self) -> np.ndarray:
        """The window as (H, W, 3) uint8."""
        w, h = self.screen.get_size()
        return np.frombuffer(self.pg.image.tobytes(self.screen, "RGB"), np.uint8).reshape(h, w, 3)

    # -- files -------------------------------------------------------------------------------------
    def _default_path(self, ext: str) -> str:
        name = (getattr(self.env.spec, "id", None) or "glassworld").replace("/", "_")
        return f"glassworld-{name}-{time.strftime('%Y%m%d-%H%M%S')}.{ext}"

    def _toggle_record(self, path: str | None = None) -> None:
        if self.recorder is not None:
            done = self.recorder.close()
            self.recorder = None
            if done is not None:
                self.result.recordings.append(str(done))
                self._say(f"saved {done}")
            return
        if path is None:
            base = self.cfg.record or self._default_path("mp4")
            if self._recordings:  # a second recording in one session gets a numbered name
                p = Path(base)
                base = str(p.with_name(f"{p.stem}-{self._recordings + 1}{p.suffix}"))
            path = base
        self._recordings += 1
        self.recorder = Recorder(path, self.fps_target or DEFAULT_FPS)
        self._say(f"recording to {path} (V stops)")

    def _save_screenshot(self, path: str) -> str:
        p = Path(path).expanduser()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.stem}.partial{p.suffix or '.png'}")  # pygame picks the format by extension
        self.pg.image.save(self.screen, str(tmp))
        os.replace(tmp, p)
        self.result.screenshot = str(p)
        self._say(f"screenshot {p}")
        return str(p)

    def _say(self, message: str) -> None:
        log.info("%s", message)
        self.message, self.message_frames = message, MESSAGE_FRAMES

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, script: list[FrameInput] | None = None, frames: int = 0) -> PlayResult:
        """Play until quit, or for ``frames`` frames (0 = no limit); ``script`` replaces keyboard input."""
        pg = self.pg
        if self.cfg.record:
            self._toggle_record(self.cfg.record)
        start = time.perf_counter()
        n = 0
        try:
            while frames <= 0 or n < frames:
                inp = self.events_input(pg.event.get(), keys=script is None)
                if script is not None and "quit" not in inp.commands:  # the window can still be closed
                    inp = script[n] if n < len(script) else NOOP
                if not self.apply(inp):
                    break
                self.draw()
                if self.recorder is not None:
                    self.recorder.add(self.snapshot())
                n += 1
                self.result.frames += 1
                if self.message_frames > 0:
                    self.message_frames -= 1
                if self.fps_target:
                    self.clock.tick(self.fps_target)
                now = time.perf_counter()
                dt, self._last_tick = now - self._last_tick, now
                if dt > 0:
                    self.fps_ema = 1 / dt if self.fps_ema is None else 0.9 * self.fps_ema + 0.1 / dt
        finally:
            self.result.seconds = time.perf_counter() - start
            self.result.frame_rects = [self.frame_rect(i) for i in range(self.panes)]
            if self.cfg.screenshot and self.screen is not None:
                self._save_screenshot(self.cfg.screenshot)
            if self.recorder is not None:
                self._toggle_record()
        return self.result

    def close(self) -> None:
        if self.recorder is not None:
            self._toggle_record()
        if self.real is not None:
            self.real.close()
            self.real = None
        self.pg.display.quit()


# ------------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------------
def play(cfg: PlayConfig, env: Any = None, policy: Policy | None = None,
         real_factory: Callable[[], Any] | None = None) -> PlayResult:
    """Run a play session. ``env`` (made with render_mode="rgb_array") replaces :func:`make_env`; ``policy``
    replaces ``cfg.policy``; ``real_factory`` replaces :func:`make_real_env` for Tab."""
    script = parse_keys(cfg.keys) if cfg.keys else None  # bad scripts fail before anything opens
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    import_pygame(cfg.headless)  # no display / no pygame: say so before loading a model
    own_env = env is None
    env = make_env(cfg) if own_env else env
    try:
        if policy is None and cfg.policy:
            policy = make_policy(cfg.policy, env, cfg.seed)
        if real_factory is None:
            real_factory = lambda: make_real_env(env, cfg.game)
        frames = cfg.frames
        if cfg.headless and frames <= 0:
            frames = len(script) if script else HEADLESS_FRAMES
        viewer = Viewer(env, cfg, policy, real_factory)
        try:
            return viewer.run(script, frames)
        finally:
            viewer.close()
    finally:
        if own_env:
            env.close()


def _coerce(name: str, raw: str, typ: Any) -> Any:
    t = str(typ)
    if raw.lower() in ("none", "null", "") and "None" in t:
        return None
    try:
        if "bool" in t:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if "int" in t:
            return int(raw)
        if "float" in t:
            return float(raw)
    except ValueError:
        raise PlayError(f"{name}={raw!r}: expected {t.replace(' | None', '')}") from None
    return raw


def parse_args(argv: list[str]) -> PlayConfig:
    """``[ENV_ID] [key=value ...] [--headless]`` -> :class:`PlayConfig` (one PlayError for bad input)."""
    fields = {f.name: f.type for f in dataclasses.fields(PlayConfig)}
    values: dict[str, Any] = {}
    for arg in argv:
        if arg in ("--headless", "headless"):
            values["headless"] = True
        elif arg.startswith("--") and "=" in arg:
            key, _, raw = arg[2:].partition("=")
            values[key.replace("-", "_")] = raw
        elif "=" in arg:
            key, _, raw = arg.partition("=")
            values[key] = raw
        elif arg.startswith("-"):
            raise PlayError(f"unknown option {arg!r}; options are key=value ({', '.join(fields)}) and --headless")
        elif "env" in values:
            raise PlayError(f"two env ids given ({values['env']!r} and {arg!r}); play one at a time")
        else:
            values["env"] = arg
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise PlayError(f"unknown setting(s) {unknown}; known: {', '.join(fields)}")
    out = {k: v if not isinstance(v, str) or k == "env" else _coerce(k, v, fields[k]) for k, v in values.items()}
    cfg = PlayConfig(**out)
    if cfg.fps is not None and cfg.fps <= 0:
        raise PlayError(f"fps={cfg.fps}: must be > 0")
    if cfg.scale < 0 or cfg.frames < 0:
        raise PlayError("scale and frames must be >= 0")
    return cfg


def cli_main(argv: list[str]) -> int:
    """``glassworld play ...``: see the module docstring."""
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__)
        print(glassworld_ids())
        return 0
    try:
        cfg = parse_args(argv)
        result = play(cfg)
    except PlayError as e:
        print(f"glassworld play: {e}", file=sys.stderr)
        return 2
    print(f"played {result.frames} frames, {result.steps} steps, {result.fps:.1f} fps"
          + (f"; screenshot {result.screenshot}" if result.screenshot else "")
          + "".join(f"; recording {r}" for r in result.recordings))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
