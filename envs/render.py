"""Rendering helpers: a pygame window (imported only when a window is opened) and frame tiling."""

from __future__ import annotations

import math

import numpy as np
from gymnasium.error import DependencyNotInstalled


def tile_frames(frames: np.ndarray, cols: int | None = None) -> np.ndarray:
    """Tile (N, H, W, 3) uint8 frames into one (rows*H, cols*W, 3) image (1 px dark gap between tiles)."""
    n, h, w, c = frames.shape
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, c), 32, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = frames[i]
    return out


class PygameWindow:
    """A window that shows uint8 (H, W, 3) frames scaled by an integer factor at a fixed frame rate.

    Headless use (tests, CI): set ``SDL_VIDEODRIVER=dummy`` before opening it.
    """

    def __init__(self, title: str, scale: int = 4, fps: int = 15) -> None:
        try:
            import pygame
        except ImportError as e:
            raise DependencyNotInstalled(
                'pygame is not installed; render_mode="human" needs it: pip install pygame'
            ) from e
        self.pygame = pygame
        pygame.display.init()
        pygame.display.set_caption(title)
        self.scale, self.fps = max(1, int(scale)), int(fps)
        self.clock = pygame.time.Clock()
        self.screen = None

    def show(self, frame: np.ndarray) -> None:
        """Draw one (H, W, 3) uint8 frame, pump events and wait for the frame rate."""
        pg = self.pygame
        h, w = frame.shape[:2]
        size = (w * self.scale, h * self.scale)
        if self.screen is None or self.screen.get_size() != size:
            self.screen = pg.display.set_mode(size)
        surf = pg.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))  # (W, H, 3)
        self.screen.blit(pg.transform.scale(surf, size), (0, 0))
        pg.event.pump()
        pg.display.flip()
        self.clock.tick(self.fps)

    def snapshot(self) -> np.ndarray | None:
        """What the window shows now, (H*scale, W*scale, 3) uint8, or None before the first frame."""
        if self.screen is None:
            return None
        return self.pygame.surfarray.array3d(self.screen).transpose(1, 0, 2).copy()

    def close(self) -> None:
        self.pygame.display.quit()
        self.screen = None
