"""Agent ground truth of ALE games from RAM, and its check against the agent's own pixels.

A game's agent position is a linear read-out of RAM bytes (:class:`LinearAgent`: one :class:`RamAxis` per screen
axis, a constant for an axis the agent never moves along). Each table entry in
:data:`worldmodel.data.atari.GAME_PRESETS` was found by locating the agent on screen by a colour only it has in a
region of the screen (:class:`AgentPixels`), and regressing the sprite's bounding-box centre on every RAM byte; it is
checked on fresh episodes by :func:`check_agent` (``tests/data/test_atari.py``, ``scripts/atari_ground_truth.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RamAxis:
    """One native screen coordinate read from RAM: ``c = scale * ram[byte] + offset``, or ``offset`` when ``byte``
    is None (an axis the agent never moves along). Where the sprite (``c +- half``) can slide under the edge of the
    area it is drawn in (pixel indices ``lo..hi``, e.g. a paddle behind a wall), the coordinate is the centre of its
    drawn part: ``(max(c - half, lo) + min(c + half, hi)) / 2``."""

    byte: int | None
    offset: float
    scale: float = 1.0
    half: float = 0.0  # half the sprite's extent along this axis (pixel index of last row minus first, halved)
    lo: float = -np.inf  # first pixel index where the sprite is drawn
    hi: float = np.inf  # last pixel index where the sprite is drawn

    def __call__(self, ram: np.ndarray) -> np.ndarray:
        """RAM (T, 128) -> coordinate (T,) float64."""
        if self.byte is None:
            return np.full(len(ram), self.offset, np.float64)
        c = self.scale * ram[:, self.byte].astype(np.float64) + self.offset
        if np.isfinite(self.lo) or np.isfinite(self.hi):
            c = (np.maximum(c - self.half, self.lo) + np.minimum(c + self.half, self.hi)) / 2
        return c

    @property
    def moves(self) -> bool:
        return self.byte is not None


@dataclass(frozen=True)
class LinearAgent:
    """Agent sprite centre ``(u, v)`` in native pixel-index coordinates from RAM, one :class:`RamAxis` per axis."""

    u: RamAxis
    v: RamAxis

    def __call__(self, ram: np.ndarray) -> np.ndarray:
        """RAM (T, 128) uint8 -> (T, 2) float64 native (u, v)."""
        return np.stack([self.u(ram), self.v(ram)], axis=-1)

    def ram_bytes(self) -> list[int]:
        return [a.byte for a in (self.u, self.v) if a.byte is not None]


@dataclass(frozen=True)
class AgentPixels:
    """How the agent looks on the native screen: a colour that, inside ``region`` and off ``skip_rows``, only the
    agent has; ``size`` = (W, H) of its whole sprite's bounding box in native pixels (the usual pose)."""

    colour: tuple[int, int, int]
    region: tuple[int, int, int, int]  # (top, bottom, left, right) native, bottom/right exclusive
    size: tuple[int, int]  # (W, H) native px
    skip_rows: tuple[int, ...] = ()  # native rows where something else has the colour (e.g. a road marking)

    def mask(self, frames: np.ndarray, crop: tuple[int, int, int, int]) -> np.ndarray:
        """Agent pixels of native-resolution cropped frames (T, h, w, 3) uint8 (``crop`` = their place on the
        210x160 screen) -> (T, h, w) bool."""
        top, _, left, _ = crop
        m = np.all(frames == np.asarray(self.colour, np.uint8), axis=-1)
        r0, r1, c0, c1 = self.region
        keep = np.zeros(m.shape[1:], bool)
        keep[max(r0 - top, 0):max(r1 - top, 0), max(c0 - left, 0):max(c1 - left, 0)] = True
        for r in self.skip_rows:
            if 0 <= r - top < keep.shape[0]:
                keep[r - top] = False
        return m & keep


def _span(any_along: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last True index along the last axis of (T, N) bool; (0, -1) where none."""
    n = any_along.shape[1]
    has = any_along.any(1)
    first = np.where(has, any_along.argmax(1), 0)
    last = np.where(has, n - 1 - any_along[:, ::-1].argmax(1), -1)
    return first, last


@dataclass
class AgentCheck:
    """RAM positions against the agent's pixels over T frames (native px). ``err_u``/``err_v``: signed error
    (bounding-box centre minus RAM position) on the frames whose box has the sprite's usual width/height (the whole
    sprite, not cut by an edge or merged with something else); ``inside``: share of frames showing the agent where
    the RAM position lies in the agent's bounding box (1 px margin)."""

    frames: int
    visible: int
    inside: float
    err_u: np.ndarray  # (Nu,) float
    err_v: np.ndarray  # (Nv,) float
    pos: np.ndarray  # (T, 2) native (u, v) from RAM

    def summary(self) -> dict[str, float]:
        """Median and 95th percentile of |error| per axis (NaN when no clean frame), frame counts, ``inside``."""
        out: dict[str, float] = {"frames": self.frames, "visible": self.visible, "inside": self.inside}
        for name, e in (("u", self.err_u), ("v", self.err_v)):
            a = np.abs(e)
            out[f"n_{name}"] = len(a)
            out[f"median_{name}"] = float(np.median(a)) if len(a) else float("nan")
            out[f"p95_{name}"] = float(np.percentile(a, 95)) if len(a) else float("nan")
        return out


def check_agent(frames: np.ndarray, ram: np.ndarray, agent: LinearAgent, pixels: AgentPixels,
                crop: tuple[int, int, int, int]) -> AgentCheck:
    """Compare ``agent(ram)`` with the agent's pixels in native-resolution cropped ``frames`` (T, h, w, 3) uint8
    (``ram`` (T, 128)); returns an :class:`AgentCheck` in native pixels."""
    top, _, left, _ = crop
    mask = pixels.mask(frames, crop)  # (T, h, w)
    cols, rows = mask.any(1), mask.any(2)  # (T, w), (T, h)
    visible = cols.any(1)
    x0, x1 = _span(cols)
    y0, y1 = _span(rows)
    u0, u1, v0, v1 = x0 + left, x1 + left, y0 + top, y1 + top  # native bounding box
    pos = agent(ram)
    inside = ((u0 - 1 <= pos[:, 0]) & (pos[:, 0] <= u1 + 1) & (v0 - 1 <= pos[:, 1]) & (pos[:, 1] <= v1 + 1))
    w, h = pixels.size
    clean_u = visible & (u1 - u0 + 1 == w)
    clean_v = visible & (v1 - v0 + 1 == h)
    err_u = ((u0 + u1) / 2 - pos[:, 0])[clean_u]
    err_v = ((v0 + v1) / 2 - pos[:, 1])[clean_v]
    n_vis = int(visible.sum())
    return AgentCheck(frames=len(frames), visible=n_vis, inside=float(inside[visible].mean()) if n_vis else 0.0,
                      err_u=err_u, err_v=err_v, pos=pos)
