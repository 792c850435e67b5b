"""Self-describing checkpoints: one file holds weights, config, step, optimiser, RNG and what an env needs.

See :func:`save_checkpoint` for the payload keys. Files are written atomically (temp file + rename), so a run
killed mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from .data.format import DatasetError, atomic_write_bytes

FORMAT_NAME = "glassworld-checkpoint"
FORMAT_VERSION = 1
REQUIRED = ("model", "model_config", "state_dict", "step")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Atomically write a checkpoint.

    Payload keys: "model" ("glass" | "keypoint"), "model_config" (dict), "state_dict", "step", and optionally
    "optimizer", "scheduler", "rng", "run_config", "env_info" ({"shift_grid": [[dx, dy], ...] px,
    "shift_names": [...], "code_meanings": [...] | None, "start_frames": uint8 (N, 3, H, W)}),
    "perceptual" ("pretrained" | "random" | "off") and "card" (model-card dict).
    """
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    buf = io.BytesIO()
    torch.save({"format": FORMAT_NAME, "version": FORMAT_VERSION, **payload}, buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with one clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"checkpoint {path} does not exist; train one with `glassworld train ...`")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a broken file
        raise DatasetError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path} is not a glassworld checkpoint")
    if ckpt.get("version", 0) > FORMAT_VERSION:
        raise DatasetError(f"{path} has checkpoint version {ckpt['version']}; upgrade glassworld to read it")
    return ckpt
