"""What every glassworld world model shares: applying a checkpoint's env_info and rebuilding from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .data.format import DatasetError


class WorldModelBase(nn.Module):
    """Base of GLASS and the keypoint model.

    Subclasses set ``model_name`` (the checkpoint's "model" value) and ``config_cls`` (with ``from_dict``), and
    define ``height``, ``width``, ``num_codes`` and ``device``.
    """

    model_name: ClassVar[str]
    display_name: ClassVar[str]  # for messages ("GLASS", "keypoint")
    config_cls: ClassVar[Any]

    def set_env_info(self, info: dict[str, Any]) -> None:
        """Apply a checkpoint's env_info: shift_grid (n, 2) px, shift_names, code_meanings, start_frames."""
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
