"""What every benchmark shares: the default world, untrained stand-in models, peak memory, machine facts."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import torch

from worldmodel.config import settings
from worldmodel.data.format import DatasetError

# The one default checkpoint rule: the env and play benchmarks time the shipped GlassTennis-v0 (what people play
# and train agents in) unless `checkpoint=` names a file or another registered id; `checkpoint=null` times an
# untrained model of `model`/`preset` at `height` x `width` (same speed as a trained one of that size, minus
# re-grounding). The train benchmark always trains an untrained model on synthetic clips.
DEFAULT_CHECKPOINT = "GlassTennis-v0"


def resolve_checkpoint(name: str | None) -> str | None:
    """A checkpoint file from a path or a registered env id (its ``checkpoint`` keyword); None stays None."""
    if name is None or os.path.isfile(name):
        return name
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    try:
        path = gym.spec(name).kwargs.get("checkpoint")
    except gym.error.Error:
        path = None
    if path is None:
        raise DatasetError(f"checkpoint={name!r} is neither a file nor a registered env id with a checkpoint; "
                           f"pass a checkpoint file, an id such as {DEFAULT_CHECKPOINT}, or checkpoint=null")
    return str(path)


@dataclass
class WorldSettings:
    """The world the env and play benchmarks run (their configs' first keys)."""

    checkpoint: str | None = DEFAULT_CHECKPOINT  # a file or a registered id; None: an untrained model/preset
    model: str = "glass"
    preset: str = "cpu"  # tiny | cpu | paper (the untrained model)
    height: int = 96  # the cpu preset's default resolution (configs/config.yaml)
    width: int = 128
    seed: int = 0

    def validate(self) -> None:
        """One clear error for settings that cannot be run; subclasses add theirs."""
        if self.height < 8 or self.width < 8:
            raise DatasetError(f"height and width must be >= 8, got {self.height}x{self.width}")

    def untrained_model(self, device: torch.device) -> Any:
        """An untrained ``model``/``preset`` in eval mode with 8 random start frames (8, 3, H, W) uint8."""
        from worldmodel.models import build_model

        try:
            model = build_model(self.model, self.preset, self.height, self.width, {}).to(device).eval()
        except (TypeError, ValueError) as e:
            raise DatasetError(f"cannot build {self.model}/{self.preset} at {self.height}x{self.width}: {e}") from None
        g = torch.Generator().manual_seed(self.seed)
        start = torch.randint(0, 256, (8, 3, self.height, self.width), generator=g, dtype=torch.uint8)
        if hasattr(model, "set_env_info"):
            model.set_env_info({"start_frames": start})
        else:
            model.start_frames = start.to(device)
        return model


W = TypeVar("W", bound=WorldSettings)


def world_config(cls: type[W], d: dict[str, Any]) -> W:
    """``cls`` from a composed bench config (plain dict, ``out`` removed): unknown keys and unusable values are one
    :class:`DatasetError`; a registered id in ``checkpoint`` becomes its file."""
    cfg = settings(cls, d)
    cfg.validate()
    return replace(cfg, checkpoint=resolve_checkpoint(cfg.checkpoint))


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB: ``VmHWM`` from /proc/self/status.

    ``ru_maxrss`` is not used: Linux keeps it across ``execve``, so a process started by a bigger one (a test
    runner, a driver script) reports its parent's peak; VmHWM belongs to the process's own memory map. Where
    /proc is missing (not Linux) ``ru_maxrss`` is the fallback.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loadavg_1m() -> float | None:
    """The 1-minute load average (other work on the machine slows every measurement), None where unknown."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine() -> dict[str, Any]:
    """The facts that make two measurements comparable."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "torch": torch.__version__}
