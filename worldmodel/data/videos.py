"""``glassworld data videos``: import video files and CADDY/GLASS frame folders into a dataset folder.

::

    glassworld data videos --in DIR --out DIR --size HxW --fps F [--seed S] [--crop center|none]

**What is imported.** The input root and its *immediate* subfolders are searched, no deeper (as CADDY's
``convert_video_directory`` does). Hidden files and folders (name starting with ``.``) are ignored.

* *Video files*: every file whose extension is in :data:`VIDEO_EXTENSIONS` (mp4, avi, mkv, webm, mov, gif,
  mpg, ...), decoded with PyAV. Files with other extensions are ignored (counted in the log).
* *Frame folders* in the CADDY/GLASS layout (``method.md`` 10.1): a folder holding ``00000.<ext>``,
  ``00001.<ext>``, ... (5-digit, 0-based, image extension from ``00000.*``), optionally with ``actions.pkl``,
  ``rewards.pkl``, ``dones.pkl``, ``metadata.pkl``, ``glactions.pkl`` and a ``masks/`` subfolder. Such a folder
  is found as ``root/<video>/`` or ``root/{train,val,test}/<video>/`` (the "splitted" style), or is ``root``
  itself. Frames are read from 00000 up to the first missing number.

**Identity, names and splits.** A video's identity is its path relative to the input root (``clips/a.mp4``,
``train/sprite_000001_video_000``); its file name in ``videos/`` is the identity made file-safe plus 8 hex
digits of its hash, so names never collide and do not depend on what else is in the folder. Anything inside
a folder named ``train``, ``val`` or ``test`` keeps that split; everything else is split deterministically by
:func:`~.format.split_by_hash` of its identity with ``--seed``.

**Time.** Video files are resampled to ``--fps`` F by picking, for each output time k/F (k = 0, 1, ...,
measured from the first frame), the decoded frame whose presentation time (``pts * time_base``) is nearest
(ties go to the earlier frame), for every k/F before the end of the last frame. Frames are duplicated when F
is above the source rate and dropped when below. Frames with a missing or non-increasing timestamp are placed
one nominal frame interval (ffmpeg's guessed rate of the stream, else its average rate, else 25 fps) after
the previous frame, so streams without reliable timing (raw .h264 has no timestamps) still import. Only the
first video stream is read; rotation metadata (phone videos) is not applied. Frame folders carry no timing:
they are imported frame for frame and ``--fps`` is recorded as their rate.

**Space.** ``--crop center`` (default) resizes preserving the aspect ratio and centre-crops to HxW (one PIL
bicubic resize of the centred crop box); ``--crop none`` resizes to HxW without cropping (CADDY). Transparent
pixels are flattened onto white (CADDY). Masks are binarized (> 0) first, resized bilinearly and thresholded
at 1/2.

**Ground truth from frame folders.** ``glactions.pkl`` (W-Sprites: ``global``, ``local``, ``shifts``,
``bg_shifts``) is preferred over ``actions.pkl`` (as GLASS does). When the frames are 128x96 (W-Sprites), the
walk-range shifts are converted to pixels of content motion (method.md 7.4: foreground (32 sx, 16 sy),
background (-6.25 bx, -4.6875 by)) and scaled to the output size, giving ``shift`` and ``bg_shift``;
``global`` -> ``action``, ``local`` -> ``local``. Otherwise ``action``, ``reward`` and ``done`` are stored
raw, index t = entry t of the source list (the source's own convention is kept). A list that is all None is
not stored (CADDY would fill in defaults, which are not ground truth); a list mixing None and values, with
the wrong length, or with non-scalar entries is dropped with one warning. ``metadata.pkl`` is not imported.
``masks/`` -> ``mask``.

**Pickles.** ``*.pkl`` files are read with a restricted unpickler that only builds plain Python containers and
numbers (plus numpy scalars/arrays); any other object in the file is refused, so a pickle cannot run code.
Only pickles inside the folder you pass with ``--in`` are read.

**Bad input and resuming.** A file that is empty, corrupt, not a video, has no video stream, decodes to zero
frames or cannot be read is named in one warning line and skipped; the command fails only when no video at
all ends up in the dataset, and says why. Each video is written atomically by
:class:`~.format.DatasetWriter`, so a killed run leaves only complete videos, and running the same command
again skips them and continues.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import pickle
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from .format import SPLITS, DatasetError, DatasetWriter, parse_size, read_video_meta, split_by_hash, validate_size

logger = logging.getLogger(__name__)

SOURCE = "videos"
# Extensions tried as video files (lower case, no dot). PyAV/ffmpeg read many more containers; these are the
# ones found in practice. Other files are ignored, so stray notes or images never count as bad videos.
VIDEO_EXTENSIONS = frozenset({
    "mp4", "m4v", "mov", "qt", "avi", "mkv", "webm", "gif", "apng", "mpg", "mpeg", "m2v", "ts", "mts", "m2ts",
    "flv", "f4v", "wmv", "asf", "ogv", "ogg", "3gp", "3g2", "vob", "mxf", "dv", "y4m", "nut", "h264", "264",
    "hevc", "h265", "ivf", "mjpeg", "mjpg", "rm", "rmvb",
})
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff", "ppm", "pgm"})
DEFAULT_SOURCE_FPS = 25  # used when a stream declares no usable frame rate
CROP_MODES = ("center", "none")
_FRAME_RE = re.compile(r"^(\d{5})\.([A-Za-z0-9]+)$")
# W-Sprites (method.md 7.4): frames are 128x96; walk-range shift units -> content motion in frame pixels.
WSPRITES_HW = (96, 128)
WSPRITES_FG_PX = (32.0, 16.0)
WSPRITES_BG_PX = (-6.25, -4.6875)


@dataclass
class VideosConfig:
    """Arguments of ``glassworld data videos`` (validated by :meth:`validate`)."""

    src: Path  # input root (searched with its immediate subfolders)
    out: Path  # dataset folder to create or resume
    height: int  # output H
    width: int  # output W
    fps: float  # output frame rate of video files (frame folders are taken frame for frame)
    seed: int = 0  # seed of the hash split
    crop: str = "center"  # "center": aspect-preserving resize + centre crop; "none": plain resize (CADDY)
    progress: bool | None = None  # tqdm bar: None = only on a terminal

    def validate(self) -> VideosConfig:
        """Check every argument, raising one :class:`DatasetError` that names the fix."""
        self.src, self.out = Path(self.src), Path(self.out)
        validate_size((self.height, self.width), "--size")
        if not isinstance(self.fps, (int, float)) or not math.isfinite(self.fps) or self.fps <= 0:
            raise DatasetError(f"--fps must be a positive number of frames per second (e.g. 10), got {self.fps}")
        if self.crop not in CROP_MODES:
            raise DatasetError(f"--crop must be one of {CROP_MODES}, got {self.crop!r}")
        if not self.src.exists():
            raise DatasetError(f"--in {self.src} does not exist; pass the folder that holds your videos")
        if not self.src.is_dir():
            raise DatasetError(f"--in {self.src} is a file; pass the folder that holds it (--in {self.src.parent})")
        if self.out.exists() and not self.out.is_dir():
            raise DatasetError(f"--out {self.out} is a file; pass a folder for the dataset")
        return self


@dataclass(frozen=True)
class VideoInput:
    """One thing to import: a video file or a frame folder."""

    path: Path
    identity: str  # path relative to the input root, '/'-separated
    kind: str  # "file" | "frames"
    split: str | None  # split fixed by a train/val/test folder, or None for the hash split

    @property
    def name(self) -> str:
        return output_name(self.identity)


@dataclass
class ImportSummary:
    """What :func:`convert` did."""

    found: int = 0  # inputs found
    written: int = 0  # videos written by this run
    present: int = 0  # videos already complete from an earlier run (skipped)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (identity, reason) of bad inputs
    frames_out: int = 0  # frames written by this run
    frames_decoded: int = 0  # source frames decoded by this run
    seconds: float = 0.0
    manifest: dict[str, Any] | None = None


class BadInput(Exception):
    """An input that cannot be imported; the message is a one-line reason."""


# ---------------------------------------------------------------------------------------------------------
# Finding inputs


def output_name(identity: str) -> str:
    """File-safe, collision-free video name for an identity, e.g. ``clips/a b.mp4`` -> ``clips__a_b_mp4-1f2e3d4c``."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", identity.replace("/", "__")).strip("_")[:80] or "video"
    return f"{safe}-{hashlib.sha1(identity.encode()).hexdigest()[:8]}"


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def frame_files(folder: Path) -> list[Path]:
    """The frames ``00000.<ext>, 00001.<ext>, ...`` of a frame folder (contiguous from 0), or [] if none."""
    first = [p for p in folder.glob("00000.*") if p.suffix[1:].lower() in IMAGE_EXTENSIONS and p.is_file()]
    if not first:
        return []
    ext = sorted(first)[0].suffix
    frames = []
    while (p := folder / f"{len(frames):05d}{ext}").is_file():
        frames.append(p)
    return frames


def find_inputs(root: Path) -> tuple[list[VideoInput], int]:
    """Video files and frame folders in ``root`` and its immediate subfolders, sorted by identity.

    Returns (inputs, number of ignored files with a non-video extension).
    """
    root = Path(root)
    inputs: list[VideoInput] = []
    ignored = 0

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    def scan(folder: Path, split: str | None, depth: int) -> None:
        nonlocal ignored
        try:
            entries = sorted(e for e in folder.iterdir() if _visible(e))
        except OSError as e:
            logger.warning("skipping folder %s: cannot list it (%s)", folder, _one_line(e))
            return
        for e in entries:
            if e.is_dir():
                fixed = split
                if depth == 0 and e.name in SPLITS:
                    fixed = e.name
                if frame_files(e):
                    inputs.append(VideoInput(e, rel(e), "frames", fixed))
                elif depth == 0:
                    scan(e, fixed, 1)
            elif e.is_file() or e.is_symlink():
                if e.suffix[1:].lower() in VIDEO_EXTENSIONS:
                    inputs.append(VideoInput(e, rel(e), "file", split))
                elif depth > 0 or not _FRAME_RE.match(e.name):
                    ignored += 1

    if frame_files(root):  # --in points at one frame folder itself (its masks/ is not another video)
        return [VideoInput(root, root.resolve().name or "video", "frames", None)], 0
    scan(root, None, 0)
    inputs.sort(key=lambda i: i.identity)
    return inputs, ignored


# ---------------------------------------------------------------------------------------------------------
# Time resampling

P = TypeVar("P")


def resample_nearest(items: Iterable[tuple[Fraction, P]], fps: Fraction | float, default_duration: Fraction,
                     last_duration: Callable[[], Fraction | None] | None = None) -> Iterator[P]:
    """Yield, for each output time k/fps (k = 0, 1, ...), the payload of the input whose time is nearest.

    ``items``: (time in seconds, payload) in presentation order, times non-decreasing. Times are taken
    relative to the first item. Output times run while k/fps < end, where end = last time + the last
    frame's duration: ``last_duration()`` (called once the items are exhausted, so a decoder can report the
    last frame's own duration) when it gives a positive value, else the last interval between two inputs,
    else ``default_duration``. Ties go to the earlier input. Streaming: holds only the previous item.
    """
    step = 1 / Fraction(str(fps) if isinstance(fps, float) else fps)
    k = 0
    t0: Fraction | None = None
    prev: tuple[Fraction, P] | None = None
    last_interval: Fraction | None = None
    for t_abs, payload in items:
        if t0 is None:
            t0 = t_abs
        t = t_abs - t0
        if prev is not None:
            t_p, p_p = prev
            while k * step < t:  # invariant: k * step >= t_p
                tau = k * step
                yield p_p if tau - t_p <= t - tau else payload
                k += 1
            last_interval = t - t_p if t > t_p else last_interval
        prev = (t, payload)
    if prev is None:
        return
    own = last_duration() if last_duration is not None else None
    dur = own if own is not None and own > 0 else (last_interval or default_duration)
    end = prev[0] + dur
    while k * step < end:
        yield prev[1]
        k += 1


# ---------------------------------------------------------------------------------------------------------
# Space: resize / crop


def crop_box(src_h: int, src_w: int, height: int, width: int, crop: str) -> tuple[tuple[float, float, float, float],
                                                                                  float, float]:
    """Source box (left, upper, right, lower) that maps onto the HxW output, and the x/y scale factors."""
    if crop == "none":
        return (0.0, 0.0, float(src_w), float(src_h)), width / src_w, height / src_h
    if src_w * height > width * src_h:  # source wider than the target: crop left and right
        cw = src_h * width / height
        x0 = (src_w - cw) / 2
        return (x0, 0.0, x0 + cw, float(src_h)), height / src_h, height / src_h
    ch = src_w * height / width  # source taller (or same aspect): crop top and bottom
    y0 = (src_h - ch) / 2
    return (0.0, y0, float(src_w), y0 + ch), width / src_w, width / src_w


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB image; transparent pixels are flattened onto white (as CADDY does)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def resize_image(img: Image.Image, height: int, width: int, crop: str,
                 resample: int = Image.Resampling.BICUBIC) -> np.ndarray:
    """Resize (and centre-crop) a PIL image to an (H, W[, C]) uint8 array."""
    box, _, _ = crop_box(img.height, img.width, height, width, crop)
    if (img.height, img.width) == (height, width):
        return np.asarray(img)  # box is the whole image: nothing to do
    # reducing_gap: a fast integer-factor box reduction first when shrinking >= 3x (visually identical)
    return np.asarray(img.resize((width, height), resample, box=box, reducing_gap=3.0))


def resize_mask(mask: np.ndarray, height: int, width: int, crop: str) -> np.ndarray:
    """(h, w) anything -> (H, W) uint8 in {0, 1}: binarize (> 0), resize bilinearly, threshold at 1/2."""
    m = (np.asarray(mask) > 0).astype(np.uint8) * 255
    if m.shape == (height, width):
        return (m > 0).astype(np.uint8)
    r = resize_image(Image.fromarray(m, "L"), height, width, crop, Image.Resampling.BILINEAR)
    return (r >= 128).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------
# Video files (PyAV)


def _one_line(e: BaseException | str) -> str:
    """An exception (or text) as one line; ffmpeg errors by their message, without errno and file name."""
    strerror = getattr(e, "strerror", None)
    text = " ".join(str(strerror if isinstance(strerror, str) and strerror else e).split())
    return text if text else type(e).__name__ if isinstance(e, BaseException) else "unknown error"


def _frame_to_image(frame: Any, reformatter: Any) -> Image.Image:
    """A decoded ``av.VideoFrame`` as an RGB PIL image (alpha flattened onto white).

    ``reformatter`` is one ``VideoReformatter`` per video: it keeps its swscale context between frames, which
    makes this ~3x (small frames) to ~15x (720p) faster than ``frame.to_image()``.
    """
    if any(c.is_alpha for c in frame.format.components):
        rgba = reformatter.reformat(frame, format="rgba").to_ndarray()  # (h, w, 4)
        return to_rgb(Image.fromarray(rgba, "RGBA"))
    return Image.fromarray(reformatter.reformat(frame, format="rgb24").to_ndarray(), "RGB")  # (h, w, 3)


def decode_video_file(path: Path, cfg: VideosConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode, resample to ``cfg.fps`` and resize one video file.

    Returns frames (T, H, W, 3) uint8 and info about the source. Raises :class:`BadInput` with a one-line
    reason for anything that is not a decodable video.
    """
    import av  # imported here: only this source needs PyAV
    from av.video.reformatter import VideoReformatter

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise BadInput(f"cannot read it ({_one_line(e)})") from None
    if size == 0:
        raise BadInput("empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise BadInput("cannot read it (permission denied)")
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.FFmpegError as e:
        raise BadInput(f"not a readable video ({_one_line(e)})") from None
    except OSError as e:
        raise BadInput(f"cannot read it ({_one_line(e)})") from None
    except Exception as e:  # noqa: BLE001 - whatever ffmpeg/PyAV trips over, it is this file's problem
        raise BadInput(f"not a readable video ({type(e).__name__}: {_one_line(e)})") from None
    out: list[np.ndarray] = []
    decoded = 0
    with container:
        if not container.streams.video:
            raise BadInput("no video stream (audio-only, truncated, or not a video file)")
        stream = container.streams.video[0]
        # ffmpeg's own guess first: for raw streams without timestamps (.h264) the average rate is a made-up 25
        rate = stream.guessed_rate or stream.average_rate or stream.base_rate
        nominal = Fraction(rate) if rate and rate > 0 else Fraction(DEFAULT_SOURCE_FPS)
        nominal_dt = 1 / nominal
        last_frame_duration: list[Fraction | None] = [None]
        src_size: list[int] = []

        def timed() -> Iterator[tuple[Fraction, Any]]:
            nonlocal decoded
            last: Fraction | None = None
            for frame in container.decode(stream):
                decoded += 1
                tb = frame.time_base or stream.time_base
                t = Fraction(frame.pts) * Fraction(tb) if frame.pts is not None and tb else None
                if t is None or (last is not None and t <= last):
                    t = last + nominal_dt if last is not None else Fraction(0)
                last = t
                dur = getattr(frame, "duration", None)
                last_frame_duration[0] = Fraction(dur) * Fraction(tb) if dur and tb else None
                if not src_size:
                    src_size.extend((frame.height, frame.width))
                yield t, frame

        reformatter = VideoReformatter()
        try:
            cache: tuple[Any, np.ndarray] | None = None
            for frame in resample_nearest(timed(), cfg.fps, nominal_dt, lambda: last_frame_duration[0]):
                if cache is None or cache[0] is not frame:  # duplicates (fps up-sampling) reuse the array
                    image = _frame_to_image(frame, reformatter)
                    cache = (frame, resize_image(image, cfg.height, cfg.width, cfg.crop))
                out.append(cache[1])
        except av.FFmpegError as e:
            raise BadInput(f"decoding failed after {decoded} frames ({_one_line(e)})") from None
        except Exception as e:  # noqa: BLE001 - e.g. a decoder PyAV lacks, a frame swscale cannot convert
            raise BadInput(f"decoding failed after {decoded} frames ({type(e).__name__}: {_one_line(e)})") from None
        codec = stream.codec_context.name
    if not out:
        raise BadInput("no decodable video frames (zero-frame video)")
    info = {"kind": "file", "source_fps": float(nominal), "source_frames": decoded, "source_size": src_size,
            "codec": codec}
    return np.stack(out), info  # (T, H, W, 3)


# ---------------------------------------------------------------------------------------------------------
# Frame folders (CADDY / GLASS layout)

_SAFE_BUILTINS = frozenset({"set", "frozenset", "complex", "slice", "range", "bytearray"})
_SAFE_GLOBALS = frozenset({
    ("collections", "OrderedDict"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
})


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that builds plain containers, numbers, strings and numpy scalars/arrays, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS) or (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only plain lists/dicts/numbers are read)")


def safe_load_pickle(path: Path) -> Any:
    """Load a CADDY/GLASS ``*.pkl`` (also Python 2 pickles) without running code from the file."""
    with open(path, "rb") as f:
        return _SafeUnpickler(f, encoding="latin1").load()


def _per_frame(values: Any, t: int, what: str, where: str, dims: int) -> np.ndarray | None:
    """A per-frame list as a float64 array of shape (t,) (dims 0) or (t, dims); None (+ one warning) if unusable."""
    try:
        values = list(values)
    except TypeError:
        logger.warning("%s: ignoring %s: not a list", where, what)
        return None
    nones = sum(v is None for v in values)
    if nones == len(values):
        return None  # all None: no ground truth recorded (CADDY's default filler is not GT)
    if nones:
        logger.warning("%s: ignoring %s: it mixes None and values", where, what)
        return None
    if len(values) != t:
        logger.warning("%s: ignoring %s: %d entries for %d frames", where, what, len(values), t)
        return None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        logger.warning("%s: ignoring %s: entries are not numbers", where, what)
        return None
    expect = (t,) if dims == 0 else (t, dims)
    if arr.shape != expect:
        logger.warning("%s: ignoring %s: entries have shape %s, expected %s", where, what, arr.shape[1:],
                       expect[1:])
        return None
    return arr


def _load_pickle_or_warn(path: Path, where: str) -> Any:
    if not path.is_file():
        return None
    try:
        return safe_load_pickle(path)
    except Exception as e:  # noqa: BLE001 - a bad side file drops only that ground truth
        logger.warning("%s: ignoring %s: %s", where, path.name, _one_line(e))
        return None


def _open_image(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
        return img


def load_frame_folder(inp: VideoInput, cfg: VideosConfig) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                                   dict[str, Any]]:
    """Read one CADDY/GLASS frame folder: frames (T, H, W, 3) uint8, ground truth, info.

    Raises :class:`BadInput` when a frame cannot be read. Problems with side files (pickles, masks) drop that
    ground truth with one warning and keep the video.
    """
    folder, where = inp.path, inp.identity
    files = frame_files(folder)
    if not files:
        raise BadInput("no frames 00000.<ext> ... (empty frame folder)")
    frames: list[np.ndarray] = []
    src_hw: tuple[int, int] | None = None
    scale = (1.0, 1.0)
    for p in files:
        try:
            img = to_rgb(_open_image(p))
        except Exception as e:  # noqa: BLE001 - any unreadable frame makes the video unusable
            raise BadInput(f"frame {p.name} is unreadable ({_one_line(e)})") from None
        if src_hw is None:
            src_hw = (img.height, img.width)
            _, sx, sy = crop_box(img.height, img.width, cfg.height, cfg.width, cfg.crop)
            scale = (sx, sy)
        elif (img.height, img.width) != src_hw:
            raise BadInput(f"frame {p.name} is {img.width}x{img.height}, the first frame {src_hw[1]}x{src_hw[0]}")
        frames.append(resize_image(img, cfg.height, cfg.width, cfg.crop))
    t = len(frames)
    assert src_hw is not None
    gt: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"kind": "frames", "source_frames": t, "source_size": list(src_hw)}

    gl = _load_pickle_or_warn(folder / "glactions.pkl", where)
    if gl is not None and not isinstance(gl, dict):
        logger.warning("%s: ignoring glactions.pkl: expected a dict with global/local/shifts/bg_shifts", where)
        gl = None
    if gl is not None:
        for key, out_key in (("global", "action"), ("local", "local")):
            if key in gl and (arr := _per_frame(gl[key], t, f"glactions[{key!r}]", where, 0)) is not None:
                gt[out_key] = arr.astype(np.int64)
        if src_hw == WSPRITES_HW:  # method.md 7.4: walk-range units -> content motion in source px -> output px
            for key, out_key, px in (("shifts", "shift", WSPRITES_FG_PX), ("bg_shifts", "bg_shift", WSPRITES_BG_PX)):
                if key in gl and (arr := _per_frame(gl[key], t, f"glactions[{key!r}]", where, 2)) is not None:
                    gt[out_key] = (arr * np.array(px) * np.array(scale)).astype(np.float32)  # (T, 2)
            info["wsprites"] = True
        elif "shifts" in gl or "bg_shifts" in gl:
            logger.info("%s: frames are not 128x96 W-Sprites; glactions shifts (unknown units) not imported", where)
    if "action" not in gt:
        acts = _load_pickle_or_warn(folder / "actions.pkl", where)
        if acts is not None and (arr := _per_frame(acts, t, "actions.pkl", where, 0)) is not None:
            gt["action"] = arr.astype(np.int64)
    rewards = _load_pickle_or_warn(folder / "rewards.pkl", where)
    if rewards is not None and (arr := _per_frame(rewards, t, "rewards.pkl", where, 0)) is not None:
        gt["reward"] = arr.astype(np.float32)
    dones = _load_pickle_or_warn(folder / "dones.pkl", where)
    if dones is not None and (arr := _per_frame(dones, t, "dones.pkl", where, 0)) is not None:
        gt["done"] = arr.astype(bool)

    mask_dir = folder / "masks"
    if mask_dir.is_dir():
        ext = files[0].suffix
        masks: list[np.ndarray] = []
        for i in range(t):
            mp = mask_dir / f"{i:05d}{ext}"
            try:
                m = np.asarray(_open_image(mp).convert("L"))
            except Exception as e:  # noqa: BLE001
                logger.warning("%s: ignoring masks/: %s is missing or unreadable (%s)", where, mp.name, _one_line(e))
                break
            if m.shape != src_hw:
                logger.warning("%s: ignoring masks/: %s is %dx%d, frames are %dx%d", where, mp.name, m.shape[1],
                               m.shape[0], src_hw[1], src_hw[0])
                break
            masks.append(resize_mask(m, cfg.height, cfg.width, cfg.crop))
        else:
            gt["mask"] = np.stack(masks)  # (T, H, W) uint8 in {0, 1}
    return np.stack(frames), gt, info  # frames (T, H, W, 3)


# ---------------------------------------------------------------------------------------------------------
# The import


def _check_resumable(writer: DatasetWriter, name: str, cfg: VideosConfig) -> None:
    """A video left by an earlier run must have been made with the same settings."""
    meta = read_video_meta(writer.path(name))
    old = (meta.get("fps"), meta.get("crop"), meta.get("height"), meta.get("width"))
    new = (float(cfg.fps), cfg.crop, cfg.height, cfg.width)
    if old != new:
        raise DatasetError(
            f"{cfg.out} already holds videos made with fps={old[0]} crop={old[1]} size={old[2]}x{old[3]}, not "
            f"fps={new[0]} crop={new[1]} size={new[2]}x{new[3]}; choose another --out folder (or delete it)"
        )


def convert(cfg: VideosConfig) -> ImportSummary:
    """Import every video under ``cfg.src`` into the dataset folder ``cfg.out`` (resuming an earlier run).

    Raises :class:`DatasetError` when the arguments are bad or when no video ends up in the dataset.
    """
    cfg.validate()
    start = time.perf_counter()
    inputs, ignored = find_inputs(cfg.src)
    exts = ", ".join(sorted({"mp4", "avi", "mkv", "webm", "mov", "gif"})) + ", ..."
    if not inputs:
        raise DatasetError(
            f"found no video files ({exts}) or frame folders (00000.png, ...) in {cfg.src} or its immediate "
            f"subfolders{f' ({ignored} other files ignored)' if ignored else ''}; point --in at the folder "
            "that holds them"
        )
    if ignored:
        logger.info("ignoring %d files without a video extension in %s", ignored, cfg.src)
    generator = {"in": str(cfg.src), "size": f"{cfg.height}x{cfg.width}", "fps": float(cfg.fps),
                 "seed": cfg.seed, "crop": cfg.crop}
    writer = DatasetWriter(cfg.out, source=SOURCE, height=cfg.height, width=cfg.width, fps=float(cfg.fps),
                           generator=generator, extra={"crop": cfg.crop})
    summary = ImportSummary(found=len(inputs))
    from tqdm.auto import tqdm

    disable = None if cfg.progress is None else not cfg.progress  # None: a bar only on a terminal
    bar = tqdm(inputs, desc="import", unit="video", disable=disable, dynamic_ncols=True)
    for inp in bar:
        name = inp.name
        if writer.has(name):
            _check_resumable(writer, name, cfg)
            summary.present += 1
            continue
        try:
            if inp.kind == "file":
                frames, info = decode_video_file(inp.path, cfg)
                gt: dict[str, np.ndarray] = {}
            else:
                frames, gt, info = load_frame_folder(inp, cfg)
        except BadInput as e:
            logger.warning("skipping %s: %s", inp.identity, e)
            summary.skipped.append((inp.identity, str(e)))
            continue
        split = inp.split or split_by_hash(inp.identity, seed=cfg.seed)
        info.update({"fps": float(cfg.fps), "crop": cfg.crop, "height": cfg.height, "width": cfg.width})
        writer.write(name, frames, split=split, identity=inp.identity, info=info, **gt)
        summary.written += 1
        summary.frames_out += len(frames)
        summary.frames_decoded += int(info["source_frames"])
        bar.set_postfix(frames=summary.frames_out, skipped=len(summary.skipped), refresh=False)
    bar.close()
    summary.seconds = time.perf_counter() - start
    if summary.written + summary.present == 0:
        raise DatasetError(
            f"no video converted: all {len(inputs)} inputs in {cfg.src} were unreadable (see the warnings "
            "above); check that they are video files or frame folders"
        )
    summary.manifest = writer.close()
    rate = summary.frames_decoded / summary.seconds if summary.seconds > 0 else float("nan")
    logger.info(
        "%s: wrote %d videos (%d frames, %.0f source frames/s), %d already present, %d skipped; dataset has %d "
        "videos / %d frames", cfg.out, summary.written, summary.frames_out, rate, summary.present,
        len(summary.skipped), summary.manifest["num_videos"], summary.manifest["num_frames"],
    )
    return summary


# ---------------------------------------------------------------------------------------------------------
# CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in", dest="src", required=True, metavar="DIR",
                        help="folder of video files and/or CADDY frame folders (searched with its immediate "
                             "subfolders; train/val/test subfolders keep their split)")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create (or resume)")
    parser.add_argument("--size", required=True, metavar="HxW", help="output frame size, e.g. 96x128")
    parser.add_argument("--fps", required=True, type=float, metavar="F",
                        help="output frame rate of video files (nearest-frame resampling)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the deterministic hash split (default 0)")
    parser.add_argument("--crop", choices=CROP_MODES, default="center",
                        help="center: keep the aspect ratio and centre-crop (default); none: plain resize")


def run(args: argparse.Namespace) -> int:
    height, width = parse_size(args.size)
    cfg = VideosConfig(src=Path(args.src), out=Path(args.out), height=height, width=width, fps=args.fps,
                       seed=args.seed, crop=args.crop)
    convert(cfg)
    return 0
