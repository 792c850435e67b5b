"""glassworld's on-disk dataset format.

A dataset is a folder::

    DIR/
      manifest.json          # index: resolution, fps, source, generator arguments, splits, per-video info
      videos/<name>.npz      # one deflate-compressed ``.npz`` per video (``np.load`` reads it)

Each ``videos/<name>.npz`` holds

* ``frames``   (T, H, W, 3) uint8 RGB;
* ``meta``     a 0-d unicode array with a JSON object: ``{"split", "identity", "frames", ...}`` so the
  manifest can always be rebuilt from the video files alone (this is how interrupted runs resume);
* optional per-frame ground truth, index t describing frame t and the transition *into* frame t
  (so every entry 0 of a transition quantity is "nothing happened yet"):

  ==============  ==============  ======================================================================
  key             shape / dtype   meaning
  ==============  ==============  ======================================================================
  ``pos``         (T, 2) float32  agent position (x, y) in output pixels (NaN where unknown)
  ``shift``       (T, 2) float32  global shift (dx, dy) of the agent into frame t, output pixels;
                                  +x = content moves right, +y = content moves down
  ``local``       (T,) int64      local action label of the transition into frame t (-1 = none)
  ``mask``        (T, H, W) uint8 foreground mask, 1 = agent pixel
  ``bg_shift``    (T, 2) float32  background content shift into frame t, output pixels
  ``action``      (T,) int64      raw action (e.g. ALE joystick id) that produced frame t (-1 for t=0)
  ``reward``      (T,) float32    reward received on the transition into frame t
  ``done``        (T,) bool       episode ended at frame t
  ==============  ==============  ======================================================================

Writes are atomic: a video is written to ``videos/.<name>.npz.tmp`` and renamed; the manifest likewise.
A run that is killed leaves only complete videos, and :class:`DatasetWriter` skips those on the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "glassworld-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
GT_KEYS: dict[str, tuple[str, int | None]] = {
    # key: (dtype, trailing size or None for scalar per frame; mask is special-cased)
    "pos": ("float32", 2),
    "shift": ("float32", 2),
    "local": ("int64", None),
    "mask": ("uint8", None),
    "bg_shift": ("float32", 2),
    "action": ("int64", None),
    "reward": ("float32", None),
    "done": ("bool", None),
}


class DatasetError(ValueError):
    """A dataset folder or argument is unusable; the message says how to fix it."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions of a new file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def npz_bytes(arrays: dict[str, np.ndarray], level: int = 1) -> bytes:
    """An ``.npz`` (readable by ``np.load``) deflated at zlib ``level``.

    Level 1 instead of ``np.savez_compressed``'s 6: about twice as fast to write for ~1.2-1.6x the size on
    video frames, and writing is the bottleneck of every data source.
    """
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


def split_by_hash(identity: str, seed: int = 0, fractions: tuple[float, float] = (0.8, 0.9)) -> str:
    """Deterministic split of an identity string (episode, sprite, file name) independent of order.

    ``fractions`` are the cumulative bounds of train and val; the rest is test.
    """
    h = hashlib.sha1(f"{seed}:{identity}".encode()).digest()
    u = int.from_bytes(h[:8], "little") / 2**64
    return "train" if u < fractions[0] else ("val" if u < fractions[1] else "test")


def validate_size(size: tuple[int, int] | None, what: str = "--size") -> tuple[int, int] | None:
    if size is None:
        return None
    h, w = size
    if h <= 0 or w <= 0:
        raise DatasetError(f"{what} must be positive HxW (e.g. 96x128), got {h}x{w}")
    return int(h), int(w)


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"HxW"`` (e.g. ``"96x128"``) into (H, W), with one clear error for anything else."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DatasetError(f"size must be HxW with two integers, e.g. 96x128; got {text!r}") from None
    return validate_size((h, w), "size")  # type: ignore[return-value]


def _check_gt(name: str, key: str, value: np.ndarray, t: int, hw: tuple[int, int]) -> np.ndarray:
    if key not in GT_KEYS:
        raise DatasetError(f"unknown ground-truth key {key!r} for video {name}; known: {sorted(GT_KEYS)}")
    dtype, trailing = GT_KEYS[key]
    arr = np.asarray(value).astype(dtype, copy=False)
    if key == "mask":
        expect: tuple[int, ...] = (t, *hw)
    elif trailing is None:
        expect = (t,)
    else:
        expect = (t, trailing)
    if arr.shape != expect:
        raise DatasetError(f"ground truth {key!r} of video {name} has shape {arr.shape}, expected {expect}")
    return arr


@dataclass
class DatasetWriter:
    """Writes videos into a dataset folder atomically and keeps ``manifest.json`` in step.

    Usage::

        w = DatasetWriter(out, source="atari", height=96, width=128, fps=15, generator=vars(args))
        for name in names:
            if w.has(name):          # resume: skip finished videos
                continue
            w.write(name, frames, split="train", identity="episode-3", pos=..., shift=...)
        w.close()                    # (re)builds manifest.json from every complete video
    """

    root: Path
    source: str
    height: int
    width: int
    fps: float
    generator: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        validate_size((self.height, self.width), "size")
        self.videos_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.root / "manifest.json"
        if manifest.exists():
            old = read_manifest(self.root)
            if (old["height"], old["width"]) != (self.height, self.width) or old["source"] != self.source:
                raise DatasetError(
                    f"{self.root} already holds a {old['source']} dataset at {old['height']}x{old['width']}; "
                    f"choose another --out folder (or delete it) to write {self.source} at {self.height}x{self.width}"
                )
        for stale in self.videos_dir.glob(".*.tmp"):  # left by a killed run; never a complete video
            stale.unlink(missing_ok=True)

    @property
    def videos_dir(self) -> Path:
        return self.root / "videos"

    def path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise DatasetError(f"invalid video name {name!r}")
        return self.videos_dir / f"{name}.npz"

    def has(self, name: str) -> bool:
        return self.path(name).exists()

    def write(self, name: str, frames: np.ndarray, split: str, identity: str | None = None,
              info: dict[str, Any] | None = None, **gt: np.ndarray) -> Path:
        """Write one video. ``frames``: (T, H, W, 3) uint8. ``gt``: keys of :data:`GT_KEYS`."""
        if split not in SPLITS:
            raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3) or frames.dtype != np.uint8:
            raise DatasetError(
                f"video {name}: frames must be uint8 (T, {self.height}, {self.width}, 3), "
                f"got {frames.dtype} {tuple(frames.shape)}"
            )
        t = frames.shape[0]
        if t == 0:
            raise DatasetError(f"video {name} has no frames")
        arrays = {k: _check_gt(name, k, v, t, (self.height, self.width)) for k, v in gt.items() if v is not None}
        meta = {"split": split, "identity": identity if identity is not None else name, "frames": t,
                "ground_truth": sorted(arrays), **(info or {})}
        path = self.path(name)
        atomic_write_bytes(path, npz_bytes({"frames": frames, "meta": np.array(json.dumps(meta)), **arrays}))
        return path

    def close(self) -> dict[str, Any]:
        """Rebuild and atomically write ``manifest.json`` from all complete videos; return it."""
        videos: dict[str, Any] = {}
        for p in sorted(self.videos_dir.glob("*.npz")):
            try:
                videos[p.stem] = read_video_meta(p)
            except Exception as e:  # noqa: BLE001 - a broken file must not break the index
                raise DatasetError(f"{p} is unreadable ({e}); delete it and re-run to regenerate it") from e
        splits = {s: [n for n, m in videos.items() if m["split"] == s] for s in SPLITS}
        gt_keys = sorted(set().union(*[set(m["ground_truth"]) for m in videos.values()])) if videos else []
        manifest = {
            "format": FORMAT_NAME, "version": FORMAT_VERSION, "source": self.source,
            "height": self.height, "width": self.width, "fps": self.fps,
            "generator": self.generator, **self.extra,
            "ground_truth": gt_keys,
            "num_videos": len(videos), "num_frames": int(sum(m["frames"] for m in videos.values())),
            "splits": splits, "videos": videos,
        }
        atomic_write_json(self.root / "manifest.json", manifest)
        return manifest


def read_video_meta(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


def read_manifest(root: Path) -> dict[str, Any]:
    """Read ``DIR/manifest.json`` with one clear error when it is not a glassworld dataset."""
    root = Path(root)
    path = root / "manifest.json"
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist; create one with `glassworld data ...`")
    if not path.exists():
        raise DatasetError(
            f"{root} has no manifest.json, so it is not a glassworld dataset; create one with "
            "`glassworld data atari|sprites|videos --out DIR`"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(
            f"{path} is not valid JSON ({e}); delete it, and re-run the `glassworld data` command that made the "
            "folder: it rebuilds the manifest from videos/ without regenerating them"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path} is not a {FORMAT_NAME} manifest")
    if manifest.get("version", 0) > FORMAT_VERSION:
        raise DatasetError(f"{path} has format version {manifest['version']}; upgrade glassworld to read it")
    return manifest


def load_video(root: Path, name: str, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Load one video's arrays (all, or only ``keys``) from a dataset folder."""
    path = Path(root) / "videos" / f"{name}.npz"
    with np.load(path, allow_pickle=False) as z:
        wanted = [k for k in z.files if k != "meta" and (keys is None or k in keys)]
        return {k: z[k] for k in wanted}
