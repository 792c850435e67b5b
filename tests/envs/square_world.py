"""A tiny hand-written world model for tests: a coloured square walking on a grey textured background.

It implements :class:`worldmodel.api.WorldModel` exactly (plus ``segment``), so environments, agents and the
planner can be tested in seconds without training anything:

* the shift moves the square by ``shift_grid[shift]`` pixels (plus Gaussian jitter from the generator, so that
  seeding is really exercised), clamped to the frame;
* the code paints the square in ``PALETTE[code]``;
* the background is the start frame with the square painted out (grey), so it never changes.

It can be saved and loaded as a glassworld checkpoint (model name ``"square"``; tests register it in
``worldmodel.models.MODELS`` with monkeypatch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.api import State

PALETTE = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.9], [0.9, 0.8, 0.1]])  # (K, 3)
DIRECTIONS = [("none", 0, 0), ("right", 1, 0), ("left", -1, 0), ("down", 0, 1), ("up", 0, -1),
              ("down-right", 1, 1), ("down-left", -1, 1), ("up-right", 1, -1), ("up-left", -1, -1)]


@dataclass
class SquareConfig:
    height: int = 40
    width: int = 48
    num_codes: int = 4
    size: int = 6  # square side, px
    step_px: float = 3.0  # shift grid step
    noise: float = 0.3  # px of position jitter per step
    num_start: int = 8  # start-bank frames
    seed: int = 0

    @classmethod
    def preset(cls, name: str, height: int, width: int, **overrides: Any) -> SquareConfig:
        return cls(height=height, width=width, **overrides)


def textured_background(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """(n, 3, H, W) grey texture in [0.3, 0.7] (R = G = B, so the square is the only saturated thing)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, max(1, h // 4), max(1, w // 4), generator=g)
    tex = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (0.3 + 0.4 * tex).expand(n, 3, h, w).contiguous()


class SquareWorld:
    """See the module docstring. Frames are float in [0, 1], (B, 3, H, W)."""

    def __init__(self, cfg: SquareConfig | None = None, device: str | torch.device = "cpu") -> None:
        self.cfg = cfg or SquareConfig()
        c = self.cfg
        self.height, self.width, self.num_codes = c.height, c.width, c.num_codes
        self.device = torch.device(device)
        self.shift_grid = torch.tensor([[dx * c.step_px, dy * c.step_px] for _, dx, dy in DIRECTIONS],
                                       device=self.device)
        self.shift_names = [n for n, _, _ in DIRECTIONS]
        self.code_meanings: list[str] | None = [f"paint {i}" for i in range(c.num_codes)]
        self.palette = PALETTE[: c.num_codes].to(self.device)
        self.metadata: dict[str, Any] = {"dataset": "square-world (test fixture)"}
        g = torch.Generator().manual_seed(c.seed)
        bg = textured_background(c.num_start, c.height, c.width, c.seed).to(self.device)
        pos = torch.stack([torch.rand(c.num_start, generator=g) * (c.width - 2 * c.size) + c.size,
                           torch.rand(c.num_start, generator=g) * (c.height - 2 * c.size) + c.size], 1)
        codes = torch.randint(0, c.num_codes, (c.num_start,), generator=g)
        frames, _ = self.render(bg, pos.to(self.device), self.palette[codes.to(self.device)])
        self.start_frames = (frames * 255).round().to(torch.uint8)

    # -- helpers ----------------------------------------------------------------------------------
    def square_mask(self, pos: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) hard mask of squares centred at pos (B, 2)."""
        ys = torch.arange(self.height, device=self.device, dtype=torch.float32)[None, :, None]
        xs = torch.arange(self.width, device=self.device, dtype=torch.float32)[None, None, :]
        half = self.cfg.size / 2
        m = ((xs - pos[:, 0, None, None]).abs() < half) & ((ys - pos[:, 1, None, None]).abs() < half)
        return m[:, None].float()

    def render(self, bg: torch.Tensor, pos: torch.Tensor, color: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self.square_mask(pos)
        return mask * color[:, :, None, None] + (1 - mask) * bg, mask

    @staticmethod
    def _to_float(frames: torch.Tensor) -> torch.Tensor:
        return frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()

    def _detect(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """frames (B, 3, H, W) in [0, 1] -> mask (B, 1, H, W), pos (B, 2), colour (B, 3)."""
        sat = frames.max(dim=1).values - frames.min(dim=1).values  # (B, H, W)
        mask = (sat > 0.3).float()[:, None]
        area = mask.sum(dim=(1, 2, 3)).clamp_min(1.0)
        xs = torch.arange(self.width, device=frames.device, dtype=torch.float32)
        ys = torch.arange(self.height, device=frames.device, dtype=torch.float32)
        x = (mask[:, 0].sum(1) * xs).sum(1) / area
        y = (mask[:, 0].sum(2) * ys).sum(1) / area
        color = (frames * mask).sum(dim=(2, 3)) / area[:, None]
        return mask, torch.stack([x, y], 1), color

    # -- the WorldModel interface -----------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> SquareWorld:
        from worldmodel.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path)
        model = cls(SquareConfig(**ckpt["model_config"]), device)
        env = ckpt.get("env_info") or {}
        if env.get("start_frames") is not None:
            model.start_frames = env["start_frames"].to(model.device)
        model.metadata = dict(ckpt.get("card") or {})
        return model

    def checkpoint_payload(self) -> dict[str, Any]:
        return {"model": "square", "model_config": asdict(self.cfg), "state_dict": {}, "step": 0,
                "env_info": {"shift_grid": self.shift_grid.tolist(), "shift_names": self.shift_names,
                             "code_meanings": self.code_meanings, "start_frames": self.start_frames.cpu()},
                "card": dict(self.metadata)}

    @torch.no_grad()
    def start(self, frames: torch.Tensor) -> State:
        f = self._to_float(frames).to(self.device)
        mask, pos, color = self._detect(f)
        bg = torch.where(mask.bool(), torch.full_like(f, 0.5), f)
        return {"bg": bg, "pos": pos, "color": color}

    @torch.no_grad()
    def step(self, state: State, shift: torch.Tensor, code: torch.Tensor,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, State]:
        b = state["pos"].shape[0]
        assert code.shape == (b,), f"code must be (B,)={b}, got {tuple(code.shape)}"
        delta = self.shift_grid[shift.long()] if shift.dim() == 1 else shift.float().to(self.device)  # (B, 2)
        noise = torch.randn(b, 2, generator=generator, device=self.device) * self.cfg.noise
        half = self.cfg.size / 2
        lo = torch.tensor([half, half], device=self.device)
        hi = torch.tensor([self.width - 1 - half, self.height - 1 - half], device=self.device)
        pos = torch.minimum(torch.maximum(state["pos"] + delta + noise, lo), hi)
        color = self.palette[code.long()]
        frame, mask = self.render(state["bg"], pos, color)
        return frame, mask, {"bg": state["bg"], "pos": pos, "color": color}

    @torch.no_grad()
    def segment(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) in [0, 1] -> (B, T, 1, H, W)."""
        b, t = frames.shape[:2]
        mask, _, _ = self._detect(self._to_float(frames).reshape(b * t, *frames.shape[2:]))  # (B*T, 1, H, W)
        return mask.reshape(b, t, 1, self.height, self.width)

    @torch.no_grad()
    def infer_actions(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = video.shape[:2]
        f = self._to_float(video).to(self.device).reshape(b * t, 3, self.height, self.width)  # (B*T, 3, H, W)
        _, pos, color = self._detect(f)
        pos, color = pos.reshape(b, t, 2), color.reshape(b, t, 3)
        shifts = pos[:, 1:] - pos[:, :-1]  # (B, T-1, 2)
        codes = torch.cdist(color[:, 1:].reshape(-1, 3), self.palette).argmin(dim=1).reshape(b, t - 1)
        return shifts, codes


def square_start_frame(model: SquareWorld, x: float, y: float, code: int = 0) -> np.ndarray:
    """A uint8 (H, W, 3) start frame with the square at (x, y)."""
    bg = textured_background(1, model.height, model.width, 123).to(model.device)
    frame, _ = model.render(bg, torch.tensor([[x, y]], device=model.device), model.palette[[code]])
    return (frame[0].permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()


def register_square_model(monkeypatch) -> None:
    """Make "square" checkpoints loadable by ``worldmodel.models.load_world_model`` for one test."""
    from worldmodel import models

    monkeypatch.setitem(models.MODELS, "square", ("square_world", "SquareWorld", "square_world", "SquareConfig"))


def save_tiny_glass_checkpoint(path: Path, height: int = 32, width: int = 48, model: str = "glass") -> Path:
    """An untrained tiny ``model`` ("glass" | "keypoint") checkpoint with a bank of 4 textured start frames
    (a red square "agent")."""
    from worldmodel.checkpoint import save_checkpoint
    from worldmodel.glass.config import GlassConfig
    from worldmodel.glass.model import GlassModel
    from worldmodel.keypoint.config import KeypointConfig
    from worldmodel.keypoint.model import KeypointModel

    torch.manual_seed(0)
    cfg = (GlassConfig if model == "glass" else KeypointConfig).preset("tiny", height, width)
    net = (GlassModel if model == "glass" else KeypointModel)(cfg).eval()
    start = (textured_background(4, height, width, seed=1) * 255).round().to(torch.uint8)
    start[:, 0, 10:16, 20:26] = 230
    env_info = {"shift_grid": net.shift_grid.tolist(), "shift_names": list(net.shift_names),
                "code_meanings": None, "start_frames": start}
    payload = {"model": model, "model_config": cfg.to_dict(), "state_dict": net.state_dict(), "step": 0,
               "env_info": env_info, "perceptual": "off", "card": {"dataset": "none (untrained test model)"}}
    return save_checkpoint(path, payload)

