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

Reading is checked: :func:`read_manifest` (which every reader calls when it opens a dataset) checks each listed
video file and leaves out, with one warning naming the file, any that is missing, not a readable archive, or
whose arrays disagree with the manifest (frame size, frame count, ground-truth lengths). ``check="header"`` (the
default) reads only each archive's directory and array headers, without decompressing; ``check="full"`` also
decompresses every array (catching corrupt data inside an intact archive). Results are remembered per file
(path, size, mtime), so re-opening a dataset costs one ``stat`` per video.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

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


CHECK_LEVELS = ("header", "full", "off")  # how read_manifest checks video files (module docstring)


class DatasetError(ValueError):
    """A dataset folder or argument is unusable; the message says how to fix it."""


def check_writable(path: str | Path, what: str, *, folder: bool = True) -> Path:
    """Prove that ``path`` can be created and written, before any work, with one clear error naming it.

    Every command that writes results calls this first (``run_dir``, ``out=``, ``--out``). ``folder=True``:
    ``path`` is an output folder; ``folder=False``: ``path`` is an output file, and its folder is what is checked
    (the file is written later, atomically, so the folder must be writable). The test creates the folder (with its
    parents) and a hidden temporary file in it, then removes both again: permission bits alone do not tell (root
    ignores them; a read-only mount has any bits), and a check leaves nothing behind when the command then fails
    for another reason. The command creates the folder when it writes.

    Returns:
        ``path`` as a Path.
    Raises:
        DatasetError: ``"<what> <path> is not writable: <reason>; ..."`` with the fix.
    """
    path = Path(path)
    if not folder and path.is_dir():
        raise DatasetError(f"{what} {path} is a folder; give a file name inside it, e.g. {path / 'result.json'}")
    target = path if folder else path.parent
    missing = [d for d in (target, *target.parents) if not d.exists()]  # deepest first
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".glassworld-write-test.", suffix=".tmp", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(target) else ""
        raise DatasetError(f"{what} {path} is not writable: {e.strerror or e}{where}; choose a location you can "
                           "write to, or fix its permissions") from None
    finally:
        for d in missing:
            try:
                d.rmdir()
            except OSError:
                break
    return path


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
        check_writable(self.root, "--out")
        self.videos_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.root / "manifest.json"
        if manifest.exists():
            old = read_manifest(self.root, check="off")
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


def read_manifest(root: Path, check: str = "header") -> dict[str, Any]:
    """Read ``DIR/manifest.json`` with one clear error when it is not a glassworld dataset.

    ``check`` (one of :data:`CHECK_LEVELS`): how the listed video files are checked (module docstring). A video
    that fails is left out of ``videos``, ``splits``, ``num_videos`` and ``num_frames``, named in one warning,
    and listed with its reason under ``skipped`` ({name: reason}; the key is absent when nothing was left out).
    ``"off"`` returns the manifest as written.
    """
    if check not in CHECK_LEVELS:
        raise DatasetError(f"data.check must be one of {list(CHECK_LEVELS)}, got {check!r}")
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
    if check == "off":
        return manifest
    return _without_bad_videos(root, manifest, full=check == "full")


def _without_bad_videos(root: Path, manifest: dict[str, Any], full: bool) -> dict[str, Any]:
    """``manifest`` with the videos whose files fail :func:`check_video_file` left out (and warned about)."""
    hw = (int(manifest["height"]), int(manifest["width"]))
    videos: dict[str, Any] = manifest.get("videos") or {}
    skipped: dict[str, str] = {}
    for name, entry in videos.items():
        reason = _checked(root / "videos" / f"{name}.npz", (entry or {}).get("frames"), hw, full)
        if reason is not None:
            skipped[name] = reason
    if not skipped:
        return manifest
    kept = {n: v for n, v in videos.items() if n not in skipped}
    return {**manifest, "videos": kept,
            "splits": {s: [n for n in names if n in kept] for s, names in (manifest.get("splits") or {}).items()},
            "num_videos": len(kept), "num_frames": int(sum(int(v.get("frames", 0)) for v in kept.values())),
            "skipped": skipped}


# (resolved path, size, mtime_ns, frames, (H, W)) -> (level checked, reason or None)
_CHECKED: dict[tuple[Any, ...], tuple[str, str | None]] = {}


def _checked(path: Path, frames: int | None, hw: tuple[int, int], full: bool) -> str | None:
    """:func:`check_video_file`, remembered per file version; a bad file is warned about once."""
    try:
        st = path.stat()
    except OSError:
        key: tuple[Any, ...] = (str(path.resolve()), None, None, frames, hw)
    else:
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, frames, hw)
    level = "full" if full else "header"
    known = _CHECKED.get(key)
    if known is not None and (known[0] == "full" or level == "header" or known[1] is not None):
        return known[1]
    reason = check_video_file(path, frames, hw, full)
    _CHECKED[key] = (level, reason)
    if reason is not None:
        log.warning("%s: %s; left out of the dataset (delete it and re-run the `glassworld data` command that made "
                    "the folder to regenerate it)", path, reason)
    return reason


def _gt_shape(key: str, t: int, hw: tuple[int, int]) -> tuple[int, ...]:
    """The shape ground truth ``key`` must have in a video of ``t`` frames of size ``hw``."""
    trailing = GT_KEYS[key][1]
    if key == "mask":
        return (t, *hw)
    return (t,) if trailing is None else (t, trailing)


def _array_headers(zf: zipfile.ZipFile) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{array name: (shape, dtype)} of every ``.npy`` member, read from the headers only (no decompression of
    the data beyond the first block)."""
    out = {}
    for member in zf.namelist():
        if not member.endswith(".npy"):
            continue
        with zf.open(member) as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran, dtype = read(fh)
        out[member[:-4]] = (tuple(int(v) for v in shape), dtype)
    return out


def check_video_file(path: Path, frames: int | None, hw: tuple[int, int], full: bool = False) -> str | None:
    """Why the video file ``path`` is unusable in a dataset of ``hw`` = (H, W) frames, or None when it is fine.

    Checks that it exists and is a readable ``.npz`` with a uint8 ``frames`` array of shape
    (``frames``, H, W, 3) (``frames`` = the manifest's count; None: any), ground truth of matching lengths and a
    ``meta`` entry. The default reads only the archive directory and array headers; ``full=True`` also
    decompresses every array (CRC-checked) and parses ``meta``.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            headers = _array_headers(zf)
            corrupt = zf.testzip() if full else None  # decompresses every member and checks its CRC
    except FileNotFoundError:
        return "the file is missing"
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
        return f"not a readable .npz archive ({type(e).__name__}: {e})"
    if corrupt is not None:
        return f"its array {corrupt!r} is corrupt (CRC mismatch)"
    if "frames" not in headers:
        return "it holds no 'frames' array"
    shape, dtype = headers["frames"]
    if len(shape) != 4 or shape[1:] != (*hw, 3):
        return f"its frames have shape {shape}, but the dataset's frames are (T, {hw[0]}, {hw[1]}, 3)"
    if dtype != np.uint8:
        return f"its frames are {dtype}, not uint8"
    t = shape[0]
    if frames is not None and t != int(frames):
        return f"it holds {t} frames, but the manifest lists {frames}"
    for key, (gshape, _dtype) in headers.items():
        if key in GT_KEYS and gshape != _gt_shape(key, t, hw):
            return f"its ground truth {key!r} has shape {gshape}, expected {_gt_shape(key, t, hw)}"
    if "meta" not in headers:
        return "it holds no 'meta' entry"
    if full:
        try:
            meta_frames = read_video_meta(path).get("frames")
        except Exception as e:  # noqa: BLE001 - any failure to read meta makes the file unusable
            return f"its meta is unreadable ({type(e).__name__}: {e})"
        if meta_frames != t:
            return f"its meta says {meta_frames} frames, the array holds {t}"
    return None


def load_video(root: Path, name: str, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Load one video's arrays (all, or only ``keys``) from a dataset folder.

    Raises:
        DatasetError: naming the file when it cannot be read (a corrupt archive that the default header check
            cannot see; ``data.check=full`` finds such files up front and leaves them out).
    """
    path = Path(root) / "videos" / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            wanted = [k for k in z.files if k != "meta" and (keys is None or k in keys)]
            return {k: z[k] for k in wanted}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
        raise DatasetError(
            f"video file {path} is unreadable ({type(e).__name__}: {e}); delete it and re-run the `glassworld "
            "data` command that made the folder to regenerate it, or train with data.check=full to leave such "
            "files out up front") from e
