"""``glassworld data atari``: record an ALE (Atari 2600) game into a glassworld dataset folder.

Usage::

    glassworld data atari --game Tennis --episodes 50 --out data/tennis
    glassworld data atari --game Breakout --episodes 20 --out data/breakout --size 96x128 --seed 1

What is recorded
----------------
* **One video per episode.** An episode starts at the game's power-on state (``reset_game``) and ends at game over
  (``done`` is True on its last frame) or after ``--max-steps`` steps (then it is cut there and ``done`` stays
  False; the video's meta says ``"truncated": true``). A video has at most ``max_steps + 1`` frames: frame 0 is the
  reset screen, frame t the screen after step t.
* **One step = ``--frame-skip`` emulator frames** (default 4, i.e. 15 frames/s of a 60 Hz game) with the same joystick
  action; the screen after the last of them is kept, rewards are summed over them.
* **Behaviour policy**: a uniformly random action of the game's minimal action set, held for a uniformly random
  number of steps in ``1..--max-hold`` (default 8), so the agent makes runs of motion in varied directions rather
  than jittering in place. Episode ``i`` draws from ``numpy.random.default_rng([seed, i])``; the emulator is
  deterministic (no sticky actions) and is put back into its power-on state, its random-number generator (seeded
  with ``seed``) included, before every episode. So an episode depends on ``(game, seed, i, max_steps, frame_skip,
  max_hold)`` only, never on which episodes were generated before it: a killed and resumed run writes
  byte-identical files. (Before this restore, the emulator's generator ran on from episode to episode, so an
  episode recorded after others could differ from the same episode recorded first.)
* **Frames** are cropped to the game's play area (see :data:`GAME_PRESETS`; other games keep the full 210x160
  screen) and area-resized (PIL ``BOX``) to ``--size`` (default 96x128, HxW).
* **Ground truth** per frame: ``action`` (raw ALE joystick id, 0..17, of the step into frame t; -1 for frame 0),
  ``reward`` (float32, summed over the step), ``done``; for the games with an ``agent`` in :data:`GAME_PRESETS`
  (Tennis, Breakout, Pong, Freeway, Skiing, Boxing, MsPacman, Seaquest, SpaceInvaders) also ``pos`` and
  ``shift``, and for the last seven a ``mask``.

Agent position
--------------
``pos[t]`` = (x, y) of the agent sprite's centre in **output pixel-index coordinates**: (0, 0) is the centre of the
top-left output pixel, so the agent covers ``frame[round(y), round(x)]``; ``shift[t] = pos[t] - pos[t-1]`` (0 for
t = 0). A point in native screen pixel-index coordinates (u, v) maps to the output as
``x = (u + 0.5 - left) * W / (right - left) - 0.5`` (same for y with the crop rows and H), which is PIL's
resampling geometry. The RAM-to-screen calibration below was measured from sprite pixels over thousands of frames
and is checked against the sprite's pixels in ``tests/data/test_atari.py``.

* **Tennis**: the agent is the orange player (colour (240, 128, 128)); the computer plays blue. The players change
  ends between games, and the RAM keeps the *top* player in slot 0 and the *bottom* player in slot 1:
  ``ram[80] == 0`` when orange is at the top. Slot s has x = ``ram[26 + s]``, y = ``ram[24 + s]`` (one unit = one
  native pixel; the player moves 1 px per emulator frame, 4 per default step), sprite top row =
  ``166 + s - ram[24 + s]``, and racket side ``ram[56 + s]`` (0: racket on the right, else on the left; the sprite
  is then drawn 4 px further right and mirrored). The sprite is 23 native rows tall and 12 columns wide (body and
  racket); ``pos`` is its centre of mass: x = ram x + 2.2 (racket right) or + 8.85 (racket left), y = top + 9.1.
  Turning (the racket changing sides) therefore moves ``pos`` by ~6.7 native px with no change of RAM x, and a new
  point or a change of ends teleports the player: ``shift`` shows these jumps as they appear on screen.
  Crop: rows 14..190, columns 8..160 (score, Activision logo and the black HBLANK strip removed; the whole court
  and everywhere the players can go stay). At the default 96x128 the orange player is about **12 px tall (10-13)
  and 7-10 px wide** (10 with the racket held out; measured: median 30 clearly orange pixels, 0.25 % of the frame)
  and moves ~3.4 px sideways / ~2.2 px up or down per step.
* **Breakout**: the agent is the paddle (colour (200, 72, 72), native rows 189..192, 16 px wide): x centre =
  ``ram[72] - 39.5`` (found by correlating every RAM byte with the paddle's pixels: the paddle's left column is
  ``ram[72] - 47``), y = 190.5. Crop: rows 17..196 (the top wall, bricks and paddle; the score removed), all 160
  columns (the paddle slides over the right wall). At 96x128 the paddle is about **13 px wide and 2 px tall**.
  (After the ball breaks through to the top wall the real game halves the paddle; the centre offset is then ~4 px
  off. A random policy practically never gets there.)
* **Pong, Freeway, Skiing, Boxing, MsPacman, Seaquest, SpaceInvaders**: a linear read-out of one RAM byte per
  axis the agent moves along (:class:`~worldmodel.data.atari_truth.LinearAgent`; a constant for the other axis),
  ``pos`` = the centre of the agent sprite's bounding box in its usual pose (of its drawn part where it slides under
  an edge: Pong's paddle behind the walls). Found by locating the agent by a colour only it has in a region of the
  screen (``GamePreset.pixels``) and regressing the box centre on every RAM byte; checked on fresh episodes against
  those pixels (``tests/data/test_atari.py``; ``scripts/atari_ground_truth.py`` writes the table of errors,
  ``docs/results/atari_ground_truth.md``): Pong's right (green) paddle (vertical only, 4x16 native px; drawn 0 or 1
  row lower for the same RAM value, so ``pos`` is 0.5 px off), Freeway's player-1 chicken (vertical only, 6x8),
  Skiing's skier (sideways only, the slope scrolls past it; 8x18, pose changes move its box by ~1 px), Boxing's
  white boxer (body centre; 14x47, punches reach ~16 px further), Ms. Pac-Man (8x10), Seaquest's submarine (16x11;
  invisible while it explodes or respawns) and Space Invaders' laser cannon (sideways only, 7x10). Their
  ``mask[t]`` (T, H, W) uint8 marks the output pixels at least half covered by native pixels of the agent's colour
  in its region: the whole sprite (Boxing's punches included; Seaquest's torpedo has the submarine's colour and is
  in it too; Freeway's chicken loses the two rows of the yellow centre line while it crosses them).

Splits
------
By episode index ``i``, deterministic and independent of how many episodes are made: ``i % 10 == 1`` -> test,
``i % 10 == 2`` -> val, else train. Any run of >= 3 episodes has all three splits; 10 episodes give 8/1/1.
Videos are named ``ep00000``, ``ep00001``, ...; identity ``<game>-seed<seed>-ep<i>``.

Resume
------
Videos are written atomically (:class:`~worldmodel.data.format.DatasetWriter`); re-running the same command skips
the videos already on disk and writes the missing ones (raise ``--episodes`` to extend a dataset). Writing into a
folder made with other settings (game, seed, size, frame skip, ...) is refused with a message.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atari_truth import AgentPixels, LinearAgent, RamAxis
from .format import DatasetError, DatasetWriter, parse_size, read_video_meta, validate_size

log = logging.getLogger(__name__)

EPISODE_START = "power-on"  # every episode starts from the emulator's power-on state, RNG included
DEFAULT_SIZE = (96, 128)  # (H, W): the W-Sprites frame size; keeps the Tennis player ~12 px tall, 7-10 px wide


@dataclass
class AtariConfig:
    """Arguments of ``glassworld data atari`` (see the module docstring)."""

    game: str = "Tennis"  # ALE game name: "Tennis", "Breakout", "MontezumaRevenge" or the ROM id "montezuma_revenge"
    episodes: int = 10  # number of episodes = videos
    out: Path = Path("data/atari")  # dataset folder
    size: tuple[int, int] = DEFAULT_SIZE  # output (H, W)
    seed: int = 0  # behaviour-policy seed; episode i uses rng([seed, i])
    max_steps: int = 1000  # steps per episode at most (video length <= max_steps + 1 frames)
    frame_skip: int = 4  # emulator frames per step (60 Hz / 4 = 15 frames/s)
    max_hold: int = 8  # a random action is held for 1..max_hold steps

    def validate(self) -> None:
        """Raise :class:`DatasetError` naming the fix for any unusable value."""
        validate_size(self.size, "--size")
        for name in ("episodes", "max_steps", "frame_skip", "max_hold"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                flag = "--" + name.replace("_", "-")
                raise DatasetError(f"{flag} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise DatasetError(f"--seed must be a non-negative integer, got {self.seed!r}")

    def content_key(self) -> dict[str, Any]:
        """The settings that determine a video's content (everything except ``episodes`` and ``out``), and the
        rule that makes an episode independent of the ones before it (absent from videos of older versions).
        Games whose agent is checked against its colour also record their crop and ground-truth keys (they were
        recorded full-screen without ground truth before), so older folders of theirs are not extended."""
        rom = resolve_game(self.game)
        key = {"game": rom, "size": list(self.size), "seed": self.seed,
               "max_steps": self.max_steps, "frame_skip": self.frame_skip, "max_hold": self.max_hold,
               "episode_start": EPISODE_START}
        preset = GAME_PRESETS.get(rom)
        if preset is not None and preset.pixels is not None:
            key.update(crop=list(preset.crop), ground_truth=["pos", "shift", "mask"])
        return key


# ------------------------------------------------------------------------------------------------------------------
# Games: name resolution, crops and RAM ground truth
# ------------------------------------------------------------------------------------------------------------------

def _tennis_agent(ram: np.ndarray) -> np.ndarray:
    """Orange player's sprite centre of mass, (T, 2) as (u, v) native pixel-index coordinates, from RAM (T, 128)."""
    ram = ram.astype(np.int64)
    slot = (ram[:, 80] != 0).astype(np.int64)  # 0: orange plays at the top, 1: at the bottom (ends change)
    rows = np.arange(len(ram))
    x = ram[rows, 26 + slot].astype(np.float64)
    top = 166.0 + slot - ram[rows, 24 + slot]  # sprite's first row
    racket_left = ram[rows, 56 + slot] != 0  # the sprite is mirrored and drawn 4 px further right
    return np.stack([x + np.where(racket_left, 8.85, 2.2), top + 9.1], axis=-1)


def _breakout_agent(ram: np.ndarray) -> np.ndarray:
    """Paddle centre, (T, 2) native (u, v), from RAM (T, 128): 16 px wide from column ram[72] - 47, rows 189..192."""
    x = ram[:, 72].astype(np.float64) - 39.5
    return np.stack([x, np.full_like(x, 190.5)], axis=-1)


@dataclass(frozen=True)
class GamePreset:
    """Per-game crop of the native 210x160 screen and optional agent-position function."""

    crop: tuple[int, int, int, int]  # (top, bottom, left, right) native rows/columns, bottom/right exclusive
    agent: Callable[[np.ndarray], np.ndarray] | None = None  # RAM (T, 128) -> native (u, v) (T, 2)
    agent_desc: str = ""
    agent_native_px: tuple[int, int] | None = None  # (W, H) of the agent sprite in native pixels
    pixels: AgentPixels | None = None  # the agent's colour and region: checks the RAM read-out against pixels


FULL_SCREEN = (0, 210, 0, 160)
GAME_PRESETS: dict[str, GamePreset] = {
    "tennis": GamePreset((14, 190, 8, 160), _tennis_agent, "orange player (colour 240,128,128), sprite centre of mass",
                         (12, 23)),
    "breakout": GamePreset((17, 196, 0, 160), _breakout_agent, "paddle (colour 200,72,72), centre", (16, 4)),
    # RAM tables below: found by regressing the agent sprite's bounding-box centre (located by its colour) on every
    # RAM byte, checked on fresh episodes by scripts/atari_ground_truth.py (docs/results/atari_ground_truth.md)
    "pong": GamePreset((30, 198, 0, 160),
                       LinearAgent(RamAxis(None, 141.5), RamAxis(51, -6.0, half=7.5, lo=34, hi=193)),
                       "right (green) paddle, centre; moves vertically only", (4, 16),
                       AgentPixels((92, 186, 92), (34, 194, 136, 148), (4, 16))),  # score removed, walls kept
    "freeway": GamePreset((14, 196, 8, 160), LinearAgent(RamAxis(None, 46.5), RamAxis(14, 196.5, -1.0)),
                          "left (player 1) yellow chicken, centre; moves vertically only", (6, 8),
                          AgentPixels((252, 252, 84), (14, 196, 40, 56), (6, 8), skip_rows=(102, 104))),
    "skiing": GamePreset((28, 178, 8, 152), LinearAgent(RamAxis(25, 4.5), RamAxis(None, 49.5)),
                         "red skier, centre; moves sideways only (the slope scrolls)", (8, 18),
                         AgentPixels((214, 92, 92), (28, 178, 8, 152), (8, 18))),
    "boxing": GamePreset((24, 188, 8, 160), LinearAgent(RamAxis(32, 11.5), RamAxis(34, 61.0)),
                         "white boxer, body centre (punches reach further)", (14, 47),
                         AgentPixels((214, 214, 214), (30, 182, 8, 160), (14, 47))),
    "ms_pacman": GamePreset((0, 172, 0, 160), LinearAgent(RamAxis(10, -8.5), RamAxis(16, 5.5)),
                            "Ms. Pac-Man (yellow), centre", (8, 10),
                            AgentPixels((210, 164, 74), (0, 172, 0, 160), (8, 10))),
    "seaquest": GamePreset((40, 190, 8, 160), LinearAgent(RamAxis(70, 7.5), RamAxis(97, 38.0)),
                           "yellow submarine, centre", (16, 11),
                           AgentPixels((187, 187, 53), (40, 160, 8, 160), (16, 11))),
    "space_invaders": GamePreset((24, 196, 8, 160), LinearAgent(RamAxis(28, 2.0), RamAxis(None, 189.5)),
                                 "green laser cannon, centre; moves sideways only", (7, 10),
                                 AgentPixels((50, 132, 50), (180, 196, 8, 160), (7, 10))),
}


def _rom_ids() -> list[str]:
    from ale_py import roms

    return sorted(roms.get_all_rom_ids())


def display_name(rom_id: str) -> str:
    """``"montezuma_revenge"`` -> ``"MontezumaRevenge"``."""
    return "".join(part[:1].upper() + part[1:] for part in rom_id.split("_"))


def resolve_game(name: str) -> str:
    """Map a game name (``"Tennis"``, ``"MontezumaRevenge"``, ``"montezuma_revenge"``, ``"ALE/Pong-v5"``) to its
    ale-py ROM id, or raise :class:`DatasetError` listing the available games."""
    text = str(name).strip()
    text = re.sub(r"^ALE/|-v\d+$", "", text)
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower().replace("-", "_")
    ids = _rom_ids()
    squashed = {i.replace("_", ""): i for i in ids}
    for candidate in (snake, text.lower()):
        if candidate in ids:
            return candidate
        if candidate.replace("_", "") in squashed:
            return squashed[candidate.replace("_", "")]
    close = difflib.get_close_matches(snake, ids, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(display_name(c) for c in close)}?" if close else ""
    popular = ["Tennis", "Breakout", "Pong", "SpaceInvaders", "MsPacman", "Freeway", "Boxing", "Seaquest"]
    raise DatasetError(
        f"unknown ALE game {name!r}.{hint} Pass --game with one of the {len(ids)} games ale-py ships, e.g. "
        f"{', '.join(popular)}; all: {', '.join(display_name(i) for i in ids)}"
    )


def native_to_output(uv: tuple[float, float] | np.ndarray, crop: tuple[int, int, int, int],
                     size: tuple[int, int]) -> np.ndarray:
    """Map native pixel-index coordinates (..., 2) as (u, v) to output pixel-index coordinates (x, y).

    Output pixel i covers the native interval ``[left + i*s, left + (i+1)*s)`` with ``s = (right-left)/W``
    (PIL's resampling geometry), so centres map as ``x = (u + 0.5 - left) / s - 0.5``.
    """
    top, bottom, left, right = crop
    h, w = size
    uv = np.asarray(uv, dtype=np.float64)
    sx, sy = (right - left) / w, (bottom - top) / h
    x = (uv[..., 0] + 0.5 - left) / sx - 0.5
    y = (uv[..., 1] + 0.5 - top) / sy - 0.5
    return np.stack([x, y], axis=-1)


def split_for_episode(index: int) -> str:
    """Deterministic split of episode ``index``: 1 of 10 test, 1 of 10 val, the rest train."""
    r = index % 10
    return "test" if r == 1 else ("val" if r == 2 else "train")


# ------------------------------------------------------------------------------------------------------------------
# Recording
# ------------------------------------------------------------------------------------------------------------------


@dataclass
class Episode:
    """One recorded episode. ``frames``: (T, H, W, 3) uint8; ``action``/``reward``/``done``: (T,);
    ``pos``/``shift``: (T, 2) float32 or None when the game has no agent ground truth."""

    frames: np.ndarray = field(repr=False)  # (T, H, W, 3) uint8
    action: np.ndarray = field(repr=False)  # (T,) int64
    reward: np.ndarray = field(repr=False)  # (T,) float32
    done: np.ndarray = field(repr=False)  # (T,) bool
    pos: np.ndarray | None = field(repr=False)  # (T, 2) float32 or None
    shift: np.ndarray | None = field(repr=False)  # (T, 2) float32 or None
    truncated: bool
    ram: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 128), np.uint8))  # (T, 128) uint8
    mask: np.ndarray | None = field(repr=False, default=None)  # (T, H, W) uint8 agent pixels, or None

    def gt(self) -> dict[str, np.ndarray]:
        out = {"action": self.action, "reward": self.reward, "done": self.done}
        if self.pos is not None and self.shift is not None:
            out.update(pos=self.pos, shift=self.shift)
        if self.mask is not None:
            out["mask"] = self.mask
        return out


class AtariRecorder:
    """Plays one ALE game with the held-random-action policy and returns cropped, resized episodes."""

    def __init__(self, cfg: AtariConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.rom_id = resolve_game(cfg.game)
        self.game = display_name(self.rom_id)
        self.preset = GAME_PRESETS.get(self.rom_id, GamePreset(FULL_SCREEN))
        try:
            import ale_py
            from ale_py import ALEInterface, LoggerMode
        except ImportError as e:  # pragma: no cover - ale-py is a dependency
            raise DatasetError("ale-py is not installed; `pip install ale-py` (it ships the ROMs)") from e
        ALEInterface.setLoggerMode(LoggerMode.Error)
        rom = ale_py.roms.get_rom_path(self.rom_id)
        if rom is None:
            raise DatasetError(f"ale-py has no ROM file for {self.game}; reinstall ale-py")
        self.ale = ALEInterface()
        self.ale.setInt("random_seed", int(cfg.seed) % 2**31)
        self.ale.setFloat("repeat_action_probability", 0.0)  # deterministic emulator: episodes depend on the policy
        self.ale.setInt("frame_skip", 1)  # skipping is done here, so rewards and game over are seen per frame
        self.ale.loadROM(str(rom))
        # every episode starts from this power-on state, emulator RNG included (reset_game draws from it): an
        # episode must not depend on the episodes this process played before it
        self._power_on = self.ale.cloneState(include_rng=True)
        self.actions = list(self.ale.getMinimalActionSet())
        self.action_ids = np.array([a.value for a in self.actions], dtype=np.int64)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atari-io")  # resize + compress

    @property
    def crop(self) -> tuple[int, int, int, int]:
        return self.preset.crop

    def agent_output_px(self) -> tuple[float, float] | None:
        """Agent sprite (W, H) in output pixels, or None."""
        if self.preset.agent_native_px is None:
            return None
        top, bottom, left, right = self.crop
        h, w = self.cfg.size
        nw, nh = self.preset.agent_native_px
        return nw * w / (right - left), nh * h / (bottom - top)

    def describe(self) -> dict[str, Any]:
        """Game facts for the manifest."""
        top, bottom, left, right = self.crop
        return {
            "game": self.game, "rom": self.rom_id, "crop": {"top": top, "bottom": bottom, "left": left, "right": right},
            "frame_skip": self.cfg.frame_skip,
            "action_ids": self.action_ids.tolist(), "action_names": [a.name for a in self.actions],
            "agent": self.preset.agent_desc or None,
            "agent_size_px": (None if self.agent_output_px() is None
                              else [round(v, 1) for v in self.agent_output_px()]),  # (W, H) output px
            "pos_coords": "output pixel-index (x, y); (0,0) = centre of the top-left pixel",
            "policy": f"uniform random minimal-set action held 1..{self.cfg.max_hold} steps",
            "episode_start": "power-on state with the emulator's RNG (seeded with seed) restored before every episode",
            "splits_rule": "episode i: i%10==1 test, i%10==2 val, else train",
        }

    def _resize_into(self, screens: np.ndarray, frames: np.ndarray, start: int,
                     masks: np.ndarray | None = None) -> None:
        """Crop and area-resize native screens (N, 210, 160, 3) into ``frames[start:start+N]`` (H, W, 3 each), and
        the agent's pixels (:class:`AgentPixels`) into ``masks[start:start+N]`` (H, W) uint8 when given: an output
        pixel is agent when at least half of its area is."""
        from PIL import Image

        top, bottom, left, right = self.crop
        h, w = self.cfg.size
        same = (bottom - top, right - left) == (h, w)
        for k, screen in enumerate(screens):
            if same:
                frames[start + k] = screen[top:bottom, left:right]
            else:  # PIL BOX: each output pixel is the mean of the native pixels whose centres fall inside it
                img = Image.fromarray(screen).resize((w, h), Image.Resampling.BOX, box=(left, top, right, bottom))
                frames[start + k] = np.asarray(img)
        if masks is None or self.preset.pixels is None:
            return
        native = self.preset.pixels.mask(screens[:, top:bottom, left:right], self.crop)  # (N, h0, w0) bool
        for k, m in enumerate(native):
            if same:
                masks[start + k] = m
            else:
                img = Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.Resampling.BOX)
                masks[start + k] = np.asarray(img) >= 128

    def record(self, index: int, on_frames: Callable[[int], None] | None = None) -> Episode:
        """Play episode ``index`` from the power-on state; ``on_frames(n)`` reports progress.

        The emulator runs in this thread; screens are cropped/resized in chunks on :attr:`pool` (PIL releases the
        GIL), so both CPU cores work.
        """
        cfg = self.cfg
        h, w = cfg.size
        rng = np.random.default_rng([cfg.seed, index])
        n_max = cfg.max_steps + 1
        frames = np.empty((n_max, h, w, 3), np.uint8)  # (T, H, W, 3)
        action = np.full(n_max, -1, np.int64)
        reward = np.zeros(n_max, np.float32)
        done = np.zeros(n_max, bool)
        rams = np.empty((n_max, 128), np.uint8)  # (T, 128)
        masks = np.zeros((n_max, h, w), np.uint8) if self.preset.pixels is not None else None  # (T, H, W)
        chunk_len = 32
        chunk = np.empty((chunk_len, 210, 160, 3), np.uint8)  # native screens waiting to be resized
        jobs = []

        def flush(n_in_chunk: int, end: int) -> None:
            nonlocal chunk
            jobs.append(self.pool.submit(self._resize_into, chunk[:n_in_chunk], frames, end - n_in_chunk, masks))
            chunk = np.empty_like(chunk)

        ale = self.ale
        ale.restoreState(self._power_on)
        ale.reset_game()
        ale.getScreenRGB(chunk[0])
        ale.getRAM(rams[0])
        k, held, t, j, reported = 0, 0, 0, 1, 0
        over = False
        for t in range(1, n_max):
            if held == 0:
                k = int(rng.integers(len(self.actions)))
                held = int(rng.integers(1, cfg.max_hold + 1))
            held -= 1
            r = 0
            for _ in range(cfg.frame_skip):
                r += ale.act(self.actions[k])
                if ale.game_over():
                    over = True
                    break
            action[t] = self.action_ids[k]
            reward[t] = r
            ale.getScreenRGB(chunk[j])
            ale.getRAM(rams[t])
            j += 1
            if j == chunk_len:
                flush(j, t + 1)
                j = 0
            if over:
                done[t] = True
                break
            if on_frames is not None and t - reported >= 100:
                on_frames(t - reported)
                reported = t
        n = t + 1
        if j:
            flush(j, n)
        for job in jobs:
            job.result()  # re-raises a worker's error here
        if on_frames is not None:
            on_frames(n - reported)
        pos = shift = None
        if self.preset.agent is not None:
            native = self.preset.agent(rams[:n])  # (T, 2) native (u, v)
            pos = native_to_output(native, self.crop, cfg.size).astype(np.float32)  # (T, 2) output (x, y)
            shift = np.zeros_like(pos)
            shift[1:] = pos[1:] - pos[:-1]
        return Episode(frames[:n].copy() if n < n_max else frames, action[:n], reward[:n], done[:n], pos, shift,
                       truncated=not over, ram=rams[:n].copy(), mask=None if masks is None else masks[:n].copy())

    def close(self) -> None:
        self.pool.shutdown(wait=True)


# ------------------------------------------------------------------------------------------------------------------
# Dataset generation
# ------------------------------------------------------------------------------------------------------------------


def _content_hash(key: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _check_resume(writer: DatasetWriter, key: dict[str, Any]) -> None:
    """Refuse to add videos made with other settings to a folder that already holds some."""
    existing = sorted(writer.videos_dir.glob("*.npz"))
    if not existing:
        return
    meta = read_video_meta(existing[0])
    old = meta.get("atari")
    if isinstance(old, dict) and old.get("episode_start") is None and {**old, "episode_start": EPISODE_START} == key:
        raise DatasetError(
            f"{writer.root} holds videos of an older glassworld, in which an episode could depend on the episodes "
            "recorded before it in the same process, so new episodes would not match them; write to another --out "
            "folder (the videos there stay usable for training)"
        )
    if old != key:
        raise DatasetError(
            f"{writer.root} already holds videos made with {old}, not {key}; "
            "re-run with the same settings to resume, or choose another --out folder (or delete it)"
        )


def generate(cfg: AtariConfig, progress: bool = True) -> dict[str, Any]:
    """Write ``cfg.episodes`` episodes into ``cfg.out`` (skipping those already there); return the manifest."""
    cfg.validate()
    key = cfg.content_key()
    h, w = cfg.size
    generator = {"command": "atari", **{k: (list(v) if isinstance(v, tuple) else (str(v) if isinstance(v, Path) else v))
                                         for k, v in asdict(cfg).items()}}
    recorder = AtariRecorder(cfg)
    try:
        writer = DatasetWriter(cfg.out, source="atari", height=h, width=w, fps=60.0 / cfg.frame_skip,
                               generator=generator, extra={"atari": recorder.describe()})
        _check_resume(writer, key)
    except BaseException:
        recorder.close()
        raise
    todo = [i for i in range(cfg.episodes) if not writer.has(f"ep{i:05d}")]
    if len(todo) < cfg.episodes:
        log.info("resuming: %d of %d episodes already in %s", cfg.episodes - len(todo), cfg.episodes, cfg.out)
    from tqdm import tqdm

    bar = tqdm(total=len(todo) * (cfg.max_steps + 1), unit="frame", unit_scale=True, disable=not progress or None,
               desc=f"{recorder.game} x{len(todo)}", dynamic_ncols=True)
    n_frames, t0 = 0, time.perf_counter()
    pending: Future | None = None  # the previous episode's write (compression runs beside the emulator)
    try:
        for i in todo:
            ep = recorder.record(i, on_frames=bar.update)
            t = len(ep.frames)
            bar.total -= cfg.max_steps + 1 - t  # the episode ended early: keep the ETA honest
            bar.refresh()
            if pending is not None:
                pending.result()  # at most one episode waits to be written
            pending = recorder.pool.submit(
                writer.write, f"ep{i:05d}", ep.frames, split=split_for_episode(i),
                identity=f"{recorder.rom_id}-seed{cfg.seed}-ep{i:05d}",
                info={"episode": i, "truncated": ep.truncated, "atari": key, "atari_hash": _content_hash(key)},
                **ep.gt())
            n_frames += t
        if pending is not None:
            pending.result()
    finally:
        bar.close()
        recorder.close()  # waits for a write in flight: every file is complete or absent
        manifest = writer.close()  # the index always lists every complete video, also after Ctrl-C
    dt = time.perf_counter() - t0
    if todo:
        log.info("%s: wrote %d episodes, %d frames in %.1f s (%.0f frames/s) to %s", recorder.game, len(todo),
                 n_frames, dt, n_frames / max(dt, 1e-9), cfg.out)
    return manifest


# ------------------------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------------------------

def games_with_ground_truth() -> list[str]:
    """Display names of the games whose recordings store the agent position (``pos``, ``shift``)."""
    return [display_name(g) for g, p in GAME_PRESETS.items() if p.agent is not None]


def _epilog() -> str:
    """The help's epilog: which games have ground truth, and their agents' sizes at the default size."""
    import textwrap

    names = games_with_ground_truth()
    h, w = DEFAULT_SIZE
    lines = ["Frames are cropped to the play area and area-resized to --size (default 96x128)."]
    lines += textwrap.wrap(
        f"Ground truth (agent position `pos`, `shift`) for: {', '.join(names[:-1])} and {names[-1]}. `pos` = (x, y) "
        "of the agent sprite's centre in output pixel-index coordinates, read from RAM (tables checked against the "
        "sprite's pixels: docs/results/atari_ground_truth.md); `shift` = pos[t] - pos[t-1]. Other games have no "
        "agent ground truth. Agents (size at 96x128, W x H px):", 116)
    for rom, p in GAME_PRESETS.items():
        if p.agent is None:
            continue
        size = ""
        if p.agent_native_px is not None:
            top, bottom, left, right = p.crop
            nw, nh = p.agent_native_px
            size = f"{nw * w / (right - left):.0f}x{nh * h / (bottom - top):.0f}"
        lines.append(f"  {display_name(rom):<9} {size:>5}  {p.agent_desc}")
    lines += textwrap.wrap(
        "Every game stores action (ALE joystick id that produced frame t, -1 for frame 0), reward and done. One "
        "video per episode; splits by episode index (i%10==1 test, i%10==2 val, else train). Re-running the same "
        "command resumes: finished videos are kept and skipped.", 116)
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``glassworld data atari``."""
    d = AtariConfig()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _epilog()
    parser.add_argument("--game", default=d.game,
                        help="ALE game, e.g. Tennis, Breakout, Pong, MontezumaRevenge (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=d.episodes, help="episodes = videos (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder (created; re-run to resume)")
    parser.add_argument("--size", default=None,
                        help="output HxW (default 96x128: Tennis player ~12 px tall x 7-10 px wide, Breakout "
                             "paddle ~13x2 px)")
    parser.add_argument("--seed", type=int, default=d.seed, help="behaviour-policy seed (default: %(default)s)")
    parser.add_argument("--max-steps", type=int, default=d.max_steps,
                        help="steps per episode at most; longer episodes are cut (default: %(default)s)")
    parser.add_argument("--frame-skip", type=int, default=d.frame_skip,
                        help="emulator frames per step, action repeated (default: %(default)s = 15 frames/s)")
    parser.add_argument("--max-hold", type=int, default=d.max_hold,
                        help="a random action is held for 1..N steps (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> AtariConfig:
    try:
        size = parse_size(args.size) if args.size is not None else DEFAULT_SIZE
    except DatasetError as e:
        raise DatasetError(f"--size: {e}") from None
    return AtariConfig(game=args.game, episodes=args.episodes, out=Path(args.out), size=size, seed=args.seed,
                       max_steps=args.max_steps, frame_skip=args.frame_skip, max_hold=args.max_hold)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``glassworld data atari``; bad arguments raise :class:`DatasetError`."""
    cfg = config_from_args(args)
    cfg.validate()
    resolve_game(cfg.game)  # fail before creating the folder
    try:
        manifest = generate(cfg, progress=not getattr(args, "no_progress", False))
    except KeyboardInterrupt:
        done = len(list((Path(cfg.out) / "videos").glob("*.npz")))
        print(f"interrupted: {cfg.out} keeps {done} complete videos (listed in manifest.json); "
              "run the same command again to continue", file=sys.stderr)
        return 130
    print(f"{cfg.out}: {manifest['num_videos']} videos, {manifest['num_frames']} frames "
          f"({', '.join(f'{s} {len(v)}' for s, v in manifest['splits'].items())})")
    return 0
