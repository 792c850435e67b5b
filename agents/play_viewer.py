"""The play loop: pygame set-up, input -> action -> env.step -> draw -> record (:class:`Viewer`)."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .play_config import DEFAULT_FPS, PlayConfig, PlayError
from .play_draw import ViewerDrawing
from .play_envs import Policy, RealPane, check_env_api
from .play_input import DIRECTIONS, NOOP, FrameInput, code_for_digit, codes_in_use, idle_code, shift_index
from .play_record import Recorder

log = logging.getLogger("agents.play")

TARGET_WIDTH = 800  # px: auto scale picks the largest integer zoom with a window at most this wide (min 1)
MAX_SCALE = 8
PANE_GAP = 4  # px between the dream and the real game
MIN_WIDTH = 560  # px: the HUD needs this much; narrower frames are centred in a wider window
MESSAGE_FRAMES = 45  # a status message stays this many frames (3 s at 15 fps)


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


class Viewer(ViewerDrawing):
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
        self.keyed = codes_in_use(self.code_names)[:9]  # key 1 selects keyed[0], ...; unused codes get no key
        self.idle = idle_code(self.code_names)
        self.code = self.idle  # a code in use (code 0 when every code is)
        self.shift = shift_index((), self.shift_names)
        self.paused = self.show_help = False
        self.show_keypoints = True
        self.control = "policy" if policy is not None else "you"
        self.real: RealPane | None = None
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
    def _reset_env(self, first: bool = False, sync: bool = True) -> None:
        """Start a new dream episode; with the real game open it restarts too (``sync``) and the dream starts from
        its screen and target (``sync=False``: from the real game's current state, which goes on)."""
        seed = self.cfg.seed if first else None
        options = None
        if self.real is not None:
            if sync:
                self.real.reset()
            options = self.real.state_options() or None
        self.obs, self.info = self.env.reset(seed=seed, options=options)
        self.frame = self.env.render()
        if self.frame is None:
            raise PlayError("the env returned no frame from render(); make it with render_mode='rgb_array'")
        self.reward = self.episode_return = 0.0
        self.episode_steps = 0
        self.episode += 1
        self.episode_over = False
        if not first:
            self.result.resets += 1

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
        self.real = RealPane(real_env, f"{name} (real{', ' + source if source else ''})")
        self._reset_env()  # the real game starts, and the dream from its screen: both in the same state
        self._resize_to_content()
        self._say(f"Tab: the dream starts from the real {name}'s screen; both get the same (shift, code) (R re-syncs)")

    def _sync_to_real(self) -> None:
        """R: restart the dream from the real game's current screen and target (the real game goes on)."""
        if self.real is None:
            self._say("R: no real game to sync to (Tab opens it)")
            return
        self._reset_env(sync=False)
        self._say("R: the dream restarts from the real game's current screen")

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
        if real_done and self.real is not None and not self.episode_over:  # the real game's own episode end
            self.episode_over = True
            self._say("the real game's episode ended: both restart from its new start")

    # -- input -------------------------------------------------------------------------------------
    def _key_names(self) -> dict[int, str]:
        pg = self.pg
        names = {pg.K_UP: "up", pg.K_w: "up", pg.K_DOWN: "down", pg.K_s: "down", pg.K_LEFT: "left", pg.K_a: "left",
                 pg.K_RIGHT: "right", pg.K_d: "right", pg.K_BACKSPACE: "reset", pg.K_SPACE: "pause",
                 pg.K_TAB: "tab", pg.K_v: "record", pg.K_h: "help", pg.K_p: "policy", pg.K_ESCAPE: "quit",
                 pg.K_q: "quit", pg.K_F12: "screenshot", pg.K_k: "keypoints", pg.K_r: "sync"}
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
            elif cmd == "sync" and stepped is None:  # (a reset this frame already synced them)
                self._sync_to_real()
                stepped = False
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
                self._say(f"key {inp.digit}: this model has {len(self.keyed)} codes in use (keys 1..."
                          f"{len(self.keyed)}, 0 = idle; H lists them)")
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
