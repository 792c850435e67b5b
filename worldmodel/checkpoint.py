"""Self-describing checkpoints that load without running code.

One file holds weights, config, step, optimiser, RNG and what an env needs (see :func:`save_checkpoint` for the
payload keys). Files are written atomically (temp file + rename), so a run killed mid-save leaves the previous
checkpoint intact.

**Safety.** A checkpoint is data, never code. :func:`save_checkpoint` reduces the payload to plain types — dicts,
lists, tuples, str, int, float, bool, None and tensors; numpy arrays and scalars are stored as tagged tensors and
come back as numpy — and refuses anything else. :func:`load_checkpoint` reads with ``torch.load(...,
weights_only=True)``, which cannot import or call anything. A file that needs more (an older glassworld's, or one
a stranger crafted) is refused with :class:`UnsafeCheckpointError`. ``glassworld upgrade PATH`` re-saves files of
older glassworld versions: it reads them still with ``weights_only=True``, admitting only the few harmless types
they held (:data:`LEGACY_GLOBALS`: numpy arrays, dtypes and scalars, torch's version string), so nothing in any
file ever runs — a crafted file is refused by ``upgrade`` too.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data.format import DatasetError, atomic_write_bytes

FORMAT_NAME = "glassworld-checkpoint"
FORMAT_VERSION = 2  # 2: plain types only (weights_only-loadable); 1: could hold any pickled object
REQUIRED = ("model", "model_config", "state_dict", "step")
_NUMPY_TAG = "__numpy__"  # {"__numpy__": dtype str, "data": tensor}: a numpy array or scalar in a safe file


def _legacy_globals() -> list[Any]:
    """What format-1 files held beyond plain data: numpy RNG states and scalars, and ``torch.__version__``."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray  # type: ignore[no-redef]
    dtype_classes = [type(np.dtype(c)) for c in "?bhilqBHILQefd"]  # numpy >= 1.25 pickles dtypes by class
    return [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, torch.torch_version.TorchVersion,
            *dtype_classes]


class UnsafeCheckpointError(DatasetError):
    """A checkpoint that would need arbitrary Python objects (code) to load."""


def to_plain(x: Any, where: str = "payload") -> Any:
    """``x`` reduced to types ``torch.load(weights_only=True)`` reads; numpy becomes tagged tensors.

    Raises TypeError naming the key path of the first value that has no safe form.
    """
    if torch.is_tensor(x):
        return x
    if x is None or type(x) in (bool, int, float, str):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{where}: numpy dtype {arr.dtype} has no safe checkpoint form")
        wide = arr.astype(np.int64) if arr.dtype.kind == "u" and arr.dtype.itemsize > 1 else arr  # torch lacks them
        data = torch.from_numpy(np.array(wide, dtype=wide.dtype.newbyteorder("="), copy=True))
        return {_NUMPY_TAG: arr.dtype.str, "data": data, "scalar": isinstance(x, np.generic)}
    for kind in (bool, int, float, str):  # subclasses, such as torch's TorchVersion (a str), become the base type
        if isinstance(x, kind):
            return kind(x)
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            out[to_plain(k, where)] = to_plain(v, f"{where}.{k}")
        return out
    if isinstance(x, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(x)]
        return items if isinstance(x, list) else tuple(items)
    raise TypeError(f"{where}: {type(x).__module__}.{type(x).__qualname__} has no safe checkpoint form; "
                    "store it as plain data (dict, list, str, number, tensor)")


def from_plain(x: Any) -> Any:
    """Inverse of :func:`to_plain`: tagged tensors back to numpy arrays/scalars."""
    if isinstance(x, dict):
        if _NUMPY_TAG in x:
            arr = x["data"].numpy().astype(np.dtype(x[_NUMPY_TAG]))
            return arr[()] if x.get("scalar") else arr
        return {k: from_plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [from_plain(v) for v in x]
    if isinstance(x, tuple):
        return tuple(from_plain(v) for v in x)
    return x


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Atomically write a checkpoint in the safe format.

    Payload keys: "model" ("glass" | "keypoint"), "model_config" (dict), "state_dict", "step", and optionally
    "optimizer", "scheduler", "rng", "run_config", "env_info" ({"shift_grid": [[dx, dy], ...] px,
    "shift_names": [...], "code_meanings": [...] | None, "start_frames": uint8 (N, 3, H, W)}),
    "perceptual" ("pretrained" | "random" | "off") and "card" (model-card dict). Values must be plain data
    (see :func:`to_plain`); anything else raises TypeError before the file is touched.
    """
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    plain = to_plain({"format": FORMAT_NAME, "version": FORMAT_VERSION, **payload})
    buf = io.BytesIO()
    torch.save(plain, buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - a file too broken to list: the load error says enough
        return []


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", *,
                    legacy: bool = False) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with one clear error for anything else.

    Loads with ``weights_only=True``: nothing in the file can run. ``legacy=True`` (``glassworld upgrade``) also
    admits the types of :func:`_legacy_globals`, which build data and call nothing else.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"checkpoint {path} does not exist; train one with `glassworld train ...`")
    try:
        with torch.serialization.safe_globals(_legacy_globals() if legacy else []):
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        needs = _unsafe_globals(path)
        fix = ("It is not a file glassworld wrote: do not load it." if legacy else
               f"If an older glassworld wrote it, `glassworld upgrade {path}` re-saves it safely (and refuses a "
               "file that holds anything else).")
        raise UnsafeCheckpointError(
            f"checkpoint {path} holds Python objects beyond plain data ({', '.join(needs) or e}), which could run "
            f"code when loaded, so glassworld refuses it. {fix}") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a broken file
        raise DatasetError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path} is not a glassworld checkpoint")
    if ckpt.get("version", 0) > FORMAT_VERSION:
        raise DatasetError(f"{path} has checkpoint version {ckpt['version']}; upgrade glassworld to read it")
    return from_plain(ckpt)


def upgrade_checkpoint(src: str | Path, dst: str | Path | None = None) -> Path:
    """Re-save a checkpoint of any glassworld version in the safe format (in place when ``dst`` is None).

    Returns the path written. The source is read with ``load_checkpoint(legacy=True)``: nothing in it runs, and a
    file holding anything beyond what older glassworld versions wrote is refused (nothing is written).
    """
    src = Path(src)
    ckpt = load_checkpoint(src, legacy=True)
    ckpt.pop("format", None)
    ckpt.pop("version", None)
    return save_checkpoint(Path(dst) if dst is not None else src, ckpt)
