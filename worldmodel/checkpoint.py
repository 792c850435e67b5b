"""Self-describing checkpoints that load without running code.

One file holds weights, config, step, optimiser, RNG and what an env needs (see :func:`save_checkpoint` for the
payload keys). Files are written atomically (temp file + rename), so a run killed mid-save leaves the previous
checkpoint intact.

**Safety.** A checkpoint is data, never code. :func:`save_checkpoint` reduces the payload to plain types — dicts,
lists, tuples, str, int, float, bool, None and tensors; numpy arrays and scalars are stored as tagged tensors and
come back as numpy — and refuses anything else. :func:`load_checkpoint` reads with ``torch.load(...,
weights_only=True)``, which cannot import or call anything. A file that needs more (an old pickle, or one a
stranger crafted) is refused with :class:`UnsafeCheckpointError`; ``glassworld upgrade PATH --trust`` re-saves a
file you trust in the safe format (the only place glassworld ever unpickles arbitrary objects, and only when asked).
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
                    trust: bool = False) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with one clear error for anything else.

    Loads with ``weights_only=True``: nothing in the file can run. ``trust=True`` (only ``glassworld upgrade
    --trust`` passes it) also reads files that need arbitrary Python objects — never use it on a file you did not
    make yourself.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"checkpoint {path} does not exist; train one with `glassworld train ...`")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=not trust)
    except pickle.UnpicklingError as e:
        needs = _unsafe_globals(path)
        if needs or "weights_only" in str(e).lower() or "Unsupported global" in str(e):
            raise UnsafeCheckpointError(
                f"checkpoint {path} holds Python objects beyond plain data ({', '.join(needs) or 'see torch'}), "
                "which could run code when loaded, so glassworld refuses it. If you made this file yourself (an "
                f"older glassworld wrote it), re-save it safely with `glassworld upgrade {path} --trust`; never do "
                "that for a file from someone you do not trust") from None
        raise DatasetError(f"checkpoint {path} is unreadable (UnpicklingError: {e})") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a broken file
        raise DatasetError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path} is not a glassworld checkpoint")
    if ckpt.get("version", 0) > FORMAT_VERSION:
        raise DatasetError(f"{path} has checkpoint version {ckpt['version']}; upgrade glassworld to read it")
    return from_plain(ckpt)


def upgrade_checkpoint(src: str | Path, dst: str | Path | None = None, *, trust: bool = False) -> Path:
    """Re-save a checkpoint in the safe format (in place when ``dst`` is None); returns the path written.

    A file that already loads safely is rewritten without ``trust``. One that needs arbitrary objects is read only
    with ``trust=True`` — the caller's statement that they made the file — and then every value must still reduce
    to plain data, or nothing is written.
    """
    src = Path(src)
    try:
        ckpt = load_checkpoint(src)
    except UnsafeCheckpointError:
        if not trust:
            raise
        ckpt = load_checkpoint(src, trust=True)
    ckpt.pop("format", None)
    ckpt.pop("version", None)
    try:
        return save_checkpoint(Path(dst) if dst is not None else src, ckpt)
    except TypeError as e:
        raise DatasetError(f"cannot re-save {src} safely: {e}") from None
