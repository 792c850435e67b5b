"""The generation interface every glassworld world model implements (GLASS and the keypoint model).

Environments, agents, evaluation and the viewer only use this interface, so they never branch on which
model they hold. Tensors are batched and live on the model's device; frames are float in [0, 1].
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

State = dict[str, torch.Tensor]  # every tensor has the batch dimension first


def select_state(mask: torch.Tensor, new: State, old: State) -> State:
    """Per batch element, take ``new`` where ``mask`` (B,) is True and ``old`` elsewhere (no Python loop)."""
    assert new.keys() == old.keys(), f"state keys differ: {sorted(new)} vs {sorted(old)}"
    out: State = {}
    for k, v in old.items():
        m = mask.view(-1, *([1] * (v.dim() - 1))).to(v.device)
        out[k] = torch.where(m, new[k], v)
    return out


@runtime_checkable
class WorldModel(Protocol):
    """What a trained world model offers to environments, agents, evaluation and the viewer.

    Attributes:
        height, width: frame size in pixels.
        num_codes: K, the number of local action codes.
        shift_grid: (n_shifts, 2) float tensor of global shifts (dx, dy) in pixels, row 0 = no move.
        shift_names: a name per row of ``shift_grid`` ("none", "right", "up-left", ...).
        code_meanings: a name per code (e.g. "FIRE 81%") or None when unknown.
        start_frames: (N, 3, H, W) uint8 bank of real start frames (from the val split).
        device: where the model runs.
        metadata: the checkpoint's model card fields (dataset, steps, eval, ...).
    """

    height: int
    width: int
    num_codes: int
    shift_grid: torch.Tensor
    shift_names: list[str]
    code_meanings: list[str] | None
    start_frames: torch.Tensor
    device: torch.device
    metadata: dict[str, Any]

    @classmethod
    def from_checkpoint(cls, path: str, device: str | torch.device = "cpu") -> WorldModel: ...

    def start(self, frames: torch.Tensor) -> State:
        """Begin B rollouts from real frames (B, 3, H, W), uint8 or float in [0, 1]."""
        ...

    def step(self, state: State, shift: torch.Tensor, code: torch.Tensor,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, State]:
        """Advance every rollout by one frame.

        Args:
            shift: (B,) long indices into ``shift_grid``, or (B, 2) float (dx, dy) in pixels.
            code: (B,) long local action codes in [0, K).
        Returns:
            frame (B, 3, H, W) in [0, 1], agent mask (B, 1, H, W) in [0, 1], next state.
        """
        ...

    def infer_actions(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Infer the actions between consecutive real frames.

        Args:
            video: (B, T, 3, H, W) uint8 or float in [0, 1].
        Returns:
            shifts (B, T-1, 2) float (dx, dy) in pixels, codes (B, T-1) long.
        """
        ...


def missing_members(obj: Any) -> list[str]:
    """The :class:`WorldModel` attributes and methods ``obj`` lacks (empty: it implements the protocol).

    Use this, not ``isinstance(obj, WorldModel)``: from Python 3.12 a runtime protocol check looks attributes up
    statically and misses what a torch module keeps as a buffer (``shift_grid``, ``start_frames``), so a real model
    would fail it there.
    """
    names = [*WorldModel.__annotations__, "from_checkpoint", "start", "step", "infer_actions"]
    return [name for name in names if not hasattr(obj, name)]

