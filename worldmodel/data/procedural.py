"""Procedural W-Sprites assets: drawn characters with the 9 LPC local actions, and a scenery background.

No LPC pixels are used, so ``glassworld data sprites`` works without the sprite sheets (this is what the shipped
``GlassSprites-v0`` env is trained on). The assets follow the shapes of the LPC ones used by
:mod:`worldmodel.data.sprites`:

* a character is 9 animations x 8 frames of 64x64 RGB tiles with a binary alpha
  (``rgb`` (9, 8, 64, 64, 3) uint8, ``alpha`` (9, 8, 64, 64) bool). Animation ``a`` is the local action id
  ``3 * action + direction`` with action walk 0 / spellcast 1 / slash 2 and direction front 0 / left 1 / right 2;
* the background is one fixed 256x256 RGB image (``uint8``), playing the part of ``bg.JPEG``.

A character is a pixel-art figure built from rounded boxes and capsules (head, hair, torso, arms, legs, shoes),
each part outlined in a darker shade of its colour. Its identity (colours, proportions, hair style) comes from its
integer id alone, so the same id always looks the same whatever the dataset seed. The animations:

* walk front: alternate foot lifts with arm swings and a body bob; walk left/right: a profile with scissoring
  legs and counter-swinging arms;
* spellcast: the arms rise over 8 frames while a glowing orb (the character's magic colour) pulses above the head
  (front) or in front of the hands (left/right);
* slash: a sword swings from behind the head down and forward (left/right) or diagonally across the body (front),
  with a lunge of the torso.

Alpha is binary (no anti-aliasing), so a foreground mask is exactly the set of drawn pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

TILE = 64  # tile side in pixels, as the LPC frames
NUM_ANIMATIONS = 9
LOOP = 8  # frames per animation loop
GROUND = 62.0  # y of the soles in the tile (LPC feet end near the bottom too)
BACKGROUND_SEED = 20220722  # the procedural background is one fixed image, like bg.JPEG

# pixel centres of a tile: (64, 64) each
_YY, _XX = np.mgrid[0:TILE, 0:TILE].astype(np.float32) + 0.5

_SKINS = np.array([[255, 220, 185], [241, 194, 150], [224, 172, 120], [198, 134, 90], [150, 98, 62],
                   [105, 70, 45]], dtype=np.float32)
_HAIRS = np.array([[30, 25, 20], [90, 55, 25], [160, 110, 50], [230, 200, 120], [170, 40, 30],
                   [200, 200, 205], [60, 60, 140], [40, 110, 60]], dtype=np.float32)


@dataclass(frozen=True)
class CharacterStyle:
    """Everything that makes one procedural identity look like itself (drawn from its id)."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    shoes: tuple[int, int, int]
    magic: tuple[int, int, int]
    blade: tuple[int, int, int]
    hair_style: int  # 0 short, 1 long, 2 hat, 3 bun
    torso_half: float  # torso half-width, px
    head_r: float  # head radius, px
    leg_len: float  # hip to sole, px
    arm_len: float  # shoulder to hand, px


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


def character_style(identity: int) -> CharacterStyle:
    """The style of procedural character ``identity`` (deterministic, independent of any dataset seed)."""
    rng = np.random.default_rng([0x5B17E, int(identity)])

    def jitter(c: np.ndarray, amount: float) -> tuple[int, int, int]:
        v = np.clip(c + rng.uniform(-amount, amount, 3), 0, 255)
        return int(v[0]), int(v[1]), int(v[2])

    shirt_h = float(rng.uniform())
    return CharacterStyle(
        skin=jitter(_SKINS[rng.integers(len(_SKINS))], 8),
        hair=jitter(_HAIRS[rng.integers(len(_HAIRS))], 15),
        shirt=_hsv(shirt_h, float(rng.uniform(0.45, 0.9)), float(rng.uniform(0.55, 0.95))),
        pants=_hsv(float(rng.uniform()), float(rng.uniform(0.2, 0.7)), float(rng.uniform(0.25, 0.6))),
        shoes=_hsv(float(rng.uniform()), float(rng.uniform(0.1, 0.6)), float(rng.uniform(0.12, 0.35))),
        magic=_hsv((shirt_h + 0.5) % 1.0, 0.6, 1.0),  # a hue far from the shirt so the orb stands out
        blade=jitter(np.array([205.0, 210.0, 225.0]), 20),
        hair_style=int(rng.integers(4)),
        torso_half=float(rng.choice([6.0, 7.0, 8.0])),
        head_r=float(rng.choice([6.0, 6.5, 7.0])),
        leg_len=float(rng.choice([14.0, 15.0, 16.0])),
        arm_len=float(rng.choice([12.0, 13.0, 14.0])),
    )


class _Tile:
    """One 64x64 drawing surface: painter's algorithm with per-part outlines, binary alpha."""

    def __init__(self) -> None:
        self.rgb = np.zeros((TILE, TILE, 3), np.float32)  # (64, 64, 3)
        self.alpha = np.zeros((TILE, TILE), bool)  # (64, 64)

    def fill(self, dist: np.ndarray, radius: float, colour: tuple[int, int, int] | np.ndarray,
             outline: bool = True) -> None:
        """Paint pixels with ``dist < radius`` in ``colour``, after a 1-px outline in a darker shade."""
        c = np.asarray(colour, np.float32)
        if outline:
            ring = dist < radius + 1.0
            self.rgb[ring] = c * 0.45
            self.alpha |= ring
        inside = dist < radius
        self.rgb[inside] = c
        self.alpha |= inside

    def capsule(self, p0: tuple[float, float], p1: tuple[float, float], radius: float,
                colour: tuple[int, int, int] | np.ndarray, outline: bool = True) -> None:
        self.fill(_segment_dist(p0, p1), radius, colour, outline)

    def disc(self, p: tuple[float, float], radius: float, colour: tuple[int, int, int] | np.ndarray,
             outline: bool = True) -> None:
        self.fill(np.hypot(_XX - p[0], _YY - p[1]), radius, colour, outline)

    def box(self, x0: float, y0: float, x1: float, y1: float, radius: float,
            colour: tuple[int, int, int] | np.ndarray, outline: bool = True) -> None:
        """A box [x0, x1] x [y0, y1] grown by ``radius`` (rounded corners)."""
        dx = np.maximum(np.maximum(x0 - _XX, 0.0), _XX - x1)
        dy = np.maximum(np.maximum(y0 - _YY, 0.0), _YY - y1)
        self.fill(np.hypot(dx, dy), radius, colour, outline)

    def pixel(self, x: float, y: float, colour: tuple[int, int, int]) -> None:
        xi, yi = int(x), int(y)
        if 0 <= xi < TILE and 0 <= yi < TILE:
            self.rgb[yi, xi] = colour
            self.alpha[yi, xi] = True


def _segment_dist(p0: tuple[float, float], p1: tuple[float, float]) -> np.ndarray:
    """Distance of every tile pixel centre to the segment p0-p1: (64, 64)."""
    ax, ay = p0
    bx, by = p1
    vx, vy = bx - ax, by - ay
    den = vx * vx + vy * vy
    if den < 1e-9:
        return np.hypot(_XX - ax, _YY - ay)
    t = np.clip(((_XX - ax) * vx + (_YY - ay) * vy) / den, 0.0, 1.0)
    return np.hypot(_XX - (ax + t * vx), _YY - (ay + t * vy))


def _limb(tile: _Tile, root: tuple[float, float], end: tuple[float, float], bend: float, length: float | None,
          r: float, upper: tuple[int, int, int] | np.ndarray, lower: tuple[int, int, int] | np.ndarray) -> None:
    """Two-segment limb root -> joint -> end; the joint sits ``bend`` px to the side of the straight line
    (plus half the slack when the reach is shorter than ``length``)."""
    mx, my = (root[0] + end[0]) / 2, (root[1] + end[1]) / 2
    dx, dy = end[0] - root[0], end[1] - root[1]
    d = math.hypot(dx, dy) or 1.0
    off = bend + (math.copysign(max(0.0, length - d) * 0.5, bend or 1.0) if length is not None else 0.0)
    jx, jy = mx - dy / d * off, my + dx / d * off
    tile.capsule(root, (jx, jy), r, upper)
    tile.capsule((jx, jy), end, r, lower)


def _shade(c: tuple[int, int, int], k: float) -> np.ndarray:
    return np.clip(np.asarray(c, np.float32) * k, 0, 255)


def _head(tile: _Tile, st: CharacterStyle, cx: float, hy: float, facing: int) -> None:
    """Head with hair and face. ``facing``: 0 front, -1 left, +1 right."""
    r = st.head_r
    if st.hair_style == 1:  # long hair falls behind the head
        if facing == 0:
            tile.box(cx - r + 1, hy, cx + r - 1, hy + r + 5, 1.5, st.hair)
        else:
            tile.box(cx - facing * (r - 2), hy, cx - facing * 1, hy + r + 6, 1.5, st.hair)
    tile.disc((cx, hy), r, st.skin)
    cap = np.hypot(_XX - cx, _YY - hy) < r + 1.0
    if facing == 0:
        cap &= _YY < hy - r * 0.25
    else:  # the hair covers the top and the back of the head
        cap &= (_YY < hy - r * 0.3) | ((_XX - cx) * facing < -r * 0.2)
    if st.hair_style == 2:  # hat: crown and brim instead of a hair cap
        tile.box(cx - r + 2, hy - r - 4, cx + r - 2, hy - r + 1, 0.5, st.hair)
        tile.box(cx - r - 2 + facing * 2, hy - r + 1, cx + r + 2 + facing * 2, hy - r + 2, 0.5, st.hair)
    else:
        tile.rgb[cap] = st.hair
        tile.alpha |= cap
        if st.hair_style == 3:  # bun on top
            tile.disc((cx - facing * 2, hy - r - 1.5), 2.5, st.hair)
    eye = (20, 20, 30)
    if facing == 0:
        tile.pixel(cx - 3, hy + 0.5, eye)
        tile.pixel(cx + 2, hy + 0.5, eye)
        tile.pixel(cx - 0.5, hy + 3.5, tuple(int(v) for v in _shade(st.skin, 0.6)))
    else:
        tile.pixel(cx + facing * (r - 2.5), hy + 0.5, eye)
        tile.pixel(cx + facing * (r + 0.2), hy + 2.0, tuple(int(v) for v in _shade(st.skin, 0.8)))


def _sword(tile: _Tile, st: CharacterStyle, hand: tuple[float, float], angle: float) -> None:
    """A sword held at ``hand`` pointing along ``angle`` (radians, image coordinates, 0 = +x, y down)."""
    ux, uy = math.cos(angle), math.sin(angle)
    tip = (hand[0] + ux * 17, hand[1] + uy * 17)
    tile.capsule((hand[0] + ux * 2, hand[1] + uy * 2), tip, 1.0, st.blade)
    tile.capsule((hand[0] - uy * 3 + ux * 2, hand[1] + ux * 3 + uy * 2),
                 (hand[0] + uy * 3 + ux * 2, hand[1] - ux * 3 + uy * 2), 0.8, (150, 110, 40))


def _draw(st: CharacterStyle, anim: int, k: int) -> _Tile:
    """Draw frame ``k`` (0..7) of animation ``anim`` (local action id 0..8)."""
    action, direction = divmod(anim, 3)
    facing = (0, -1, 1)[direction]
    phase = 2 * math.pi * k / LOOP
    t = _Tile()
    cx = 32.0
    bob = -1.0 if action == 0 and k % 4 in (1, 2) else 0.0
    lean = 0.0
    if action == 2:
        lean = (0.0, 0.0, 1.0, 2.0, 3.0, 3.0, 2.0, 0.0)[k] * (facing if facing else 0.0)
    hip_y = GROUND - st.leg_len + bob
    sh_y = hip_y - 13.0
    head_y = sh_y - 2.0 - st.head_r
    tw = st.torso_half if facing == 0 else st.torso_half - 3.0
    limb_r = 2.0
    skin, shirt, pants = st.skin, st.shirt, st.pants
    far_k = 0.75  # the far limbs are darker

    # ---- legs: feet positions per action
    if facing == 0:
        hips = [(cx - 3.0, hip_y + 2), (cx + 3.0, hip_y + 2)]
        if action == 0:
            lifts = [4.0 * max(0.0, math.sin(phase)), 4.0 * max(0.0, -math.sin(phase))]
            feet = [(cx - 4.0, GROUND - lifts[0]), (cx + 4.0, GROUND - lifts[1])]
        elif action == 1:
            feet = [(cx - 6.0, GROUND), (cx + 6.0, GROUND)]
        else:
            feet = [(cx - 7.0, GROUND), (cx + 6.0, GROUND - (1.0 if k in (3, 4, 5) else 0.0))]
        for (hx, hy), foot, sgn in zip(hips, feet, (-1, 1)):
            _limb(t, (hx, hy), foot, 0.0, st.leg_len - 1, limb_r + 0.5, pants, pants)
            t.box(foot[0] - 1.5, foot[1] - 1.0, foot[0] + 1.5, foot[1] - 0.5, 1.0, st.shoes)
    else:
        hip = (cx + lean * 0.5, hip_y + 2)
        if action == 0:
            swing = 7.0 * math.sin(phase)
            near = (cx + facing * swing, GROUND - 3.0 * max(0.0, math.cos(phase)))
            far = (cx - facing * swing, GROUND - 3.0 * max(0.0, -math.cos(phase)))
        elif action == 1:
            near, far = (cx + facing * 4.0, GROUND), (cx - facing * 4.0, GROUND)
        else:
            step = (0.0, 1.0, 3.0, 6.0, 8.0, 8.0, 6.0, 1.0)[k]
            near, far = (cx + facing * (2.0 + step), GROUND), (cx - facing * 6.0, GROUND)
        for foot, kk in ((far, far_k), (near, 1.0)):
            _limb(t, hip, foot, -facing * 1.5, st.leg_len - 1, limb_r + 0.5, _shade(pants, kk), _shade(pants, kk))
            t.box(min(foot[0], foot[0] + facing * 3.0), foot[1] - 1.0, max(foot[0], foot[0] + facing * 3.0),
                  foot[1] - 0.5, 1.0, _shade(st.shoes, kk))

    # ---- arms: hand positions per action (drawn far arm first, torso, head, near arm last)
    sh = [(cx - tw - 0.5 + lean, sh_y + 2.5), (cx + tw + 0.5 + lean, sh_y + 2.5)] if facing == 0 else \
        [(cx + lean - facing * 1.0, sh_y + 2.5), (cx + lean + facing * 1.0, sh_y + 2.5)]  # (far, near) in profile
    hand_y = sh_y + st.arm_len
    orb: tuple[float, float, float] | None = None
    sword: tuple[int, float] | None = None  # (arm index, angle)
    if action == 0:
        if facing == 0:
            hands = [(cx - tw - 2.5, hand_y - 3.0 * max(0.0, -math.sin(phase))),
                     (cx + tw + 2.5, hand_y - 3.0 * max(0.0, math.sin(phase)))]
        else:
            sw = 6.0 * math.sin(phase)
            hands = [(cx + facing * sw, hand_y - abs(sw) * 0.3), (cx - facing * sw, hand_y - abs(sw) * 0.3)]
    elif action == 1:
        lift = (0.25, 0.45, 0.65, 0.85, 1.0, 1.0, 0.9, 1.0)[k]
        orb_r = (2.0, 2.5, 3.0, 3.5, 4.5, 5.0, 4.0, 5.0)[k]
        if facing == 0:
            top = head_y - st.head_r - 4.0
            hands = [(cx - tw - 3.0 + (tw - 1.0) * lift, hand_y + (top - hand_y) * lift),
                     (cx + tw + 3.0 - (tw - 1.0) * lift, hand_y + (top - hand_y) * lift)]
            orb = (cx, top - 3.5, orb_r)
        else:
            reach = 5.0 + 9.0 * lift
            hy = sh_y + 8.0 - 12.0 * lift
            hands = [(cx + facing * (reach - 2.0), hy - 1.5), (cx + facing * reach, hy)]
            orb = (cx + facing * (reach + 3.0 + orb_r), hy - 1.0, orb_r)
    else:
        # swing angle of the sword arm, from behind the head (wind-up) to forward-down (strike) and back
        deg = (-150.0, -125.0, -85.0, -40.0, 10.0, 40.0, 10.0, -150.0)[k]
        if facing == 0:
            ang = math.radians(deg)  # arm at the viewer's right swings across the body to the left
            s0 = sh[1]
            hands = [(cx - tw - 2.5, hand_y), (s0[0] - math.cos(ang) * (st.arm_len - 1),
                                               s0[1] + math.sin(ang + math.pi / 2) * (st.arm_len - 1))]
            sword = (1, math.atan2(hands[1][1] - s0[1], hands[1][0] - s0[0]))
        else:
            ang = math.radians(deg)
            s0 = sh[1]
            dx, dy = math.cos(ang), math.sin(ang)
            hands = [(cx + lean - facing * 3.0, hand_y - 1.0),
                     (s0[0] + facing * dx * (st.arm_len - 1), s0[1] + dy * (st.arm_len - 1))]
            sword = (1, math.atan2(dy, facing * dx))

    def arm(i: int, kk: float) -> None:
        bend = (1.0 if i == 0 else -1.0) if facing == 0 else 1.5 * facing  # elbows out / back
        _limb(t, sh[i], hands[i], bend, st.arm_len if action == 1 else None, limb_r, _shade(shirt, kk),
              _shade(skin, kk))
        t.disc(hands[i], 1.8, _shade(skin, kk))

    if facing != 0:
        if sword is not None and sword[0] == 0:
            _sword(t, st, hands[0], sword[1])
        arm(0, far_k)
    # torso: shirt over pants
    t.box(cx - tw + 2.5 + lean * 0.5, hip_y - 2.0, cx + tw - 2.5 + lean * 0.5, hip_y + 2.5, 2.5, pants)
    t.box(cx - tw + 2.5 + lean, sh_y + 2.0, cx + tw - 2.5 + lean, hip_y - 1.0, 2.5, shirt)
    t.box(cx - tw + 2.0 + lean * 0.5, hip_y - 1.0, cx + tw - 2.0 + lean * 0.5, hip_y - 0.5, 0.5,
          _shade(shirt, 0.5), outline=False)  # belt
    _head(t, st, cx + lean, head_y, facing)
    if facing == 0:
        arm(0, 1.0)
    if sword is not None and (facing == 0 or sword[0] == 1):
        _sword(t, st, hands[sword[0]], sword[1])
    arm(1, 1.0)
    if orb is not None:
        glow = np.clip(np.asarray(st.magic, np.float32) * 0.6 + 110, 0, 255)
        t.disc((orb[0], orb[1]), orb[2] + 1.0, st.magic, outline=False)
        t.disc((orb[0], orb[1]), max(orb[2] - 1.5, 1.0), glow, outline=False)
    return t


def draw_character(identity: int) -> tuple[np.ndarray, np.ndarray]:
    """All 9 x 8 frames of procedural character ``identity``.

    Returns ``rgb`` (9, 8, 64, 64, 3) uint8 (0 outside the figure) and ``alpha`` (9, 8, 64, 64) bool.
    """
    st = character_style(identity)
    rgb = np.zeros((NUM_ANIMATIONS, LOOP, TILE, TILE, 3), np.uint8)
    alpha = np.zeros((NUM_ANIMATIONS, LOOP, TILE, TILE), bool)
    for a in range(NUM_ANIMATIONS):
        for k in range(LOOP):
            tile = _draw(st, a, k)
            alpha[a, k] = tile.alpha
            rgb[a, k] = np.where(tile.alpha[..., None], np.clip(np.rint(tile.rgb), 0, 255), 0).astype(np.uint8)
    return rgb, alpha


def _fractal_noise(rng: np.random.Generator, h: int, w: int, octaves: int = 5, base: int = 4) -> np.ndarray:
    """Smooth value noise in [0, 1]: (h, w) float32, a sum of bicubic-upsampled random grids."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = base * 2**o
        grid = rng.random((n, n), dtype=np.float32)
        up = np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.BICUBIC), np.float32)
        out += amp * up
        total += amp
        amp *= 0.5
    out /= total
    return (out - out.min()) / max(float(out.max() - out.min()), 1e-6)


def _ridge(rng: np.random.Generator, w: int, base: float, amp: float, octaves: int = 4) -> np.ndarray:
    """A 1-D skyline y(x) around ``base`` with fractal wiggles of size ``amp``: (w,)."""
    x = np.zeros(w, np.float64)
    a = 1.0
    for o in range(octaves):
        n = 3 * 2**o + 1
        knots = rng.uniform(-1, 1, n)
        x += a * np.interp(np.linspace(0, n - 1, w), np.arange(n), knots)
        a *= 0.5
    return base + amp * x / 1.875


def background_image(size: int = 256, seed: int = BACKGROUND_SEED) -> np.ndarray:
    """A fixed procedural landscape (sky, clouds, mountains, hills with trees, meadow): (size, size, 3) uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    v = yy / size
    img = np.empty((size, size, 3), np.float32)
    # sky gradient and clouds
    sky_top, sky_low = np.array([70, 130, 210], np.float32), np.array([190, 220, 245], np.float32)
    img[:] = sky_top + (sky_low - sky_top) * np.clip(v / 0.45, 0, 1)[..., None]
    clouds = _fractal_noise(rng, size, size, octaves=5, base=3)
    cl = np.clip((clouds - 0.55) * 4.0, 0, 1) * (v < 0.4)
    img += (np.array([250, 250, 252], np.float32) - img) * cl[..., None]
    # far mountains with snow caps
    m = _ridge(rng, size, 0.36 * size, 0.12 * size)
    tex = _fractal_noise(rng, size, size, octaves=5, base=8)
    mountain = yy > m[None, :]
    mcol = np.array([110, 115, 150], np.float32)[None, None] * (0.8 + 0.35 * tex[..., None])
    img = np.where(mountain[..., None], mcol, img)
    snow = mountain & (yy < m[None, :] + 6 + 8 * tex) & (m[None, :] < 0.33 * size)
    img[snow] = np.array([235, 238, 245], np.float32)
    # green hills
    hl = _ridge(rng, size, 0.52 * size, 0.07 * size)
    hill = yy > hl[None, :]
    hcol = np.array([70, 140, 60], np.float32)[None, None] * (0.7 + 0.5 * tex[..., None])
    img = np.where(hill[..., None], hcol, img)
    # meadow with grass texture and a winding path
    grass_t = _fractal_noise(rng, size, size, octaves=6, base=16)
    meadow = yy > 0.66 * size + 4 * np.sin(xx / 23.0)
    gcol = np.array([95, 170, 65], np.float32)[None, None] * (0.65 + 0.6 * grass_t[..., None])
    img = np.where(meadow[..., None], gcol, img)
    path_x = size * 0.5 + 40 * np.sin(yy / 37.0) + (yy - 0.66 * size) * 0.6
    path = meadow & (np.abs(xx - path_x) < 4 + (yy - 0.66 * size) * 0.18)
    img[path] = (np.array([175, 145, 100], np.float32)[None] * (0.8 + 0.4 * grass_t[path][:, None]))
    # trees on the hills, flowers and stones in the meadow
    for _ in range(14):
        tx = rng.uniform(0, size)
        ty = float(np.interp(tx, np.arange(size), hl)) + rng.uniform(2, 18)
        r = rng.uniform(5, 10)
        trunk = (np.abs(xx - tx) < 1.5) & (yy > ty) & (yy < ty + r + 4)
        img[trunk] = (90, 60, 35)
        crown = np.hypot(xx - tx, yy - ty) < r
        img[crown] = np.array([30, 95, 40], np.float32) * (0.7 + 0.6 * tex[crown][:, None])
    for _ in range(120):
        fx, fy = rng.uniform(0, size), rng.uniform(0.68 * size, size)
        col = [(240, 230, 80), (230, 90, 120), (250, 250, 250), (150, 120, 230)][rng.integers(4)]
        img[(np.hypot(xx - fx, yy - fy) < rng.uniform(1.0, 2.0))] = col
    for _ in range(10):
        sx, sy = rng.uniform(0, size), rng.uniform(0.72 * size, size)
        stone = ((xx - sx) / rng.uniform(4, 8)) ** 2 + ((yy - sy) / rng.uniform(2, 4)) ** 2 < 1
        img[stone] = np.array([140, 140, 135], np.float32) * (0.8 + 0.3 * tex[stone][:, None])
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
