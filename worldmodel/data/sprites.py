"""``glassworld data sprites``: the W-Sprites dataset, rebuilt in Python 3 (method.md section 7).

A character walks over a slowly panning background; every frame shows one of 9 *local* actions (walk, spellcast,
slash x front, left, right), tied to the *global* moves of a random walk. Two asset sources:

* ``--sprites-dir DIR`` (e.g. ``../shared/data/lpc_sprites``): the real Universal-LPC layer sheets. A character is
  ``body/{b}.png, bottomwear/{bo}.png, topwear/{t}.png, hair/{h}.png`` (b, bo, t, h in 0..5) and ``shoes/1.png``,
  alpha-composited in that order onto opaque black; the background is ``bg.JPEG``. 6**4 = 1296 characters, with
  ``sprite_id = (5-b)*216 + (5-bo)*36 + (5-t)*6 + (5-h)`` (the official sorted order).
* no ``--sprites-dir``: procedural characters and scenery from :mod:`.procedural` (no LPC pixels), ids 0..1295.

Protocol (as the official generator, statistics-equivalent; Python 2's random stream cannot be reproduced):

* sprite walk ``RandomWalk(h=32, w=64, inertia=0.9, step=7)`` over the top-left corner of the 64x64 tile, background
  walk ``RandomWalk(25, 25, inertia=0.95, step=2)`` over the crop offset of the 281x281 (Lanczos) resized
  background; each frame's background is the 256x256 crop resized (Lanczos) to 128x96;
* walk letters l/r/u/d use walk left/right/front/front (ids 1/2/0/0), whose 8-frame loops continue across the
  video; a run of s letters is cut into static actions drawn from 3..8, each different from the previous local
  action, each lasting 4..8 frames and starting at its loop's frame 0.

Deviations from the official code, on purpose (method.md section 11, pitfalls 2 and 4):

* sprite colours are not darkened by the /256 then x255 round trip, so colours are the sheets' own;
* the **mask rule**: ``mask = 1`` exactly where the composed sprite has alpha > 0 (any layer covers the pixel), and
  each of those pixels shows the sprite's colour composited onto black, pasted opaque; every other pixel shows the
  background. The official per-channel ``canvas > 0`` test (which drops pure-black sprite pixels and makes
  partly-grey masks) is not used, so masks are binary and cover exactly the sprite's pixels;
* ground truth is in output pixels (below), not walk-range units.

Ground truth per video (:mod:`.format` keys; index t = frame t and the transition into it):

* ``pos`` (T, 2): centre (x, y) of the 64x64 sprite tile in pixel-index coordinates, i.e. ``corner + 31.5``, the
  centroid of a full tile's pixel indices (the figure itself is not centred in its tile);
* ``shift`` (T, 2): sprite content motion (dx, dy) px from frame t-1 to t, ``pos[t] - pos[t-1]``; row 0 is 0;
* ``bg_shift`` (T, 2): background content motion px, ``-(crop offset change) * (128/256, 96/256)``: content moves
  opposite to the crop window; row 0 is 0;
* ``local`` (T,): local action id 0..8 of the animation shown in frame t (``3 * action + direction``, action walk 0 /
  spellcast 1 / slash 2, direction front 0 / left 1 / right 2). Row 0 is the action of frame 0 too (never -1);
* ``action`` (T,): the global walk letter into frame t, 0..4 = l r u d s; row 0 is -1 (the step from the hidden
  start position is not shown);
* ``mask`` (T, H, W) uint8: the rule above.

The per-video ``meta`` also holds ``sprite_id``, ``video_index``, ``loop_frame`` (the frame 0..7 of the local
action's loop shown in each frame), ``bg_offset`` (crop offset (x, y) of frame 0) and, for LPC, ``character``
(b, bo, t, h).

``--videos N`` is the total. Sprites are chosen per split (80/10/10 by sorted ``sprite_id``, as the official code:
train ids < 0.8*1296, val < 0.9*1296, test the rest) in proportion to the split sizes, at least one per split when
there are >= 3 sprites, as the first ones of a ``--seed``-seeded permutation of each split's ids. There are
``ceil(N / --per-sprite)`` sprites (at most 1296); video j goes to sprite ``j % n_sprites``. Each video's content
depends only on (source, seed, sprite_id, video index, frames), so resumed runs write identical videos (and
``--workers N`` writes the same dataset as one process). Videos are named ``sprite_{id:06d}_video_{k:03d}``; the
identity (one per character, for the split and per-identity metrics) is ``lpc-{id:04d}`` or
``procedural-{id:04d}``; the manifest ``source`` is ``sprites`` (LPC) or ``sprites-procedural``.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import procedural
from .format import DatasetError, DatasetWriter, read_video_meta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpritesConfig:
    """W-Sprites generation parameters (defaults: the official protocol, method.md section 7)."""

    height: int = 96  # output frame H
    width: int = 128  # output frame W
    frames: int = 90  # frames per video (official n_steps)
    per_sprite: int = 10  # videos per sprite (official: 10)
    seed: int = 0
    tile: int = 64  # sprite tile side
    fg_inertia: float = 0.9
    fg_step: int = 7
    bg_range: int = 25  # background crop offsets 0..24
    bg_inertia: float = 0.95
    bg_step: int = 2
    bg_crop: int = 256  # crop side in the (256 + 25)-px resized background
    static_min: int = 4  # static actions last 4..8 frames
    static_max: int = 8
    split_bounds: tuple[float, float] = (0.8, 0.9)  # cumulative train / val fractions of the sorted ids


NUM_CHARACTERS = 6**4  # 1296 LPC characters (and as many procedural identities)
LOCAL_ACTIONS = ("walk_front", "walk_left", "walk_right", "spellcast_front", "spellcast_left", "spellcast_right",
                 "slash_front", "slash_left", "slash_right")
GLOBAL_ACTIONS = ("l", "r", "u", "d", "s")
LETTER_LOCAL: dict[str, tuple[int, ...]] = {"l": (1,), "r": (2,), "u": (0,), "d": (0,), "s": (3, 4, 5, 6, 7, 8)}
# LPC sheet (row per direction front/left/right, loop columns) per action walk / spellcast / slash
LPC_ROWS: tuple[tuple[int, int, int], ...] = ((10, 9, 11), (2, 1, 3), (14, 13, 15))
LPC_COLS: tuple[tuple[int, ...], ...] = ((8, 1, 2, 3, 4, 5, 6, 7), (0, 1, 2, 3, 4, 5, 4, 6), (0, 1, 2, 3, 4, 5, 4, 0))
LPC_SHEET = (832, 1344)  # (W, H): 13 x 21 frames of 64x64
LPC_LAYERS = ("body", "bottomwear", "topwear", "hair")  # indices 0..5 each, then shoes/1.png
SOURCES = {"lpc": "sprites", "procedural": "sprites-procedural"}  # generator -> manifest ``source``


# ----------------------------------------------------------------------------------------------- identities

def lpc_attributes(sprite_id: int) -> tuple[int, int, int, int]:
    """(body, bottomwear, topwear, hair) indices of LPC character ``sprite_id`` (official sorted order)."""
    if not 0 <= sprite_id < NUM_CHARACTERS:
        raise DatasetError(f"sprite_id must be in 0..{NUM_CHARACTERS - 1}, got {sprite_id}")
    d = [(sprite_id // 6**p) % 6 for p in (3, 2, 1, 0)]
    return 5 - d[0], 5 - d[1], 5 - d[2], 5 - d[3]


def split_ranges(bounds: tuple[float, float] = (0.8, 0.9), n: int = NUM_CHARACTERS) -> dict[str, range]:
    """Sprite-id ranges of the splits: ``id < 0.8 n`` train, ``< 0.9 n`` val, the rest test (1037/130/129)."""
    a, b = math.ceil(bounds[0] * n), math.ceil(bounds[1] * n)
    return {"train": range(0, a), "val": range(a, b), "test": range(b, n)}


def split_of(sprite_id: int, bounds: tuple[float, float] = (0.8, 0.9)) -> str:
    for name, r in split_ranges(bounds).items():
        if sprite_id in r:
            return name
    raise DatasetError(f"sprite_id must be in 0..{NUM_CHARACTERS - 1}, got {sprite_id}")


def choose_videos(num_videos: int, per_sprite: int, seed: int,
                  bounds: tuple[float, float] = (0.8, 0.9)) -> list[tuple[int, int]]:
    """The (sprite_id, video_index) pairs of a dataset of ``num_videos`` videos, sorted by sprite id.

    ``ceil(num_videos / per_sprite)`` sprites (at most 1296) are split over train/val/test in proportion to the
    split sizes (largest remainder; >= 1 per split when there are >= 3 sprites); each split takes the first ids of
    a seeded permutation of its range. Video j belongs to sprite ``j % n_sprites`` with index ``j // n_sprites``.
    """
    if num_videos <= 0:
        raise DatasetError(f"--videos must be a positive number of videos, got {num_videos}")
    if per_sprite <= 0:
        raise DatasetError(f"--per-sprite must be positive, got {per_sprite}")
    n = min(NUM_CHARACTERS, math.ceil(num_videos / per_sprite))
    ranges = split_ranges(bounds)
    sizes = np.array([len(r) for r in ranges.values()], np.float64)
    quota = n * sizes / sizes.sum()
    counts = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    if n >= 3:
        for i in (1, 2):
            if counts[i] == 0:
                counts[i] = 1
                counts[int(np.argmax(counts))] -= 1
    rng = np.random.default_rng([seed, 0x5B17E5])
    ids: list[int] = []
    for (name, r), c in zip(ranges.items(), counts):
        perm = rng.permutation(len(r))  # drawn for every split, so each split's order depends on seed only
        ids.extend(int(r.start + p) for p in perm[:c])
    pairs = [(ids[j % n], j // n) for j in range(num_videos)]
    return sorted(pairs)


# ----------------------------------------------------------------------------------------------- random walk

class RandomWalk:
    """The W-Sprites random walk (method.md 7.2) over the integer grid [0, w-1] x [0, h-1].

    Directions: l r u d s (u = y decreases). ``step()`` returns (letter, dx, dy) with the actual, clamped move.
    """

    def __init__(self, h: int, w: int, inertia: float, step_size: int, rng: random.Random) -> None:
        self.h, self.w, self.inertia, self.step_size, self.rng = h, w, inertia, step_size, rng
        self.x = rng.randint(0, w - 1)
        self.y = rng.randint(0, h - 1)
        self.d: str | None = None

    def step(self) -> tuple[str, int, int]:
        allowed = ["l", "r", "u", "d", "s"]
        if self.x == self.w - 1:
            allowed.remove("r")
        if self.x == 0:
            allowed.remove("l")
        if self.y == self.h - 1:
            allowed.remove("d")
        if self.y == 0:
            allowed.remove("u")
        cand = self.rng.choice(allowed)  # always drawn
        if self.d is None or self.d not in allowed:
            self.d = cand
        elif len(allowed) > 1:
            cand2 = self.rng.choice([a for a in allowed if a != self.d])
            p = self.rng.random()
            if p > (self.inertia if self.d != "s" else 0.9):  # the official code hard-codes 0.9 for s
                self.d = cand2
        x0, y0 = self.x, self.y
        s = self.step_size
        if self.d == "l":
            self.x = max(0, self.x - s)
        elif self.d == "r":
            self.x = min(self.w - 1, self.x + s)
        elif self.d == "u":
            self.y = max(0, self.y - s)
        elif self.d == "d":
            self.y = min(self.h - 1, self.y + s)
        return self.d, self.x - x0, self.y - y0


@dataclass
class VideoPlan:
    """Everything random about one video (T = frames)."""

    corner: np.ndarray  # (T, 2) int64 top-left (x, y) of the sprite tile in frame t
    bg_offset: np.ndarray  # (T, 2) int64 crop offset (x, y) of the background in frame t
    letter: np.ndarray  # (T,) int64 global letter id 0..4 of the step into frame t
    local: np.ndarray  # (T,) int64 local action 0..8 shown in frame t
    loop_frame: np.ndarray  # (T,) int64 frame 0..7 of that action's loop


def plan_video(rng: random.Random, cfg: SpritesConfig) -> VideoPlan:
    """Run both walks and tie local actions to the walk letters (method.md 7.2-7.3)."""
    T = cfg.frames
    fg = RandomWalk(cfg.height - cfg.tile, cfg.width - cfg.tile, cfg.fg_inertia, cfg.fg_step, rng)
    bg = RandomWalk(cfg.bg_range, cfg.bg_range, cfg.bg_inertia, cfg.bg_step, rng)
    letters, corner, bg_offset = [], np.zeros((T, 2), np.int64), np.zeros((T, 2), np.int64)
    for i in range(T):
        letters.append(fg.step()[0])
        corner[i] = fg.x, fg.y
    for i in range(T):
        bg.step()
        bg_offset[i] = bg.x, bg.y
    local = np.zeros(T, np.int64)
    loop_frame = np.zeros(T, np.int64)
    cursor = [0] * len(LOCAL_ACTIONS)  # endless cyclic iterators over the 8-frame loops
    prev = -1
    i = 0
    while i < T:
        if letters[i] != "s":
            a = LETTER_LOCAL[letters[i]][0]
            local[i], loop_frame[i] = a, cursor[a] % 8
            cursor[a] += 1
            prev = a
            i += 1
            continue
        a = rng.choice(LETTER_LOCAL["s"])
        while a == prev:
            a = rng.choice(LETTER_LOCAL["s"])
        max_steps = rng.randint(cfg.static_min, cfg.static_max)
        cursor[a] = 0  # a static action starts from its loop's frame 0
        j = 0
        while i + j < T and letters[i + j] == "s" and j < max_steps:
            local[i + j], loop_frame[i + j] = a, cursor[a] % 8
            cursor[a] += 1
            j += 1
        prev = a
        i += j
    letter = np.array([GLOBAL_ACTIONS.index(c) for c in letters], np.int64)
    return VideoPlan(corner, bg_offset, letter, local, loop_frame)


# ----------------------------------------------------------------------------------------------- assets

class SpriteAssets:
    """Characters (``rgb`` (9, 8, 64, 64, 3) uint8 composited onto black, ``alpha`` (9, 8, 64, 64) bool) and the
    frame backgrounds of the background walk's crop offsets.

    Composed characters are cached (LRU of ``cache_size``), so only the characters a dataset needs are built.
    """

    kind = "base"

    def __init__(self, cfg: SpritesConfig, cache_size: int = 32) -> None:
        self.cfg = cfg
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._big: Image.Image | None = None  # the resized background image
        self._bg = np.zeros((0,), np.uint8)
        self._bg_done = np.zeros((0, 0), bool)

    def character(self, sprite_id: int) -> tuple[np.ndarray, np.ndarray]:
        if sprite_id in self._cache:
            self._cache.move_to_end(sprite_id)
            return self._cache[sprite_id]
        value = self._build_character(sprite_id)
        self._cache[sprite_id] = value
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return value

    def _build_character(self, sprite_id: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _background_image(self) -> Image.Image:
        raise NotImplementedError

    def backgrounds(self, offsets: np.ndarray) -> np.ndarray:
        """Frame backgrounds of crop offsets ``offsets`` (N, 2) (x, y): (N, H, W, 3) uint8.

        Each offset's 256x256 crop of the (256 + 25)-px Lanczos-resized background is resized (Lanczos) to W x H
        once, on first use, and cached.
        """
        c = self.cfg
        if self._big is None:
            self._big = self._background_image().convert("RGB").resize(
                (c.bg_crop + c.bg_range, c.bg_crop + c.bg_range), Image.LANCZOS)
            self._bg = np.zeros((c.bg_range, c.bg_range, c.height, c.width, 3), np.uint8)  # [y, x]
            self._bg_done = np.zeros((c.bg_range, c.bg_range), bool)
        for x, y in {(int(x), int(y)) for x, y in offsets}:
            if not self._bg_done[y, x]:
                crop = self._big.crop((x, y, x + c.bg_crop, y + c.bg_crop))
                self._bg[y, x] = np.asarray(crop.resize((c.width, c.height), Image.LANCZOS))
                self._bg_done[y, x] = True
        return self._bg[offsets[:, 1], offsets[:, 0]]  # (N, H, W, 3), a copy

    def identity(self, sprite_id: int) -> str:
        return f"{self.kind}-{sprite_id:04d}"

    def info(self, sprite_id: int) -> dict[str, Any]:
        return {}


class LPCAssets(SpriteAssets):
    """The real LPC sheets of ``root`` (see the module docstring for the files used)."""

    kind = "lpc"

    def __init__(self, root: str | Path, cfg: SpritesConfig, cache_size: int = 32) -> None:
        super().__init__(cfg, cache_size)
        self.root = Path(root)
        check_sprites_dir(self.root)
        self._layers: dict[str, np.ndarray] = {}

    def _layer(self, rel: str) -> np.ndarray:
        """The 9 x 8 loop frames of one layer sheet as RGBA: (9 * 8 * 64, 64, 4) uint8, stacked vertically."""
        if rel not in self._layers:
            path = self.root / rel
            with Image.open(path) as im:
                if im.size != LPC_SHEET:
                    raise DatasetError(f"{path} is {im.size[0]}x{im.size[1]} px; an LPC sheet is 832x1344 "
                                       "(13 x 21 frames of 64x64). Point --sprites-dir at the lpc_sprites folder")
                sheet = np.asarray(im.convert("RGBA"))  # (1344, 832, 4)
            t = self.cfg.tile
            tiles = [sheet[row * t:(row + 1) * t, col * t:(col + 1) * t]
                     for action in range(3) for row in LPC_ROWS[action] for col in LPC_COLS[action]]
            self._layers[rel] = np.ascontiguousarray(np.concatenate(tiles, 0))  # (72 * 64, 64, 4)
        return self._layers[rel]

    def _build_character(self, sprite_id: int) -> tuple[np.ndarray, np.ndarray]:
        t = self.cfg.tile
        attrs = lpc_attributes(sprite_id)
        rels = [f"{name}/{i}.png" for name, i in zip(LPC_LAYERS, attrs)] + ["shoes/1.png"]
        canvas = Image.new("RGBA", (t, 9 * 8 * t), (0, 0, 0, 255))  # opaque black
        cover = np.zeros((9 * 8 * t, t), bool)
        for rel in rels:
            layer = self._layer(rel)
            canvas = Image.alpha_composite(canvas, Image.fromarray(layer, "RGBA"))
            cover |= layer[..., 3] > 0
        rgb = np.asarray(canvas)[..., :3].reshape(9, 8, t, t, 3)  # (9, 8, 64, 64, 3)
        alpha = cover.reshape(9, 8, t, t)  # (9, 8, 64, 64)
        return np.where(alpha[..., None], rgb, 0).astype(np.uint8), alpha

    def _background_image(self) -> Image.Image:
        with Image.open(self.root / "bg.JPEG") as im:
            return im.convert("RGB")

    def info(self, sprite_id: int) -> dict[str, Any]:
        return {"character": list(lpc_attributes(sprite_id))}


class ProceduralAssets(SpriteAssets):
    """Procedural characters (identity = character seed = sprite id) and scenery, see :mod:`.procedural`."""

    kind = "procedural"

    def _build_character(self, sprite_id: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= sprite_id < NUM_CHARACTERS:
            raise DatasetError(f"sprite_id must be in 0..{NUM_CHARACTERS - 1}, got {sprite_id}")
        return procedural.draw_character(sprite_id)

    def _background_image(self) -> Image.Image:
        return Image.fromarray(procedural.background_image(self.cfg.bg_crop))


def check_sprites_dir(root: Path) -> None:
    """One clear error naming every file W-Sprites needs that ``root`` lacks."""
    if not root.is_dir():
        raise DatasetError(f"--sprites-dir {root} is not a folder; point it at the LPC sheets "
                           "(e.g. ../shared/data/lpc_sprites) or leave it out for procedural sprites")
    need = [f"{name}/{i}.png" for name in LPC_LAYERS for i in range(6)] + ["shoes/1.png", "bg.JPEG"]
    missing = [rel for rel in need if not (root / rel).is_file()]
    if len(missing) == len(need):
        raise DatasetError(f"--sprites-dir {root} holds none of the LPC files W-Sprites needs (body/0-5.png, "
                           "bottomwear/, topwear/, hair/, shoes/1.png, bg.JPEG); point it at the lpc_sprites folder "
                           "(e.g. ../shared/data/lpc_sprites) or leave it out for procedural sprites")
    if missing:
        raise DatasetError(f"--sprites-dir {root} lacks {len(missing)} file(s) W-Sprites needs: "
                           f"{', '.join(missing)}. It must hold body/, bottomwear/, topwear/, hair/ (0-5.png), "
                           "shoes/1.png and bg.JPEG")


def make_assets(sprites_dir: str | Path | None, cfg: SpritesConfig) -> SpriteAssets:
    return LPCAssets(sprites_dir, cfg) if sprites_dir else ProceduralAssets(cfg)


# ----------------------------------------------------------------------------------------------- rendering

def video_rng(kind: str, seed: int, sprite_id: int, video_index: int) -> random.Random:
    """The random stream of one video: a function of its name and the dataset seed only."""
    return random.Random(f"glassworld-sprites:{kind}:{seed}:{sprite_id}:{video_index}")


def render_video(assets: SpriteAssets, sprite_id: int, video_index: int) -> dict[str, Any]:
    """One video: ``frames`` (T, H, W, 3) uint8, GT arrays (module docstring) and ``info`` (JSON-able dict)."""
    cfg = assets.cfg
    plan = plan_video(video_rng(assets.kind, cfg.seed, sprite_id, video_index), cfg)
    rgb, alpha = assets.character(sprite_id)  # (9, 8, 64, 64, 3), (9, 8, 64, 64)
    T, t = cfg.frames, cfg.tile
    frames = assets.backgrounds(plan.bg_offset)  # (T, H, W, 3), a copy
    mask = np.zeros((T, cfg.height, cfg.width), np.uint8)
    for i in range(T):
        x, y = int(plan.corner[i, 0]), int(plan.corner[i, 1])
        a, k = int(plan.local[i]), int(plan.loop_frame[i])
        m = alpha[a, k]  # (64, 64)
        region = frames[i, y:y + t, x:x + t]  # (64, 64, 3) view
        region[m] = rgb[a, k][m]
        mask[i, y:y + t, x:x + t] = m
    pos = plan.corner.astype(np.float32) + (t - 1) / 2.0  # (T, 2) tile centre, pixel-index coordinates
    shift = np.zeros((T, 2), np.float32)
    shift[1:] = np.diff(plan.corner, axis=0)
    bg_shift = np.zeros((T, 2), np.float32)
    bg_shift[1:] = -np.diff(plan.bg_offset, axis=0) * np.array(
        [cfg.width / cfg.bg_crop, cfg.height / cfg.bg_crop], np.float32)
    action = plan.letter.copy()
    action[0] = -1
    info = {"generator": assets.kind, "seed": cfg.seed, "sprite_id": sprite_id, "video_index": video_index,
            "loop_frame": plan.loop_frame.tolist(), "bg_offset": plan.bg_offset[0].tolist(),
            **assets.info(sprite_id)}
    return {"frames": frames, "pos": pos, "shift": shift, "bg_shift": bg_shift, "local": plan.local.copy(),
            "action": action, "mask": mask, "info": info}


def video_name(sprite_id: int, video_index: int) -> str:
    return f"sprite_{sprite_id:06d}_video_{video_index:03d}"


# ----------------------------------------------------------------------------------------------- writing

_WORKER: dict[str, Any] = {}


def _write_one(assets: SpriteAssets, writer: DatasetWriter, sprite_id: int, k: int) -> int:
    v = render_video(assets, sprite_id, k)
    frames, info = v.pop("frames"), v.pop("info")
    writer.write(video_name(sprite_id, k), frames, split=split_of(sprite_id, assets.cfg.split_bounds),
                 identity=assets.identity(sprite_id), info=info, **v)
    return int(frames.shape[0])


def _worker_init(sprites_dir: str | None, cfg: SpritesConfig, writer: DatasetWriter) -> None:
    # the writer arrives pickled (or forked), so __post_init__ (which sweeps temp files) does not run again
    _WORKER["assets"] = make_assets(sprites_dir, cfg)
    _WORKER["writer"] = writer


def _worker_write(sprite_id: int, k: int) -> int:
    return _write_one(_WORKER["assets"], _WORKER["writer"], sprite_id, k)


def _check_resume(writer: DatasetWriter, kind: str, cfg: SpritesConfig) -> None:
    """Every video already in the folder must come from the same generator, seed and length (else one error)."""
    for path in sorted(writer.videos_dir.glob("*.npz")):
        meta = read_video_meta(path)
        got = (meta.get("generator"), meta.get("seed"), meta.get("frames"))
        if got != (kind, cfg.seed, cfg.frames):
            raise DatasetError(
                f"{writer.root} already holds {path.stem} made with generator={got[0]}, seed={got[1]}, "
                f"frames={got[2]}; resume with those arguments, or choose another --out (or delete it) for "
                f"generator={kind}, seed={cfg.seed}, frames={cfg.frames}")


def generate(out: str | Path, num_videos: int, sprites_dir: str | Path | None = None,
             cfg: SpritesConfig | None = None, workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Write (or finish) a W-Sprites dataset of ``num_videos`` videos into ``out``; return the manifest."""
    from tqdm import tqdm

    cfg = cfg or SpritesConfig()
    if cfg.frames < 2:
        raise DatasetError(f"--frames must be at least 2, got {cfg.frames}")
    if workers < 1:
        raise DatasetError(f"--workers must be at least 1, got {workers}")
    pairs = choose_videos(num_videos, cfg.per_sprite, cfg.seed, cfg.split_bounds)
    kind = "lpc" if sprites_dir else "procedural"
    if sprites_dir:
        check_sprites_dir(Path(sprites_dir))
    generator = {"videos": num_videos, "sprites_dir": str(sprites_dir) if sprites_dir else None,
                 "generator": kind, **asdict(cfg)}
    extra = {"local_actions": list(LOCAL_ACTIONS), "global_actions": list(GLOBAL_ACTIONS),
             "num_local_actions": len(LOCAL_ACTIONS), "tile": cfg.tile,
             "conventions": "pos = tile centre (x, y) px, pixel-index coords; shift/bg_shift = content motion px "
                            "into frame t (row 0 = 0); local = animation of frame t (0..8, never -1); action = "
                            "walk letter into frame t (0..4 = l r u d s, row 0 = -1); mask = sprite alpha > 0"}
    writer = DatasetWriter(out, source=SOURCES[kind], height=cfg.height, width=cfg.width, fps=15.0,
                           generator=generator, extra=extra)
    _check_resume(writer, kind, cfg)
    done = [p for p in pairs if writer.has(video_name(*p))]
    todo = [p for p in pairs if not writer.has(video_name(*p))]
    if done:
        log.info("resuming: %d of %d videos already in %s", len(done), len(pairs), writer.root)
    pool: ProcessPoolExecutor | None = None
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp

        # forked workers inherit the writer as is: its __post_init__ (the temp-file sweep) does not run again
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_worker_init,
                                   initargs=(str(sprites_dir) if sprites_dir else None, cfg, writer))
    bar = tqdm(total=len(pairs), initial=len(done), unit="video", desc=f"sprites ({kind})", disable=not progress)
    try:
        if pool is None:
            assets = make_assets(sprites_dir, cfg)
            for sprite_id, k in todo:
                _write_one(assets, writer, sprite_id, k)
                bar.update(1)
        else:
            for fut in as_completed([pool.submit(_worker_write, s, k) for s, k in todo]):
                fut.result()
                bar.update(1)
    finally:
        bar.close()
        if pool is not None:  # on an error or Ctrl-C, drop the queued videos (finished ones are complete files)
            pool.shutdown(wait=True, cancel_futures=True)
    manifest = writer.close()
    log.info("wrote %s: %d videos, %d frames (%s)", writer.root, manifest["num_videos"], manifest["num_frames"],
             ", ".join(f"{s} {len(v)}" for s, v in manifest["splits"].items()))
    return manifest


# ----------------------------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="dataset folder to write (an unfinished one is resumed)")
    parser.add_argument("--videos", type=int, required=True, help="total number of videos (all splits)")
    parser.add_argument("--sprites-dir", default=None,
                        help="LPC sheets folder (e.g. ../shared/data/lpc_sprites); leave out for procedural sprites")
    parser.add_argument("--seed", type=int, default=0, help="chooses the sprites and every video's random walks")
    parser.add_argument("--frames", type=int, default=90, help="frames per video (official: 90)")
    parser.add_argument("--per-sprite", type=int, default=10,
                        help="videos per sprite (official: 10); --videos/--per-sprite sprites are used")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each renders and compresses)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    cfg = SpritesConfig(frames=args.frames, per_sprite=args.per_sprite, seed=args.seed)
    manifest = generate(args.out, args.videos, args.sprites_dir, cfg, workers=args.workers,
                        progress=not getattr(args, "no_progress", False))
    print(f"{args.out}: {manifest['num_videos']} videos, {manifest['num_frames']} frames "
          f"({', '.join(f'{s} {len(v)}' for s, v in manifest['splits'].items())})")
    return 0
