"""What every glassworld world model shares: applying a checkpoint's env_info and rebuilding from a checkpoint."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .data.format import DatasetError

log = logging.getLogger(__name__)


class WorldModelBase(nn.Module):
    """Base of GLASS and the keypoint model.

    Subclasses set ``model_name`` (the checkpoint's "model" value) and ``config_cls`` (with ``from_dict``), and
    define ``height``, ``width``, ``num_codes``, ``device``, the local-action quantiser ``action.vq`` and
    ``_recent_u`` (the latest training batch's pre-quantisation actions, or None).
    """

    # recorded (start, later) agent positions, two (M, 2) float32 CPU tensors (env_info reach_from / reach_to)
    reach_places: tuple[torch.Tensor, torch.Tensor] | None = None
    # (4,) float32 (x0, y0, x1, y1) px: where the agent was found in the training video (env_info agent_box);
    # generation keeps it there (:func:`worldmodel.metrics.kept_in_box`). None: anywhere.
    agent_box: torch.Tensor | None = None
    model_name: ClassVar[str]
    display_name: ClassVar[str]  # for messages ("GLASS", "keypoint")
    config_cls: ClassVar[Any]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def reset_dead_codes(self, usage_counts: torch.Tensor) -> int:
        """Re-initialise codebook rows whose ``usage_counts`` (K,) are 0 (near recent pre-quantisation actions);
        returns how many (see ``VectorQuantizer.reset_dead`` in :mod:`worldmodel.glass.networks`)."""
        dead = self.action.vq.reset_dead(usage_counts, self._recent_u)
        if dead:
            log.info("reset %d dead code(s): %s", len(dead), dead)
        return len(dead)

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Run in eval mode (BatchNorm running statistics) and restore the previous mode afterwards."""
        was_training = self.training
        self.train(False)
        try:
            yield
        finally:
            self.train(was_training)

    def _check_frames(self, x: torch.Tensor, dims: int, what: str) -> None:
        """One clear error unless ``x`` is ``dims``-dimensional frames (..., 3, H, W) of this model's size."""
        shape = ("B", "T", 3, self.height, self.width)[-dims:]
        if x.dim() != dims or tuple(x.shape[-3:]) != (3, self.height, self.width):
            raise ValueError(f"{what} must be {shape} (this model is {self.height}x{self.width}), "
                             f"got {tuple(x.shape)}")

    def _shift_pixels(self, shift: torch.Tensor, b: int) -> torch.Tensor:
        """(B,) long indices into shift_grid or (B, 2) float pixels -> (B, 2) float pixels on the device."""
        shift = torch.as_tensor(shift, device=self.device)
        if shift.dim() == 1 and not shift.is_floating_point():
            if shift.shape[0] != b:
                raise ValueError(f"shift indices must be (B,) = ({b},), got {tuple(shift.shape)}")
            n = self.shift_grid.shape[0]
            if shift.numel() and (shift.min() < 0 or shift.max() >= n):
                raise ValueError(f"shift indices must lie in [0, {n}) (rows of shift_grid), got {shift.tolist()}")
            return self.shift_grid[shift.long()]
        if shift.shape == (b, 2):
            return shift.float()
        raise ValueError(f"shift must be (B,) long indices into shift_grid or (B, 2) float pixels (dx, dy) "
                         f"with B={b}, got {tuple(shift.shape)} {shift.dtype}")

    def _code_ids(self, code: torch.Tensor, b: int) -> torch.Tensor:
        """(B,) integer local action codes -> (B,) long on the device, checked to lie in [0, K)."""
        code = torch.as_tensor(code, device=self.device)
        if code.shape != (b,) or code.is_floating_point():
            raise ValueError(f"code must be (B,) = ({b},) long, got {tuple(code.shape)} {code.dtype}")
        if code.numel() and (code.min() < 0 or code.max() >= self.num_codes):
            raise ValueError(f"codes must lie in [0, {self.num_codes}), got {code.tolist()}")
        return code.long()

    def set_env_info(self, info: dict[str, Any]) -> None:
        """Apply a checkpoint's env_info: shift_grid (n, 2) px, shift_names, code_meanings, start_frames,
        reach_from / reach_to (M, 2) px, agent_box (4,) px."""
        if "shift_grid" in info and info["shift_grid"] is not None:
            grid = torch.as_tensor(info["shift_grid"], dtype=torch.float32)
            if grid.dim() != 2 or grid.shape[1] != 2 or grid.shape[0] < 1:
                raise ValueError(f"env_info shift_grid must be (n, 2) pixels, got {tuple(grid.shape)}")
            names = list(info.get("shift_names") or [f"shift{i}" for i in range(grid.shape[0])])
            if len(names) != grid.shape[0]:
                raise ValueError(f"env_info has {grid.shape[0]} shifts but {len(names)} shift_names")
            self.shift_grid = grid.to(self.device)
            self.shift_names = names
        meanings = info.get("code_meanings")
        if meanings is not None:
            if len(meanings) != self.num_codes:
                raise ValueError(f"env_info code_meanings has {len(meanings)} names for {self.num_codes} codes")
            self.code_meanings = list(meanings)
        frames = info.get("start_frames")
        if frames is not None:
            frames = torch.as_tensor(frames)
            if frames.dim() != 4 or tuple(frames.shape[1:]) != (3, self.height, self.width) \
                    or frames.dtype != torch.uint8:
                raise ValueError(f"env_info start_frames must be uint8 (N, 3, {self.height}, {self.width}), "
                                 f"got {frames.dtype} {tuple(frames.shape)}")
            self.start_frames = frames.to(self.device)
        if info.get("reach_from") is not None and info.get("reach_to") is not None:
            a = torch.as_tensor(info["reach_from"], dtype=torch.float32)
            b = torch.as_tensor(info["reach_to"], dtype=torch.float32)
            if a.dim() != 2 or a.shape[1] != 2 or a.shape != b.shape:
                raise ValueError(f"env_info reach_from / reach_to must both be (M, 2) pixels, got {tuple(a.shape)} "
                                 f"and {tuple(b.shape)}")
            self.reach_places = (a, b)

        if info.get("agent_box") is not None:
            box = torch.as_tensor(info["agent_box"], dtype=torch.float32).flatten()
            if box.numel() != 4 or not bool((box[2:] >= box[:2]).all()):
                raise ValueError(f"env_info agent_box must be (x0, y0, x1, y1) pixels with x1 >= x0, y1 >= y0, got "
                                 f"{box.tolist()}")
            self.agent_box = box

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu"):
        """Rebuild a trained model (eval mode, on ``device``) from a glassworld checkpoint alone."""
        ckpt = load_checkpoint(path, map_location="cpu")
        if ckpt.get("model") != cls.model_name:
            raise DatasetError(f"{path} holds a {ckpt.get('model')!r} model, not a {cls.display_name} one")
        model = cls(cls.config_cls.from_dict(ckpt["model_config"]))
        try:
            model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as e:
            raise DatasetError(f"{path}: weights do not fit its own model_config ({e})") from None
        model.to(device)
        if ckpt.get("env_info"):
            model.set_env_info(ckpt["env_info"])
        model.metadata = dict(ckpt.get("card") or {})
        return model.eval()
