"""Recording the viewer (or any frames) to mp4 or GIF: :class:`Recorder`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .play_config import PlayError


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
